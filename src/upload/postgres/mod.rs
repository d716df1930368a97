//! The write path on Postgres: set-based statements over `unnest`ed arrays
//! (`sql`), `FOR UPDATE` row locks, row-level security through a role, and
//! a probe for the column a refused cast concerns (`probe`).

pub mod catalog;
mod plain;
mod probe;
pub(super) mod sql;

use std::borrow::Cow;
use std::collections::BTreeSet;

use sqlx::{Executor, PgConnection, PgPool, Postgres, Transaction};

use super::backend::{Backend, Done, Locked, records_in};
use super::failure::{Failure, app_result, own_result, unavailable};
use super::plan::Group;
use super::prepared::Prepared;
use super::row::Row;
use super::schema::{Column, Table};

/// Starts a transaction of the write path (a batch, a dead letter's
/// replay). Connections plan every statement for its parameters (see
/// `db::pool::connect_options`); here Postgres may reuse plans again, so
/// the app's foreign keys and triggers are not planned anew for every row
/// they check (with custom plans only, a foreign key's lookup was planned
/// for each row inserted). uplink's own statements that look rows up are
/// sent unnamed and still planned for their rows each time
/// (`sql::Statement`). Deferred constraints are checked per statement, so
/// a violation is attributed to its client transaction.
pub async fn begin(
    pool: &PgPool,
    deferrable: bool,
) -> Result<Transaction<'static, Postgres>, Failure> {
    let mut tx = crate::db::pool::begin(pool, Some("BEGIN; SET LOCAL plan_cache_mode = auto"))
        .await
        .map_err(unavailable)?;
    if deferrable {
        sql::check_constraints_immediately(&mut tx)
            .await
            .map_err(Failure::from)?;
    }
    Ok(tx)
}

impl Backend for PgConnection {
    /// Writable CTEs run a group's parts in one statement.
    fn mix_key<'i>(table: &Table, id: &'i str) -> Option<Cow<'i, str>> {
        table.row_key.of(id)
    }

    async fn run_own(&mut self, sql: &'static str) -> Done {
        own_result(self.execute(sql).await.map(drop))
    }

    async fn assume_role(&mut self, role: &str, claims: &str, user_id: &str) -> Done {
        own_result(sql::assume_role(self, role, claims, user_id).await)
    }

    async fn reset_role(&mut self) -> Done {
        own_result(sql::reset_role(self).await)
    }

    async fn check_constraints_immediately(&mut self) -> Done {
        own_result(sql::check_constraints_immediately(self).await)
    }

    records_in!(crate::store);

    async fn lock_in_key_order(&mut self, table: &Table, ids: &[&str]) -> Done {
        app_result(sql::lock_in_key_order(self, table, ids).await)
    }

    async fn lock_rows(&mut self, table: &Table, ids: &[&str]) -> Done<Option<Vec<Locked>>> {
        app_result(sql::lock_rows(self, table, ids).await)
    }

    async fn insert_new(
        &mut self,
        table: &Table,
        owned: Option<&[&Column]>,
        rows: &[&Row<'_, '_>],
    ) -> Done<BTreeSet<String>> {
        let keys = sql::insert_new(table, owned, rows).fetch_text(self).await;
        app_result(keys.map(|keys| keys.into_iter().collect()))
    }

    async fn replace(
        &mut self,
        table: &Table,
        owned: Option<&[&Column]>,
        rows: &[&Row<'_, '_>],
    ) -> Done {
        app_result(sql::upsert(table, owned, rows).execute(self).await)
    }

    async fn update(&mut self, table: &Table, rows: &[&Row<'_, '_>]) -> Done {
        match sql::update(table, rows) {
            Some(statement) => app_result(statement.execute(self).await),
            None => Ok(()),
        }
    }

    async fn delete(&mut self, table: &Table, ids: &[&str]) -> Done {
        app_result(sql::delete(table, ids.to_vec()).execute(self).await)
    }

    async fn bump_versions(&mut self, table: &Table, column: &Column, ids: &[&str]) -> Done {
        app_result(sql::bump_versions(self, table, column, ids).await)
    }

    async fn add_delta(
        &mut self,
        table: &Table,
        column: &Column,
        id: &str,
        new: &str,
        previous: &str,
    ) -> Done {
        app_result(sql::add_delta(self, table, column, id, new, previous).await)
    }

    async fn write_plain(&mut self, group: &Group<'_, '_, '_>, rls_role: Option<&str>) -> Done {
        plain::write(self, group, rls_role).await
    }

    async fn refused_column(
        &mut self,
        prepared: &Prepared<'_, '_>,
    ) -> Done<Option<(String, String)>> {
        own_result(probe::refused_column(self, prepared).await)
    }
}
