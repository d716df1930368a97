//! The acknowledged-writes checker: virtual clients write through a real
//! `uplink serve` process while faults happen; afterwards the database is
//! compared with what the clients were told.
//!
//! Every client transaction writes two rows: a last-write-wins row (its own
//! or a shared one) and a fresh `chaos_entries` row. Triggers append every
//! applied write to `chaos_audit`, in lock order, so a second application of
//! an entry, a lost acknowledged entry and an out-of-order final value are all
//! visible in the database itself.

mod clients;
mod faults;
mod process;
pub mod replicas;
mod verify;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::sync::Mutex;

use crate::support::database::fresh_database;
use clients::{Counters, run_client};
use faults::inject_faults;
pub use process::UplinkProcess;
pub use replicas::{Backend, run_replicas};
use verify::{observe_postgres, verify};

/// The app schema of the checker. Shared rows exist before the triggers, so
/// their initial value is not an audited write.
pub fn checker_schema(shared_rows: usize) -> String {
    format!(
        r#"
CREATE TABLE chaos_rows (id text PRIMARY KEY, value text);
CREATE TABLE chaos_entries (id text PRIMARY KEY, owner text NOT NULL, value text);
CREATE TABLE chaos_audit (seq bigserial PRIMARY KEY, tbl text NOT NULL, row_id text NOT NULL, value text);
INSERT INTO chaos_rows (id, value) SELECT 's' || g, 'init' FROM generate_series(0, {last}) g;
CREATE FUNCTION chaos_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO chaos_audit (tbl, row_id, value) VALUES (TG_TABLE_NAME, NEW.id, NEW.value);
    RETURN NULL;
END $$;
CREATE TRIGGER chaos_rows_audit AFTER INSERT OR UPDATE ON chaos_rows
    FOR EACH ROW EXECUTE FUNCTION chaos_audit();
CREATE TRIGGER chaos_entries_audit AFTER INSERT OR UPDATE ON chaos_entries
    FOR EACH ROW EXECUTE FUNCTION chaos_audit();
"#,
        last = shared_rows as i64 - 1
    )
}

/// What the run does.
#[derive(Clone, Debug)]
pub struct Plan {
    pub clients: usize,
    /// Users the clients belong to (client i is user i % users).
    pub users: usize,
    pub batches_per_client: usize,
    /// When set, clients keep going until this long has passed (long form).
    pub duration: Option<Duration>,
    /// Clients also keep going until this many entries are acknowledged.
    pub target_entries: u64,
    pub max_txs_per_batch: usize,
    pub own_rows: usize,
    pub shared_rows: usize,
    /// Percent of requests sent twice: the first attempt is abandoned after a
    /// short client timeout while it still runs, then the batch is retried.
    pub timeout_retry_percent: u64,
    pub faults: Faults,
    pub seed: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `pg_terminate_backend` of every connection to the run's database.
    TerminateBackends,
    /// SIGTERM one uplink, wait for its graceful exit, start it again.
    SigtermRestart,
    /// SIGKILL one uplink (in-flight requests are cut) and start it again.
    SigkillRestart,
    /// SIGTERM and restart every uplink in turn, as a rolling deployment.
    RollingRestart,
    /// Run `Faults::db_restart` (restarts the database, keeping its port).
    DatabaseRestart,
}

#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Mean pause between injected faults; `None`: no server-side faults.
    pub every: Option<Duration>,
    /// The faults in the order they are injected, round robin.
    pub schedule: Vec<Fault>,
    /// Clients keep writing until at least this many faults were injected,
    /// so a short run always meets every fault of its schedule.
    pub at_least: u64,
    /// Shell command restarting the database server on the same port.
    pub db_restart: Option<String>,
}

/// Counts of one run; `violations` lists every broken promise.
#[derive(Debug, Default)]
pub struct Summary {
    pub elapsed: Duration,
    pub requests: u64,
    pub statuses: BTreeMap<u16, u64>,
    /// The load balancer's own answers (`Counters::gateway_statuses`).
    pub gateway_statuses: BTreeMap<u16, u64>,
    pub transport_errors: u64,
    pub acknowledged_entries: u64,
    pub faults: BTreeMap<&'static str, u64>,
    pub lost: u64,
    pub duplicated: u64,
    /// Acknowledged entries whose row names another user as its owner.
    pub wrong_owner: u64,
    pub applied_after_503: u64,
    pub order_violations: u64,
    pub unacknowledged: u64,
    pub violations: Vec<String>,
}

impl Summary {
    /// The chaos run's figures, on the test's output for whoever runs it.
    #[allow(clippy::print_stdout)]
    pub fn print(&self) {
        println!("chaos summary ({:.1}s)", self.elapsed.as_secs_f64());
        println!("  requests:              {}", self.requests);
        println!("  responses by status:   {:?}", self.statuses);
        if !self.gateway_statuses.is_empty() {
            println!("  load balancer answers: {:?}", self.gateway_statuses);
        }
        println!("  transport errors:      {}", self.transport_errors);
        println!("  acknowledged entries:  {}", self.acknowledged_entries);
        println!(
            "  faults injected:       {} {:?}",
            self.faults.values().sum::<u64>(),
            self.faults
        );
        println!("  entries lost:          {}", self.lost);
        println!("  entries duplicated:    {}", self.duplicated);
        println!("  wrong owner:           {}", self.wrong_owner);
        println!("  applied after a 503:   {}", self.applied_after_503);
        println!("  order violations:      {}", self.order_violations);
        println!("  unacknowledged:        {}", self.unacknowledged);
        for violation in self.violations.iter().take(20) {
            println!("  violation: {violation}");
        }
    }

    pub fn assert_clean(&self) {
        assert!(
            self.violations.is_empty(),
            "{} violations, first: {:?}",
            self.violations.len(),
            self.violations.iter().take(10).collect::<Vec<_>>()
        );
        assert_eq!(self.lost, 0, "entries lost");
        assert_eq!(self.duplicated, 0, "entries duplicated");
        assert_eq!(self.wrong_owner, 0, "entries owned by another user");
        assert!(
            self.acknowledged_entries > 0,
            "the run acknowledged nothing"
        );
    }
}

/// Creates the database, starts uplink, runs the plan, verifies, returns the summary.
pub async fn run(plan: Plan) -> Summary {
    let database = fresh_database(&[checker_schema(plan.shared_rows)]).await;
    database.pool.close().await;
    let (db_name, db_url) = (database.name, database.url);

    let process = UplinkProcess::start(&db_url, 8).await;
    let base = process.url("");
    let replicas = Arc::new(vec![Mutex::new(process)]);
    let driven = drive(&plan, base, db_name, replicas).await;

    let pool = PgPool::connect(&db_url).await.expect("connect for checks");
    let summary = driven
        .summarize(&observe_postgres(&pool).await, &plan)
        .await;
    pool.close().await;
    summary
}

/// What the clients and the fault injector did.
struct Driven {
    started: Instant,
    writes: Vec<clients::Write>,
    counters: Arc<Counters>,
    faults: BTreeMap<&'static str, u64>,
}

/// Runs the clients against `base` (one uplink or a load balancer in front
/// of `replicas`) while faults are injected, until the plan is done.
async fn drive(
    plan: &Plan,
    base: String,
    db_name: String,
    replicas: Arc<Vec<Mutex<UplinkProcess>>>,
) -> Driven {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("http client");
    let counters = Arc::new(Counters::default());
    let done = Arc::new(AtomicBool::new(false));
    let injected = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = plan.duration.map(|d| started + d);

    // `replicas` lives until the clients are done: without faults the
    // injector returns at once, and the last reference would stop uplink.
    let faults = tokio::spawn(inject_faults(
        plan.clone(),
        db_name,
        replicas.clone(),
        done.clone(),
        injected.clone(),
    ));
    let mut tasks = Vec::new();
    for client in 0..plan.clients {
        tasks.push(tokio::spawn(run_client(
            client,
            plan.clone(),
            base.clone(),
            http.clone(),
            counters.clone(),
            deadline,
            injected.clone(),
        )));
    }
    let mut writes = Vec::new();
    for task in tasks {
        writes.extend(task.await.expect("client task"));
    }
    done.store(true, Ordering::SeqCst);
    let faults = faults.await.expect("fault task");
    drop(replicas);
    Driven {
        started,
        writes,
        counters,
        faults,
    }
}

impl Driven {
    async fn summarize(self, observed: &verify::Observed, plan: &Plan) -> Summary {
        let mut summary = verify(observed, &self.writes, plan.users);
        summary.elapsed = self.started.elapsed();
        summary.requests = self.counters.requests.load(Ordering::SeqCst);
        summary.transport_errors = self.counters.transport_errors.load(Ordering::SeqCst);
        summary.statuses = self.counters.statuses.lock().await.clone();
        summary.gateway_statuses = self.counters.gateway_statuses.lock().await.clone();
        summary.faults = self.faults;
        summary.faults.insert(
            "client_timeout_retry",
            self.counters.timeout_retries.load(Ordering::SeqCst),
        );
        for (status, count) in &summary.statuses {
            if *status >= 500 && *status != 503 {
                summary
                    .violations
                    .push(format!("{count} responses with status {status}"));
            }
        }
        summary
    }
}
