//! The checker through a load balancer: several `uplink serve` replicas on
//! one database (Postgres or MariaDB/MySQL) behind HAProxy, sharing one
//! signing key, with faults injected across the replicas.

use std::path::PathBuf;
use std::sync::Arc;

use sqlx::{MySqlPool, PgPool};
use tokio::sync::Mutex;
use uplink::auth::keys::{KeyAlg, PrivateKey};

use super::verify::{observe_mysql, observe_postgres};
use super::{Plan, Summary, UplinkProcess, checker_schema, drive};
use crate::support::haproxy::Haproxy;
use crate::support::{database, mysql};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The server of `UPLINK_TEST_DATABASE_URL` / `DATABASE_URL`.
    Postgres,
    /// The server of `UPLINK_TEST_MYSQL_URL`.
    MySql,
}

/// The checker's schema on MySQL/MariaDB (`checker_schema` on Postgres),
/// one statement each.
pub fn mysql_checker_schema(shared_rows: usize) -> Vec<String> {
    let shared: Vec<String> = (0..shared_rows)
        .map(|i| format!("('s{i}', 'init')"))
        .collect();
    let mut schema = vec![
        "CREATE TABLE chaos_rows (id varchar(64) PRIMARY KEY, value text)".to_owned(),
        "CREATE TABLE chaos_entries (id varchar(64) PRIMARY KEY, owner varchar(64) NOT NULL, value text)"
            .to_owned(),
        "CREATE TABLE chaos_audit (seq bigint AUTO_INCREMENT PRIMARY KEY, tbl varchar(32) NOT NULL, \
         row_id varchar(64) NOT NULL, value text)"
            .to_owned(),
    ];
    if !shared.is_empty() {
        schema.push(format!(
            "INSERT INTO chaos_rows (id, value) VALUES {}",
            shared.join(", ")
        ));
    }
    // MySQL has one trigger per event; an upsert fires INSERT or UPDATE.
    for table in ["chaos_rows", "chaos_entries"] {
        for event in ["INSERT", "UPDATE"] {
            schema.push(format!(
                "CREATE TRIGGER {table}_{} AFTER {event} ON {table} FOR EACH ROW \
                 INSERT INTO chaos_audit (tbl, row_id, value) VALUES ('{table}', NEW.id, NEW.value)",
                event.to_lowercase()
            ));
        }
    }
    schema
}

/// Replicas on a fresh database with the checker's schema, sharing one
/// signing key (a file of its own), behind HAProxy.
pub struct Cluster {
    pub db_name: String,
    pub db_url: String,
    pub replicas: Arc<Vec<Mutex<UplinkProcess>>>,
    pub haproxy: Haproxy,
    /// Where the key files live (`key_config` names them).
    pub key_dir: KeyDir,
    /// Configuration every replica gets before its keys.
    prefix: String,
}

impl Cluster {
    /// `replicas` processes with `pool_size` connections each, started at
    /// once on the fresh database (their migrations race, as replicas' do);
    /// `config` is YAML for their configuration files (not `auth:`).
    pub async fn start(
        backend: Backend,
        replicas: usize,
        pool_size: u32,
        shared_rows: usize,
        config: &str,
    ) -> Self {
        let (db_name, db_url) = match backend {
            Backend::Postgres => {
                let db = database::fresh_database(&[checker_schema(shared_rows)]).await;
                db.pool.close().await;
                (db.name, db.url)
            }
            Backend::MySql => {
                let db = mysql::fresh_database(&mysql_checker_schema(shared_rows)).await;
                db.pool.close().await;
                (db.name, db.url)
            }
        };
        let key_dir = KeyDir::new();
        let key = key_dir.write_key("k1");
        let extra = format!("{config}{}", key_config(&[(&key, true)]));
        let started = futures_util::future::join_all(
            (0..replicas).map(|_| UplinkProcess::start_with(&db_url, pool_size, &extra)),
        )
        .await;
        let ports: Vec<u16> = started.iter().map(|p| p.port).collect();
        let haproxy = Haproxy::start(&ports).await;
        Self {
            db_name,
            db_url,
            replicas: Arc::new(started.into_iter().map(Mutex::new).collect()),
            haproxy,
            key_dir,
            prefix: config.to_owned(),
        }
    }

    /// Writes `extra` into every replica's configuration and sends each a
    /// SIGHUP (which re-reads the signing keys).
    pub async fn reconfigure_and_hangup(&self, extra: &str) {
        for replica in self.replicas.iter() {
            let replica = replica.lock().await;
            replica.rewrite_config(&format!("{}{extra}", self.prefix));
            replica.signal("HUP");
        }
    }
}

/// The `auth.keys` section for key files: `(path, active)`.
pub fn key_config(keys: &[(&PathBuf, bool)]) -> String {
    let mut config = "auth:\n  keys:\n".to_owned();
    for (path, active) in keys {
        config.push_str(&format!(
            "    - {{ alg: EdDSA, file: \"{}\", active: {active} }}\n",
            path.display()
        ));
    }
    config
}

/// A directory of signing key files, removed with the value.
pub struct KeyDir(PathBuf);

impl KeyDir {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("uplink-keys-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("create the key directory");
        Self(dir)
    }

    /// The file `write_key(name)` wrote.
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(format!("{name}.pem"))
    }

    /// A new Ed25519 key as a PEM file named `name`.
    pub fn write_key(&self, name: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let pem = PrivateKey::generate(KeyAlg::EdDsa)
            .and_then(|k| k.to_pem())
            .expect("generate a key")
            .expect("an Ed25519 key has a PEM");
        let path = self.path(name);
        std::fs::write(&path, pem).expect("write the key file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .expect("key file mode");
        path
    }
}

impl Default for KeyDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for KeyDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `plan` through HAProxy in front of `replicas` uplinks on `backend`,
/// then compares the database with what the clients were told.
pub async fn run_replicas(plan: Plan, backend: Backend, replicas: usize) -> Summary {
    let cluster = Cluster::start(backend, replicas, 8, plan.shared_rows, "").await;
    let base = cluster.haproxy.url("");
    let driven = drive(
        &plan,
        base,
        cluster.db_name.clone(),
        cluster.replicas.clone(),
    )
    .await;
    match backend {
        Backend::Postgres => {
            let pool = PgPool::connect(&cluster.db_url)
                .await
                .expect("connect for checks");
            let summary = driven
                .summarize(&observe_postgres(&pool).await, &plan)
                .await;
            pool.close().await;
            summary
        }
        Backend::MySql => {
            let pool = MySqlPool::connect(&cluster.db_url)
                .await
                .expect("connect for checks");
            let summary = driven.summarize(&observe_mysql(&pool).await, &plan).await;
            pool.close().await;
            summary
        }
    }
}
