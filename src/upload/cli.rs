//! `uplink schema` and `uplink dead-letters …`: operator commands sharing the
//! write path's implementation (the admin API calls the same functions).

//! They return the text to print, so that `main` alone writes to stdout.

use std::fmt::Write;

use anyhow::Context;
use clap::Subcommand;

use super::settings::WriteSettings;
use super::{ReplayOutcome, Writer, allow_list, load_catalog};
use crate::config::sections::RlsSettings;
use crate::db::pool::Database;
use crate::store::either;

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

/// A ready-to-edit `write.tables` allow-list for the live database.
pub async fn schema(database: &Database, write: &WriteSettings) -> anyhow::Result<String> {
    let catalog = load_catalog(database, &write.schema).await?;
    Ok(catalog.to_allow_list_yaml(&write.schema))
}

/// What `check-config` found in the database.
pub enum DatabaseCheck {
    /// `write.tables` fits the schema; the notes are worth a warning.
    Passed(Vec<String>),
    /// The database did not answer: nothing was checked.
    Unreachable(String),
    /// `serve` would refuse to start with this configuration.
    Refused(anyhow::Error),
}

/// Checks `write.tables` against the live schema, as `serve` does at start-up.
pub async fn check_database(database: &Database, write: &WriteSettings) -> DatabaseCheck {
    if let Err(err) = database.ping().await {
        return DatabaseCheck::Unreachable(err.to_string());
    }
    let catalog = match load_catalog(database, &write.schema).await {
        Ok(catalog) => catalog,
        Err(err) => return DatabaseCheck::Refused(err),
    };
    if let Err(err) = allow_list::check(&catalog, write) {
        return DatabaseCheck::Refused(err.into());
    }
    let mut notes = Vec::new();
    if let Err(err) = ensure_migrated(database).await {
        notes.push(format!(
            "{err:#}; run `uplink migrate` (serve migrates itself when database.migrate_on_start is true)"
        ));
    }
    DatabaseCheck::Passed(notes)
}

/// Refuses, in so many words, a database uplink's migrations never ran on
/// (a query would only report an unknown relation).
async fn ensure_migrated(database: &Database) -> anyhow::Result<()> {
    let present = either::migrated(database)
        .await
        .context("cannot reach the database")?;
    if !present {
        anyhow::bail!("uplink's tables are not in this database (was it migrated?)");
    }
    Ok(())
}

/// Runs a dead-letter command: the text to print, and whether the letter
/// it names was found.
pub async fn dead_letters(
    database: &Database,
    write: &WriteSettings,
    rls: Option<&RlsSettings>,
    command: DeadLetterCommand,
) -> anyhow::Result<(String, bool)> {
    ensure_migrated(database).await?;
    let mut out = String::new();
    match command {
        DeadLetterCommand::List { limit, all } => {
            let letters = either::dead_letters(database, limit, all, None)
                .await
                .context("Failed to list dead letters")?;
            writeln!(
                out,
                "{:>6}  {:<24}  {:<20}  {:<16}  {:>8}  code",
                "id", "created", "user", "client", "entries"
            )?;
            for letter in letters {
                writeln!(
                    out,
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
                )?;
            }
            Ok((out, true))
        }
        DeadLetterCommand::Show { id } => match either::dead_letter(database, id).await? {
            Some(letter) => Ok((serde_json::to_string_pretty(&letter)? + "\n", true)),
            None => {
                eprintln!("no dead letter {id}");
                Ok((out, false))
            }
        },
        DeadLetterCommand::Replay { id } => {
            let writer = Writer::build(write, rls, database, None).await?;
            let outcome = writer.replay_dead_letter(id).await?;
            let applied = matches!(outcome, ReplayOutcome::Applied(_));
            Ok((serde_json::to_string_pretty(&outcome)? + "\n", applied))
        }
        DeadLetterCommand::Discard { id } => {
            let found = either::discard_dead_letter(database, id).await?;
            if found {
                writeln!(out, "discarded dead letter {id}")?;
            } else {
                eprintln!("no dead letter {id}");
            }
            Ok((out, found))
        }
    }
}
