//! Rejected client transactions as dead letters: the SDK's JSON shape of
//! their entries, the per-user cap, and the retention sweep. The rows live
//! in `store::dead_letters`.

use std::time::Duration;

use super::backend::Backend;
use super::batch::{ClientTransaction, Entry, Op};
use super::failure::Failure;
use super::jsonb::jsonb_safe;
use super::rejection::Rejection;
use super::row::json_string;
use super::settings::DeadLetterCap;
use crate::db::Own;
use crate::db::pool::Database;
use crate::metrics::Metrics;
use crate::store::dead_letters::{NewDeadLetter, PendingUsage};
use crate::store::either;

/// An entry as JSON, in the SDK's `CrudEntry.toJSON()` shape, values verbatim.
pub fn entry_json(entry: &Entry<'_>) -> String {
    let mut out = String::from("{");
    if let Some(op_id) = entry.op_id {
        out.push_str(&format!("\"op_id\":{op_id},"));
    }
    out.push_str(&format!(
        "\"op\":\"{}\",\"type\":{},\"id\":{}",
        entry.op.as_str(),
        json_string(&entry.table),
        json_string(&entry.id)
    ));
    if let Some(tx_id) = entry.tx_id {
        out.push_str(&format!(",\"tx_id\":{tx_id}"));
    }
    if !entry.data.is_empty() || entry.op != Op::Delete {
        out.push_str(",\"data\":{");
        for (i, (key, value)) in entry.data.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&json_string(key));
            out.push(':');
            out.push_str(value.get());
        }
        out.push('}');
    }
    if let Some(old) = entry.old {
        out.push_str(",\"old\":");
        out.push_str(old.get());
    }
    if let Some(metadata) = entry.metadata {
        out.push_str(",\"metadata\":");
        out.push_str(metadata.get());
    }
    // Members uplink did not know (`unknown_field`): kept so nothing sent is lost.
    for (key, value) in &entry.unknown {
        out.push(',');
        out.push_str(&json_string(key));
        out.push(':');
        out.push_str(value.get());
    }
    out.push('}');
    out
}

pub fn transaction_json(transaction: &ClientTransaction<'_>) -> String {
    let entries: Vec<String> = transaction.entries.iter().map(entry_json).collect();
    format!("[{}]", entries.join(","))
}

/// A rejected client transaction and the entry at fault.
pub struct Rejected<'t, 'a> {
    pub transaction: &'t ClientTransaction<'a>,
    pub failed_op_id: Option<i64>,
    pub rejection: &'t Rejection,
}

/// Stores a batch's rejected client transactions, unless that would take
/// the user past the `cap` of pending dead letters (rows or bytes): then the
/// whole batch is refused (`Failure::DeadLetterLimit`) and stays on the
/// device, rather than acknowledging a transaction that is stored nowhere.
pub async fn store_rejected(
    conn: &mut impl Backend,
    own: &Own,
    cap: DeadLetterCap,
    user_id: &str,
    client_id: Option<&str>,
    rejected: &[Rejected<'_, '_>],
) -> Result<(), Failure> {
    if rejected.is_empty() {
        return Ok(());
    }
    // Concurrent batches of one user count and insert one after the other.
    conn.lock_dead_letters(own, user_id).await?;
    let pending = conn.pending_dead_letters(own, user_id, cap.rows).await?;
    let entries: Vec<String> = rejected.iter().map(entries_text).collect();
    let letters: Vec<NewDeadLetter<'_>> = rejected
        .iter()
        .zip(&entries)
        .map(|(letter, entries)| new_letter(letter, entries, user_id, client_id))
        .collect();
    room_for(&letters, cap, pending, user_id)?;
    for letter in &letters {
        conn.insert_dead_letter(own, letter).await?;
    }
    Ok(())
}

/// Refuses the batch (`Failure::DeadLetterLimit`) when its dead letters
/// would take the user past `cap`, counted from `pending`. By bytes, a
/// user with none pending may always store one, however large: a bound
/// below a request's size must not refuse a batch forever.
pub fn room_for(
    letters: &[NewDeadLetter<'_>],
    cap: DeadLetterCap,
    pending: PendingUsage,
    user_id: &str,
) -> Result<(), Failure> {
    let (mut rows, mut bytes) = (pending.rows, pending.bytes);
    for letter in letters {
        let size = letter.size_bytes();
        let over_rows = rows >= i64::from(cap.rows);
        let over_bytes = rows > 0 && bytes.saturating_add(size) > cap.bytes as i64;
        if over_rows || over_bytes {
            let limit = if over_rows {
                format!(
                    "{} dead letters (write.dead_letters.max_per_user)",
                    cap.rows
                )
            } else {
                format!(
                    "{bytes} of the {} bytes of dead letters it may keep \
                     (write.dead_letters.max_bytes_per_user)",
                    cap.bytes
                )
            };
            tracing::warn!(
                user_id,
                rows,
                bytes,
                "dead letter limit reached; batch refused"
            );
            return Err(Failure::DeadLetterLimit(format!(
                "a client transaction was rejected ({}: {}), and this user already has \
                 {limit} waiting for an operator; nothing was applied, retry after they \
                 are replayed or discarded",
                letter.code, letter.message
            )));
        }
        rows += 1;
        bytes = bytes.saturating_add(size);
    }
    Ok(())
}

/// A rejected transaction's entries as stored: JSON that `jsonb` accepts.
pub fn entries_text(letter: &Rejected<'_, '_>) -> String {
    jsonb_safe(&transaction_json(letter.transaction)).into_owned()
}

/// The dead letter of a rejected transaction (`entries` from `entries_text`).
pub fn new_letter<'a>(
    letter: &'a Rejected<'_, '_>,
    entries: &'a str,
    user_id: &'a str,
    client_id: Option<&'a str>,
) -> NewDeadLetter<'a> {
    let rejection = letter.rejection;
    NewDeadLetter {
        user_id,
        client_id,
        tx_id: letter.transaction.tx_id,
        entries,
        code: rejection.code.as_str(),
        sqlstate: rejection.sqlstate.as_deref(),
        constraint_name: rejection.constraint_name.as_deref(),
        column_name: rejection.column.as_deref(),
        message: &rejection.message,
        failed_op_id: letter.failed_op_id,
    }
}

/// How often each replica deletes dead letters past their retention.
const RETENTION_SWEEP_INTERVAL: Duration = Duration::from_secs(3600);

/// Starts the periodic deletion of dead letters older than `retention`
/// (none when zero). Every replica may run it: a DELETE is idempotent.
pub fn spawn_retention(db: Database, retention: Duration) {
    if retention.is_zero() {
        return;
    }
    crate::sweep::every(
        RETENTION_SWEEP_INTERVAL,
        Duration::ZERO,
        "dead letters past their retention",
        move || {
            let db = db.clone();
            async move { either::delete_expired_dead_letters(&db, retention).await }
        },
    );
}

/// Refreshes the pending dead-letter gauge every `interval`, the first time
/// now: one count per interval per replica, whatever the number of
/// scrapers (a count per scrape let 48 scrapers slow every user's uploads).
pub fn spawn_pending_gauge(db: Database, metrics: Metrics, interval: Duration) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let count = either::pending_dead_letters(&db);
            // A slow database delays the next refresh, never a scrape: the
            // gauge keeps its last value meanwhile.
            match tokio::time::timeout(interval, count).await {
                Ok(Ok(count)) => metrics.set_dead_letters_pending(count),
                Ok(Err(err)) => {
                    tracing::debug!(error = %err, "dead-letter count unavailable for metrics");
                }
                Err(_) => tracing::debug!("dead-letter count timed out for metrics"),
            }
        }
    });
}
