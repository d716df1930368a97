//! The Postgres server the tests run on, and a fresh database per test.

use sqlx::{Connection, Executor, PgConnection, PgPool};
use uuid::Uuid;

/// The Postgres server the tests create their databases on.
pub fn server_url() -> String {
    std::env::var("UPLINK_TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .expect("set DATABASE_URL to a Postgres server (scripts/test does this for you)")
}

/// `server_url()` with another database name (query parameters kept).
pub fn database_url(name: &str) -> String {
    let server = server_url();
    let authority_start = server.find("://").map_or(0, |i| i + 3);
    let (head, tail) = match server[authority_start..].find('/') {
        Some(i) => server.split_at(authority_start + i),
        None => (server.as_str(), ""),
    };
    let query = tail.find('?').map_or("", |i| &tail[i..]);
    format!("{head}/{name}{query}")
}

/// Creates an empty database with a unique name and returns its name.
pub async fn create_database() -> String {
    let name = format!("uplink_test_{}", Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(&server_url())
        .await
        .expect("Failed to connect to the test Postgres server");
    conn.execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
        .await
        .expect("Failed to create the test database");
    name
}

/// A fresh database with the app's own tables loaded.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
    pub pool: PgPool,
}

/// Creates a database and runs each of `schema` on it, in order.
pub async fn fresh_database<S: AsRef<str>>(schema: &[S]) -> TestDatabase {
    let name = create_database().await;
    let url = database_url(&name);
    let pool = PgPool::connect(&url)
        .await
        .expect("Failed to connect to the test database");
    for sql in schema {
        sqlx::raw_sql(sql.as_ref())
            .execute(&pool)
            .await
            .expect("Failed to load the test schema");
    }
    TestDatabase { name, url, pool }
}

/// A test database taken offline, as in an outage: it refuses new
/// connections and its open ones are dropped, until `end`.
pub struct Outage {
    admin: PgPool,
    name: String,
}

impl Outage {
    pub async fn begin(name: &str) -> Self {
        let admin = PgPool::connect(&server_url())
            .await
            .expect("admin connection");
        let outage = Self {
            admin,
            name: name.to_owned(),
        };
        outage.allow_connections(false).await;
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(name)
        .execute(&outage.admin)
        .await
        .expect("drop connections");
        outage
    }

    pub async fn end(&self) {
        self.allow_connections(true).await;
    }

    async fn allow_connections(&self, on: bool) {
        let name = &self.name;
        sqlx::query(&format!(
            r#"ALTER DATABASE "{name}" ALLOW_CONNECTIONS {on}"#
        ))
        .execute(&self.admin)
        .await
        .expect("ALTER DATABASE … ALLOW_CONNECTIONS");
    }
}

/// Runs uplink's migrations on the database at `url`, as `uplink migrate`
/// does (into uplink's own schema).
pub async fn migrate(url: &str) {
    let settings = super::app::test_settings(url);
    let db = uplink::db::pool::connect(&settings.database, url).expect("a pool");
    uplink::db::migrate::run(&db)
        .await
        .expect("uplink's migrations");
    db.close().await;
}
