//! Writes that build on a row's current value: version bumps and delta
//! columns. Unnamed statements, planned for the rows at hand.

use sqlx::PgConnection;

use super::statement::quote_ident;
use crate::upload::schema::{Column, Table};

/// Adds one to `column` of the rows with `ids` (NULL counts as version 0).
pub async fn bump_versions(
    conn: &mut PgConnection,
    table: &Table,
    column: &Column,
    ids: &[&str],
) -> Result<(), sqlx::Error> {
    let c = quote_ident(&column.name);
    sqlx::query(&format!(
        "UPDATE {} AS t SET {c} = COALESCE(t.{c}, 0) + 1 WHERE t.\"id\" = ANY(($1::text[])::{}[])",
        quote_ident(&table.name),
        table.id_type
    ))
    .persistent(false)
    .bind(ids)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Adds the client's change `new − previous` to `column` of row `id`.
pub async fn add_delta(
    conn: &mut PgConnection,
    table: &Table,
    column: &Column,
    id: &str,
    new: &str,
    previous: &str,
) -> Result<(), sqlx::Error> {
    let c = quote_ident(&column.name);
    let ty = &column.sql_type;
    sqlx::query(&format!(
        "UPDATE {} SET {c} = {c} + (($2::text)::{ty} - ($3::text)::{ty}) \
         WHERE \"id\" = ($1::text)::{}",
        quote_ident(&table.name),
        table.id_type
    ))
    .persistent(false)
    .bind(id)
    .bind(new)
    .bind(previous)
    .execute(conn)
    .await
    .map(|_| ())
}
