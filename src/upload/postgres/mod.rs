//! The write path on Postgres: set-based statements over `unnest`ed arrays
//! (`sql`), `FOR UPDATE` row locks, row-level security through a role, and
//! a probe for the column a refused cast concerns (`probe`).

pub mod catalog;
mod plain;
mod probe;
pub(super) mod sql;

use std::collections::BTreeSet;

use sqlx::{Executor, PgConnection, PgPool, Postgres, Transaction};

use super::apply::Apply;
use super::backend::{Backend, Done, Locked};
use super::batch::Batch;
use super::failure::{Failure, localized, unavailable};
use super::plan::{Allowed, Group};
use super::prepared::Prepared;
use super::row::Row;
use super::schema::{Column, Table};
use crate::db::{DbFailure, Own};
use crate::store::conflicts::{self, NewConflict};
use crate::store::dead_letters::{self, NewDeadLetter, PendingUsage};
use crate::store::progress;

/// The batch's transaction. Connections plan every statement for its
/// parameters (see `db::pool::connect_options`); a batch of inserts may
/// reuse plans. Deferred constraints are checked per statement, so a
/// violation is attributed to its client transaction.
pub async fn begin<'p>(
    pool: &'p PgPool,
    allowed: &Allowed<'_>,
    batch: &Batch<'_>,
    options: &Apply<'_>,
    deferrable: bool,
) -> Result<Transaction<'p, Postgres>, Failure> {
    let begin = if options.rls_role.is_none() && allowed.plans_are_fixed(batch) {
        "BEGIN; SET LOCAL plan_cache_mode = auto"
    } else {
        "BEGIN"
    };
    let mut tx = pool.begin_with(begin).await.map_err(unavailable)?;
    if deferrable {
        sql::check_constraints_immediately(&mut tx)
            .await
            .map_err(Failure::from)?;
    }
    Ok(tx)
}

/// A statement of uplink's own (savepoints, roles, records).
fn ours<T>(result: Result<T, impl Into<DbFailure>>) -> Done<T> {
    result.map_err(|e| Failure::from(e.into()))
}

/// A statement on the app's rows: a refusal is the entry's.
fn theirs<T>(result: Result<T, sqlx::Error>) -> Done<T> {
    result.map_err(localized)
}

impl Backend for PgConnection {
    const MIXES_OPERATIONS: bool = true;

    async fn savepoint(&mut self) -> Done {
        ours(self.execute("SAVEPOINT uplink_attempt").await.map(drop))
    }

    async fn release_savepoint(&mut self) -> Done {
        ours(
            self.execute("RELEASE SAVEPOINT uplink_attempt")
                .await
                .map(drop),
        )
    }

    async fn rollback_savepoint(&mut self) -> Done {
        ours(
            self.execute("ROLLBACK TO SAVEPOINT uplink_attempt; RELEASE SAVEPOINT uplink_attempt")
                .await
                .map(drop),
        )
    }

    async fn assume_role(&mut self, role: &str, claims: &str, user_id: &str) -> Done {
        ours(sql::assume_role(self, role, claims, user_id).await)
    }

    async fn reset_role(&mut self) -> Done {
        ours(sql::reset_role(self).await)
    }

    async fn lock_progress(&mut self, own: &Own, user_id: &str, client_id: &str) -> Done<i64> {
        ours(progress::lock(self, own, user_id, client_id).await)
    }

    async fn advance_progress(
        &mut self,
        own: &Own,
        user_id: &str,
        client_id: &str,
        last_op_id: i64,
    ) -> Done {
        ours(progress::advance(self, own, user_id, client_id, last_op_id).await)
    }

    async fn record_conflicts(
        &mut self,
        own: &Own,
        recorded: &[NewConflict<'_>],
        user_id: &str,
        client_id: Option<&str>,
    ) -> Done {
        ours(conflicts::record(self, own, recorded, user_id, client_id).await)
    }

    async fn lock_dead_letters(&mut self, _own: &Own, user_id: &str) -> Done {
        ours(dead_letters::lock_user(self, user_id).await)
    }

    async fn pending_dead_letters(
        &mut self,
        own: &Own,
        user_id: &str,
        max_rows: u32,
    ) -> Done<PendingUsage> {
        ours(dead_letters::pending_usage(self, own, user_id, max_rows).await)
    }

    async fn insert_dead_letter(&mut self, own: &Own, letter: &NewDeadLetter<'_>) -> Done {
        ours(dead_letters::insert(self, own, letter).await)
    }

    async fn lock_in_key_order(&mut self, table: &Table, ids: &[&str]) -> Done {
        theirs(sql::lock_in_key_order(self, table, ids).await)
    }

    async fn lock_rows(&mut self, table: &Table, ids: &[&str]) -> Done<Option<Vec<Locked>>> {
        theirs(sql::lock_rows(self, table, ids).await)
    }

    async fn insert_new(
        &mut self,
        table: &Table,
        owned: Option<&[&Column]>,
        rows: &[&Row<'_, '_>],
    ) -> Done<BTreeSet<String>> {
        let keys = sql::insert_new(table, owned, rows).fetch_text(self).await;
        theirs(keys.map(|keys| keys.into_iter().collect()))
    }

    async fn replace(
        &mut self,
        table: &Table,
        owned: Option<&[&Column]>,
        rows: &[&Row<'_, '_>],
    ) -> Done {
        theirs(sql::upsert(table, owned, rows).execute(self).await)
    }

    async fn update(&mut self, table: &Table, rows: &[&Row<'_, '_>]) -> Done {
        match sql::update(table, rows) {
            Some(statement) => theirs(statement.execute(self).await),
            None => Ok(()),
        }
    }

    async fn delete(&mut self, table: &Table, ids: &[&str]) -> Done {
        theirs(sql::delete(table, ids.to_vec()).execute(self).await)
    }

    async fn bump_versions(&mut self, table: &Table, column: &Column, ids: &[&str]) -> Done {
        theirs(sql::bump_versions(self, table, column, ids).await)
    }

    async fn add_delta(
        &mut self,
        table: &Table,
        column: &Column,
        id: &str,
        new: &str,
        previous: &str,
    ) -> Done {
        theirs(sql::add_delta(self, table, column, id, new, previous).await)
    }

    async fn write_plain(&mut self, group: &Group<'_, '_, '_>, rls_role: Option<&str>) -> Done {
        plain::write(self, group, rls_role).await
    }

    async fn refused_column(
        &mut self,
        prepared: &Prepared<'_, '_>,
    ) -> Done<Option<(String, String)>> {
        ours(probe::refused_column(self, prepared).await)
    }
}
