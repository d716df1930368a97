//! Row locks on the app's tables.

use std::collections::BTreeSet;

use sqlx::PgConnection;

use super::statement::quote_ident;
use crate::upload::backend::Locked;
use crate::upload::schema::Table;

/// Reads the rows with `ids` as JSON text, in the order of `ids`, and locks
/// them (in key order) until the transaction ends. `None` when two ids name
/// the same key (say, a uuid in upper and lower case). The statement is
/// unnamed, so it is planned for the ids at hand even in a batch that
/// allows generic plans.
pub async fn lock_rows(
    conn: &mut PgConnection,
    table: &Table,
    ids: &[&str],
) -> Result<Option<Vec<Locked>>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Some(Vec::new()));
    }
    // The whole array is cast first, so an id the key type refuses fails
    // the statement whether or not the table has rows.
    let keys = format!(
        "unnest(($1::text[])::{}[]) WITH ORDINALITY AS u(id, i)",
        table.id_type
    );
    let found: Vec<(i64, String, Option<String>)> = sqlx::query_as(&format!(
        "WITH l AS (SELECT u.i, to_jsonb(t)::text AS row FROM {keys} \
         JOIN {} AS t ON t.\"id\" = u.id ORDER BY t.\"id\" FOR UPDATE OF t) \
         SELECT u.i, u.id::text, l.row FROM {keys} LEFT JOIN l ON l.i = u.i ORDER BY u.i",
        quote_ident(&table.name),
    ))
    .persistent(false)
    .bind(ids)
    .fetch_all(conn)
    .await?;
    let mut seen = BTreeSet::new();
    if !found.iter().all(|(_, key, _)| seen.insert(key.as_str())) || found.len() != ids.len() {
        return Ok(None);
    }
    Ok(Some(
        found
            .into_iter()
            .map(|(_, key, current)| Locked { key, current })
            .collect(),
    ))
}

/// Locks the existing rows with these ids (each must cast to the key's
/// type), in key order, without reading them.
pub async fn lock_in_key_order(
    conn: &mut PgConnection,
    table: &Table,
    ids: &[&str],
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "SELECT 1 FROM {} WHERE \"id\" = ANY($1::text[]::{}[]) ORDER BY \"id\" FOR UPDATE",
        quote_ident(&table.name),
        table.id_type
    ))
    // Unnamed, so never a generic plan, even in a batch that allows them.
    .persistent(false)
    .bind(ids)
    .execute(conn)
    .await
    .map(|_| ())
}
