//! A group of a table without a policy, on Postgres: one statement (PUTs,
//! PATCHes and DELETEs of distinct rows share one), and under row-level
//! security a check that a skipped row was not another user's.

use sqlx::PgConnection;

use super::sql;
use crate::error::ErrorCode;
use crate::upload::backend::Done;
use crate::upload::batch::Op;
use crate::upload::failure::{Failure, localized};
use crate::upload::plan::Group;
use crate::upload::rejection::Rejection;

pub async fn write(
    conn: &mut PgConnection,
    group: &Group<'_, '_, '_>,
    rls_role: Option<&str>,
) -> Done {
    match group.single_op() {
        None => combined(conn, group).await.map_err(localized)?,
        Some(Op::Put) => {
            sql::upsert(group.table, group.owned, &group.rows(Op::Put))
                .execute(conn)
                .await
                .map_err(localized)?;
        }
        Some(Op::Patch) => {
            if let Some(mut statement) = sql::update(group.table, &group.rows(Op::Patch)) {
                statement.sql.push_str(returning_id(rls_role));
                let touched = statement.fetch_text(conn).await.map_err(localized)?;
                check_hidden_rows(conn, rls_role, group, touched).await?;
            }
        }
        Some(Op::Delete) => {
            let ids = group.entries.iter().map(|e| &*e.row.id).collect();
            let mut statement = sql::delete(group.table, ids);
            statement.sql.push_str(returning_id(rls_role));
            let touched = statement.fetch_text(conn).await.map_err(localized)?;
            check_hidden_rows(conn, rls_role, group, touched).await?;
        }
    }
    Ok(())
}

/// Under row-level security, statements report the rows they touched.
fn returning_id(rls_role: Option<&str>) -> &'static str {
    if rls_role.is_some() {
        " RETURNING t.\"id\"::text"
    } else {
        ""
    }
}

/// PUTs, PATCHes and DELETEs of distinct rows of one table, one statement.
async fn combined(conn: &mut PgConnection, group: &Group<'_, '_, '_>) -> Result<(), sqlx::Error> {
    let parts = sql::Combined {
        puts: group.rows(Op::Put),
        patches: group
            .rows(Op::Patch)
            .into_iter()
            .filter(|r| !r.values.is_empty())
            .collect(),
        deletes: group.rows(Op::Delete),
    };
    sql::combined(group.table, group.owned, &parts)
        .execute(conn)
        .await
}

/// Under row-level security an UPDATE or DELETE silently skips rows the
/// user may not see. A skipped row that exists is someone else's: refuse the
/// entry as `forbidden` rather than report a no-op.
async fn check_hidden_rows(
    conn: &mut PgConnection,
    rls_role: Option<&str>,
    group: &Group<'_, '_, '_>,
    touched: Vec<String>,
) -> Done {
    let Some(role) = rls_role else {
        return Ok(());
    };
    let skipped: Vec<&str> = group
        .entries
        .iter()
        .map(|e| &*e.row.id)
        .filter(|id| !touched.iter().any(|t| t == id))
        .collect();
    if skipped.is_empty() {
        return Ok(());
    }
    let existing = sql::hidden_rows(conn, group.table, role, &skipped)
        .await
        .map_err(localized)?;
    match group
        .entries
        .iter()
        .find(|e| existing.iter().any(|id| *id == e.row.id))
    {
        Some(entry) => Err(Failure::refused_at(
            Some(entry.at),
            Rejection::new(
                ErrorCode::Forbidden,
                "row-level security hides this row from the user",
            ),
        )),
        None => Ok(()),
    }
}
