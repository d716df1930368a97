//! `uplink-bench`: parses the flags and runs the benchmark (see the library).

use std::process::ExitCode;

use clap::Parser;

/// Load-test an uplink and compare it with the naive and sql-limit baselines.
#[derive(Parser)]
#[command(name = "uplink-bench", version, about)]
struct Cli {
    #[command(flatten)]
    args: uplink_bench::BenchArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The benchmark runs on a thread of its own; this runtime only waits.
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(uplink_bench::run(cli.args)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
