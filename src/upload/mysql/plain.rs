//! A group of a table without a policy, on MySQL: one operation per group
//! (MySQL has no data-modifying CTEs), a statement per chunk of rows.

use sqlx::MySqlConnection;

use super::found::find;
use super::statements;
use crate::upload::backend::Done;
use crate::upload::batch::Op;
use crate::upload::failure::localized;
use crate::upload::plan::Group;
use crate::upload::row::Row;

pub async fn write(conn: &mut MySqlConnection, group: &Group<'_, '_, '_>) -> Done {
    let table = group.table;
    let Some(op) = group.single_op() else {
        return Ok(());
    };
    let mut entries = group.entries.clone();
    // In the client's order (see `statements::update`).
    entries.sort_by_key(|e| e.at);
    let rows: Vec<&Row> = entries
        .iter()
        .filter(|e| e.op == op)
        .map(|e| &e.row)
        .collect();
    let statements = match op {
        Op::Put if table.rows_independent => statements::upsert(table, group.owned, &rows),
        Op::Put => return put_row_by_row(conn, group).await,
        Op::Patch => statements::update(table, &rows),
        Op::Delete => {
            let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
            statements::delete(table, &ids)
        }
    };
    for statement in statements {
        statement.execute(conn).await.map_err(localized)?;
    }
    Ok(())
}

/// PUTs on a table with another unique key besides `id`: an upsert there
/// could update the row that key matches, so existing rows are locked and
/// replaced, and the others inserted (a clash on the other key fails).
async fn put_row_by_row(conn: &mut MySqlConnection, group: &Group<'_, '_, '_>) -> Done {
    let table = group.table;
    let rows = group.rows(Op::Put);
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
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
