//! The faults injected while the clients write.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::Mutex;

use super::clients::Rng;
use super::process::UplinkProcess;
use super::{Fault, Plan};
use crate::support::database::server_url;

/// Injects `plan`'s faults on `replicas` (one or more uplink processes on
/// one database) until `done`; returns the counts by kind.
pub async fn inject_faults(
    plan: Plan,
    db_name: String,
    replicas: Arc<Vec<Mutex<UplinkProcess>>>,
    done: Arc<AtomicBool>,
    injected: Arc<AtomicU64>,
) -> BTreeMap<&'static str, u64> {
    let mut counts = BTreeMap::new();
    let Some(every) = plan
        .faults
        .every
        .filter(|_| !plan.faults.schedule.is_empty())
    else {
        return counts;
    };
    // Terminating backends is a Postgres fault: only then is there an admin pool.
    let terminates = plan.faults.schedule.contains(&Fault::TerminateBackends);
    let mut admin = match terminates {
        true => Some(PgPool::connect(&server_url()).await.expect("admin pool")),
        false => None,
    };
    let mut rng = Rng(plan.seed ^ 0x9e37_79b9_7f4a_7c15);
    let every_ms = every.as_millis() as u64;
    pub const MAX_MISSES: u32 = 20;
    let mut misses = 0;
    while !done.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(every_ms / 2 + rng.below(every_ms))).await;
        if done.load(Ordering::SeqCst) {
            break;
        }
        let fault = plan.faults.schedule
            [injected.load(Ordering::SeqCst) as usize % plan.faults.schedule.len()];
        match fault {
            Fault::TerminateBackends => {
                // Only this run's database: other suites share the server.
                // A fault counts only if it ended a connection; otherwise
                // it is tried again next time, up to MAX_MISSES times in a
                // row (then the run goes on and the count shows the miss).
                let terminated: Result<i64, _> = sqlx::query_scalar(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) \
                     FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                )
                .bind(&db_name)
                .fetch_one(admin.as_ref().expect("the admin pool"))
                .await;
                match terminated {
                    Ok(terminated @ 1..) => {
                        misses = 0;
                        *counts.entry("pg_terminate_backend").or_default() += 1;
                        *counts.entry("terminated_connections").or_default() += terminated as u64;
                    }
                    _ if misses < MAX_MISSES => {
                        misses += 1;
                        continue;
                    }
                    _ => misses = 0,
                }
            }
            Fault::SigtermRestart => {
                let i = rng.below(replicas.len() as u64) as usize;
                replicas[i].lock().await.sigterm_and_restart().await;
                *counts.entry("sigterm_restart").or_default() += 1;
            }
            Fault::SigkillRestart => {
                let i = rng.below(replicas.len() as u64) as usize;
                replicas[i].lock().await.sigkill_and_restart().await;
                *counts.entry("sigkill_restart").or_default() += 1;
            }
            Fault::RollingRestart => {
                // One replica at a time, each back before the next goes, as a
                // rolling deployment does; the others keep serving.
                for replica in replicas.iter() {
                    replica.lock().await.sigterm_and_restart().await;
                    *counts.entry("rolling_restart_replicas").or_default() += 1;
                }
                *counts.entry("rolling_restart").or_default() += 1;
            }
            Fault::DatabaseRestart => {
                let command = plan
                    .faults
                    .db_restart
                    .as_deref()
                    .expect("a DatabaseRestart fault needs Faults::db_restart");
                let command = command.to_owned();
                let status = tokio::task::spawn_blocking(move || {
                    Command::new("sh")
                        .arg("-c")
                        .arg(command)
                        .stdout(Stdio::null())
                        .status()
                })
                .await
                .expect("join the restart command")
                .expect("run the Postgres restart command");
                assert!(status.success(), "the database restart command failed");
                *counts.entry("database_restart").or_default() += 1;
                // The admin pool's connections died with the server.
                if terminates {
                    admin = Some(PgPool::connect(&server_url()).await.expect("admin pool"));
                }
            }
        }
        injected.fetch_add(1, Ordering::SeqCst);
    }
    if let Some(admin) = admin {
        admin.close().await;
    }
    counts
}
