#![allow(dead_code)] // shared by test modules that each use a part of it

//! `spawn_app()`: a fresh, migrated database and the real server on a random port.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use sqlx::{Connection, Executor, PgConnection, PgPool};
use uuid::Uuid;

use uplink::config::{Secret, Settings};
use uplink::startup::Application;

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub db_pool: PgPool,
    pub db_url: String,
    pub db_name: String,
    pub client: reqwest::Client,
    pub settings: Settings,
    pub handle: actix_web::dev::ServerHandle,
    pub data_dir: PathBuf,
}

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
    customize: Vec<Customize>,
}

impl TestApp {
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            schema: Vec::new(),
            customize: Vec::new(),
        }
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
}

impl TestAppBuilder {
    /// SQL run on the fresh database before the app starts (the app's own tables).
    pub fn schema(mut self, sql: impl Into<String>) -> Self {
        self.schema.push(sql.into());
        self
    }

    pub fn config(mut self, customize: impl FnOnce(&mut Settings) + 'static) -> Self {
        self.customize.push(Box::new(customize));
        self
    }

    pub async fn spawn(self) -> TestApp {
        let db_name = create_database().await;
        let db_url = database_url(&db_name);
        let db_pool = PgPool::connect(&db_url)
            .await
            .expect("Failed to connect to the test database");
        for sql in &self.schema {
            sqlx::raw_sql(sql)
                .execute(&db_pool)
                .await
                .expect("Failed to load the test schema");
        }
        let mut settings = test_settings(&db_url);
        for customize in self.customize {
            customize(&mut settings);
        }
        let data_dir = settings.server.data_dir.clone();
        let application = Application::build(settings.clone())
            .await
            .expect("Failed to build the application");
        let port = application.port();
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
        }
    }
}

pub async fn spawn_app() -> TestApp {
    TestApp::builder().spawn().await
}

/// The repository root (for config files, examples and fixtures).
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Asserts the JSON error shape and returns the code.
pub async fn error_code(response: reqwest::Response) -> String {
    let body: serde_json::Value = response.json().await.expect("error body is JSON");
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error.code in {body}"))
        .to_owned();
    assert!(
        body["error"]["message"].is_string(),
        "no error.message in {body}"
    );
    code
}
