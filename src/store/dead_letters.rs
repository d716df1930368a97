//! `dead_letters` (in uplink's schema): rejected client transactions, stored durably for
//! operators to list, inspect, replay or discard (CLI and admin API share
//! these functions).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::value::RawValue;
use sqlx::{PgConnection, PgPool};

use crate::db::{DbFailure, Own};

/// A rejected client transaction kept for an operator.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct DeadLetter {
    pub id: i64,
    pub user_id: String,
    pub client_id: Option<String>,
    pub tx_id: Option<i64>,
    /// The rejection code of the entry that caused it.
    pub code: String,
    pub sqlstate: Option<String>,
    pub constraint_name: Option<String>,
    pub column_name: Option<String>,
    pub message: String,
    pub failed_op_id: Option<i64>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub replayed_at: Option<DateTime<Utc>>,
    /// `applied`, or why the last replay failed.
    pub replay_outcome: Option<String>,
    /// The transaction's entries, in the SDK's shape. Kept as stored:
    /// re-parsing into a `Value` would refuse entries nested deeper than
    /// serde_json's recursion limit, which the write path accepts. `null`
    /// in a listing when the letter is larger than a listing carries
    /// (`entries_truncated`): fetch it by id.
    #[schema(value_type = Option<Vec<HashMap<String, Value>>>)]
    #[sqlx(default)]
    pub entries: Option<sqlx::types::Json<Box<RawValue>>>,
    /// In a listing: the entries are left out for their size; `GET
    /// /api/admin/dead-letters/{id}` has them.
    #[sqlx(default)]
    pub entries_truncated: bool,
    /// The entries as stored plus the message, in bytes (what
    /// `write.dead_letters.max_bytes_per_user` counts).
    pub size_bytes: i64,
    #[serde(skip)]
    pub entry_count: i32,
}

/// What the admin API answers for a listing: a page of at most `limit`
/// letters and about `LIST_PAGE_BYTES` of entries.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeadLetterList {
    pub dead_letters: Vec<DeadLetter>,
    /// Older letters remain: ask again with `before` set to this id.
    pub next_before: Option<i64>,
}

/// The letters of a listing carry their entries up to this size each.
pub const LIST_INLINE_BYTES: i64 = 64 * 1024;
/// A listing stops adding letters once their entries pass this size.
pub const LIST_PAGE_BYTES: i64 = 1024 * 1024;

/// Every column but the entries, which a listing loads only for small letters.
const SUMMARY: &str = "id, user_id, client_id, tx_id, code, sqlstate, constraint_name, column_name, \
                       message, failed_op_id, created_at, replayed_at, replay_outcome, size_bytes, \
                       jsonb_array_length(entries) AS entry_count";

/// A rejected client transaction to store.
#[derive(Debug, Clone)]
pub struct NewDeadLetter<'a> {
    pub user_id: &'a str,
    pub client_id: Option<&'a str>,
    pub tx_id: Option<i64>,
    /// The entries as JSON text that `jsonb` accepts.
    pub entries: &'a str,
    pub code: &'a str,
    pub sqlstate: Option<&'a str>,
    pub constraint_name: Option<&'a str>,
    pub column_name: Option<&'a str>,
    pub message: &'a str,
    pub failed_op_id: Option<i64>,
}

impl NewDeadLetter<'_> {
    /// What the letter counts against `write.dead_letters.max_bytes_per_user`:
    /// its entries as stored and its message.
    pub fn size_bytes(&self) -> i64 {
        i64::try_from(self.entries.len() + self.message.len()).unwrap_or(i64::MAX)
    }
}

/// Serialises the callers that count and then insert one user's dead
/// letters, until the transaction ends.
pub async fn lock_user(
    conn: &mut PgConnection,
    _own: &Own,
    user_id: &str,
) -> Result<(), DbFailure> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('uplink_dead_letters/' || $1, 0))")
        .bind(user_id)
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(DbFailure::from)
}

/// What a user's pending dead letters take: rows and bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct PendingUsage {
    pub rows: i64,
    pub bytes: i64,
}

/// The user's dead letters not yet replayed, counted (and their bytes
/// summed) over at most `max_rows` of them: past that the cap is reached.
pub async fn pending_usage(
    conn: &mut PgConnection,
    own: &Own,
    user_id: &str,
    max_rows: u32,
) -> Result<PendingUsage, DbFailure> {
    sqlx::query_as(&format!(
        "SELECT count(*) AS rows, coalesce(sum(size_bytes), 0)::bigint AS bytes \
         FROM (SELECT size_bytes FROM {dead_letters} \
         WHERE user_id = $1 AND replayed_at IS NULL LIMIT $2) AS capped",
        dead_letters = own.dead_letters
    ))
    .bind(user_id)
    .bind(i64::from(max_rows))
    .fetch_one(conn)
    .await
    .map_err(DbFailure::from)
}

pub async fn insert(
    conn: &mut PgConnection,
    own: &Own,
    letter: &NewDeadLetter<'_>,
) -> Result<(), DbFailure> {
    sqlx::query(
        &format!("INSERT INTO {dead_letters} \
         (user_id, client_id, tx_id, entries, code, sqlstate, constraint_name, column_name, message, failed_op_id, size_bytes) \
         VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10, $11)", dead_letters = own.dead_letters),
    )
    .bind(letter.user_id)
    .bind(letter.client_id)
    .bind(letter.tx_id)
    .bind(letter.entries)
    .bind(letter.code)
    .bind(letter.sqlstate)
    .bind(letter.constraint_name)
    .bind(letter.column_name)
    .bind(letter.message)
    .bind(letter.failed_op_id)
    .bind(letter.size_bytes())
    .execute(conn)
    .await
    .map(|_| ())
    .map_err(DbFailure::from)
}

/// Up to `limit` dead letters older than `before`, newest first, without
/// their entries; replayed ones only when asked.
pub async fn list(
    db: &PgPool,
    own: &Own,
    limit: i64,
    include_replayed: bool,
    before: Option<i64>,
) -> Result<Vec<DeadLetter>, DbFailure> {
    sqlx::query_as(&format!(
        "SELECT {SUMMARY} FROM {dead_letters} \
         WHERE ($2 OR replayed_at IS NULL) AND ($3::bigint IS NULL OR id < $3) \
         ORDER BY id DESC LIMIT $1",
        dead_letters = own.dead_letters
    ))
    .bind(limit)
    .bind(include_replayed)
    .bind(before)
    .fetch_all(db)
    .await
    .map_err(DbFailure::from)
}

/// A listing's page: the letters of `list` up to about `LIST_PAGE_BYTES`
/// of entries, each carrying its entries when at most `LIST_INLINE_BYTES`
/// (marked `entries_truncated` otherwise). Bounded however large the
/// stored letters are.
pub async fn list_page(
    db: &PgPool,
    own: &Own,
    limit: i64,
    include_replayed: bool,
    before: Option<i64>,
) -> Result<DeadLetterList, DbFailure> {
    let letters = list(db, own, limit, include_replayed, before).await?;
    let (mut page, inline) = cut_page(letters, limit);
    let entries: Vec<(i64, sqlx::types::Json<Box<RawValue>>)> = sqlx::query_as(&format!(
        "SELECT id, entries FROM {dead_letters} WHERE id = ANY($1)",
        dead_letters = own.dead_letters
    ))
    .bind(&inline)
    .fetch_all(db)
    .await?;
    fill_entries(&mut page, entries);
    Ok(page)
}

/// Cuts the letters `list` found (at most `limit`) to a page, every
/// database alike (see `list_page`); the ids whose entries it carries.
pub fn cut_page(mut letters: Vec<DeadLetter>, limit: i64) -> (DeadLetterList, Vec<i64>) {
    let more = letters.len() as i64 == limit;
    let mut budget = LIST_PAGE_BYTES;
    let mut kept = 0;
    for letter in &mut letters {
        let inline = letter.size_bytes <= LIST_INLINE_BYTES;
        let cost = if inline { letter.size_bytes } else { 0 };
        if kept > 0 && cost > budget {
            break;
        }
        budget -= cost;
        letter.entries_truncated = !inline;
        kept += 1;
    }
    let cut = kept < letters.len();
    letters.truncate(kept);
    let inline = letters
        .iter()
        .filter(|l| !l.entries_truncated)
        .map(|l| l.id)
        .collect();
    let next_before = (cut || more)
        .then(|| letters.last().map(|l| l.id))
        .flatten();
    (
        DeadLetterList {
            dead_letters: letters,
            next_before,
        },
        inline,
    )
}

/// Puts the entries loaded for a page into its letters.
pub fn fill_entries(
    page: &mut DeadLetterList,
    entries: Vec<(i64, sqlx::types::Json<Box<RawValue>>)>,
) {
    for (id, stored) in entries {
        if let Some(letter) = page.dead_letters.iter_mut().find(|l| l.id == id) {
            letter.entries = Some(stored);
        }
    }
}

pub async fn get(db: &PgPool, own: &Own, id: i64) -> Result<Option<DeadLetter>, DbFailure> {
    sqlx::query_as(&format!(
        "SELECT {SUMMARY}, entries FROM {dead_letters} WHERE id = $1",
        dead_letters = own.dead_letters
    ))
    .bind(id)
    .fetch_optional(db)
    .await
    .map_err(DbFailure::from)
}

/// Deletes a dead letter; false when there was none.
pub async fn discard(db: &PgPool, own: &Own, id: i64) -> Result<bool, DbFailure> {
    let result = sqlx::query(&format!(
        "DELETE FROM {dead_letters} WHERE id = $1",
        dead_letters = own.dead_letters
    ))
    .bind(id)
    .execute(db)
    .await?;
    Ok(result.rows_affected() > 0)
}

/// Deletes dead letters created more than `retention` ago; returns how many.
pub async fn delete_expired(db: &PgPool, own: &Own, retention: Duration) -> Result<u64, DbFailure> {
    let result = sqlx::query(&format!(
        "DELETE FROM {dead_letters} WHERE created_at < now() - make_interval(secs => $1)",
        dead_letters = own.dead_letters
    ))
    .bind(retention.as_secs_f64())
    .execute(db)
    .await?;
    Ok(result.rows_affected())
}

/// Whether the table is there (uplink's migrations ran).
pub async fn table_exists(db: &PgPool, own: &Own) -> Result<bool, DbFailure> {
    sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(&*own.dead_letters)
        .fetch_one(db)
        .await
        .map_err(DbFailure::from)
}

/// Pending dead letters of every user (for the metrics gauge).
pub async fn count_all_pending(db: &PgPool, own: &Own) -> Result<i64, DbFailure> {
    sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {dead_letters} WHERE replayed_at IS NULL",
        dead_letters = own.dead_letters
    ))
    .fetch_one(db)
    .await
    .map_err(DbFailure::from)
}

/// A dead letter as a replay needs it, locked until the transaction ends.
#[derive(Debug)]
pub struct ToReplay {
    pub user_id: String,
    pub client_id: Option<String>,
    /// The entries as stored, as JSON text.
    pub entries: String,
    pub replayed: bool,
}

pub async fn lock_for_replay(
    conn: &mut PgConnection,
    own: &Own,
    id: i64,
) -> Result<Option<ToReplay>, DbFailure> {
    // The entries as text: parsing them into a `Value` would refuse nesting
    // deeper than serde_json's recursion limit.
    type Letter = (String, Option<String>, String, Option<DateTime<Utc>>);
    let row: Option<Letter> = sqlx::query_as(&format!(
        "SELECT user_id, client_id, entries::text, replayed_at FROM {dead_letters} \
         WHERE id = $1 FOR UPDATE",
        dead_letters = own.dead_letters
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(
        row.map(|(user_id, client_id, entries, replayed_at)| ToReplay {
            user_id,
            client_id,
            entries,
            replayed: replayed_at.is_some(),
        }),
    )
}

/// Marks a dead letter replayed: its entries were applied.
pub async fn mark_replayed(conn: &mut PgConnection, own: &Own, id: i64) -> Result<(), DbFailure> {
    sqlx::query(&format!(
        "UPDATE {dead_letters} SET replayed_at = now(), replay_outcome = 'applied' WHERE id = $1",
        dead_letters = own.dead_letters
    ))
    .bind(id)
    .execute(conn)
    .await
    .map(|_| ())
    .map_err(DbFailure::from)
}

/// Notes why a replay was rejected; the dead letter stays pending.
pub async fn note_replay_failure(
    conn: &mut PgConnection,
    own: &Own,
    id: i64,
    outcome: &str,
) -> Result<(), DbFailure> {
    sqlx::query(&format!(
        "UPDATE {dead_letters} SET replay_outcome = $2 WHERE id = $1",
        dead_letters = own.dead_letters
    ))
    .bind(id)
    .bind(outcome)
    .execute(conn)
    .await
    .map(|_| ())
    .map_err(DbFailure::from)
}
