//! `uplink schema` and `uplink dead-letters …`: operator commands sharing the
//! write path's implementation (the admin API calls the same functions).

// Operator commands: printing their results is their job.
#![allow(clippy::print_stdout)]

use anyhow::Context;
use clap::Subcommand;

use super::{ReplayOutcome, Writer, load_catalog};
use crate::config::{DatabaseKind, Settings};
use crate::db;
use crate::db::pool::Database;
use crate::store::dead_letters;

#[derive(Debug, Subcommand)]
pub enum DeadLetterCommand {
    /// List dead letters, newest first.
    List {
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Include the ones already replayed.
        #[arg(long)]
        all: bool,
    },
    /// Show one dead letter with its entries.
    Show { id: i64 },
    /// Re-apply a dead letter's entries and report the outcome.
    Replay { id: i64 },
    /// Delete a dead letter.
    Discard { id: i64 },
}

/// Prints a ready-to-edit `write.tables` allow-list for the live database.
pub async fn print_schema(settings: &Settings) -> anyhow::Result<()> {
    let database = db::pool::connect(&settings.database, settings.database_url())?;
    let catalog = load_catalog(&database, &settings.write.schema).await?;
    print!("{}", catalog.to_allow_list_yaml(&settings.write.schema));
    Ok(())
}

pub async fn dead_letters(settings: &Settings, command: DeadLetterCommand) -> anyhow::Result<bool> {
    if settings.database_kind() != DatabaseKind::Postgres {
        anyhow::bail!(
            "the dead-letter commands run on Postgres only; on MySQL, read the table \
             uplink_dead_letters with SQL"
        );
    }
    let pool = db::pool::pool(&settings.database, settings.database_url())?;
    match command {
        DeadLetterCommand::List { limit, all } => {
            let letters = dead_letters::list(&pool, limit, all, None)
                .await
                .context("Failed to list dead letters")?;
            println!(
                "{:>6}  {:<24}  {:<20}  {:<16}  {:>8}  code",
                "id", "created", "user", "client", "entries"
            );
            for letter in letters {
                println!(
                    "{:>6}  {:<24}  {:<20}  {:<16}  {:>8}  {}{}",
                    letter.id,
                    letter.created_at.format("%Y-%m-%d %H:%M:%S"),
                    letter.user_id,
                    letter.client_id.as_deref().unwrap_or("-"),
                    letter.entry_count,
                    letter.code,
                    letter
                        .replay_outcome
                        .as_deref()
                        .map(|o| format!(" (replay: {o})"))
                        .unwrap_or_default(),
                );
            }
            Ok(true)
        }
        DeadLetterCommand::Show { id } => match dead_letters::get(&pool, id).await? {
            Some(letter) => {
                println!("{}", serde_json::to_string_pretty(&letter)?);
                Ok(true)
            }
            None => {
                eprintln!("no dead letter {id}");
                Ok(false)
            }
        },
        DeadLetterCommand::Replay { id } => {
            let writer = Writer::build(settings, &Database::Postgres(pool)).await?;
            let outcome = writer.replay_dead_letter(id).await?;
            println!("{}", serde_json::to_string_pretty(&outcome)?);
            Ok(matches!(outcome, ReplayOutcome::Applied(_)))
        }
        DeadLetterCommand::Discard { id } => {
            let found = dead_letters::discard(&pool, id).await?;
            if found {
                println!("discarded dead letter {id}");
            } else {
                eprintln!("no dead letter {id}");
            }
            Ok(found)
        }
    }
}
