//! The benchmark's flags (`uplink-bench --help`).

use std::path::PathBuf;
use std::time::Duration;

use crate::targets::TargetKind;
use crate::workload::Workload;

/// Options of `uplink-bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Base URL of the uplink under test (ignored with --spawn).
    #[arg(long, default_value = "http://127.0.0.1:6060")]
    pub url: String,
    /// Start a local uplink (`uplink serve` of --uplink-bin) on
    /// --database-url, measuring its start-up time, memory and CPU.
    #[arg(long)]
    pub spawn: bool,
    /// The uplink binary that --spawn starts; default: `uplink` next to this
    /// executable (both land in the same target directory).
    #[arg(long)]
    pub uplink_bin: Option<PathBuf>,
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
    /// URL of the target's database, `postgres://…` or `mysql://…`
    /// (`mariadb://…` too): enables the baselines naive and sql-limit, and
    /// naive-typed on Postgres only (the demo's MySQL statements are typed
    /// already). Needs the todo schema of examples/todo.
    #[arg(long, env = "UPLINK_BENCH_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Targets to measure, comma separated; the baselines need
    /// --database-url. Without uplink, the lists are created in the database
    /// directly and only put100 and mixed run.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "uplink,naive,naive-typed,sql-limit"
    )]
    pub targets: Vec<TargetKind>,
    /// Skip the baselines even with a database URL.
    #[arg(long)]
    pub no_baselines: bool,
    /// Empty todos (TRUNCATE) and ANALYZE it before every write case, so
    /// each starts from an empty, freshly analysed table. Destroys the
    /// table's rows!
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
    /// Also measure the cost curve: batches of PUTs at 1, 10, 100 and
    /// 1000 entries, 1, 4, 16 and 64 connections, an empty table and one
    /// of --curve-rows rows, uplink beside sql-limit (a quarter of
    /// --duration per point).
    #[arg(long)]
    pub curve: bool,
    /// Rows in the large table of the cost curve.
    #[arg(long, default_value_t = 1_000_000)]
    pub curve_rows: u64,
    /// Where the cost curve's SVG goes; default: next to --json, named
    /// after it (`latest.json` → `latest-curve.svg`).
    #[arg(long)]
    pub curve_svg: Option<PathBuf>,
    /// Skip counting uplink's instructions per operation under valgrind
    /// (with --spawn, each write workload once more, under callgrind).
    #[arg(long)]
    pub no_instructions: bool,
    /// Keep the callgrind dumps of the instruction counts in this
    /// directory (for `callgrind_annotate`).
    #[arg(long)]
    pub keep_callgrind: Option<PathBuf>,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}
