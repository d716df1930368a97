//! The check step: an entry against the row it meets (none, or the current
//! one), by the rules every policy shares: ownership, insert-only, locked
//! states, transitions. The conflict strategy decides last (`decide`).

use std::borrow::Cow;

use super::decide::decide;
use super::resolve::{Policy, Transitions};
use super::stored::Stored;
use super::strategy::field_timestamps;
use super::values::value_of;
use super::verdict::{ConflictNote, Verdict, refused, taken};
use crate::error::ErrorCode;
use crate::upload::batch::{Entry, Op, truncate_for_message};
use crate::upload::prepared::Prepared;
use crate::upload::rejection::Rejection;
use crate::upload::row::{Row, json_string};
use crate::upload::schema::{Column, Table};
use crate::upload::settings::ConflictStrategy;

/// Checks a PUT of an id with no row against the policy; returns the row to
/// insert (with its per-field times).
pub fn check_new<'c, 'a>(
    policy: &Policy<'c>,
    entry: &Entry<'_>,
    mut row: Row<'c, 'a>,
) -> Result<Row<'c, 'a>, Rejection> {
    if let Some(transitions) = &policy.transitions
        && let Some((_, Some(state))) = row
            .values
            .iter()
            .find(|(c, _)| c.name == transitions.column.name)
        && !transitions.initial.contains(state.as_ref())
    {
        let initial: Vec<&str> = transitions.initial.iter().copied().collect();
        return Err(refused(
            ErrorCode::InvalidTransition,
            format!(
                "a new row's `{}` may not be {}; it starts as one of: {}",
                transitions.column.name,
                truncate_for_message(state),
                initial.join(", ")
            ),
        ));
    }
    if let Some(conflict) = policy.conflict
        && conflict.strategy == ConflictStrategy::FieldTimestamps
    {
        field_timestamps::stamp_new(conflict.column, entry, &mut row);
    }
    Ok(row)
}

/// Checks an entry against the existing row `current` (its JSON text,
/// locked), then lets the conflict strategy decide.
pub fn check_existing<'c, 'a>(
    table: &Table,
    policy: &Policy<'c>,
    prepared: &Prepared<'c, 'a>,
    entry: &Entry<'_>,
    row: Row<'c, 'a>,
    current: &str,
    user_id: &str,
) -> Result<Verdict<'c, 'a>, Rejection> {
    let Some(server) = Stored::parse(current) else {
        // Never expected: the backends read rows as JSON objects.
        return Err(Rejection::new(
            ErrorCode::DatabaseError,
            format!("the current row of `{}` is not a JSON object", table.name),
        ));
    };
    let server_text = |column: &Column| server.text(&column.name);
    if let Some(owner) = policy.owner
        && server_text(owner).as_deref() != Some(user_id)
    {
        return Err(taken(table, &row.id));
    }
    if policy.insert_only {
        return Ok(Verdict::Keep(already_exists(table, &row.id)));
    }
    if let Some((column, values)) = policy.locked_when
        && let Some(state) = server_text(column)
        && values.contains(&state)
    {
        return Err(refused(
            ErrorCode::RowLocked,
            format!("the row is `{state}` and accepts no change"),
        ));
    }
    let row = keep_state(policy, prepared, row, &server);
    check_transition(policy, prepared, &row, &server)?;
    decide(table, policy, prepared, entry, row, &server)
}

/// The row exists: an insert-only table never changes it.
fn already_exists(table: &Table, id: &str) -> ConflictNote {
    ConflictNote {
        code: ErrorCode::AlreadyExists,
        message: format!(
            "row {} of `{}` exists already and is kept as it is (insert-only table)",
            json_string(id),
            table.name
        ),
        record: None,
    }
}

/// A PUT that does not mention the state keeps it (it would otherwise reset
/// it to its DEFAULT, bypassing the allowed transitions).
fn keep_state<'c, 'a>(
    policy: &Policy<'c>,
    prepared: &Prepared<'c, 'a>,
    mut row: Row<'c, 'a>,
    server: &Stored<'_>,
) -> Row<'c, 'a> {
    if let Some(Transitions { column, .. }) = policy.transitions
        && prepared.op == Op::Put
        && value_of(&row, &column.name).is_none()
        && let Some(state) = server.raw(&column.name)
    {
        row.values.retain(|(c, _)| c.name != column.name);
        row.values
            .push((column, super::stored::raw_as_text(state).map(Cow::Owned)));
    }
    row
}

/// A change of the state column must be an allowed transition.
fn check_transition(
    policy: &Policy<'_>,
    prepared: &Prepared<'_, '_>,
    row: &Row<'_, '_>,
    server: &Stored<'_>,
) -> Result<(), Rejection> {
    let Some(Transitions {
        column, allowed, ..
    }) = &policy.transitions
    else {
        return Ok(());
    };
    if prepared.op == Op::Delete {
        return Ok(());
    }
    let Some(next) = value_of(row, &column.name) else {
        return Ok(());
    };
    let from = server.text(&column.name).unwrap_or_default();
    let permitted = next == from || allowed.get(&from).is_some_and(|to| to.contains(&next));
    if permitted {
        Ok(())
    } else {
        Err(refused(
            ErrorCode::InvalidTransition,
            format!("`{}` may not change from `{from}` to `{next}`", column.name),
        ))
    }
}
