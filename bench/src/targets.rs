//! What a request is sent to: uplink over HTTP, or one of the baselines
//! that write the same entries straight to the database.

use anyhow::{Context, bail};
use sqlx::{MySqlPool, PgPool};

/// A baseline's connections: Postgres or MySQL/MariaDB.
#[derive(Clone)]
pub enum Pool {
    Postgres(PgPool),
    MySql(MySqlPool),
}

/// Where the work goes.
#[derive(Clone)]
pub enum Target {
    /// uplink's HTTP API.
    Uplink(Http),
    /// One statement per entry, one transaction per batch: the reference
    /// demos' statements.
    Naive(Pool),
    /// One statement per entry as well, but typed prepared statements: the
    /// best a per-statement backend does (Postgres only).
    NaiveTyped(PgPool),
    /// The fewest statements per batch: no HTTP, no JSON, no auth.
    SqlLimit(Pool),
}

/// The targets `--targets` selects from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TargetKind {
    Uplink,
    Naive,
    NaiveTyped,
    SqlLimit,
}

impl Target {
    pub fn kind(&self) -> TargetKind {
        match self {
            Self::Uplink(_) => TargetKind::Uplink,
            Self::Naive(_) => TargetKind::Naive,
            Self::NaiveTyped(_) => TargetKind::NaiveTyped,
            Self::SqlLimit(_) => TargetKind::SqlLimit,
        }
    }

    pub fn name(&self) -> &'static str {
        self.kind().name()
    }
}

impl TargetKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Uplink => "uplink",
            Self::Naive => "naive",
            Self::NaiveTyped => "naive-typed",
            Self::SqlLimit => "sql-limit",
        }
    }
}

#[derive(Clone)]
pub struct Http {
    pub client: reqwest::Client,
    pub base: String,
    pub token: String,
}

/// How a batch came back from uplink.
#[derive(Debug, Default, serde::Deserialize)]
struct UploadReport {
    applied: u64,
    #[serde(default)]
    duplicates: u64,
    #[serde(default)]
    conflicts: u64,
    #[serde(default)]
    rejected: u64,
}

impl Http {
    /// Sends `request` (`what` names it in errors) and returns the body of a
    /// successful answer; any other status is an error with the body's start.
    async fn call(
        &self,
        request: reqwest::RequestBuilder,
        what: &str,
    ) -> anyhow::Result<impl AsRef<[u8]> + use<>> {
        let response = request
            .send()
            .await
            .with_context(|| format!("{what} failed"))?;
        let status = response.status();
        let bytes = response.bytes().await.context("reading the response")?;
        if !status.is_success() {
            bail!("{what} answered {status}: {}", snippet(&bytes));
        }
        Ok(bytes)
    }

    /// Sends a batch; `Ok(applied)` unless the status or the report says
    /// something other than "everything applied".
    pub async fn upload(&self, body: String, expected: usize) -> anyhow::Result<u64> {
        let request = self
            .client
            .post(format!("{}/api/data", self.base))
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        let bytes = self.call(request, "POST /api/data").await?;
        let bytes = bytes.as_ref();
        let report: UploadReport =
            serde_json::from_slice(bytes).context("the upload report does not parse")?;
        if report.applied as usize != expected
            || report.rejected + report.conflicts + report.duplicates > 0
        {
            bail!(
                "not all entries applied: applied {}, duplicates {}, conflicts {}, rejected {}: {}",
                report.applied,
                report.duplicates,
                report.conflicts,
                report.rejected,
                snippet(bytes)
            );
        }
        Ok(report.applied)
    }

    pub async fn token(&self, user_id: &str) -> anyhow::Result<String> {
        let request = self
            .client
            .get(format!("{}/api/auth/token", self.base))
            .query(&[("user_id", user_id)]);
        let bytes = self.call(request, "GET /api/auth/token").await?;
        #[derive(serde::Deserialize)]
        struct Token {
            token: String,
        }
        let token: Token =
            serde_json::from_slice(bytes.as_ref()).context("the token response does not parse")?;
        Ok(token.token)
    }

    pub async fn presign(&self, n: u64) -> anyhow::Result<()> {
        let request = self
            .client
            .post(format!("{}/api/attachments/upload-url", self.base))
            .bearer_auth(&self.token)
            .json(&serde_json::json!({
                "filename": format!("photo-{n}.jpg"),
                "contentType": "image/jpeg",
                "size": 48_213,
            }));
        self.call(request, "POST /api/attachments/upload-url")
            .await
            .map(drop)
    }
}

fn snippet(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned()
}
