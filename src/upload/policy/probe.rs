//! The policy decision alone, without a database, for the fuzz targets
//! (fuzz/): a client's entries against a stored row (or none), through the
//! same steps the write path runs (prepare, guard, check, decide).

use super::check::{check_existing, check_new};
use super::guard::claim;
use super::verdict::Verdict;
use crate::error::ErrorCode;
use crate::upload::batch::Op;
use crate::upload::envelope::Batch;
use crate::upload::plan::Allowed;
use crate::upload::rejection::Rejection;
use crate::upload::row::Row;
use crate::upload::schema::Catalog;
use crate::upload::settings::WriteSettings;

/// What the write path would do with one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Refused before or by the policy.
    Refused(ErrorCode),
    /// Written: each column set and its value's text (`None`: NULL).
    Write(Vec<(String, Option<String>)>),
    /// The stored row is kept; the note's code.
    Keep(ErrorCode),
    /// No policy applies (the table has none, or there is no row to check).
    Unchecked,
    /// The stored row is not a JSON object.
    Unreadable,
}

/// Each entry of `body` (a batch as a client sends it) by `user_id`,
/// against `current` (the stored row's JSON text) or no row. `settings`
/// must have passed the start-up checks against `catalog`.
pub fn decide_batch(
    catalog: &Catalog,
    settings: &WriteSettings,
    body: &[u8],
    user_id: &str,
    current: Option<&str>,
) -> Option<Vec<Decision>> {
    let batch = Batch::parse(body, Some("fuzz-client")).ok()?;
    let allowed = Allowed::new(catalog, settings);
    let mut decisions = Vec::new();
    for (t, tx) in batch.transactions.iter().enumerate() {
        for (e, entry) in tx.entries.iter().enumerate() {
            let prepared = match allowed.prepare((t, e), entry) {
                Ok(prepared) => prepared,
                Err(rejection) => {
                    decisions.push(Decision::Refused(rejection.code));
                    continue;
                }
            };
            let Some(policy) = prepared.policy else {
                decisions.push(Decision::Unchecked);
                continue;
            };
            let client_id = batch.client_id.as_deref();
            let row = match claim(prepared.table, policy, &prepared, user_id, client_id) {
                Ok(row) => row,
                Err(rejection) => {
                    decisions.push(Decision::Refused(rejection.code));
                    continue;
                }
            };
            let decision = match current {
                None if prepared.op == Op::Put => match check_new(policy, entry, row) {
                    Ok(row) => Decision::Write(values(&row)),
                    Err(failure) => failed(failure),
                },
                None => Decision::Unchecked,
                Some(current) => {
                    let table = prepared.table;
                    match check_existing(table, policy, &prepared, entry, row, current, user_id) {
                        Ok(Verdict::Write(write, _)) => Decision::Write(values(&write.row)),
                        Ok(Verdict::Keep(note)) => Decision::Keep(note.code),
                        Err(failure) => failed(failure),
                    }
                }
            };
            decisions.push(decision);
        }
    }
    Some(decisions)
}

fn failed(rejection: Rejection) -> Decision {
    match rejection.code {
        ErrorCode::DatabaseError => Decision::Unreadable,
        code => Decision::Refused(code),
    }
}

fn values(row: &Row<'_, '_>) -> Vec<(String, Option<String>)> {
    row.values
        .iter()
        .map(|(column, value)| (column.name.clone(), value.as_deref().map(str::to_owned)))
        .collect()
}
