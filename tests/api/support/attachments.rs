//! Support for the attachment suite: an in-process S3-compatible server
//! (s3s-fs) that verifies SigV4 signatures, and an app per backend.

use std::collections::BTreeMap;
use std::path::PathBuf;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use reqwest::StatusCode;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use serde_json::{Value, json};
use uuid::Uuid;

use uplink::attachments::{S3Settings, StorageKind};
use uplink::config::Secret;
use uplink::settings::Settings;

use super::app::TestApp;
pub use super::backend::Backend as Database;

pub const ACCESS_KEY: &str = "UPLINKTESTACCESSKEY";
pub const SECRET_KEY: &str = "uplink-test-secret-access-key-0123456789";
pub const BUCKET: &str = "uplink-attachments";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Local,
    S3,
}

/// A running s3s-fs server; objects live under `root/{bucket}/{key}`.
pub struct S3Server {
    pub endpoint: String,
    pub root: PathBuf,
}

impl S3Server {
    /// Starts on a free port with one bucket and signature checks on.
    pub async fn start() -> Self {
        let root = std::env::temp_dir().join(format!("uplink-s3-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(root.join(BUCKET)).expect("create the bucket directory");
        let mut builder = S3ServiceBuilder::new(super::s3_parts::MultipartFs::new(&root));
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = builder.build();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the S3 server");
        let port = listener.local_addr().expect("local address").port();
        tokio::spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let conn = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        });
        Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            root,
        }
    }

    pub fn object_path(&self, key: &str) -> PathBuf {
        self.root.join(BUCKET).join(key)
    }
}

impl Drop for S3Server {
    /// The bucket goes with the test (multipart tests store megabytes).
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A test app on a fresh database of kind `P` with the given storage
/// backend; `customize` runs after the backend is set.
pub struct AttachmentApp<P = sqlx::PgPool> {
    pub app: TestApp<P>,
    pub backend: Backend,
    pub s3: Option<S3Server>,
}

impl<P: Database> AttachmentApp<P> {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(
        backend: Backend,
        customize: impl FnOnce(&mut Settings) + 'static,
    ) -> Self {
        let s3 = match backend {
            Backend::Local => None,
            Backend::S3 => Some(S3Server::start().await),
        };
        let endpoint = s3.as_ref().map(|s| s.endpoint.clone());
        let builder = TestApp::builder().config(move |settings| {
            if let Some(endpoint) = endpoint {
                settings.attachments.storage = StorageKind::S3;
                settings.attachments.s3 = S3Settings {
                    bucket: BUCKET.to_owned(),
                    region: "us-east-1".to_owned(),
                    endpoint: Some(endpoint),
                    public_endpoint: None,
                    force_path_style: true,
                    access_key_id: Some(ACCESS_KEY.to_owned()),
                    secret_access_key: Some(Secret::new(SECRET_KEY)),
                };
            }
            customize(settings);
        });
        let app = P::spawn(builder).await;
        Self { app, backend, s3 }
    }

    /// Where the bytes of `key` are stored, to look at them directly.
    pub fn stored_path(&self, key: &str) -> PathBuf {
        match &self.s3 {
            Some(s3) => s3.object_path(key),
            None => self.app.data_dir.join("attachments").join(key),
        }
    }

    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        user: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let token = self.token(user).await;
        let mut request = self
            .app
            .client
            .request(method, self.app.url(path))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("request to uplink")
    }

    /// A token from uplink's own token route (development identity mode).
    pub async fn token(&self, user: &str) -> String {
        let response = self
            .app
            .client
            .get(self.app.url("/api/auth/token"))
            .query(&[("user_id", user)])
            .send()
            .await
            .expect("token request");
        assert_eq!(
            response.status(),
            reqwest::StatusCode::OK,
            "token for {user:?}"
        );
        let body: Value = response.json().await.expect("token body");
        body["token"].as_str().expect("token").to_owned()
    }

    pub async fn upload_url(&self, user: &str, body: Value) -> reqwest::Response {
        self.api(
            reqwest::Method::POST,
            "/api/attachments/upload-url",
            user,
            Some(body),
        )
        .await
    }

    pub async fn complete(&self, user: &str, id: &str) -> reqwest::Response {
        self.api(
            reqwest::Method::POST,
            &format!("/api/attachments/{id}/complete"),
            user,
            None,
        )
        .await
    }

    pub async fn download_url(&self, user: &str, id: &str) -> reqwest::Response {
        self.api(
            reqwest::Method::GET,
            &format!("/api/attachments/{id}/download-url"),
            user,
            None,
        )
        .await
    }

    pub async fn delete(&self, user: &str, id: &str) -> reqwest::Response {
        self.api(
            reqwest::Method::DELETE,
            &format!("/api/attachments/{id}"),
            user,
            None,
        )
        .await
    }
}

/// A presigned request as uplink returned it.
pub struct Presigned {
    pub url: String,
    pub headers: BTreeMap<String, String>,
}

impl Presigned {
    pub fn from_upload(body: &Value) -> Self {
        let headers = body["headers"]
            .as_object()
            .expect("headers object")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().expect("header value").to_owned()))
            .collect();
        Self {
            url: body["uploadUrl"].as_str().expect("uploadUrl").to_owned(),
            headers,
        }
    }

    /// The request head of this PUT as raw HTTP/1.1 with `Content-Length:
    /// length`, and the `host:port` to send it to (plain HTTP URLs only).
    pub fn raw_put_head(&self, length: usize) -> (String, String) {
        let rest = self.url.strip_prefix("http://").expect("an http URL");
        let (authority, path) = rest.split_at(rest.find('/').expect("a path"));
        let mut head = format!("PUT {path} HTTP/1.1\r\nHost: {authority}\r\n");
        for (name, value) in self
            .headers
            .iter()
            .filter(|(name, _)| !name.eq_ignore_ascii_case("content-length"))
        {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!("Content-Length: {length}\r\n\r\n"));
        (authority.to_owned(), head)
    }

    /// PUTs `bytes` exactly as a device would: the URL and headers as given.
    pub async fn put(&self, bytes: Vec<u8>) -> reqwest::Response {
        self.put_with(bytes, |_| {}).await
    }

    /// PUTs with the headers changed by `edit` first.
    pub async fn put_with(
        &self,
        bytes: Vec<u8>,
        edit: impl FnOnce(&mut BTreeMap<String, String>),
    ) -> reqwest::Response {
        let mut headers = self.headers.clone();
        edit(&mut headers);
        let mut request = reqwest::Client::new().put(&self.url);
        // Like fetch(), the HTTP client sets Content-Length from the body.
        for (name, value) in headers
            .iter()
            .filter(|(name, _)| !name.eq_ignore_ascii_case("content-length"))
        {
            request = request.header(name, value);
        }
        request.body(bytes).send().await.expect("PUT to storage")
    }
}

/// Runs each named scenario `fn<P: Database>(Backend)` once per storage
/// backend and database, as `local::postgres::name`, `local::mysql::name`,
/// `s3::postgres::name` and `s3::mysql::name` (beside `on_both_databases!`'s
/// `postgres::` and `mysql::`); the calling module imports `Backend`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod local {
            $crate::support::attachments::on_both_backends!(@databases Local; $($name),*);
        }
        mod s3 {
            $crate::support::attachments::on_both_backends!(@databases S3; $($name),*);
        }
    };
    (@databases $storage:ident; $($name:ident),*) => {
        mod postgres {
            $(#[tokio::test] async fn $name() {
                super::super::$name::<sqlx::PgPool>(super::super::Backend::$storage).await
            })*
        }
        mod mysql {
            $(#[tokio::test] async fn $name() {
                super::super::$name::<sqlx::MySqlPool>(super::super::Backend::$storage).await
            })*
        }
    };
}
pub(crate) use on_both_backends;

pub const ALICE: &str = "alice";

pub async fn json_ok(response: reqwest::Response) -> Value {
    let status = response.status();
    let body = response.text().await.expect("body");
    assert_eq!(status, StatusCode::OK, "body: {body}");
    serde_json::from_str(&body).expect("JSON body")
}

pub async fn request_upload<P: Database>(
    t: &AttachmentApp<P>,
    user: &str,
    body: Value,
) -> (Value, Presigned) {
    let body = json_ok(t.upload_url(user, body).await).await;
    let presigned = Presigned::from_upload(&body);
    (body, presigned)
}

/// Uploads `bytes` as `user` and completes; returns the attachment id and key.
pub async fn upload<P: Database>(
    t: &AttachmentApp<P>,
    user: &str,
    filename: &str,
    bytes: &[u8],
) -> (String, String) {
    let (body, presigned) = request_upload(
        t,
        user,
        json!({"filename": filename, "contentType": "image/png", "size": bytes.len()}),
    )
    .await;
    let put = presigned.put(bytes.to_vec()).await;
    assert!(put.status().is_success(), "PUT: {}", put.status());
    json_ok(t.complete(user, body["id"].as_str().expect("id")).await).await;
    (
        body["id"].as_str().expect("id").to_owned(),
        body["key"].as_str().expect("key").to_owned(),
    )
}

/// The state of alice's attachment `id` (ids are scoped per owner).
pub async fn state_of<P: Database>(t: &AttachmentApp<P>, id: &str) -> Option<String> {
    t.app
        .db_pool
        .texts(&format!(
            "SELECT state FROM uplink.attachments WHERE id = {} AND owner_id = {}",
            quoted(id),
            quoted(ALICE)
        ))
        .await
        .pop()
        .flatten()
}

/// `text` as an SQL string literal (both dialects).
pub fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// SQL for the time `secs` seconds ago, in `P`'s dialect.
pub fn ago<P: Database>(secs: u64) -> String {
    let postgres = format!("now() - interval '{secs} seconds'");
    let mysql = format!("CURRENT_TIMESTAMP(6) - INTERVAL {secs} SECOND");
    P::dialect(&postgres, &mysql).to_owned()
}

impl<P: Database> AttachmentApp<P> {
    /// Moves `updated_at` of uplink's `table` rows matching `filter` to
    /// `secs` seconds ago.
    pub async fn age(&self, table: &str, filter: &str, secs: u64) {
        self.app
            .db_pool
            .execute(&format!(
                "UPDATE uplink.{table} SET updated_at = {} WHERE {filter}",
                ago::<P>(secs)
            ))
            .await;
    }

    /// The attachment state another replica would build on the same
    /// database and storage (its own pool), to run a sweep by hand.
    pub async fn replica(&self) -> uplink::attachments::Attachments {
        let settings = &self.app.settings;
        let db = uplink::db::pool::connect(&settings.database, settings.database_url())
            .expect("a pool for the replica");
        uplink::attachments::Attachments::new(
            &settings.attachments,
            &settings.server.data_dir,
            settings.limits.trust_forwarded_for,
            &db,
        )
        .await
        .expect("attachments for the replica")
    }
}
