//! The `uplink` command line: serve, migrate, and the operator's tools.
//! (The load generator is a binary of its own: `uplink-bench`.)

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use uplink::settings::Settings;
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
            let config = cli.config.clone();
            app.reload_keys_on_sighup(move || Ok(Settings::load(config.as_deref())?));
            tracing::info!(port = app.port(), "uplink is listening");
            app.run_until_stopped().await?;
            tracing::info!("uplink stopped");
        }
        Command::Migrate => {
            let settings = settings()?;
            let database = db::pool::connect(&settings.database, settings.database_url())?;
            db::migrate::run(&database).await?;
            out("migrations applied\n")?;
        }
        Command::CheckConfig => return check_config(cli.config.as_deref()).await,
        Command::Schema => {
            let settings = settings()?;
            let database = db::pool::connect(&settings.database, settings.database_url())?;
            out(&upload::cli::schema(&database, &settings.write).await?)?;
        }
        Command::Openapi => out(&uplink::openapi::document())?,
        Command::DeadLetters(command) => {
            let settings = settings()?;
            let database = db::pool::connect(&settings.database, settings.database_url())?;
            let rls = settings.database.rls.as_ref();
            let (text, found) =
                upload::cli::dead_letters(&database, &settings.write, rls, command).await?;
            out(&text)?;
            if !found {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Keys(args) => out(&uplink::auth::cli::keys(args)?)?,
        Command::Token(args) => {
            // Signing needs no database: database.url may be unset here.
            let settings = Settings::load_without_database(cli.config.as_deref())?;
            let token = uplink::auth::cli::token(
                &settings.auth,
                settings.environment,
                &settings.server.data_dir,
                args,
            )?;
            out(&(token + "\n"))?;
        }
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
            out("live\n")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `check-config`: the settings, then `write.tables` against the database
/// when it answers (what `serve` would refuse at start-up).
async fn check_config(file: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    let settings = match Settings::load(file) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("error: {err}");
            return Ok(ExitCode::FAILURE);
        }
    };
    for (key, message) in settings.warnings() {
        eprintln!("warning: {key} {message}");
    }
    out(&(serde_json::to_string_pretty(&settings)? + "\n"))?;
    let check = match db::pool::connect(&settings.database, settings.database_url()) {
        Ok(database) => upload::cli::check_database(&database, &settings.write).await,
        Err(err) => upload::cli::DatabaseCheck::Refused(err),
    };
    match check {
        upload::cli::DatabaseCheck::Passed(notes) => {
            for note in notes {
                eprintln!("warning: {note}");
            }
            eprintln!("checked write.tables against the database");
            Ok(ExitCode::SUCCESS)
        }
        upload::cli::DatabaseCheck::Unreachable(why) => {
            eprintln!(
                "note: could not reach the database ({why}): write.tables not checked against it"
            );
            Ok(ExitCode::SUCCESS)
        }
        upload::cli::DatabaseCheck::Refused(err) => {
            eprintln!("error: {err}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Writes to stdout. A reader that went away (`uplink openapi | head -c 1`)
/// is no error: the output is simply not wanted any more.
fn out(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(err).context("cannot write to standard output")
        }
        _ => Ok(()),
    }
}
