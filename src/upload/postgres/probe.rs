//! Which column's value the database refused, when its error does not say:
//! a set-based statement casts every column, and Postgres names the type,
//! not the column. Run only for an entry already found at fault.

use sqlx::{Connection, PgConnection};

use crate::upload::prepared::Prepared;

/// The first column of the entry whose value its type refuses, with the
/// database's words; `None` when each value casts alone.
pub async fn refused_column(
    conn: &mut PgConnection,
    prepared: &Prepared<'_, '_>,
) -> Result<Option<(String, String)>, sqlx::Error> {
    for (column, value) in &prepared.row.values {
        let Some(value) = value else { continue };
        // An explicit cast would truncate text to a declared length; the
        // column's own assignment refuses it.
        if let Some(limit) = declared_length(&column.sql_type)
            && value.chars().count() > limit
        {
            return Ok(Some((
                column.name.clone(),
                format!("the text is longer than {limit} characters"),
            )));
        }
        let mut savepoint = conn.begin().await?;
        let cast = sqlx::query(&format!("SELECT ($1::text)::{}", column.cast_type))
            .persistent(false)
            .bind(value.as_ref())
            .execute(&mut *savepoint)
            .await;
        savepoint.rollback().await?;
        if let Err(sqlx::Error::Database(refused)) = cast {
            return Ok(Some((column.name.clone(), refused.message().to_owned())));
        }
    }
    Ok(None)
}

/// `n` of `character varying(n)` / `character(n)`.
fn declared_length(sql_type: &str) -> Option<usize> {
    let inner = sql_type
        .strip_prefix("character varying(")
        .or_else(|| sql_type.strip_prefix("character("))?;
    inner.strip_suffix(')')?.parse().ok()
}
