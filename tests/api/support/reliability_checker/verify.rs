//! The database compared with what the clients were told.

use std::collections::HashMap;
use std::time::Instant;

use sqlx::{MySqlPool, PgPool};

use super::Summary;
use super::clients::Write;

/// What the database holds after a run.
pub struct Observed {
    /// `chaos_audit` in order: (seq, table, row id, value).
    audit: Vec<(i64, String, String, Option<String>)>,
    /// `chaos_rows`: id → final value.
    finals: HashMap<String, Option<String>>,
    /// `chaos_entries`: value → owner.
    owners: HashMap<String, Option<String>>,
}

const AUDIT: &str = "SELECT seq, tbl, row_id, value FROM chaos_audit ORDER BY seq";
const FINALS: &str = "SELECT id, value FROM chaos_rows";
const OWNERS: &str = "SELECT value, owner FROM chaos_entries";
// The test databases collate text as binary, which MySQL hands over as bytes.
const MYSQL_AUDIT: &str = "SELECT seq, CAST(tbl AS CHAR), CAST(row_id AS CHAR), CAST(value AS CHAR) \
                           FROM chaos_audit ORDER BY seq";
const MYSQL_FINALS: &str = "SELECT CAST(id AS CHAR), CAST(value AS CHAR) FROM chaos_rows";
const MYSQL_OWNERS: &str = "SELECT CAST(value AS CHAR), CAST(owner AS CHAR) FROM chaos_entries";

pub async fn observe_postgres(pool: &PgPool) -> Observed {
    let pairs = |sql| async move {
        sqlx::query_as::<_, (String, Option<String>)>(sql)
            .fetch_all(pool)
            .await
            .expect("read the checker's tables")
            .into_iter()
            .collect()
    };
    Observed {
        audit: sqlx::query_as(AUDIT)
            .fetch_all(pool)
            .await
            .expect("read the audit log"),
        finals: pairs(FINALS).await,
        owners: pairs(OWNERS).await,
    }
}

pub async fn observe_mysql(pool: &MySqlPool) -> Observed {
    let pairs = |sql| async move {
        sqlx::query_as::<_, (String, Option<String>)>(sql)
            .fetch_all(pool)
            .await
            .expect("read the checker's tables")
            .into_iter()
            .collect()
    };
    Observed {
        audit: sqlx::query_as(MYSQL_AUDIT)
            .fetch_all(pool)
            .await
            .expect("read the audit log"),
        finals: pairs(MYSQL_FINALS).await,
        owners: pairs(MYSQL_OWNERS).await,
    }
}

/// Compares the database with the acknowledged history; client i wrote as
/// user `u{i % users}`.
pub fn verify(observed: &Observed, writes: &[Write], users: usize) -> Summary {
    let mut summary = Summary::default();
    let Observed {
        audit,
        finals,
        owners,
    } = observed;

    let mut entry_applications: HashMap<&str, u64> = HashMap::new();
    let mut row_applications: HashMap<&str, u64> = HashMap::new();
    let mut row_history: HashMap<&str, Vec<&str>> = HashMap::new();
    for (_, table, row, value) in audit.iter() {
        let value = value.as_deref().unwrap_or("");
        match table.as_str() {
            "chaos_entries" => *entry_applications.entry(value).or_default() += 1,
            _ => {
                *row_applications.entry(value).or_default() += 1;
                row_history.entry(row).or_default().push(value);
            }
        }
    }
    let by_value: HashMap<&str, &Write> = writes.iter().map(|w| (w.value.as_str(), w)).collect();
    // The last op of each client's batch per row: an earlier write of the
    // same row in that batch may be superseded without being applied.
    let mut last_in_batch: HashMap<(usize, usize, &str), i64> = HashMap::new();
    for w in writes {
        let last = last_in_batch
            .entry((w.client, w.batch, w.row.as_str()))
            .or_default();
        *last = (*last).max(w.op);
    }

    for write in writes {
        let entries = entry_applications
            .get(write.value.as_str())
            .copied()
            .unwrap_or(0);
        let rows = row_applications
            .get(write.value.as_str())
            .copied()
            .unwrap_or(0);
        let Some(ack) = &write.ack else {
            summary.unacknowledged += 1;
            summary
                .violations
                .push(format!("{} never acknowledged", write.value));
            if !write.indeterminate && entries > 0 {
                summary.applied_after_503 += 1;
                summary.violations.push(format!(
                    "{} applied although every attempt was refused",
                    write.value
                ));
            }
            continue;
        };
        summary.acknowledged_entries += 2;
        for status in [&ack.row_status, &ack.entry_status] {
            if status != "applied" && status != "duplicate" {
                summary
                    .violations
                    .push(format!("{} acknowledged as {status}", write.value));
            }
        }
        if ack.row_status != ack.entry_status {
            summary.violations.push(format!(
                "{}: one client transaction, two outcomes ({} / {})",
                write.value, ack.row_status, ack.entry_status
            ));
        }
        if ack.entry_status == "duplicate" && !write.indeterminate {
            summary.applied_after_503 += 1;
            summary.violations.push(format!(
                "{} reported duplicate although every earlier attempt was answered 503 or refused",
                write.value
            ));
        }
        let owner = format!("u{}", write.client % users.max(1));
        if entries > 0 && owners.get(&write.value).cloned().flatten() != Some(owner.clone()) {
            summary.wrong_owner += 1;
            summary.violations.push(format!(
                "entry {} written by {owner} is owned by {:?}",
                write.value,
                owners.get(&write.value)
            ));
        }
        match entries {
            1 => {}
            0 => {
                summary.lost += 1;
                summary.violations.push(format!(
                    "entry {} acknowledged but not applied",
                    write.value
                ));
            }
            n => {
                summary.duplicated += 1;
                summary
                    .violations
                    .push(format!("entry {} applied {n} times", write.value));
            }
        }
        if rows > 1 {
            summary.duplicated += 1;
            summary
                .violations
                .push(format!("row write {} applied {rows} times", write.value));
        } else if rows == 0 {
            // Allowed only when a later write of the same client, row and request superseded it.
            let superseded =
                last_in_batch[&(write.client, write.batch, write.row.as_str())] > write.op;
            if !superseded {
                summary.lost += 1;
                summary.violations.push(format!(
                    "row write {} acknowledged but not applied",
                    write.value
                ));
            }
        }
    }

    // Per row: the final value is the last applied write, acknowledged, and the
    // applied order never contradicts real time (a write acknowledged before
    // another was first sent must come first) nor a client's own op order.
    for (row, history) in &row_history {
        let last = history.last().copied();
        let actual = finals.get(*row).cloned().flatten();
        if actual.as_deref() != last {
            summary.lost += 1;
            summary.violations.push(format!(
                "row {row} holds {actual:?}, the last applied write was {last:?}"
            ));
        }
        let mut latest_send: Option<Instant> = None;
        let mut client_ops: HashMap<usize, i64> = HashMap::new();
        for value in history {
            let Some(write) = by_value.get(value) else {
                summary
                    .violations
                    .push(format!("row {row} holds a value nobody wrote: {value}"));
                continue;
            };
            if let (Some(ack), Some(sent)) = (&write.ack, latest_send)
                && ack.at < sent
            {
                summary.order_violations += 1;
                summary.violations.push(format!(
                    "row {row}: {value} was acknowledged before an earlier-applied write was sent"
                ));
            }
            latest_send = Some(latest_send.map_or(write.first_send, |s| s.max(write.first_send)));
            let previous = client_ops.insert(write.client, write.op);
            if previous.is_some_and(|p| p > write.op) {
                summary.order_violations += 1;
                summary.violations.push(format!(
                    "row {row}: {value} applied after a later op of its client"
                ));
            }
        }
    }
    summary
}
