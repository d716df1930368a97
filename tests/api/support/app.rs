//! `TestApp`: the real server in-process on a fresh, migrated database and a
//! random port, with one helper per endpoint the tests call. Every extension
//! of `TestApp` lives here.

use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::{MySqlPool, PgPool};
use uuid::Uuid;

use uplink::config::Secret;
use uplink::settings::Settings;
use uplink::startup::Application;

use super::database::fresh_database;
use super::mysql;

/// The admin API key of the apps the admin tests configure (`with_admin_key`).
pub const ADMIN_KEY: &str = "correct-horse-battery-staple-admin";

/// Enables the admin API with `ADMIN_KEY`.
pub fn with_admin_key(settings: &mut Settings) {
    settings.admin.api_key_sha256 = Some(hex::encode(Sha256::digest(ADMIN_KEY.as_bytes())));
}

/// The app and its database: Postgres (`PgPool`), or MySQL (`MySqlPool`,
/// from `spawn_mysql`).
pub struct TestApp<Pool = PgPool> {
    pub address: String,
    pub port: u16,
    pub db_pool: Pool,
    pub db_url: String,
    pub db_name: String,
    pub client: reqwest::Client,
    pub settings: Settings,
    pub handle: actix_web::dev::ServerHandle,
    pub data_dir: PathBuf,
    /// The metrics listener's port (`None` with `metrics.enabled` off).
    pub metrics_port: Option<u16>,
}

/// Settings as the development environment loads them, pointed at `db_url`,
/// on a random port, with a private data directory.
pub fn test_settings(db_url: &str) -> Settings {
    static LOADED: OnceLock<Settings> = OnceLock::new();
    let mut settings = LOADED
        .get_or_init(|| {
            // SAFETY of the environment: tests never set UPLINK__* variables.
            let mut settings = Settings::load(None).expect("Failed to load test settings");
            settings.server.host = "127.0.0.1".parse().expect("valid address");
            settings.server.port = 0;
            settings.server.workers = 2;
            settings.server.shutdown_timeout = std::time::Duration::from_secs(5);
            settings.database.migrate_on_start = true;
            // A free port for each app's metrics listener.
            settings.metrics.port = 0;
            settings.metrics.refresh_interval = std::time::Duration::from_secs(1);
            // Rate limits only where a test is about them (tests/api/limits.rs).
            settings.limits.token_per_user.per_second = 0.0;
            settings.limits.token_per_ip.per_second = 0.0;
            settings.limits.upload_per_user.per_second = 0.0;
            settings
        })
        .clone();
    settings.database.url = Some(Secret::new(db_url));
    settings.server.data_dir =
        std::env::temp_dir().join(format!("uplink-test-{}", Uuid::new_v4().simple()));
    settings
}

type Customize = Box<dyn FnOnce(&mut Settings)>;

pub struct TestAppBuilder {
    schema: Vec<String>,
    seed: Vec<String>,
    customize: Vec<Customize>,
}

impl TestApp {
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            schema: Vec::new(),
            seed: Vec::new(),
            customize: Vec::new(),
        }
    }

    /// The one number `sql` selects from the app's database.
    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&self.db_pool)
            .await
            .unwrap()
    }
}

impl<Pool> TestApp<Pool> {
    /// Where this app keeps uplink's own tables (`Own::progress`, …).
    pub fn own(&self) -> uplink::db::Own {
        let kind = self.settings.database_kind();
        let name = uplink::db::own::schema_name(
            self.settings.database.uplink_schema.as_deref(),
            kind,
            Some(&self.db_name),
        );
        uplink::db::Own::new(kind, &name)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("Failed to execute request")
    }

    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .await
            .expect("Failed to execute request")
    }

    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }

    /// Asks for three write checkpoints per (user, client), interleaved,
    /// and checks each pair counts its own: 1, 2, 3. The users' tokens.
    pub async fn checkpoints_count_per_user_and_client(
        &self,
        users: [&str; 2],
        clients: [&str; 2],
    ) -> Vec<String> {
        let mut tokens = Vec::new();
        for user in users {
            tokens.push(self.token_for(user).await);
        }
        for round in 1..=3 {
            for (user, token) in users.iter().zip(&tokens) {
                for client in clients {
                    let response = self
                        .client
                        .put(self.url("/api/data/checkpoint"))
                        .bearer_auth(token)
                        .json(&serde_json::json!({ "client_id": client }))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), 200);
                    let body: serde_json::Value = response.json().await.unwrap();
                    assert_eq!(body["checkpoint"], round.to_string(), "{user}/{client}");
                }
            }
        }
        tokens
    }

    /// A token for `user_id` from the real token endpoint (dev identity mode).
    pub async fn token_for(&self, user_id: &str) -> String {
        let response = self
            .client
            .post(self.url("/api/auth/token"))
            .json(&serde_json::json!({ "user_id": user_id }))
            .send()
            .await
            .expect("Failed to request a token");
        assert_eq!(response.status(), 200, "token endpoint refused {user_id}");
        let body: serde_json::Value = response.json().await.expect("token response is JSON");
        body["token"]
            .as_str()
            .expect("token response has a token")
            .to_owned()
    }

    /// POST /api/data with `token`: the whole response (for its headers).
    pub async fn send_batch(&self, token: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url("/api/data"))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request failed")
    }

    /// POST /api/data with `token`: the status and the report (null when
    /// the body is not JSON).
    pub async fn post_batch(&self, token: &str, body: &Value) -> (u16, Value) {
        let response = self.send_batch(token, body).await;
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// POST /api/data of a body given as JSON text (numbers that no float
    /// holds exactly survive): the status and the report.
    pub async fn post_batch_text(&self, token: &str, body: &str) -> (u16, Value) {
        let response = self
            .client
            .post(self.url("/api/data"))
            .bearer_auth(token)
            .header("Content-Type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("request failed");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A request to the admin API with `ADMIN_KEY`.
    pub async fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::Response {
        self.client
            .request(method, self.url(path))
            .header("X-Admin-Key", ADMIN_KEY)
            .send()
            .await
            .expect("admin request failed")
    }

    /// GET /metrics on the metrics listener: the Prometheus text, checked
    /// for its content type.
    pub async fn scrape(&self) -> String {
        let port = self.metrics_port.expect("metrics are enabled");
        let response = self
            .client
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .send()
            .await
            .expect("scrape the metrics listener");
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        response.text().await.unwrap()
    }
}

impl TestAppBuilder {
    /// SQL run on the fresh database before the app starts (the app's own tables).
    pub fn schema(mut self, sql: impl Into<String>) -> Self {
        self.schema.push(sql.into());
        self
    }

    /// SQL run on uplink's own tables before the app starts (Postgres): the
    /// migrations run first, so the state is there from the first moment.
    pub fn seed(mut self, sql: impl Into<String>) -> Self {
        self.seed.push(sql.into());
        self
    }

    pub fn config(mut self, customize: impl FnOnce(&mut Settings) + 'static) -> Self {
        self.customize.push(Box::new(customize));
        self
    }

    pub async fn spawn(self) -> TestApp {
        let database = fresh_database(&self.schema).await;
        let settings = test_settings(&database.url);
        if !self.seed.is_empty() {
            let db = uplink::db::pool::connect(&settings.database, &database.url)
                .expect("a pool for uplink's migrations");
            uplink::db::migrate::run(&db)
                .await
                .expect("uplink's migrations");
            for sql in &self.seed {
                sqlx::raw_sql(sql)
                    .execute(&database.pool)
                    .await
                    .expect("seed uplink's tables");
            }
        }
        self.start(settings, database.pool, database.url, database.name)
            .await
    }

    /// The app on a fresh MySQL database (`UPLINK_TEST_MYSQL_URL`).
    pub async fn spawn_mysql(self) -> TestApp<MySqlPool> {
        let database = mysql::fresh_database(&self.schema).await;
        let settings = test_settings(&database.url);
        self.start(settings, database.pool, database.url, database.name)
            .await
    }

    /// Why start-up on a fresh Postgres database fails (it must).
    pub async fn spawn_error(self) -> String {
        let database = fresh_database(&self.schema).await;
        let settings = test_settings(&database.url);
        self.build_error(settings).await
    }

    /// Why start-up on a fresh MySQL database fails (it must).
    pub async fn spawn_mysql_error(self) -> String {
        let database = mysql::fresh_database(&self.schema).await;
        let settings = test_settings(&database.url);
        self.build_error(settings).await
    }

    async fn build_error(self, mut settings: Settings) -> String {
        for customize in self.customize {
            customize(&mut settings);
        }
        match Application::build(settings).await {
            Ok(_) => panic!("start-up must fail"),
            Err(err) => format!("{err:#}"),
        }
    }

    async fn start<Pool>(
        self,
        mut settings: Settings,
        db_pool: Pool,
        db_url: String,
        db_name: String,
    ) -> TestApp<Pool> {
        for customize in self.customize {
            customize(&mut settings);
        }
        let data_dir = settings.server.data_dir.clone();
        let application = Application::build(settings.clone())
            .await
            .expect("Failed to build the application");
        let port = application.port();
        let metrics_port = application.metrics_port();
        let handle = application.handle();
        tokio::spawn(application.run_until_stopped());
        TestApp {
            address: format!("http://127.0.0.1:{port}"),
            port,
            db_pool,
            db_url,
            db_name,
            client: reqwest::Client::new(),
            settings,
            handle,
            data_dir,
            metrics_port,
        }
    }
}

pub async fn spawn_app() -> TestApp {
    TestApp::builder().spawn().await
}
