//! `uplink bench`: a load generator for uplink and its baselines.
//!
//! Point it at any deployment (`--url`, `--token` or a dev-identity
//! `--user`), or let it start a local release uplink on a database
//! (`--spawn --database-url …`, which `scripts/bench` does). With a database
//! URL it also runs the baselines on the same entries: `naive` (one statement
//! per entry, one transaction per batch: the reference demos' statements),
//! `naive-typed` (the same with typed prepared statements) and `sql-limit`
//! (one set-based statement per batch over a plain connection).
//!
//! The load loop runs on one thread (a current-thread runtime), so on a
//! small machine the generator takes as little CPU from uplink and Postgres
//! as possible; the report shows the CPU split of all three.

mod load;
pub mod procfs;
mod report;
mod rng;
mod server;
mod targets;
mod workload;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::auth::keys::{KeyAlg, PrivateKey};
use load::{Phase, Setup, Watch};
use report::{Case, Check};
use server::Server;
use targets::{Http, Target};
pub use workload::Workload;

/// Options of `uplink bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Base URL of the uplink under test (ignored with --spawn).
    #[arg(long, default_value = "http://127.0.0.1:6060")]
    pub url: String,
    /// Start a local uplink (`uplink serve` of this binary) on --database-url,
    /// measuring its start-up time, memory and CPU.
    #[arg(long)]
    pub spawn: bool,
    /// Configuration file for the spawned uplink (like `--config` of serve).
    #[arg(long, default_value = "examples/todo/uplink.yaml")]
    pub server_config: PathBuf,
    /// Bearer token for the write and presign requests; without one, a token
    /// for --user is fetched from /api/auth/token (dev identity mode).
    #[arg(long, env = "UPLINK_BENCH_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// User id asked for in dev identity mode.
    #[arg(long, default_value = "bench")]
    pub user: String,
    /// Measured time per case.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Unmeasured time before each case.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// Concurrent connections (virtual clients).
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Entries per upload batch.
    #[arg(long, default_value_t = 100)]
    pub batch_size: usize,
    /// Client transactions per mixed batch.
    #[arg(long, default_value_t = 5)]
    pub transactions: usize,
    /// Workloads to run, comma separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "put100,mixed,put100-owner,mixed-policies,presign,tokens"
    )]
    pub workload: Vec<Workload>,
    /// Base URL of an uplink whose `todos` have `owner_column: created_by`
    /// and a `version` conflict column, for put100-owner and mixed-policies
    /// (needed without --spawn; with it, the benchmark starts one).
    #[arg(long)]
    pub policy_url: Option<String>,
    /// Postgres URL of the target's database: enables the naive, naive-typed and
    /// sql-limit baselines (needs the todo schema of examples/todo).
    #[arg(long, env = "UPLINK_BENCH_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Skip the baselines even with a database URL.
    #[arg(long)]
    pub no_baselines: bool,
    /// TRUNCATE todos and ANALYZE before every write case, so each starts
    /// from an empty, freshly analysed table. Destroys the table's rows!
    #[arg(long)]
    pub reset_tables: bool,
    /// PID of a local uplink to read memory and CPU from (without --spawn).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Fixed total request rate for every case (requests/s); default: closed loop.
    #[arg(long)]
    pub rate: Option<f64>,
    /// After each closed-loop uplink write case, run it again at this
    /// fraction of the measured request rate, for latency under a steady load.
    #[arg(long)]
    pub latency_at: Option<f64>,
    /// Signing algorithms for the tokens workload with --spawn (one uplink
    /// start each, with a fresh key of that algorithm).
    #[arg(long, value_delimiter = ',', default_value = "EdDSA,ES256,RS256,HS256")]
    pub algs: Vec<String>,
    /// Seed of the generated entries.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Runs the benchmark on its own single-threaded runtime and prints the report.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("uplink-bench".to_owned())
        .spawn(move || {
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("Failed to start the benchmark runtime")
                .and_then(|runtime| runtime.block_on(suite(args)));
            let _ = tx.send(result);
        })
        .context("Failed to start the benchmark thread")?;
    rx.await.context("the benchmark thread stopped")?
}

struct Run {
    args: BenchArgs,
    db: Option<PgPool>,
    /// The same database; its sessions may reuse generic plans.
    db_reusing_plans: Option<PgPool>,
    postmaster: Option<u32>,
    cases: Vec<Case>,
    startups_ms: Vec<f64>,
    list_ids: Vec<uuid::Uuid>,
}

async fn suite(args: BenchArgs) -> anyhow::Result<()> {
    if args.connections == 0 || args.batch_size == 0 {
        bail!("--connections and --batch-size must be at least 1");
    }
    if args.spawn && args.database_url.is_none() {
        bail!("--spawn needs --database-url (the database the local uplink serves)");
    }
    let (db, db_reusing_plans) = match &args.database_url {
        Some(url) => (
            Some(baseline_pool(url, args.connections, "force_custom_plan").await?),
            Some(baseline_pool(url, args.connections, "auto").await?),
        ),
        None => (None, None),
    };
    let postmaster = match &db {
        Some(db) => find_postmaster(db).await,
        None => None,
    };
    let mut run = Run {
        db,
        db_reusing_plans,
        postmaster,
        cases: Vec::new(),
        startups_ms: Vec::new(),
        list_ids: Vec::new(),
        args,
    };
    let started_at = chrono::Utc::now();

    let (policy_workloads, main_workloads): (Vec<Workload>, Vec<Workload>) = run
        .args
        .workload
        .iter()
        .copied()
        .filter(|w| *w != Workload::Tokens)
        .partition(|w| w.plain().is_some());
    if !policy_workloads.is_empty() && !run.args.spawn && run.args.policy_url.is_none() {
        bail!(
            "put100-owner and mixed-policies need --policy-url (an uplink with policies on todos) or --spawn"
        );
    }
    for (workloads, policies, url) in [
        (main_workloads, false, run.args.url.clone()),
        (
            policy_workloads,
            true,
            run.args.policy_url.clone().unwrap_or_default(),
        ),
    ] {
        if workloads.is_empty() {
            continue;
        }
        let config = if run.args.spawn {
            Some(todo_config(&run.args.server_config, policies)?)
        } else {
            None
        };
        let server = run.start_server(config.as_deref(), &[]).await;
        let result = match server {
            Ok(server) => {
                let result = run.main_cases(server.as_ref(), &url, &workloads).await;
                if let Some(server) = server {
                    server.stop().await;
                }
                result
            }
            Err(err) => Err(err),
        };
        if let Some(config) = config {
            let _ = std::fs::remove_file(config);
        }
        result?;
    }
    if run.args.workload.contains(&Workload::Tokens) {
        run.token_cases().await?;
    }

    let checks = run.checks();
    println!();
    println!("{}", report::table(&run.cases));
    println!("{}", report::checks_table(&checks));
    if !run.startups_ms.is_empty() {
        println!("start-up to ready (ms): {:?}", run.startups_ms);
    }
    let json = serde_json::json!({
        "uplink_version": env!("CARGO_PKG_VERSION"),
        "started_at": started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "machine": procfs::machine(),
        "settings": {
            "connections": run.args.connections,
            "batch_size": run.args.batch_size,
            "mixed_transactions_per_batch": run.args.transactions,
            "duration_s": run.args.duration.as_secs_f64(),
            "warmup_s": run.args.warmup.as_secs_f64(),
            "rate_rps": run.args.rate,
            "spawned_uplink": run.args.spawn,
            "baselines": run.db.is_some() && !run.args.no_baselines,
            "reset_tables": run.args.reset_tables,
            "generator_threads": 1,
            "seed": run.args.seed,
        },
        "startup_ms": run.startups_ms,
        "cases": run.cases,
        "ratios": run.ratios(),
        "targets": checks,
    });
    if let Some(path) = &run.args.json {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("Failed to create {}", dir.display()))?;
        }
        std::fs::write(path, serde_json::to_string_pretty(&json)? + "\n")
            .with_context(|| format!("Failed to write {}", path.display()))?;
        println!("report written to {}", path.display());
    }
    Ok(())
}

/// The spawned uplink's configuration file for the write cases:
/// `server_config` with the todos' policies removed (the plain cases, which
/// the policy cases are compared with) or set to an owner (`created_by`)
/// and a version (the policy cases; the table needs an integer `version`
/// column). Written as JSON, which is YAML too.
fn todo_config(server_config: &Path, policies: bool) -> anyhow::Result<PathBuf> {
    let mut config: serde_json::Value = if server_config.exists() {
        ::config::Config::builder()
            .add_source(::config::File::from(server_config))
            .build()
            .and_then(|c| c.try_deserialize())
            .with_context(|| format!("Failed to read {}", server_config.display()))?
    } else {
        serde_json::json!({})
    };
    let todos = &mut config["write"]["tables"]["todos"];
    let columns = todos.get("columns").cloned();
    *todos = serde_json::json!({});
    if let Some(columns) = columns {
        todos["columns"] = columns;
    }
    if policies {
        todos["owner_column"] = "created_by".into();
        todos["conflict"] = serde_json::json!({"strategy": "version", "column": "version"});
    }
    let path = std::env::temp_dir().join(format!(
        "uplink-bench-{}-{}.yaml",
        uuid::Uuid::new_v4().simple(),
        if policies { "policies" } else { "plain" }
    ));
    std::fs::write(&path, serde_json::to_string_pretty(&config)?)
        .with_context(|| format!("Failed to write {}", path.display()))?;
    Ok(path)
}

/// A plain pool for the baselines: as many connections as the load has,
/// with uplink's session settings (UTC, and the plan mode it uses for the
/// statements at hand).
async fn baseline_pool(
    url: &str,
    connections: usize,
    plan_cache_mode: &str,
) -> anyhow::Result<PgPool> {
    let options = PgConnectOptions::from_str(url)
        .context("Failed to parse --database-url")?
        .application_name("uplink-bench")
        .options([("TimeZone", "UTC"), ("plan_cache_mode", plan_cache_mode)]);
    PgPoolOptions::new()
        .max_connections(connections as u32)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options)
        .await
        .context("Failed to connect to --database-url")
}

/// The local postmaster behind the database, if the database is local.
async fn find_postmaster(db: &PgPool) -> Option<u32> {
    let backend: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(db)
        .await
        .ok()?;
    let is_postgres = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.contains("postgres"))
    };
    let backend = u32::try_from(backend).ok()?;
    if !is_postgres(backend) {
        return None;
    }
    procfs::parent_pid(backend).filter(|p| is_postgres(*p))
}

fn alg_of(token: &str) -> Option<String> {
    let header = token.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get("alg")?.as_str().map(str::to_owned)
}

/// `UPLINK__AUTH__KEYS` with one fresh key of `alg`.
fn key_env(alg: KeyAlg) -> anyhow::Result<String> {
    let key = PrivateKey::generate(alg)?;
    let entry = match key.to_pem()? {
        Some(pem) => serde_json::json!([{ "alg": alg.as_str(), "private_key_pem": pem }]),
        None => {
            let mut secret = [0u8; 32];
            getrandom::getrandom(&mut secret).context("Failed to draw a secret")?;
            serde_json::json!([{ "alg": alg.as_str(), "secret": hex::encode(secret) }])
        }
    };
    Ok(entry.to_string())
}

impl Run {
    /// Starts the local uplink (with --spawn) on `config`, else
    /// `--server-config`.
    async fn start_server(
        &mut self,
        config: Option<&Path>,
        env: &[(&str, String)],
    ) -> anyhow::Result<Option<Server>> {
        if !self.args.spawn {
            return Ok(None);
        }
        let url = self.args.database_url.as_deref().unwrap_or_default();
        let config = config.or(Some(self.args.server_config.as_path()).filter(|p| p.exists()));
        let server = Server::spawn(config, url, env).await?;
        let ms = (server.startup.as_secs_f64() * 10_000.0).round() / 10.0;
        eprintln!("uplink ready in {ms} ms (pid {})", server.pid());
        self.startups_ms.push(ms);
        Ok(Some(server))
    }

    fn http(&self, server: Option<&Server>, token: String) -> anyhow::Result<Http> {
        self.http_at(server, &self.args.url, token)
    }

    /// A client of the spawned `server`, else of the uplink at `url`.
    fn http_at(&self, server: Option<&Server>, url: &str, token: String) -> anyhow::Result<Http> {
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

    fn watch(&self, server: Option<&Server>) -> Watch {
        Watch {
            server_pid: server.map(Server::pid).or(self.args.server_pid),
            postmaster_pid: self.postmaster,
        }
    }

    /// A token for the write and presign requests.
    async fn token(&self, server: Option<&Server>, url: &str) -> anyhow::Result<String> {
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

    /// One list per virtual client, created through uplink (todos need one).
    async fn create_lists(&mut self, http: &Http) -> anyhow::Result<()> {
        let mut rng = rng::Rng::new(self.args.seed ^ 0x4C15_7500);
        self.list_ids = (0..self.args.connections).map(|_| rng.uuid()).collect();
        let entries: Vec<serde_json::Value> = self
            .list_ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                serde_json::json!({
                    "op": "PUT", "type": "lists", "id": id,
                    "data": {"name": format!("bench list {i}"), "owner_id": self.args.user},
                })
            })
            .collect();
        let body = serde_json::json!({ "batch": entries }).to_string();
        http.upload(body, entries.len())
            .await
            .context("Failed to create the benchmark's lists through uplink")?;
        Ok(())
    }

    fn phase(&self, workload: Workload, rate: Option<f64>) -> Phase {
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

    async fn case(
        &mut self,
        phase: &Phase,
        target: &Target,
        server: Option<&Server>,
        salt: u64,
    ) -> anyhow::Result<Case> {
        let reset = phase.workload.writes() && self.args.reset_tables;
        if reset && let Some(db) = &self.db {
            targets::reset_todos(db).await?;
        }
        let label = format!("{} {}", phase.workload.name(), target.name());
        eprintln!("running {label} …");
        let setup = Setup {
            target,
            user_id: &self.args.user,
            list_ids: &self.list_ids,
            seed: self.args.seed,
            id_salt: salt,
        };
        let outcome = load::run(phase, &setup, self.watch(server)).await?;
        let mut case = Case::new(
            phase.workload.name(),
            target.name(),
            phase.batch_size,
            phase.connections,
            &outcome,
        );
        case.rate_rps = phase.rate;
        case.uplink_peak_rss_mb = match target {
            Target::Uplink(_) => report::mb(
                server
                    .and_then(Server::peak_rss_kb)
                    .or_else(|| self.args.server_pid.and_then(procfs::peak_rss_kb)),
            ),
            _ => None,
        };
        if reset {
            case.table_at_start = Some("empty, freshly analysed");
        }
        if let Some(error) = &case.first_error {
            eprintln!("  {} errors; first: {error}", case.errors);
        }
        self.cases.push(case.clone());
        Ok(case)
    }

    /// The cases of `workloads` against the spawned `server`, else the
    /// uplink at `url`.
    async fn main_cases(
        &mut self,
        server: Option<&Server>,
        url: &str,
        workloads: &[Workload],
    ) -> anyhow::Result<()> {
        let token = self.token(server, url).await?;
        let http = self.http_at(server, url, token)?;
        if workloads.iter().any(|w| w.writes()) {
            self.create_lists(&http).await?;
        }
        let mut salt = rng::Rng::new(self.args.seed ^ chrono::Utc::now().timestamp_micros() as u64);
        for &workload in workloads {
            let uplink = Target::Uplink(http.clone());
            let phase = self.phase(workload, None);
            let measured = self.case(&phase, &uplink, server, salt.next_u64()).await?;
            // Policy cases are compared with their plain case, not with
            // the baselines.
            if !workload.writes() || workload.plain().is_some() {
                continue;
            }
            if let (Some(db), Some(reusing), false) = (
                self.db.clone(),
                self.db_reusing_plans.clone(),
                self.args.no_baselines,
            ) {
                // As in uplink: batches of inserts only (put100) may reuse
                // plans, whose shape cannot depend on the data; lookups of
                // existing rows are planned per execution. The demos send
                // unnamed statements, planned every time.
                let prepared = if workload == Workload::Put100 {
                    reusing
                } else {
                    db.clone()
                };
                let baselines = [
                    Target::Naive(db),
                    Target::NaiveTyped(prepared.clone()),
                    Target::SqlLimit(prepared),
                ];
                for baseline in baselines {
                    self.case(&phase, &baseline, server, salt.next_u64())
                        .await?;
                }
            }
            if let (Some(fraction), None) = (self.args.latency_at, self.args.rate) {
                let rate = (measured.requests_per_s * fraction).max(1.0);
                let phase = self.phase(workload, Some((rate * 10.0).round() / 10.0));
                self.case(&phase, &uplink, server, salt.next_u64()).await?;
            }
        }
        Ok(())
    }

    async fn token_cases(&mut self) -> anyhow::Result<()> {
        let phase = self.phase(Workload::Tokens, None);
        if !self.args.spawn {
            let http = self.http(None, String::new())?;
            let alg = alg_of(&http.token(&self.args.user).await?);
            let mut case = self.case(&phase, &Target::Uplink(http), None, 0).await?;
            case.alg = alg.clone();
            if let Some(last) = self.cases.last_mut() {
                last.alg = alg;
            }
            return Ok(());
        }
        for name in self.args.algs.clone() {
            let alg = KeyAlg::parse(&name).with_context(|| {
                format!("--algs: unknown algorithm {name} (EdDSA, ES256, RS256, HS256)")
            })?;
            let env = [("UPLINK__AUTH__KEYS", key_env(alg)?)];
            let Some(server) = self.start_server(None, &env).await? else {
                bail!("--spawn is required to run the tokens workload per algorithm");
            };
            let result = async {
                let http = self.http(Some(&server), String::new())?;
                let issued = alg_of(&http.token(&self.args.user).await?);
                if issued.as_deref() != Some(alg.as_str()) {
                    bail!("uplink signed with {issued:?}, expected {alg}: is UPLINK__AUTH__KEYS honoured?");
                }
                self.case(&phase, &Target::Uplink(http), Some(&server), 0).await?;
                if let Some(last) = self.cases.last_mut() {
                    last.alg = issued;
                }
                Ok(())
            }
            .await;
            server.stop().await;
            result?;
        }
        Ok(())
    }

    fn find(&self, workload: &str, target: &str) -> Option<&Case> {
        self.cases
            .iter()
            .find(|c| c.workload == workload && c.target == target && c.rate_rps.is_none())
    }

    fn ratio(&self, workload: &str, over: &str) -> Option<f64> {
        self.ratio_of(workload, self.find(workload, over)?)
    }

    /// uplink's rate in `workload` over the rate of `base`.
    fn ratio_of(&self, workload: &str, base: &Case) -> Option<f64> {
        let uplink = self.find(workload, "uplink")?.ops_per_s;
        let base = base.ops_per_s;
        (base > 0.0).then(|| (uplink / base * 1000.0).round() / 1000.0)
    }

    /// A policy case's rate over its plain case's (both uplink, same run).
    fn policy_ratio(&self, workload: Workload) -> Option<f64> {
        let plain = self.find(workload.plain()?.name(), "uplink")?;
        self.ratio_of(workload.name(), plain)
    }

    fn ratios(&self) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        for workload in ["put100", "mixed"] {
            out.insert(
                workload.to_owned(),
                serde_json::json!({
                    "uplink_over_naive": self.ratio(workload, "naive"),
                    "uplink_over_naive_typed": self.ratio(workload, "naive-typed"),
                    "uplink_over_sql_limit": self.ratio(workload, "sql-limit"),
                }),
            );
        }
        for workload in [Workload::Put100Owner, Workload::MixedPolicies] {
            if let Some(plain) = workload.plain() {
                out.insert(
                    workload.name().to_owned(),
                    serde_json::json!({
                        format!("uplink_over_{}", plain.name()): self.policy_ratio(workload),
                    }),
                );
            }
        }
        serde_json::Value::Object(out)
    }

    fn checks(&self) -> Vec<Check> {
        let check = |name: &str, value: Option<f64>, target: &str, met: fn(f64) -> bool| Check {
            name: name.to_owned(),
            value,
            target: target.to_owned(),
            met: value.map(met),
        };
        let mixed_rss = self
            .find("mixed", "uplink")
            .and_then(|c| c.uplink_peak_rss_mb);
        let startup = self.startups_ms.iter().copied().reduce(f64::max);
        vec![
            check(
                "put100: uplink / sql-limit",
                self.ratio("put100", "sql-limit"),
                ">= 0.60",
                |v| v >= 0.60,
            ),
            check(
                "put100: uplink / naive",
                self.ratio("put100", "naive"),
                ">= 4.0",
                |v| v >= 4.0,
            ),
            check(
                "mixed (exactly-once): uplink / sql-limit",
                self.ratio("mixed", "sql-limit"),
                ">= 0.50",
                |v| v >= 0.50,
            ),
            check(
                "put100-owner / put100 (uplink)",
                self.policy_ratio(Workload::Put100Owner),
                ">= 0.70",
                |v| v >= 0.70,
            ),
            check(
                "mixed-policies / mixed (uplink)",
                self.policy_ratio(Workload::MixedPolicies),
                ">= 0.60",
                |v| v >= 0.60,
            ),
            check(
                &format!(
                    "peak RSS MB after mixed, {} connections",
                    self.args.connections
                ),
                mixed_rss,
                "< 150",
                |v| v < 150.0,
            ),
            check(
                "start-up to ready, ms (slowest start)",
                startup,
                "< 1000",
                |v| v < 1000.0,
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn todos_of(path: &Path) -> serde_json::Value {
        let text = std::fs::read_to_string(path).expect("the config is written");
        let _ = std::fs::remove_file(path);
        let config: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        config["write"]["tables"]["todos"].clone()
    }

    #[test]
    fn the_write_cases_run_with_the_todos_plain_or_with_an_owner_and_a_version() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/todo/uplink.yaml");
        let plain = todos_of(&todo_config(&example, false).expect("plain config"));
        assert!(plain.get("owner_column").is_none(), "{plain}");
        assert!(plain["columns"].as_array().is_some_and(|c| !c.is_empty()));
        let secure = todos_of(&todo_config(&example, true).expect("policy config"));
        assert_eq!(secure["owner_column"], "created_by");
        assert_eq!(secure["conflict"]["column"], "version");
        assert_eq!(secure["columns"], plain["columns"]);
    }
}
