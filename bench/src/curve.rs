//! The cost curve: throughput and p99 of batches of PUTs against batch
//! size, connections and table size, uplink beside sql-limit in the same
//! run. Three one-dimensional sweeps around the standard point (batches of
//! 100, 16 connections, an empty table): 20 short cases of a quarter of
//! `--duration` each.

use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use crate::baseline_db::Database;
use crate::run::Run;
use crate::server::Server;
use crate::targets::{Target, TargetKind};
use crate::workload::Workload;

pub const BATCH_SIZES: [usize; 4] = [1, 10, 100, 1000];
pub const CONNECTIONS: [usize; 4] = [1, 4, 16, 64];
/// The connections of the batch-size and table-size sweeps.
const STANDARD_CONNECTIONS: usize = 16;

/// One measured point of a sweep.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// `batch_size`, `connections` or `table_rows`.
    pub sweep: &'static str,
    pub x: u64,
    pub target: &'static str,
    pub ops_per_s: f64,
    pub p99_ms: f64,
}

/// What a sweep point varies.
#[derive(Clone, Copy)]
enum Vary {
    BatchSize(usize),
    Connections(usize),
    TableRows(u64),
}

impl Run {
    /// The three sweeps on the (plain) uplink at `server` or `url`; the
    /// large table has `--curve-rows` rows.
    pub async fn curve(
        &mut self,
        server: Option<&Server>,
        url: &str,
    ) -> anyhow::Result<Vec<Point>> {
        let Some(url_of_db) = self.args.database_url.clone() else {
            self.notes
                .push("cost curve not measured: it needs --database-url".to_owned());
            return Ok(Vec::new());
        };
        // A pool of its own, up to the most connections, closed after the
        // sweeps so the run holds no more connections than it needs.
        let most = CONNECTIONS[CONNECTIONS.len() - 1];
        let db = Database::connect(&url_of_db, 1, most).await?;
        let points = self.sweeps(&db, server, url).await;
        db.close().await;
        points
    }

    async fn sweeps(
        &mut self,
        db: &Database,
        server: Option<&Server>,
        url: &str,
    ) -> anyhow::Result<Vec<Point>> {
        let token = self.token(server, url).await?;
        let http = self.http_at(server, url, token)?;
        let limit = db
            .baselines(Workload::Put100)
            .into_iter()
            .find(|t| t.kind() == TargetKind::SqlLimit)
            .context("no sql-limit baseline")?;
        let mut varied: Vec<Vary> = BATCH_SIZES.map(Vary::BatchSize).to_vec();
        varied.extend(CONNECTIONS.map(Vary::Connections));
        varied.extend([Vary::TableRows(0), Vary::TableRows(self.args.curve_rows)]);
        // One list per virtual client, for the most connections.
        let most = CONNECTIONS[CONNECTIONS.len() - 1];
        let saved = self.args.connections;
        self.args.connections = most.max(saved);
        let created = self.create_lists(Some(&http)).await;
        self.args.connections = saved;
        created?;
        let uplink = Target::Uplink(http);
        let mut points = Vec::new();
        for vary in varied {
            let rows = match vary {
                Vary::TableRows(rows) => rows,
                _ => 0,
            };
            for target in [&uplink, &limit] {
                db.reset_todos().await?;
                if rows > 0 {
                    eprintln!("filling todos with {rows} rows …");
                    db.fill_todos(rows, &self.list_ids, &self.args.user).await?;
                }
                let mut phase = self.phase(Workload::Put100, None);
                // A quarter of a case's time per point: 20 points.
                phase.duration = (self.args.duration / 4).max(Duration::from_secs(1));
                phase.warmup = (self.args.warmup / 3).max(Duration::from_millis(500));
                phase.rate = None;
                phase.connections = STANDARD_CONNECTIONS;
                match vary {
                    Vary::BatchSize(size) => phase.batch_size = size,
                    Vary::Connections(n) => phase.connections = n,
                    Vary::TableRows(_) => {}
                }
                let reset = std::mem::replace(&mut self.args.reset_tables, false);
                let case = self.case(&phase, target, server, 0x00C0_FFEE ^ rows).await;
                self.args.reset_tables = reset;
                let case = case?;
                self.cases.pop();
                let (sweep, x) = match vary {
                    Vary::BatchSize(size) => ("batch_size", size as u64),
                    Vary::Connections(n) => ("connections", n as u64),
                    Vary::TableRows(rows) => ("table_rows", rows),
                };
                points.push(Point {
                    sweep,
                    x,
                    target: target.name(),
                    ops_per_s: case.ops_per_s,
                    p99_ms: case.latency_ms.p99,
                });
            }
        }
        db.reset_todos().await?;
        Ok(points)
    }
}
