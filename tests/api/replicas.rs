//! uplink as a deployment: three replicas behind HAProxy on one database,
//! the acknowledged-writes checker driving them while replicas are killed,
//! restarted one by one and the database restarts (see
//! reliability_checker/). `scripts/replicas` runs these (from scripts/test):
//! they need HAProxy and a database server of their own to restart.
//!
//! UPLINK_REPLICAS_ENTRIES, UPLINK_REPLICAS_FAULTS, UPLINK_REPLICAS_CLIENTS,
//! UPLINK_REPLICAS_FAULT_MS and UPLINK_CHAOS_SEED size a run;
//! UPLINK_REPLICAS_PG_RESTART and UPLINK_REPLICAS_MYSQL_RESTART are the
//! commands that restart each database server on its port.

use std::time::Duration;

use crate::support::reliability_checker::{Backend, Fault, Faults, Plan, run_replicas};

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const REPLICAS: usize = 3;

/// Faults that each count once; the rest of the map are details of them.
const FAULT_KINDS: [&str; 4] = [
    "sigkill_restart",
    "sigterm_restart",
    "rolling_restart",
    "database_restart",
];

async fn writes_survive_faults_across_replicas(backend: Backend, restart_var: &str) {
    let db_restart = std::env::var(restart_var).ok().filter(|c| !c.is_empty());
    let mut schedule = vec![
        Fault::SigkillRestart,
        Fault::SigtermRestart,
        Fault::SigkillRestart,
        Fault::RollingRestart,
        Fault::SigkillRestart,
    ];
    if db_restart.is_some() {
        schedule.push(Fault::DatabaseRestart);
    }
    let target_entries = env_or("UPLINK_REPLICAS_ENTRIES", 100_000);
    let at_least = env_or("UPLINK_REPLICAS_FAULTS", 20);
    let plan = Plan {
        clients: env_or("UPLINK_REPLICAS_CLIENTS", 16),
        users: 4,
        batches_per_client: 0,
        duration: None,
        target_entries,
        max_txs_per_batch: env_or("UPLINK_REPLICAS_BATCH", 40),
        own_rows: 4,
        shared_rows: 8,
        timeout_retry_percent: 5,
        faults: Faults {
            every: Some(Duration::from_millis(env_or(
                "UPLINK_REPLICAS_FAULT_MS",
                5000,
            ))),
            schedule,
            at_least,
            db_restart: db_restart.clone(),
        },
        seed: env_or("UPLINK_CHAOS_SEED", 3),
    };

    let summary = run_replicas(plan, backend, REPLICAS).await;

    summary.print();
    summary.assert_clean();
    let count = |name: &str| summary.faults.get(name).copied().unwrap_or(0);
    assert!(
        summary.acknowledged_entries >= target_entries,
        "acknowledged {} of {target_entries}",
        summary.acknowledged_entries
    );
    let injected: u64 = FAULT_KINDS.iter().map(|kind| count(kind)).sum();
    assert!(injected >= at_least, "faults: {:?}", summary.faults);
    for kind in ["sigkill_restart", "sigterm_restart", "rolling_restart"] {
        assert!(count(kind) >= 1, "no {kind}: {:?}", summary.faults);
    }
    if db_restart.is_some() {
        assert!(count("database_restart") >= 1, "{:?}", summary.faults);
    }
    assert!(count("client_timeout_retry") >= 1, "{:?}", summary.faults);
    // A replica cut mid-request shows as a transport error or the load
    // balancer's 502: the faults reached the clients.
    let gateway: u64 = summary.gateway_statuses.values().sum();
    assert!(
        gateway + summary.transport_errors > 0,
        "the faults were felt by the clients"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs HAProxy and a Postgres it may restart; run by scripts/replicas"]
async fn postgres_replicas_lose_and_duplicate_nothing_through_faults() {
    writes_survive_faults_across_replicas(Backend::Postgres, "UPLINK_REPLICAS_PG_RESTART").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs HAProxy and a MariaDB it may restart; run by scripts/replicas"]
async fn mariadb_replicas_lose_and_duplicate_nothing_through_faults() {
    writes_survive_faults_across_replicas(Backend::MySql, "UPLINK_REPLICAS_MYSQL_RESTART").await;
}
