//! The `uplink` command line: serve, migrate, and the operator's tools.
//! (The load generator is a binary of its own: `uplink-bench`.)

// A command-line front end: printing its results is its job.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use uplink::config::Settings;
use uplink::startup::Application;
use uplink::{db, telemetry, upload};

/// uplink: the backend for PowerSync apps (write path, credentials, attachments).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// An extra configuration file, layered over config/base.yaml and config/{environment}.yaml.
    #[arg(long, global = true, env = "UPLINK_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (migrates first when database.migrate_on_start is true).
    Serve,
    /// Apply uplink's own migrations to the database.
    Migrate,
    /// Print the effective configuration (secrets redacted); exit 1 when invalid.
    CheckConfig,
    /// Print a ready-to-edit `write.tables` allow-list for the live database.
    Schema,
    /// List, show, replay or discard rejected client transactions.
    #[command(subcommand)]
    DeadLetters(upload::cli::DeadLetterCommand),
    /// Signing keys: `keys generate --alg ed25519|es256|rs256`.
    Keys(uplink::auth::cli::KeysArgs),
    /// Print a token signed with the active key (development and debugging).
    Token(uplink::auth::cli::TokenArgs),
    /// Print the OpenAPI 3.1 description of the HTTP API (as served at /openapi.json).
    Openapi,
    /// Ask a running uplink whether it is live (for container health checks).
    Healthcheck {
        /// Base URL of the server; default http://127.0.0.1:{server.port}.
        #[arg(long)]
        url: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = || Settings::load(cli.config.as_deref());
    match cli.command {
        Command::Serve => {
            let settings = settings()?;
            telemetry::init(&settings.log, settings.environment);
            let app = Application::build(settings).await?;
            tracing::info!(port = app.port(), "uplink is listening");
            app.run_until_stopped().await?;
            tracing::info!("uplink stopped");
        }
        Command::Migrate => {
            let settings = settings()?;
            let database = db::pool::connect(&settings.database, settings.database_url())?;
            db::migrate::run(&database).await?;
            println!("migrations applied");
        }
        Command::CheckConfig => match settings() {
            Ok(settings) => {
                for (key, message) in settings.warnings() {
                    eprintln!("warning: {key} {message}");
                }
                println!("{}", serde_json::to_string_pretty(&settings)?);
            }
            Err(err) => {
                eprintln!("error: {err}");
                return Ok(ExitCode::FAILURE);
            }
        },
        Command::Schema => upload::cli::print_schema(&settings()?).await?,
        Command::Openapi => print!("{}", uplink::openapi::document()),
        Command::DeadLetters(command) => {
            if !upload::cli::dead_letters(&settings()?, command).await? {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Keys(args) => print!("{}", uplink::auth::cli::keys(args)?),
        Command::Token(args) => println!("{}", uplink::auth::cli::token(&settings()?, args)?),
        Command::Healthcheck { url } => {
            let url = match url {
                Some(url) => url,
                None => {
                    let port = settings().map(|s| s.server.port).unwrap_or(6060);
                    format!("http://127.0.0.1:{port}")
                }
            };
            let response = reqwest::Client::builder()
                .timeout(Duration::from_secs(3))
                .build()?
                .get(format!("{}/health/live", url.trim_end_matches('/')))
                .send()
                .await
                .context("uplink is not reachable")?;
            if !response.status().is_success() {
                eprintln!("unhealthy: {}", response.status());
                return Ok(ExitCode::FAILURE);
            }
            println!("live");
        }
    }
    Ok(ExitCode::SUCCESS)
}
