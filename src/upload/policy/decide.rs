//! The decide step: the conflict strategy's judgement and `on_conflict`
//! make the verdict, a complete write or a note for the client.

use super::resolve::Policy;
use super::stored::Stored;
use super::strategy::{self, Judgement};
use super::values::client_data;
use super::verdict::{ConflictNote, Delta, RecordedConflict, Verdict, Write, refused};
use crate::error::ErrorCode;
use crate::upload::batch::{Entry, Op};
use crate::upload::prepared::Prepared;
use crate::upload::rejection::Rejection;
use crate::upload::row::Row;
use crate::upload::schema::Table;
use crate::upload::settings::OnConflict;

/// Decides an entry that passed the checks against the existing row
/// `server`. Without a conflict strategy the last write wins.
pub fn decide<'c, 'a>(
    table: &Table,
    policy: &Policy<'c>,
    prepared: &Prepared<'c, 'a>,
    entry: &Entry<'_>,
    row: Row<'c, 'a>,
    server: &Stored<'_>,
) -> Result<Verdict<'c, 'a>, Rejection> {
    let Some(conflict) = policy.conflict else {
        return Ok(Verdict::Write(
            write(policy, prepared, entry, row, None),
            None,
        ));
    };
    let record = |row: &Row| {
        (conflict.on_conflict == OnConflict::Record).then(|| RecordedConflict {
            table: table.name.clone(),
            row_id: row.id.to_string(),
            client_data: client_data(entry),
            server_data: Some(server.json().to_owned()),
        })
    };
    match strategy::judge(&conflict, prepared, entry, row, server) {
        Judgement::Current { row, bump_version } => Ok(Verdict::Write(
            write(policy, prepared, entry, row, bump_version),
            None,
        )),
        Judgement::Stale { row, code, message } => match conflict.on_conflict {
            OnConflict::Reject => Err(refused(code, message)),
            _ => Ok(Verdict::Keep(ConflictNote {
                code,
                message,
                record: record(&row),
            })),
        },
        Judgement::Merged { row, kept } => {
            let message = format!("newer server values kept for {}", kept.join(", "));
            if conflict.on_conflict == OnConflict::Reject {
                return Err(refused(ErrorCode::StaleField, message));
            }
            let note = ConflictNote {
                code: ErrorCode::StaleField,
                message,
                record: record(&row),
            };
            Ok(Verdict::Write(
                write(policy, prepared, entry, row, None),
                Some(note),
            ))
        }
    }
}

/// The write of a decided entry: a PATCH's delta columns are split off to
/// be added to the running value.
fn write<'c, 'a>(
    policy: &Policy<'c>,
    prepared: &Prepared<'c, 'a>,
    entry: &Entry<'_>,
    mut row: Row<'c, 'a>,
    bump_version: Option<&'c crate::upload::schema::Column>,
) -> Write<'c, 'a> {
    let deltas = if prepared.op == Op::Patch && !policy.deltas.is_empty() {
        take_deltas(policy, entry, &mut row)
    } else {
        Vec::new()
    };
    Write {
        row,
        bump_version,
        deltas,
    }
}

/// Removes the delta columns from `row`: the client's change is new −
/// previous when it sent `old` (trackPrevious), else the value itself.
fn take_deltas<'c>(
    policy: &Policy<'c>,
    entry: &Entry<'_>,
    row: &mut Row<'c, '_>,
) -> Vec<Delta<'c>> {
    // `old` is an object, or (some SDKs) its JSON text.
    let old_text = entry.old.map(|o| match o.get() {
        quoted if quoted.starts_with('"') => serde_json::from_str::<String>(quoted).ok(),
        object => Some(object.to_owned()),
    });
    let old = old_text
        .as_ref()
        .and_then(|t| t.as_deref().and_then(Stored::parse));
    let deltas: Vec<Delta> = policy
        .deltas
        .iter()
        .filter_map(|d| {
            let new = row.values.iter().find(|(c, _)| c.name == d.name)?;
            let previous = old
                .as_ref()
                .and_then(|o| o.text(&d.name))
                .unwrap_or_else(|| "0".to_owned());
            Some(Delta {
                column: d,
                new: new.1.as_deref().unwrap_or_default().to_owned(),
                previous,
            })
        })
        .collect();
    row.values
        .retain(|(c, _)| !deltas.iter().any(|d| d.column.name == c.name));
    deltas
}
