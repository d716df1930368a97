//! The whole benchmark: its cases in order, then the report printed and
//! written as JSON.

// The report is the tool's output.
#![allow(clippy::print_stdout)]

use anyhow::{Context, bail};

use crate::args::BenchArgs;
use crate::baseline_db::Database;
use crate::procfs;
use crate::report;
use crate::run::Run;
use crate::spawn_config::todo_config;
use crate::targets::TargetKind;
use crate::workload::Workload;

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

async fn suite(args: BenchArgs) -> anyhow::Result<()> {
    if args.connections == 0 || args.batch_size == 0 {
        bail!("--connections and --batch-size must be at least 1");
    }
    if args.spawn && args.database_url.is_none() {
        bail!("--spawn needs --database-url (the database the local uplink serves)");
    }
    let db = match &args.database_url {
        Some(url) => Some(Database::connect(url, args.connections, 0).await?),
        None => None,
    };
    let (database_version, database_pid) = match &db {
        Some(db) => (db.version().await, db.server_pid().await),
        None => (None, None),
    };
    let mut run = Run {
        db,
        database_pid,
        cases: Vec::new(),
        startups_ms: Vec::new(),
        list_ids: Vec::new(),
        notes: Vec::new(),
        args,
    };
    let workloads = run.workloads();
    let started_at = chrono::Utc::now();

    let (policy_workloads, main_workloads): (Vec<Workload>, Vec<Workload>) = workloads
        .iter()
        .copied()
        .filter(|w| *w != Workload::Tokens)
        .partition(|w| w.plain().is_some());
    if !policy_workloads.is_empty() && !run.args.spawn && run.args.policy_url.is_none() {
        bail!(
            "put100-owner and mixed-policies need --policy-url (an uplink with policies on todos) or --spawn"
        );
    }
    let mut curve = Vec::new();
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
                let mut result = run.main_cases(server.as_ref(), &url, &workloads).await;
                if result.is_ok() && !policies && run.args.curve && run.measures_uplink() {
                    result = run
                        .curve(server.as_ref(), &url)
                        .await
                        .map(|points| curve = points);
                }
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
    if workloads.contains(&Workload::Tokens) {
        run.token_cases().await?;
    }
    let counted: Vec<Workload> = workloads
        .iter()
        .copied()
        .filter(|w| w.writes() && !run.args.no_instructions && run.measures_uplink())
        .collect();
    let instructions = run.instruction_cases(&counted).await;

    let checks = run.checks();
    let database = run.db.as_ref().map(Database::kind);
    println!();
    if let Some(kind) = database {
        println!(
            "database: {kind} ({})",
            database_version.as_deref().unwrap_or("version unknown")
        );
    }
    for note in &run.notes {
        println!("note: {note}");
    }
    println!("{}", report::table(&run.cases));
    println!("{}", crate::instructions::table(&instructions));
    println!("{}", report::checks_table(&checks));
    if !run.startups_ms.is_empty() {
        println!("start-up to ready (ms): {:?}", run.startups_ms);
    }
    let json = serde_json::json!({
        "uplink_version": env!("CARGO_PKG_VERSION"),
        "started_at": started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "machine": procfs::machine(),
        "database": database,
        "database_version": database_version,
        "settings": {
            "connections": run.args.connections,
            "batch_size": run.args.batch_size,
            "mixed_transactions_per_batch": run.args.transactions,
            "duration_s": run.args.duration.as_secs_f64(),
            "warmup_s": run.args.warmup.as_secs_f64(),
            "rate_rps": run.args.rate,
            "spawned_uplink": run.args.spawn,
            "baselines": run.db.is_some() && !run.args.no_baselines,
            "targets": run.args.targets.iter().map(|t| t.name()).collect::<Vec<_>>(),
            "reset_tables": run.args.reset_tables,
            "generator_threads": 1,
            "seed": run.args.seed,
        },
        "startup_ms": run.startups_ms,
        "cases": run.cases,
        "ratios": run.ratios(),
        "instructions": instructions,
        "curve": curve,
        "targets": checks,
        "notes": run.notes,
    });
    if !curve.is_empty() {
        let path = curve_path(&run.args);
        let title = format!(
            "batches of PUTs on {}: uplink beside sql-limit ({} run)",
            database.unwrap_or("the database"),
            started_at.format("%Y-%m-%d")
        );
        std::fs::write(&path, crate::plot::svg(&curve, &title))
            .with_context(|| format!("Failed to write {}", path.display()))?;
        println!("cost curve written to {}", path.display());
    }
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

impl Run {
    /// The workloads this run can measure; the others are left out with a
    /// note.
    fn workloads(&mut self) -> Vec<Workload> {
        let mut workloads = self.args.workload.clone();
        let mut skip = |notes: &mut Vec<String>, skipped: &[Workload], why: &str| {
            let names: Vec<&str> = workloads
                .iter()
                .filter(|w| skipped.contains(w))
                .map(|w| w.name())
                .collect();
            if !names.is_empty() {
                notes.push(format!("{} skipped: {why}", names.join(", ")));
                workloads.retain(|w| !skipped.contains(w));
            }
        };
        if !self.measures_uplink() {
            skip(
                &mut self.notes,
                &[
                    Workload::Put100Owner,
                    Workload::MixedPolicies,
                    Workload::Tokens,
                    Workload::Presign,
                ],
                "they measure uplink, which --targets leaves out",
            );
        }
        if self.is_mysql() && self.args.targets.contains(&TargetKind::NaiveTyped) {
            self.notes.push(
                "naive-typed runs on Postgres only (the demo's MySQL statements, naive, bind one typed parameter per column)"
                    .to_owned(),
            );
        }
        if self.is_mysql() && self.args.reset_tables {
            self.notes.push(
                "no CHECKPOINT before a case on MySQL: InnoDB flushes in the background".to_owned(),
            );
        }
        if self.db.is_some() && self.database_pid.is_none() {
            self.notes.push(
                "database CPU not measured: its server is not a process on this machine (or not readable)"
                    .to_owned(),
            );
        }
        workloads
    }
}

/// `--curve-svg`, else the report's path with `-curve.svg` for `.json`.
fn curve_path(args: &BenchArgs) -> std::path::PathBuf {
    if let Some(path) = &args.curve_svg {
        return path.clone();
    }
    let report = args
        .json
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from("bench-report.json"));
    let stem = report
        .file_stem()
        .map_or_else(|| "bench".into(), |s| s.to_string_lossy().into_owned());
    report.with_file_name(format!("{stem}-curve.svg"))
}
