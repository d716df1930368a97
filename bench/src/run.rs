//! One benchmark run's state (flags, database pools, cases measured so
//! far) and its plumbing: the spawned uplink, HTTP clients, tokens, phases.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use crate::args::BenchArgs;
use crate::baseline_db::Database;
use crate::baseline_mysql;
use crate::load::{Phase, Watch};
use crate::report::Case;
use crate::server::{self, Server};
use crate::targets::{Http, TargetKind};
use crate::workload::Workload;

pub struct Run {
    pub args: BenchArgs,
    pub db: Option<Database>,
    /// The local database server's main process, for its CPU time.
    pub database_pid: Option<u32>,
    pub cases: Vec<Case>,
    pub startups_ms: Vec<f64>,
    pub list_ids: Vec<uuid::Uuid>,
    /// What the run skipped or could not measure, and why: in the report.
    pub notes: Vec<String>,
}

impl Run {
    pub fn measures_uplink(&self) -> bool {
        self.args.targets.contains(&TargetKind::Uplink)
    }

    pub fn is_mysql(&self) -> bool {
        self.db.as_ref().is_some_and(Database::is_mysql)
    }

    /// Starts the local uplink (with --spawn) on `config`, else
    /// `--server-config`.
    pub async fn start_server(
        &mut self,
        config: Option<&Path>,
        env: &[(&str, String)],
    ) -> anyhow::Result<Option<Server>> {
        if !self.args.spawn || !self.measures_uplink() {
            return Ok(None);
        }
        let url = baseline_mysql::sqlx_url(self.args.database_url.as_deref().unwrap_or_default());
        let config = config.or(Some(self.args.server_config.as_path()).filter(|p| p.exists()));
        let exe = server::uplink_binary(self.args.uplink_bin.as_deref())?;
        let server = Server::spawn(&exe, config, &url, env).await?;
        let ms = (server.startup.as_secs_f64() * 10_000.0).round() / 10.0;
        eprintln!("uplink ready in {ms} ms (pid {})", server.pid());
        self.startups_ms.push(ms);
        Ok(Some(server))
    }

    pub fn http(&self, server: Option<&Server>, token: String) -> anyhow::Result<Http> {
        self.http_at(server, &self.args.url, token)
    }

    /// A client of the spawned `server`, else of the uplink at `url`.
    pub fn http_at(
        &self,
        server: Option<&Server>,
        url: &str,
        token: String,
    ) -> anyhow::Result<Http> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(self.args.connections)
            .timeout(Duration::from_secs(60))
            .build()
            .context("Failed to build the HTTP client")?;
        Ok(Http {
            client,
            base: server.map_or_else(|| url.trim_end_matches('/').to_owned(), |s| s.base.clone()),
            token,
        })
    }

    pub fn watch(&self, server: Option<&Server>) -> Watch {
        Watch {
            server_pid: server.map(Server::pid).or(self.args.server_pid),
            database_pid: self.database_pid,
        }
    }

    /// A token for the write and presign requests.
    pub async fn token(&self, server: Option<&Server>, url: &str) -> anyhow::Result<String> {
        if let Some(token) = &self.args.token {
            return Ok(token.clone());
        }
        self.http_at(server, url, String::new())?
            .token(&self.args.user)
            .await
            .context(
                "Failed to get a token (pass --token when the target is not in dev identity mode)",
            )
    }

    pub fn phase(&self, workload: Workload, rate: Option<f64>) -> Phase {
        Phase {
            workload,
            connections: self.args.connections,
            warmup: self.args.warmup,
            duration: self.args.duration,
            rate: rate.or(self.args.rate),
            batch_size: if workload.writes() {
                self.args.batch_size
            } else {
                1
            },
            transactions: self.args.transactions,
        }
    }
}
