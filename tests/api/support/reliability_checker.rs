//! The acknowledged-writes checker: virtual clients write through a real
//! `uplink serve` process while faults happen; afterwards the database is
//! compared with what the clients were told.
//!
//! Every client transaction writes two rows: a last-write-wins row (its own
//! or a shared one) and a fresh `chaos_entries` row. Triggers append every
//! applied write to `chaos_audit`, in lock order, so a second application of
//! an entry, a lost acknowledged entry and an out-of-order final value are all
//! visible in the database itself.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::Mutex;

use super::database::{fresh_database, server_url};
use super::process::uplink_command;

/// The app schema of the checker. Shared rows exist before the triggers, so
/// their initial value is not an audited write.
pub fn checker_schema(shared_rows: usize) -> String {
    format!(
        r#"
CREATE TABLE chaos_rows (id text PRIMARY KEY, value text);
CREATE TABLE chaos_entries (id text PRIMARY KEY, value text);
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

/// The real binary, restartable on the same port and database.
pub struct UplinkProcess {
    child: Option<Child>,
    pub port: u16,
    db_url: String,
    config: PathBuf,
    log: PathBuf,
}

impl UplinkProcess {
    pub async fn start(db_url: &str, pool_size: u32) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind a free port")
            .local_addr()
            .expect("local address")
            .port();
        let dir = std::env::temp_dir().join(format!("uplink-chaos-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("create the process directory");
        let config = dir.join("uplink.yaml");
        std::fs::write(
            &config,
            format!(
                "server:\n  host: 127.0.0.1\n  port: {port}\n  workers: 2\n  shutdown_timeout: 10s\n  data_dir: {data}\n\
                 database:\n  max_connections: {pool_size}\n  acquire_timeout: 2s\n  migrate_on_start: true\n\
                 log:\n  level: warn\n\
                 metrics:\n  port: 0\n\
                 write:\n  tables:\n    chaos_rows: {{}}\n    chaos_entries: {{}}\n",
                data = dir.join("data").display(),
            ),
        )
        .expect("write the process configuration");
        let mut process = Self {
            child: None,
            port,
            db_url: db_url.to_owned(),
            config,
            log: dir.join("uplink.log"),
        };
        process.spawn().await;
        process
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the process log");
        let child = uplink_command()
            .arg("--config")
            .arg(&self.config)
            .arg("serve")
            .env("DATABASE_URL", &self.db_url)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("Failed to start uplink");
        self.child = Some(child);
        let client = reqwest::Client::new();
        for _ in 0..400 {
            if let Ok(response) = client.get(self.url("/health/ready")).send().await
                && response.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("uplink did not become ready; see {}", self.log.display());
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// SIGTERM, wait for the graceful exit (status 0), start again.
    pub async fn sigterm_and_restart(&mut self) {
        let mut child = self.child.take().expect("uplink is running");
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        let exit = loop {
            if let Some(exit) = child.try_wait().expect("wait for uplink") {
                break exit;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(
            exit.code(),
            Some(0),
            "uplink must exit 0 after SIGTERM; see {}",
            self.log.display()
        );
        self.spawn().await;
    }
}

impl Drop for UplinkProcess {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
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
    /// SIGTERM uplink, wait for its graceful exit, start it again.
    SigtermRestart,
    /// Run `Faults::pg_restart` (restarts Postgres, keeping its port).
    PostgresRestart,
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
    /// Shell command restarting Postgres on the same port.
    pub pg_restart: Option<String>,
}

/// Counts of one run; `violations` lists every broken promise.
#[derive(Debug, Default)]
pub struct Summary {
    pub elapsed: Duration,
    pub requests: u64,
    pub statuses: BTreeMap<u16, u64>,
    pub transport_errors: u64,
    pub acknowledged_entries: u64,
    pub faults: BTreeMap<&'static str, u64>,
    pub lost: u64,
    pub duplicated: u64,
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
        println!("  transport errors:      {}", self.transport_errors);
        println!("  acknowledged entries:  {}", self.acknowledged_entries);
        println!(
            "  faults injected:       {} {:?}",
            self.faults.values().sum::<u64>(),
            self.faults
        );
        println!("  entries lost:          {}", self.lost);
        println!("  entries duplicated:    {}", self.duplicated);
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
        assert!(
            self.acknowledged_entries > 0,
            "the run acknowledged nothing"
        );
    }
}

/// One client transaction: a write of a last-write-wins row plus its entry row.
#[derive(Debug, Clone)]
struct Write {
    client: usize,
    /// op_id of the row write; the entry row is `op + 1`.
    op: i64,
    batch: usize,
    row: String,
    value: String,
    first_send: Instant,
    ack: Option<Ack>,
    /// Some attempt may have been applied without us learning of it.
    indeterminate: bool,
}

#[derive(Debug, Clone)]
struct Ack {
    at: Instant,
    row_status: String,
    entry_status: String,
}

/// A tiny deterministic generator (no dependency, reproducible by seed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    transport_errors: AtomicU64,
    timeout_retries: AtomicU64,
    statuses: Mutex<BTreeMap<u16, u64>>,
}

/// Creates the database, starts uplink, runs the plan, verifies, returns the summary.
pub async fn run(plan: Plan) -> Summary {
    let database = fresh_database(&[checker_schema(plan.shared_rows)]).await;
    database.pool.close().await;
    let (db_name, db_url) = (database.name, database.url);

    let process = Arc::new(Mutex::new(UplinkProcess::start(&db_url, 8).await));
    let base = process.lock().await.url("");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("http client");
    let counters = Arc::new(Counters::default());
    let done = Arc::new(AtomicBool::new(false));
    let injected = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = plan.duration.map(|d| started + d);

    let faults = tokio::spawn(inject_faults(
        plan.clone(),
        db_name.clone(),
        process.clone(),
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
    let fault_counts = faults.await.expect("fault task");

    let pool = PgPool::connect(&db_url).await.expect("connect for checks");
    let mut summary = verify(&pool, &writes).await;
    summary.elapsed = started.elapsed();
    summary.requests = counters.requests.load(Ordering::SeqCst);
    summary.transport_errors = counters.transport_errors.load(Ordering::SeqCst);
    summary.statuses = counters.statuses.lock().await.clone();
    summary.faults = fault_counts;
    summary.faults.insert(
        "client_timeout_retry",
        counters.timeout_retries.load(Ordering::SeqCst),
    );
    for (status, count) in &summary.statuses {
        if *status >= 500 && *status != 503 {
            summary
                .violations
                .push(format!("{count} responses with status {status}"));
        }
    }
    pool.close().await;
    summary
}

async fn inject_faults(
    plan: Plan,
    db_name: String,
    process: Arc<Mutex<UplinkProcess>>,
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
    let mut admin = PgPool::connect(&server_url()).await.expect("admin pool");
    let mut rng = Rng(plan.seed ^ 0x9e37_79b9_7f4a_7c15);
    let every_ms = every.as_millis() as u64;
    const MAX_MISSES: u32 = 20;
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
                .fetch_one(&admin)
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
                process.lock().await.sigterm_and_restart().await;
                *counts.entry("sigterm_restart").or_default() += 1;
            }
            Fault::PostgresRestart => {
                let command = plan
                    .faults
                    .pg_restart
                    .as_deref()
                    .expect("a PostgresRestart fault needs Faults::pg_restart");
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
                assert!(status.success(), "the Postgres restart command failed");
                *counts.entry("postgres_restart").or_default() += 1;
                // The admin pool's connections died with the server.
                admin = PgPool::connect(&server_url()).await.expect("admin pool");
            }
        }
        injected.fetch_add(1, Ordering::SeqCst);
    }
    admin.close().await;
    counts
}

enum Outcome {
    /// 200: per-entry statuses by op_id (absent: applied).
    Acknowledged(HashMap<i64, String>),
    /// Definitely not applied: 503.
    NotApplied,
    /// Definitely not applied: the connection was refused (uplink restarting).
    Refused,
    /// Unknown: timeout, reset, unexpected status.
    Unknown,
    Unauthorized,
}

async fn send(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    body: &Value,
    counters: &Counters,
) -> Outcome {
    counters.requests.fetch_add(1, Ordering::SeqCst);
    let response = http
        .post(format!("{base}/api/data"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await;
    let response = match response {
        Ok(response) => response,
        Err(err) => {
            counters.transport_errors.fetch_add(1, Ordering::SeqCst);
            return if err.is_connect() {
                Outcome::Refused
            } else {
                Outcome::Unknown
            };
        }
    };
    let status = response.status().as_u16();
    *counters.statuses.lock().await.entry(status).or_default() += 1;
    match status {
        200 => match response.json::<Value>().await {
            Ok(report) => {
                let statuses = report["results"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|r| Some((r["op_id"].as_i64()?, r["status"].as_str()?.to_owned())))
                    .collect();
                Outcome::Acknowledged(statuses)
            }
            // The body was cut: the batch may or may not have committed.
            Err(_) => Outcome::Unknown,
        },
        503 => Outcome::NotApplied,
        401 => Outcome::Unauthorized,
        _ => Outcome::Unknown,
    }
}

async fn token(http: &reqwest::Client, base: &str, user: &str) -> String {
    loop {
        let response = http
            .post(format!("{base}/api/auth/token"))
            .json(&json!({ "user_id": user }))
            .send()
            .await;
        if let Ok(response) = response
            && response.status() == 200
            && let Ok(body) = response.json::<Value>().await
            && let Some(token) = body["token"].as_str()
        {
            return token.to_owned();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn run_client(
    client: usize,
    plan: Plan,
    base: String,
    http: reqwest::Client,
    counters: Arc<Counters>,
    deadline: Option<Instant>,
    injected: Arc<AtomicU64>,
) -> Vec<Write> {
    let mut rng =
        Rng((plan.seed.wrapping_add(client as u64 + 1)).wrapping_mul(0x2545_f491_4f6c_dd1d) | 1);
    let user = format!("u{}", client % plan.users.max(1));
    let client_id = format!("c{client}");
    let mut token = token(&http, &base, &user).await;
    let mut writes: Vec<Write> = Vec::new();
    let mut created = vec![false; plan.own_rows];
    let mut op: i64 = 0;
    let mut batch_no = 0;
    loop {
        let more = match deadline {
            Some(deadline) => Instant::now() < deadline,
            None => batch_no < plan.batches_per_client,
        } || injected.load(Ordering::SeqCst) < plan.faults.at_least;
        if !more {
            break;
        }
        let first = writes.len();
        let mut entries = Vec::new();
        for _ in 0..=rng.below(plan.max_txs_per_batch as u64) {
            op += 1;
            let tx = op;
            let own = plan.shared_rows == 0 || (plan.own_rows > 0 && rng.below(2) == 0);
            let (row, verb) = if own {
                let j = rng.below(plan.own_rows as u64) as usize;
                let verb = if !created[j] || rng.below(2) == 0 {
                    "PUT"
                } else {
                    "PATCH"
                };
                created[j] = true;
                (format!("c{client}-r{j}"), verb)
            } else {
                let j = rng.below(plan.shared_rows as u64);
                (
                    format!("s{j}"),
                    if rng.below(2) == 0 { "PUT" } else { "PATCH" },
                )
            };
            let value = format!("c{client}:{op}");
            entries.push(json!({"op_id": op, "op": verb, "type": "chaos_rows", "id": row, "tx_id": tx, "data": {"value": value}}));
            op += 1;
            entries.push(json!({"op_id": op, "op": "PUT", "type": "chaos_entries", "id": format!("c{client}-e{}", op - 1), "tx_id": tx, "data": {"value": value}}));
            writes.push(Write {
                client,
                op: op - 1,
                batch: batch_no,
                row,
                value,
                first_send: Instant::now(),
                ack: None,
                indeterminate: false,
            });
        }
        let body = json!({"client_id": client_id, "batch": entries});
        let mut attempts = 0;
        let statuses = loop {
            attempts += 1;
            if attempts > 2000 {
                // uplink never recovered: leave these unacknowledged (a violation).
                break None;
            }
            let outcome = if rng.below(100) < plan.timeout_retry_percent {
                // Abandon the first attempt after a short client timeout while it
                // still runs, then retry: both may reach the database.
                let first_attempt = {
                    let (http, base, token, body, counters) = (
                        http.clone(),
                        base.clone(),
                        token.clone(),
                        body.clone(),
                        counters.clone(),
                    );
                    tokio::spawn(async move { send(&http, &base, &token, &body, &counters).await })
                };
                tokio::time::sleep(Duration::from_millis(1 + rng.below(15))).await;
                if first_attempt.is_finished() {
                    first_attempt.await.unwrap_or(Outcome::Unknown)
                } else {
                    counters.timeout_retries.fetch_add(1, Ordering::SeqCst);
                    for write in &mut writes[first..] {
                        write.indeterminate = true;
                    }
                    send(&http, &base, &token, &body, &counters).await
                }
            } else {
                send(&http, &base, &token, &body, &counters).await
            };
            match outcome {
                Outcome::Acknowledged(statuses) => break Some(statuses),
                Outcome::NotApplied => {}
                // uplink is restarting: give it a moment rather than a flood.
                Outcome::Refused => tokio::time::sleep(Duration::from_millis(200)).await,
                Outcome::Unknown => {
                    for write in &mut writes[first..] {
                        write.indeterminate = true;
                    }
                }
                Outcome::Unauthorized => token = self::token(&http, &base, &user).await,
            }
            tokio::time::sleep(Duration::from_millis(20 + rng.below(80))).await;
        };
        if let Some(statuses) = statuses {
            let at = Instant::now();
            let status = |op: i64| {
                statuses
                    .get(&op)
                    .cloned()
                    .unwrap_or_else(|| "applied".to_owned())
            };
            for write in &mut writes[first..] {
                write.ack = Some(Ack {
                    at,
                    row_status: status(write.op),
                    entry_status: status(write.op + 1),
                });
            }
        }
        batch_no += 1;
    }
    writes
}

/// Compares the database with the acknowledged history.
async fn verify(pool: &PgPool, writes: &[Write]) -> Summary {
    let mut summary = Summary::default();
    let audit: Vec<(i64, String, String, Option<String>)> =
        sqlx::query_as("SELECT seq, tbl, row_id, value FROM chaos_audit ORDER BY seq")
            .fetch_all(pool)
            .await
            .expect("read the audit log");
    let finals: HashMap<String, Option<String>> =
        sqlx::query_as::<_, (String, Option<String>)>("SELECT id, value FROM chaos_rows")
            .fetch_all(pool)
            .await
            .expect("read the final rows")
            .into_iter()
            .collect();

    let mut entry_applications: HashMap<&str, u64> = HashMap::new();
    let mut row_applications: HashMap<&str, u64> = HashMap::new();
    let mut row_history: HashMap<&str, Vec<&str>> = HashMap::new();
    for (_, table, row, value) in &audit {
        let value = value.as_deref().unwrap_or("");
        match table.as_str() {
            "chaos_entries" => *entry_applications.entry(value).or_default() += 1,
            _ => {
                *row_applications.entry(value).or_default() += 1;
                row_history.entry(row).or_default().push(value);
            }
        }
    }
    let by_value: HashMap<&str, &Write> = writes.iter().map(|w| (w.value.as_str(), w)).collect();

    for write in writes {
        let entries = entry_applications
            .get(write.value.as_str())
            .copied()
            .unwrap_or(0);
        let rows = row_applications
            .get(write.value.as_str())
            .copied()
            .unwrap_or(0);
        let Some(ack) = &write.ack else {
            summary.unacknowledged += 1;
            summary
                .violations
                .push(format!("{} never acknowledged", write.value));
            if !write.indeterminate && entries > 0 {
                summary.applied_after_503 += 1;
                summary.violations.push(format!(
                    "{} applied although every attempt was refused",
                    write.value
                ));
            }
            continue;
        };
        summary.acknowledged_entries += 2;
        for status in [&ack.row_status, &ack.entry_status] {
            if status != "applied" && status != "duplicate" {
                summary
                    .violations
                    .push(format!("{} acknowledged as {status}", write.value));
            }
        }
        if ack.row_status != ack.entry_status {
            summary.violations.push(format!(
                "{}: one client transaction, two outcomes ({} / {})",
                write.value, ack.row_status, ack.entry_status
            ));
        }
        if ack.entry_status == "duplicate" && !write.indeterminate {
            summary.applied_after_503 += 1;
            summary.violations.push(format!(
                "{} reported duplicate although every earlier attempt was answered 503 or refused",
                write.value
            ));
        }
        match entries {
            1 => {}
            0 => {
                summary.lost += 1;
                summary.violations.push(format!(
                    "entry {} acknowledged but not applied",
                    write.value
                ));
            }
            n => {
                summary.duplicated += 1;
                summary
                    .violations
                    .push(format!("entry {} applied {n} times", write.value));
            }
        }
        if rows > 1 {
            summary.duplicated += 1;
            summary
                .violations
                .push(format!("row write {} applied {rows} times", write.value));
        } else if rows == 0 {
            // Allowed only when a later write of the same client, row and request superseded it.
            let superseded = writes.iter().any(|w| {
                w.client == write.client
                    && w.batch == write.batch
                    && w.row == write.row
                    && w.op > write.op
            });
            if !superseded {
                summary.lost += 1;
                summary.violations.push(format!(
                    "row write {} acknowledged but not applied",
                    write.value
                ));
            }
        }
    }

    // Per row: the final value is the last applied write, acknowledged, and the
    // applied order never contradicts real time (a write acknowledged before
    // another was first sent must come first) nor a client's own op order.
    for (row, history) in &row_history {
        let last = history.last().copied();
        let actual = finals.get(*row).cloned().flatten();
        if actual.as_deref() != last {
            summary.lost += 1;
            summary.violations.push(format!(
                "row {row} holds {actual:?}, the last applied write was {last:?}"
            ));
        }
        let mut latest_send: Option<Instant> = None;
        let mut client_ops: HashMap<usize, i64> = HashMap::new();
        for value in history {
            let Some(write) = by_value.get(value) else {
                summary
                    .violations
                    .push(format!("row {row} holds a value nobody wrote: {value}"));
                continue;
            };
            if let (Some(ack), Some(sent)) = (&write.ack, latest_send)
                && ack.at < sent
            {
                summary.order_violations += 1;
                summary.violations.push(format!(
                    "row {row}: {value} was acknowledged before an earlier-applied write was sent"
                ));
            }
            latest_send = Some(latest_send.map_or(write.first_send, |s| s.max(write.first_send)));
            let previous = client_ops.insert(write.client, write.op);
            if previous.is_some_and(|p| p > write.op) {
                summary.order_violations += 1;
                summary.violations.push(format!(
                    "row {row}: {value} applied after a later op of its client"
                ));
            }
        }
    }
    summary
}
