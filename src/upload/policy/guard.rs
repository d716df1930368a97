//! The first step: checks that need no current row.

use std::borrow::Cow;

use super::resolve::Policy;
use super::values::value_of;
use crate::error::ErrorCode;
use crate::upload::batch::Op;
use crate::upload::prepared::Prepared;
use crate::upload::rejection::Rejection;
use crate::upload::row::Row;
use crate::upload::schema::Table;

/// The checks that need no current row (the operation, the client id delta
/// columns need, the owner the entry names); returns the row to write, with
/// the user as the owner of a PUT that names none.
pub fn claim<'c, 'a>(
    table: &Table,
    policy: &Policy<'c>,
    prepared: &Prepared<'c, 'a>,
    user_id: &str,
    client_id: Option<&str>,
) -> Result<Row<'c, 'a>, Rejection> {
    let mut row: Row = prepared.row.clone();
    if policy.insert_only && prepared.op != Op::Put {
        return Err(Rejection::new(
            ErrorCode::InsertOnly,
            format!("table `{}` accepts only new rows (PUT)", table.name),
        ));
    }
    let has_delta = policy
        .deltas
        .iter()
        .any(|d| row.values.iter().any(|(c, _)| c.name == d.name));
    if prepared.op == Op::Patch && has_delta && client_id.is_none() {
        return Err(Rejection::new(
            ErrorCode::ClientIdRequired,
            "delta columns are applied exactly once only with a client id; send `client_id`",
        ));
    }
    if let Some(owner) = policy.owner {
        match value_of(&row, &owner.name) {
            Some(claimed) if claimed != user_id => {
                return Err(Rejection::new(
                    ErrorCode::Forbidden,
                    format!("`{}` must be the authenticated user", owner.name),
                ));
            }
            None if prepared.op == Op::Put => {
                row.values.retain(|(c, _)| c.name != owner.name);
                row.values
                    .push((owner, Some(Cow::Owned(user_id.to_owned()))));
            }
            _ => {}
        }
    }
    Ok(row)
}
