//! Rejected client transactions, stored durably for operators to list,
//! inspect, replay or discard (CLI and admin API share these functions).

use chrono::{DateTime, Utc};
use std::time::Duration;

use serde::Serialize;
use serde_json::value::RawValue;
use sqlx::{PgConnection, PgPool};

use super::envelope::{ClientTransaction, Entry};
use super::failure::{Failure, classify};
use super::report::Rejection;
use super::sql::json_string;

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
    if !entry.data.is_empty() || entry.op != super::envelope::Op::Delete {
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

/// JSON text that `jsonb` accepts: Postgres refuses `\u0000`, unpaired
/// surrogate escapes and numbers beyond its `numeric` range, which are valid
/// JSON a client may send. The escapes become U+FFFD and such numbers
/// strings of their text, so a rejected entry is still stored (it could
/// never be written to a table anyway).
pub fn jsonb_safe(json: &str) -> std::borrow::Cow<'_, str> {
    let mut ranges = super::coerce::unstorable_numbers(json).peekable();
    if ranges.peek().is_none() {
        return escapes_safe(json);
    }
    let mut quoted = String::with_capacity(json.len() + 16);
    let mut copied = 0;
    for range in ranges {
        quoted.push_str(&json[copied..range.start]);
        quoted.push('"');
        quoted.push_str(&json[range.clone()]);
        quoted.push('"');
        copied = range.end;
    }
    quoted.push_str(&json[copied..]);
    std::borrow::Cow::Owned(escapes_safe(&quoted).into_owned())
}

fn escapes_safe(json: &str) -> std::borrow::Cow<'_, str> {
    if !json.contains("\\u") {
        return std::borrow::Cow::Borrowed(json);
    }
    let bytes = json.as_bytes();
    let hex = |at: usize| -> Option<u16> {
        json.get(at..at + 4)
            .and_then(|h| u16::from_str_radix(h, 16).ok())
    };
    let mut out = String::with_capacity(json.len());
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        if bytes.get(i + 1) != Some(&b'u') {
            i += 2; // an escaped character, `\\` included
            continue;
        }
        let Some(unit) = hex(i + 2) else {
            i += 2;
            continue;
        };
        let paired = (0xD800..0xDC00).contains(&unit)
            && json.get(i + 6..i + 8) == Some("\\u")
            && hex(i + 8).is_some_and(|low| (0xDC00..0xE000).contains(&low));
        if paired {
            i += 12;
        } else if unit == 0 || (0xD800..0xE000).contains(&unit) {
            out.push_str(&json[copied..i]);
            out.push_str("\\ufffd");
            i += 6;
            copied = i;
        } else {
            i += 6;
        }
    }
    if copied == 0 {
        return std::borrow::Cow::Borrowed(json);
    }
    out.push_str(&json[copied..]);
    std::borrow::Cow::Owned(out)
}

pub fn transaction_json(transaction: &ClientTransaction<'_>) -> String {
    let entries: Vec<String> = transaction.entries.iter().map(entry_json).collect();
    format!("[{}]", entries.join(","))
}

/// Stores a rejected client transaction, unless its user already has
/// `max_per_user` pending dead letters: then the whole batch is refused
/// (`Failure::DeadLetterLimit`) and stays on the device, rather than
/// acknowledging a transaction that is stored nowhere.
pub async fn insert(
    conn: &mut PgConnection,
    max_per_user: u32,
    user_id: &str,
    client_id: Option<&str>,
    transaction: &ClientTransaction<'_>,
    failed_op_id: Option<i64>,
    rejection: &Rejection,
) -> Result<(), Failure> {
    // Concurrent batches of one user count and insert one after the other.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('uplink_dead_letters/' || $1, 0))")
        .bind(user_id)
        .execute(&mut *conn)
        .await
        .map_err(classify)?;
    let pending: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT 1 FROM uplink_dead_letters \
         WHERE user_id = $1 AND replayed_at IS NULL LIMIT $2) AS capped",
    )
    .bind(user_id)
    .bind(i64::from(max_per_user))
    .fetch_one(&mut *conn)
    .await
    .map_err(classify)?;
    if pending >= i64::from(max_per_user) {
        tracing::warn!(
            user_id,
            max_per_user,
            "dead letter limit reached; batch refused"
        );
        return Err(Failure::DeadLetterLimit(format!(
            "a client transaction was rejected ({}: {}), and this user already has \
             {max_per_user} dead letters waiting for an operator \
             (write.dead_letters.max_per_user); nothing was applied, retry after \
             they are replayed or discarded",
            rejection.code, rejection.message
        )));
    }
    sqlx::query(
        "INSERT INTO uplink_dead_letters \
         (user_id, client_id, tx_id, entries, code, sqlstate, constraint_name, column_name, message, failed_op_id) \
         VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10)",
    )
    .bind(user_id)
    .bind(client_id)
    .bind(transaction.tx_id)
    .bind(jsonb_safe(&transaction_json(transaction)).as_ref())
    .bind(rejection.code)
    .bind(rejection.sqlstate.as_deref())
    .bind(rejection.constraint_name.as_deref())
    .bind(rejection.column.as_deref())
    .bind(&rejection.message)
    .bind(failed_op_id)
    .execute(conn)
    .await
    .map(|_| ())
    .map_err(classify)
}

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
    /// serde_json's recursion limit, which the write path accepts.
    #[schema(value_type = Vec<HashMap<String, Value>>)]
    pub entries: sqlx::types::Json<Box<RawValue>>,
    #[serde(skip)]
    pub entry_count: i32,
}

/// What the admin API answers for a listing.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeadLetterList {
    pub dead_letters: Vec<DeadLetter>,
}

const COLUMNS: &str = "id, user_id, client_id, tx_id, code, sqlstate, constraint_name, column_name, \
                       message, failed_op_id, created_at, replayed_at, replay_outcome, entries, \
                       jsonb_array_length(entries) AS entry_count";

/// Dead letters newest first; replayed ones only when asked.
pub async fn list(
    db: &PgPool,
    limit: i64,
    include_replayed: bool,
) -> Result<Vec<DeadLetter>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM uplink_dead_letters \
         WHERE $2 OR replayed_at IS NULL ORDER BY id DESC LIMIT $1"
    ))
    .bind(limit)
    .bind(include_replayed)
    .fetch_all(db)
    .await
}

pub async fn get(db: &PgPool, id: i64) -> Result<Option<DeadLetter>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM uplink_dead_letters WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Deletes a dead letter; false when there was none.
pub async fn discard(db: &PgPool, id: i64) -> Result<bool, sqlx::Error> {
    let result = sqlx::query("DELETE FROM uplink_dead_letters WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(result.rows_affected() > 0)
}

/// How often each replica deletes dead letters past their retention.
const RETENTION_SWEEP_INTERVAL: Duration = Duration::from_secs(3600);

/// Starts the periodic deletion of dead letters older than `retention`
/// (none when zero). Every replica may run it: a DELETE is idempotent.
pub fn spawn_retention(db: PgPool, retention: Duration) {
    if retention.is_zero() {
        return;
    }
    crate::sweep::every(
        RETENTION_SWEEP_INTERVAL,
        Duration::ZERO,
        "dead letters past their retention",
        move || {
            let db = db.clone();
            async move { delete_expired(&db, retention).await }
        },
    );
}

/// Deletes dead letters created more than `retention` ago; returns how many.
pub async fn delete_expired(db: &PgPool, retention: Duration) -> Result<u64, sqlx::Error> {
    let result = sqlx::query(
        "DELETE FROM uplink_dead_letters WHERE created_at < now() - make_interval(secs => $1)",
    )
    .bind(retention.as_secs_f64())
    .execute(db)
    .await?;
    Ok(result.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::jsonb_safe;

    #[test]
    fn jsonb_safe_replaces_only_what_postgres_refuses() {
        let cases = [
            (r#"{"a":"x\u0000y"}"#, r#"{"a":"x\ufffdy"}"#),
            (r#"["\ud800"]"#, r#"["\ufffd"]"#),
            (r#"["\udc00\ud800"]"#, r#"["\ufffd\ufffd"]"#),
            (r#"["\ud83d\ude00"]"#, r#"["\ud83d\ude00"]"#),
            (r#"["\\u0000"]"#, r#"["\\u0000"]"#),
            (r#"["\u00e9 \n"]"#, r#"["\u00e9 \n"]"#),
        ];
        for (input, expected) in cases {
            assert_eq!(jsonb_safe(input), expected, "{input}");
        }
    }

    #[test]
    fn numbers_postgres_cannot_hold_become_strings() {
        assert_eq!(
            jsonb_safe(r#"[{"data":{"n":1e99999999,"s":"1e99999999","ok":1e5}}]"#),
            r#"[{"data":{"n":"1e99999999","s":"1e99999999","ok":1e5}}]"#
        );
    }
}
