//! A group of a table without a policy, on MySQL: its PUTs, then its
//! PATCHes, then its DELETEs, each a statement per chunk of rows (MySQL has
//! no data-modifying CTEs to run them as one).
//!
//! A group of several operations holds distinct rows of a table whose rows
//! nothing relates (`plan::group`, `Table::rows_independent`): each row is
//! written once, by a write that succeeds or fails on that row alone, so
//! this order ends in the rows the client's order would.

use sqlx::MySqlConnection;

use super::found::find;
use super::statements::{self, Statement};
use crate::upload::backend::Done;
use crate::upload::batch::Op;
use crate::upload::failure::localized;
use crate::upload::plan::Group;
use crate::upload::row::Row;

pub async fn write(conn: &mut MySqlConnection, group: &Group<'_, '_, '_>) -> Done {
    let table = group.table;
    let mut entries = group.entries.clone();
    // In the client's order (see `statements::update`).
    entries.sort_by_key(|e| e.at);
    let rows = |op: Op| -> Vec<&Row> {
        entries
            .iter()
            .filter(|e| e.op == op)
            .map(|e| &e.row)
            .collect()
    };
    let puts = rows(Op::Put);
    if !puts.is_empty() {
        if table.id_is_only_key {
            execute(conn, statements::upsert(table, group.owned, &puts)).await?;
        } else {
            put_row_by_row(conn, group).await?;
        }
    }
    let patches = rows(Op::Patch);
    if !patches.is_empty() {
        execute(conn, statements::update(table, &patches)).await?;
    }
    let deletes: Vec<&str> = rows(Op::Delete).iter().map(|r| &*r.id).collect();
    if !deletes.is_empty() {
        execute(conn, statements::delete(table, &deletes)).await?;
    }
    Ok(())
}

async fn execute(conn: &mut MySqlConnection, statements: Vec<Statement<'_>>) -> Done {
    for statement in statements {
        statement.execute(&mut *conn).await.map_err(localized)?;
    }
    Ok(())
}

/// PUTs on a table with another unique key besides `id`: an upsert there
/// could update the row that key matches, so existing rows are locked and
/// replaced, and the others inserted (a clash on the other key fails).
async fn put_row_by_row(conn: &mut MySqlConnection, group: &Group<'_, '_, '_>) -> Done {
    let table = group.table;
    let rows = group.rows(Op::Put);
    let ids: Vec<&str> = rows.iter().map(|r| &*r.id).collect();
    let found = find(conn, table, &ids).await.map_err(localized)?;
    let (replaced, new): (Vec<_>, Vec<_>) = rows
        .into_iter()
        .zip(&found.rows)
        .partition(|(_, current)| current.is_some());
    let (replaced, new): (Vec<_>, Vec<_>) = (
        replaced.into_iter().map(|(row, _)| row).collect(),
        new.into_iter().map(|(row, _)| row).collect(),
    );
    for row in replaced {
        statements::replace(table, group.owned, row)
            .execute(&mut *conn)
            .await
            .map_err(localized)?;
    }
    for (_, statement) in statements::insert(table, group.owned, &new) {
        statement.execute(&mut *conn).await.map_err(localized)?;
    }
    Ok(())
}
