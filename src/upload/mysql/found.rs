//! Rows read under lock by the ids entries name, matched as MySQL compares
//! keys rather than by the text it prints: on a `_ci` or PAD SPACE key,
//! `ABC ` names the row `abc`, and the write must find it.

use sqlx::MySqlConnection;

use super::statements;
use crate::upload::schema::Table;

/// Per requested id, the row it names (as JSON text), if one exists.
pub struct Found {
    pub rows: Vec<Option<String>>,
    /// Two of the ids name one row: a set cannot write both.
    pub shared: bool,
}

/// Reads and locks the rows `ids` name.
pub async fn find(
    conn: &mut MySqlConnection,
    table: &Table,
    ids: &[&str],
) -> Result<Found, sqlx::Error> {
    let mut found = Found {
        rows: vec![None; ids.len()],
        shared: false,
    };
    for (offset, statement) in statements::find(table, ids) {
        for (positions, row) in statement.fetch_rows(conn).await? {
            let named: Vec<usize> = positions
                .split(',')
                .filter_map(|p| p.parse::<usize>().ok())
                .map(|p| offset + p)
                .collect();
            found.shared |= named.len() > 1;
            for at in named {
                if let Some(slot) = found.rows.get_mut(at) {
                    *slot = Some(row.clone());
                }
            }
        }
    }
    Ok(found)
}
