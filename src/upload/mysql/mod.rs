//! The write path on MySQL and MariaDB: the same batches, semantics and
//! report as on Postgres, with MySQL's own statements.
//!
//! Differences that matter: MySQL has no `unnest`, so set-based writes are
//! multi-row `INSERT … ON DUPLICATE KEY UPDATE`, `UPDATE … CASE id` and
//! `DELETE … WHERE id IN` (`statements`); rows are found as MySQL compares
//! keys (`found`); a failed statement does not abort the transaction; and
//! values MySQL would silently alter are converted or refused first
//! (`values`), as are ids the key cannot hold (`screen`).

pub mod catalog;
mod found;
mod plain;
mod statements;
pub mod values;

use std::borrow::Cow;
use std::collections::BTreeSet;

use sqlx::{Executor, MySqlConnection};

use self::found::find;
use super::backend::{Backend, Done, Locked, records_in};
use super::batch::truncate_for_message;
use super::failure::{Failure, app_result, own_result};
use super::plan::Group;
use super::prepared::Prepared;
use super::rejection::Rejection;
use super::row::{Row, json_string};
use super::schema::{Column, MySqlKind, Table, ValueKind};
use crate::error::ErrorCode;

/// What the capabilities refuse at start-up (`db::capabilities`).
fn not_on_mysql<T>(what: &str) -> Done<T> {
    Err(Failure::Unexpected(anyhow::anyhow!(
        "{what} is not available on MySQL"
    )))
}

impl Backend for MySqlConnection {
    /// `RowKey::Exact` is not how MySQL compares keys (`abc` and `ABC `
    /// name one row under a `_ci` PAD SPACE collation): a group of one
    /// operation may hold both (its statements apply them in order), a
    /// group that reorders operations may not. So only ids whose spellings
    /// of one row uplink knows join one: integers and uuids by value, and
    /// texts of ASCII letters, digits, `-` and `_`, which no collation
    /// equates unless they differ in case only.
    fn mix_key<'i>(table: &Table, id: &'i str) -> Option<Cow<'i, str>> {
        let kind = table.column("id").map(|c| c.kind);
        match kind {
            Some(ValueKind::MySql(MySqlKind::Integer)) => {
                id.parse::<i64>().ok().map(|n| Cow::Owned(n.to_string()))
            }
            Some(ValueKind::MySql(MySqlKind::BinaryUuid)) => uuid::Uuid::parse_str(id)
                .ok()
                .map(|u| Cow::Owned(u.to_string())),
            _ => (!id.is_empty()
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
            .then(|| Cow::Owned(id.to_ascii_lowercase())),
        }
    }

    /// Refuses an id the key column cannot hold: MySQL would compare `abc`
    /// with an integer key as 0 rather than fail.
    fn screen(prepared: &Prepared<'_, '_>) -> Option<Rejection> {
        let table = prepared.table;
        let usable = table.id_parses?;
        (!usable(&prepared.row.id)).then(|| {
            Rejection::new(
                ErrorCode::InvalidValue,
                format!(
                    "the row id {} does not fit the key of `{}` ({})",
                    json_string(&truncate_for_message(&prepared.row.id)),
                    table.name,
                    table.id_type
                ),
            )
            .with_column("id")
        })
    }

    async fn run_own(&mut self, sql: &'static str) -> Done {
        own_result(self.execute(sql).await.map(drop))
    }

    async fn assume_role(&mut self, _role: &str, _claims: &str, _user_id: &str) -> Done {
        not_on_mysql("row-level security")
    }

    async fn reset_role(&mut self) -> Done {
        not_on_mysql("row-level security")
    }

    records_in!(crate::store::mysql);

    async fn lock_in_key_order(&mut self, table: &Table, ids: &[&str]) -> Done {
        for statement in statements::lock(table, ids) {
            app_result(statement.execute(self).await)?;
        }
        Ok(())
    }

    async fn lock_rows(&mut self, table: &Table, ids: &[&str]) -> Done<Option<Vec<Locked>>> {
        let found = app_result(find(self, table, ids).await)?;
        if found.shared {
            return Ok(None);
        }
        Ok(Some(
            ids.iter()
                .zip(found.rows)
                .map(|(id, current)| Locked {
                    key: (*id).to_owned(),
                    current,
                })
                .collect(),
        ))
    }

    /// A statement that fails on a duplicate key is retried one row at a
    /// time: a row whose id now exists lost the race to another transaction
    /// and is skipped; a clash on another unique key is the entry's refusal.
    async fn insert_new(
        &mut self,
        table: &Table,
        owned: Option<&[&Column]>,
        rows: &[&Row<'_, '_>],
    ) -> Done<BTreeSet<String>> {
        let mut inserted = BTreeSet::new();
        for (chunk, statement) in statements::insert(table, owned, rows) {
            match app_result(statement.execute(self).await) {
                Ok(()) => inserted.extend(chunk.iter().map(|row| row.id.to_string())),
                Err(failure) if is_duplicate(&failure) => {
                    for row in chunk {
                        if insert_unless_taken(self, table, owned, row).await? {
                            inserted.insert(row.id.to_string());
                        }
                    }
                }
                Err(failure) => return Err(failure),
            }
        }
        Ok(inserted)
    }

    async fn replace(
        &mut self,
        table: &Table,
        owned: Option<&[&Column]>,
        rows: &[&Row<'_, '_>],
    ) -> Done {
        // An upsert could update the row another unique key matches.
        let statements = if table.id_is_only_key {
            statements::upsert(table, owned, rows)
        } else {
            rows.iter()
                .map(|row| statements::replace(table, owned, row))
                .collect()
        };
        for statement in statements {
            app_result(statement.execute(self).await)?;
        }
        Ok(())
    }

    async fn update(&mut self, table: &Table, rows: &[&Row<'_, '_>]) -> Done {
        for statement in statements::update(table, rows) {
            app_result(statement.execute(self).await)?;
        }
        Ok(())
    }

    async fn delete(&mut self, table: &Table, ids: &[&str]) -> Done {
        for statement in statements::delete(table, ids) {
            app_result(statement.execute(self).await)?;
        }
        Ok(())
    }

    async fn bump_versions(&mut self, table: &Table, column: &Column, ids: &[&str]) -> Done {
        for statement in statements::bump_version(table, column, ids) {
            app_result(statement.execute(self).await)?;
        }
        Ok(())
    }

    async fn add_delta(
        &mut self,
        table: &Table,
        column: &Column,
        id: &str,
        new: &str,
        previous: &str,
    ) -> Done {
        // `new` is converted like any value; `old` is the client's text.
        let (new, previous) = match column.kind {
            ValueKind::MySql(kind @ MySqlKind::Integer) => {
                let integral = |text: &str| {
                    values::convert(column, kind, Cow::Owned(text.to_owned())).map_err(|message| {
                        Failure::refused(
                            Rejection::new(ErrorCode::InvalidValue, message)
                                .with_column(&column.name),
                        )
                    })
                };
                (integral(new)?, integral(previous)?)
            }
            _ => (Cow::Borrowed(new), Cow::Borrowed(previous)),
        };
        app_result(
            statements::add_delta(table, column, id, &new, &previous)
                .execute(self)
                .await,
        )
    }

    async fn write_plain(&mut self, group: &Group<'_, '_, '_>, _rls_role: Option<&str>) -> Done {
        plain::write(self, group).await
    }

    /// MySQL names the column of a value it refuses.
    async fn refused_column(
        &mut self,
        _prepared: &Prepared<'_, '_>,
    ) -> Done<Option<(String, String)>> {
        Ok(None)
    }
}

fn is_duplicate(failure: &Failure) -> bool {
    matches!(failure, Failure::Refused { rejection, .. } if rejection.code == ErrorCode::UniqueViolation)
}

/// Inserts one row; false when its id was taken meanwhile.
async fn insert_unless_taken(
    conn: &mut MySqlConnection,
    table: &Table,
    owned: Option<&[&Column]>,
    row: &Row<'_, '_>,
) -> Done<bool> {
    for (_, statement) in statements::insert(table, owned, &[row]) {
        match app_result(statement.execute(&mut *conn).await) {
            Ok(()) => {}
            Err(failure) if is_duplicate(&failure) => {
                let found = app_result(find(conn, table, &[&*row.id]).await)?;
                return match found.rows.first() {
                    Some(Some(_)) => Ok(false),
                    _ => Err(failure),
                };
            }
            Err(failure) => return Err(failure),
        }
    }
    Ok(true)
}
