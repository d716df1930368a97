//! Instructions per operation: uplink run under `valgrind --tool=callgrind`
//! for a fixed number of requests. An instruction count repeats whatever
//! else the machine is doing, so a regression shows where the wall-clock
//! rates move by ±10 % between runs.

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::future::try_join_all;
use serde::Serialize;

use crate::run::Run;
use crate::server::{self, Server};
use crate::spawn_config::todo_config;
use crate::targets::Http;
use crate::virtual_client::VirtualClient;
use crate::workload::Workload;

/// Requests before the counters are zeroed (connections, prepared
/// statements, caches) and requests counted, per workload.
const WARMUP_REQUESTS: usize = 24;
const MEASURED_REQUESTS: usize = 96;
/// Concurrent connections while counting (the count per request barely
/// depends on it).
const CONNECTIONS: usize = 4;

/// uplink's own instructions per request and per entry of one workload.
#[derive(Debug, Clone, Serialize)]
pub struct Instructions {
    pub workload: &'static str,
    pub requests: u64,
    pub ops: u64,
    pub instructions: u64,
    pub per_request: u64,
    pub per_op: u64,
}

impl Run {
    /// Counts uplink's instructions for `workloads` (each against the
    /// uplink it is measured on: plain or with policies); a note instead
    /// when valgrind or a spawned uplink is missing.
    pub async fn instruction_cases(&mut self, workloads: &[Workload]) -> Vec<Instructions> {
        if workloads.is_empty() {
            return Vec::new();
        }
        if !self.args.spawn {
            self.notes
                .push("instructions per operation not counted: it needs --spawn".to_owned());
            return Vec::new();
        }
        if !valgrind_runs() {
            self.notes.push(
                "instructions per operation not counted: valgrind is not installed".to_owned(),
            );
            return Vec::new();
        }
        let mut counted = Vec::new();
        for &workload in workloads {
            match self.count(workload).await {
                Ok(instructions) => counted.push(instructions),
                Err(err) => self.notes.push(format!(
                    "instructions of {} not counted: {err:#}",
                    workload.name()
                )),
            }
        }
        counted
    }

    async fn count(&mut self, workload: Workload) -> anyhow::Result<Instructions> {
        eprintln!("counting uplink's instructions in {} …", workload.name());
        let dir = std::env::temp_dir().join(format!(
            "uplink-bench-callgrind-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir)?;
        let config = todo_config(&self.args.server_config, workload.plain().is_some())?;
        let wrapper = vec![
            "valgrind".to_owned(),
            "--tool=callgrind".to_owned(),
            "-q".to_owned(),
            format!(
                "--callgrind-out-file={}",
                dir.join("callgrind.out").display()
            ),
        ];
        let exe = server::uplink_binary(self.args.uplink_bin.as_deref())?;
        let url =
            crate::baseline_mysql::sqlx_url(self.args.database_url.as_deref().unwrap_or_default());
        let server = Server::spawn_under(
            &wrapper,
            &exe,
            Some(&config),
            &url,
            &[],
            Duration::from_secs(300),
        )
        .await;
        let _ = std::fs::remove_file(&config);
        let server = server?;
        let result = self.count_on(&server, workload, &dir).await;
        server.stop().await;
        if let Some(keep) = &self.args.keep_callgrind {
            // For callgrind_annotate: the dumps, named after the workload.
            let _ = std::fs::create_dir_all(keep);
            if let Ok(entries) = std::fs::read_dir(&dir) {
                for (i, entry) in entries.flatten().enumerate() {
                    let to = keep.join(format!("callgrind.{}.{i}", workload.name()));
                    let _ = std::fs::copy(entry.path(), to);
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        result
    }

    async fn count_on(
        &mut self,
        server: &Server,
        workload: Workload,
        dir: &Path,
    ) -> anyhow::Result<Instructions> {
        if let Some(db) = &self.db
            && self.args.reset_tables
        {
            db.reset_todos().await?;
        }
        let token = self.token(Some(server), "").await?;
        let http = self.http_at(Some(server), "", token)?;
        self.create_lists(Some(&http)).await?;
        let mut clients: Vec<VirtualClient> = (0..CONNECTIONS)
            .map(|i| {
                let client = VirtualClient::new(
                    &self.args.user,
                    i,
                    self.list_ids.get(i).copied().unwrap_or_default(),
                    self.args.seed,
                    0x1257_0000 + i as u64,
                );
                if workload == Workload::MixedPolicies {
                    client.with_statuses()
                } else {
                    client
                }
            })
            .collect();
        let size = self.args.batch_size;
        let transactions = self.args.transactions;
        send(
            &http,
            &mut clients,
            workload,
            size,
            transactions,
            WARMUP_REQUESTS,
        )
        .await?;
        control(server, &http, "-z").await?;
        let ops = send(
            &http,
            &mut clients,
            workload,
            size,
            transactions,
            MEASURED_REQUESTS,
        )
        .await?;
        control(server, &http, "-d").await?;
        let instructions = dumped_total(dir)?;
        let requests = MEASURED_REQUESTS as u64;
        Ok(Instructions {
            workload: workload.name(),
            requests,
            ops,
            instructions,
            per_request: instructions / requests,
            per_op: instructions / ops.max(1),
        })
    }
}

fn valgrind_runs() -> bool {
    Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `requests` batches over the clients, each sending its next when its
/// previous is answered; the entries applied.
async fn send(
    http: &Http,
    clients: &mut [VirtualClient],
    workload: Workload,
    size: usize,
    transactions: usize,
    requests: usize,
) -> anyhow::Result<u64> {
    let share = requests / clients.len();
    let applied = try_join_all(clients.iter_mut().map(|client| async move {
        let mut ops = 0;
        for _ in 0..share {
            let batch = if workload.mixed() {
                client.mixed_batch(size, transactions)
            } else {
                client.put_batch(size)
            };
            ops += http.upload(batch.to_json(), batch.len()).await?;
        }
        anyhow::Ok(ops)
    }))
    .await?;
    Ok(applied.iter().sum())
}

/// Runs `callgrind_control ARG PID`. Callgrind reads the command when the
/// process runs code, so cheap requests keep it busy until it has.
async fn control(server: &Server, http: &Http, arg: &str) -> anyhow::Result<()> {
    let mut child = Command::new("callgrind_control")
        .arg(arg)
        .arg(server.pid().to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("Failed to run callgrind_control")?;
    loop {
        if let Some(status) = child.try_wait()? {
            if !status.success() {
                bail!("callgrind_control {arg} failed ({status})");
            }
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = http
            .client
            .get(format!("{}/health/live", http.base))
            .send()
            .await;
    }
}

/// The instruction total of the newest dump in `dir`.
fn dumped_total(dir: &Path) -> anyhow::Result<u64> {
    let mut dumps: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n != "callgrind.out"))
        .collect();
    dumps.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    let newest = dumps.last().context("callgrind wrote no dump")?;
    let text = std::fs::read_to_string(newest)?;
    text.lines()
        .find_map(|line| {
            line.strip_prefix("summary:")
                .or_else(|| line.strip_prefix("totals:"))
        })
        .and_then(|n| n.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no total in {}", newest.display()))
}

/// The counts as the report prints them.
pub fn table(counted: &[Instructions]) -> String {
    let mut out = String::new();
    if counted.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "uplink's instructions (callgrind) {:>14} {:>12} {:>10}",
        "per request", "per op", "requests"
    );
    for c in counted {
        let _ = writeln!(
            out,
            "  {:<32} {:>14} {:>12} {:>10}",
            c.workload, c.per_request, c.per_op, c.requests
        );
    }
    out
}
