//! `write:` configuration: the allow-list of tables and their policies.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::error::ConfigError;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WriteSettings {
    /// The Postgres schema holding the app's tables.
    #[serde(default = "default_schema")]
    pub schema: String,
    /// Entries accepted in one request (more: 400 too_many_entries).
    #[serde(default = "default_max_entries")]
    pub max_entries_per_batch: usize,
    /// Internal retries of a request that hit a serialization failure or deadlock.
    #[serde(default = "default_retries")]
    pub transient_retries: u32,
    /// The tables clients may write, by name. Anything else is rejected.
    #[serde(default)]
    pub tables: BTreeMap<String, TableSettings>,
    /// Check and write policy tables one row at a time: the reference the
    /// set-based path is tested against (slower; for troubleshooting).
    #[serde(default)]
    pub policies_one_row_at_a_time: bool,
    #[serde(default)]
    pub dead_letters: DeadLetterSettings,
}

/// `write.dead_letters`: bounds on what rejected transactions may store.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterSettings {
    /// Pending (not replayed) dead letters kept per user. A batch that would
    /// store more is refused whole (429 `dead_letter_limit`), so the device
    /// keeps it and nothing is lost.
    #[serde(default = "default_dead_letters_per_user")]
    pub max_per_user: u32,
    /// Bytes of pending dead letters (their entries as stored and the
    /// message) kept per user, refused as `max_per_user` is.
    #[serde(default = "default_dead_letter_bytes_per_user")]
    pub max_bytes_per_user: u64,
    /// Dead letters older than this are deleted; 0s keeps them forever.
    #[serde(default = "default_dead_letter_retention", with = "humantime_serde")]
    pub retention: Duration,
}

impl Default for DeadLetterSettings {
    fn default() -> Self {
        Self {
            max_per_user: default_dead_letters_per_user(),
            max_bytes_per_user: default_dead_letter_bytes_per_user(),
            retention: default_dead_letter_retention(),
        }
    }
}

fn default_dead_letters_per_user() -> u32 {
    1000
}

/// 32 MiB: four largest request bodies (`server.max_body_bytes` default).
fn default_dead_letter_bytes_per_user() -> u64 {
    32 * 1024 * 1024
}

impl DeadLetterSettings {
    /// What one user's pending dead letters may take.
    pub fn cap(&self) -> DeadLetterCap {
        DeadLetterCap {
            rows: self.max_per_user,
            bytes: self.max_bytes_per_user,
        }
    }
}

/// The per-user bounds on pending dead letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadLetterCap {
    pub rows: u32,
    pub bytes: u64,
}

fn default_dead_letter_retention() -> Duration {
    Duration::from_secs(30 * 24 * 3600)
}

impl Default for WriteSettings {
    fn default() -> Self {
        Self {
            schema: default_schema(),
            max_entries_per_batch: default_max_entries(),
            transient_retries: default_retries(),
            tables: BTreeMap::new(),
            policies_one_row_at_a_time: false,
            dead_letters: DeadLetterSettings::default(),
        }
    }
}

fn default_schema() -> String {
    "public".to_owned()
}

fn default_max_entries() -> usize {
    10_000
}

fn default_retries() -> u32 {
    3
}

/// One allow-listed table. An empty entry (`todos: {}`) allows every column
/// except generated ones, last write wins.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TableSettings {
    /// The columns clients own. When set, a PUT that replaces a row resets the
    /// absent ones to their DEFAULT; other columns are never written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
    /// Columns clients may never write (an attempt is a `read_only_column` conflict).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read_only_columns: Vec<String>,
    /// A column holding the owning user's id: clients only touch their own rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_column: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict: Option<ConflictSettings>,
    /// Numeric columns whose PATCH values are added to the current value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delta_columns: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transitions: Option<TransitionSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_when: Option<LockedWhenSettings>,
    /// Only PUTs of new ids (audit logs, events).
    #[serde(default)]
    pub insert_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictStrategy {
    /// The client sends the version it last saw; a mismatch is `stale_version`.
    Version,
    /// The client's timestamp older than the server's is `stale_update`.
    Timestamp,
    /// Per-field times in the entry's `_metadata`; only newer fields apply.
    FieldTimestamps,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnConflict {
    /// Keep the server's row and write both versions to `write_conflicts`.
    #[default]
    Record,
    /// Reject (and dead-letter) the client transaction.
    Reject,
    /// Drop the client's write silently.
    Ignore,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConflictSettings {
    pub strategy: ConflictStrategy,
    /// The version or timestamp column (not used by `field_timestamps`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    #[serde(default)]
    pub on_conflict: OnConflict,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TransitionSettings {
    pub column: String,
    /// From each state, the states it may change to.
    pub allowed: BTreeMap<String, Vec<String>>,
    /// The states a new row may be created in; by default the states of
    /// `allowed` that no transition leads to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LockedWhenSettings {
    pub column: String,
    pub values: Vec<String>,
}

impl WriteSettings {
    /// Shape checks; checks against the live schema happen when it is introspected.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.schema.is_empty() {
            return Err(ConfigError::invalid("write.schema", "must not be empty"));
        }
        if self.max_entries_per_batch == 0 {
            return Err(ConfigError::invalid(
                "write.max_entries_per_batch",
                "must be at least 1",
            ));
        }
        if self.dead_letters.max_per_user == 0 {
            return Err(ConfigError::invalid(
                "write.dead_letters.max_per_user",
                "must be at least 1",
            ));
        }
        if self.dead_letters.max_bytes_per_user == 0 {
            return Err(ConfigError::invalid(
                "write.dead_letters.max_bytes_per_user",
                "must be at least 1 byte",
            ));
        }
        for (table, settings) in &self.tables {
            if let Some(columns) = &settings.columns
                && columns.iter().any(|c| c == "id")
            {
                return Err(ConfigError::invalid(
                    format!("write.tables.{table}.columns"),
                    "must not list `id` (the row id is always written)",
                ));
            }
        }
        Ok(())
    }
}
