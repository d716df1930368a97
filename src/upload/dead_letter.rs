//! Rejected client transactions as dead letters: the SDK's JSON shape of
//! their entries, the per-user cap, and the retention sweep. The rows live
//! in `store::dead_letters`.

use std::time::Duration;

use sqlx::PgConnection;

use super::batch::{ClientTransaction, Entry, Op};
use super::failure::Failure;
use super::jsonb::jsonb_safe;
use super::rejection::Rejection;
use super::sql::json_string;
use crate::db::pool::Database;
use crate::store::dead_letters::{self as store, NewDeadLetter};
use crate::store::mysql::dead_letters as mysql_store;

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
/// the user past `max_per_user` pending dead letters: then the whole batch
/// is refused (`Failure::DeadLetterLimit`) and stays on the device, rather
/// than acknowledging a transaction that is stored nowhere.
pub async fn store_rejected(
    conn: &mut PgConnection,
    max_per_user: u32,
    user_id: &str,
    client_id: Option<&str>,
    rejected: &[Rejected<'_, '_>],
) -> Result<(), Failure> {
    if rejected.is_empty() {
        return Ok(());
    }
    // Concurrent batches of one user count and insert one after the other.
    store::lock_user(conn, user_id).await?;
    let pending = store::count_pending(conn, user_id, max_per_user).await?;
    room_for(rejected, max_per_user, pending, user_id)?;
    for letter in rejected {
        let entries = entries_text(letter);
        store::insert(conn, &new_letter(letter, &entries, user_id, client_id)).await?;
    }
    Ok(())
}

/// Refuses the batch (`Failure::DeadLetterLimit`) when its rejected
/// transactions would take the user past `max_per_user` pending ones.
pub fn room_for(
    rejected: &[Rejected<'_, '_>],
    max_per_user: u32,
    pending: i64,
    user_id: &str,
) -> Result<(), Failure> {
    let room = usize::try_from(i64::from(max_per_user) - pending).unwrap_or(0);
    let Some(over) = rejected.get(room) else {
        return Ok(());
    };
    tracing::warn!(
        user_id,
        max_per_user,
        "dead letter limit reached; batch refused"
    );
    Err(Failure::DeadLetterLimit(format!(
        "a client transaction was rejected ({}: {}), and this user already has \
         {max_per_user} dead letters waiting for an operator \
         (write.dead_letters.max_per_user); nothing was applied, retry after \
         they are replayed or discarded",
        over.rejection.code, over.rejection.message
    )))
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
            async move {
                match &db {
                    Database::Postgres(pool) => store::delete_expired(pool, retention).await,
                    Database::MySql(pool) => mysql_store::delete_expired(pool, retention).await,
                }
            }
        },
    );
}
