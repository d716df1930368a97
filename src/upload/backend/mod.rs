//! The write path's interface to a database: what differs between
//! Postgres (`postgres`) and MySQL/MariaDB (`mysql`). Everything above it
//! (the batch, the plan, the careful mode, the policies, the bookkeeping)
//! is written once, against this trait.
//!
//! A backend is a connection inside the batch's open transaction. Its
//! methods speak the write path's terms (tables and rows of the catalogue,
//! `Failure`), not a driver's: a refusal of the app's data is
//! `Failure::Refused` (`failure::localized`), a transient failure is
//! `Unavailable`/`Retryable`. `factory` is the one place that picks the
//! backend for a `Database`.

pub mod factory;

use std::borrow::Cow;
use std::collections::BTreeSet;

use super::failure::Failure;
use super::plan::Group;
use super::prepared::Prepared;
use super::rejection::Rejection;
use super::row::Row;
use super::schema::{Column, Table};
use crate::db::Own;
use crate::store::conflicts::NewConflict;
use crate::store::dead_letters::{NewDeadLetter, PendingUsage, ToReplay};

/// The `Backend` methods on uplink's own records: calls into the records
/// of one database (`crate::store` or `crate::store::mysql`), whose
/// functions share their signatures, so the delegation is written once.
macro_rules! records_in {
    ($($store:ident)::+) => {
        async fn advance_progress(
            &mut self,
            own: &$crate::db::Own,
            user_id: &str,
            client_id: &str,
            through: i64,
        ) -> $crate::upload::backend::Done<i64> {
            Ok($($store)::+::progress::advance(self, own, user_id, client_id, through).await?)
        }

        async fn record_conflicts(
            &mut self,
            own: &$crate::db::Own,
            recorded: &[$crate::store::conflicts::NewConflict<'_>],
            user_id: &str,
            client_id: Option<&str>,
        ) -> $crate::upload::backend::Done {
            Ok($($store)::+::conflicts::record(self, own, recorded, user_id, client_id).await?)
        }

        async fn lock_dead_letters(
            &mut self,
            own: &$crate::db::Own,
            user_id: &str,
        ) -> $crate::upload::backend::Done {
            Ok($($store)::+::dead_letters::lock_user(self, own, user_id).await?)
        }

        async fn pending_dead_letters(
            &mut self,
            own: &$crate::db::Own,
            user_id: &str,
            max_rows: u32,
        ) -> $crate::upload::backend::Done<$crate::store::dead_letters::PendingUsage> {
            Ok($($store)::+::dead_letters::pending_usage(self, own, user_id, max_rows).await?)
        }

        async fn insert_dead_letter(
            &mut self,
            own: &$crate::db::Own,
            letter: &$crate::store::dead_letters::NewDeadLetter<'_>,
        ) -> $crate::upload::backend::Done {
            Ok($($store)::+::dead_letters::insert(self, own, letter).await?)
        }

        async fn lock_dead_letter(
            &mut self,
            own: &$crate::db::Own,
            id: i64,
        ) -> $crate::upload::backend::Done<Option<$crate::store::dead_letters::ToReplay>> {
            Ok($($store)::+::dead_letters::lock_for_replay(self, own, id).await?)
        }

        async fn mark_replayed(
            &mut self,
            own: &$crate::db::Own,
            id: i64,
        ) -> $crate::upload::backend::Done {
            Ok($($store)::+::dead_letters::mark_replayed(self, own, id).await?)
        }

        async fn note_replay_failure(
            &mut self,
            own: &$crate::db::Own,
            id: i64,
            outcome: &str,
        ) -> $crate::upload::backend::Done {
            Ok($($store)::+::dead_letters::note_replay_failure(self, own, id, outcome).await?)
        }
    };
}
pub(crate) use records_in;

/// An id as read under lock.
#[derive(Debug, Clone)]
pub struct Locked {
    /// The id as the database prints the key; `Backend::insert_new`
    /// reports inserted rows by it.
    pub key: String,
    /// The current row as a JSON object (text), if there is one.
    pub current: Option<String>,
}

/// A result of a backend call.
pub type Done<T = ()> = Result<T, Failure>;

/// What one database does for the write path, on a connection inside the
/// batch's transaction. Ids are as the client sent them: the backend finds
/// rows as the database compares keys.
pub trait Backend: Send {
    /// For groups that mix PUT, PATCH and DELETE (which run them in an
    /// order of their own): a text equal for any two ids that may name one
    /// row; `None` keeps the entry out of such groups.
    fn mix_key<'i>(table: &Table, id: &'i str) -> Option<Cow<'i, str>>;

    /// Refuses, before any statement runs, an entry the database would
    /// misread rather than refuse.
    fn screen(_prepared: &Prepared<'_, '_>) -> Option<Rejection> {
        None
    }

    // Savepoints: never nested. A failed statement may abort the enclosing
    // transaction (Postgres), so the careful mode runs every attempt in one.
    fn savepoint(&mut self) -> impl Future<Output = Done> + Send {
        self.run_own("SAVEPOINT uplink_attempt")
    }
    fn release_savepoint(&mut self) -> impl Future<Output = Done> + Send {
        self.run_own("RELEASE SAVEPOINT uplink_attempt")
    }
    fn rollback_savepoint(&mut self) -> impl Future<Output = Done> + Send {
        async {
            self.run_own("ROLLBACK TO SAVEPOINT uplink_attempt").await?;
            self.run_own("RELEASE SAVEPOINT uplink_attempt").await
        }
    }

    /// Runs a statement of uplink's own without parameters (the SQL
    /// savepoints above; a database without SQL overrides them).
    fn run_own(&mut self, sql: &'static str) -> impl Future<Output = Done> + Send;

    /// Runs the app's writes as `role` with the token's claims (row-level
    /// security), until `reset_role`.
    fn assume_role(
        &mut self,
        role: &str,
        claims: &str,
        user_id: &str,
    ) -> impl Future<Output = Done> + Send;
    fn reset_role(&mut self) -> impl Future<Output = Done> + Send;

    // uplink's own records, in the batch's transaction.

    /// Locks the client's progress row (creating it), raises its
    /// `last_op_id` to `through` (never lowers it) and returns the value it
    /// had before: the batch's one write of its progress. It rolls back
    /// with the batch.
    fn advance_progress(
        &mut self,
        own: &Own,
        user_id: &str,
        client_id: &str,
        through: i64,
    ) -> impl Future<Output = Done<i64>> + Send;
    fn record_conflicts(
        &mut self,
        own: &Own,
        conflicts: &[NewConflict<'_>],
        user_id: &str,
        client_id: Option<&str>,
    ) -> impl Future<Output = Done> + Send;
    /// Serialises one user's dead-letter count-and-insert until the
    /// transaction ends.
    fn lock_dead_letters(&mut self, own: &Own, user_id: &str) -> impl Future<Output = Done> + Send;
    /// The user's pending dead letters, counted over at most `max_rows`.
    fn pending_dead_letters(
        &mut self,
        own: &Own,
        user_id: &str,
        max_rows: u32,
    ) -> impl Future<Output = Done<PendingUsage>> + Send;
    fn insert_dead_letter(
        &mut self,
        own: &Own,
        letter: &NewDeadLetter<'_>,
    ) -> impl Future<Output = Done> + Send;

    // A dead letter's replay, in the replay's transaction.

    /// Reads and locks dead letter `id`; `None` when there is none.
    fn lock_dead_letter(
        &mut self,
        own: &Own,
        id: i64,
    ) -> impl Future<Output = Done<Option<ToReplay>>> + Send;
    /// Marks it replayed: its entries were applied.
    fn mark_replayed(&mut self, own: &Own, id: i64) -> impl Future<Output = Done> + Send;
    /// Notes why a replay was rejected; the letter stays pending.
    fn note_replay_failure(
        &mut self,
        own: &Own,
        id: i64,
        outcome: &str,
    ) -> impl Future<Output = Done> + Send;
    /// Checks deferrable constraints at each statement from now on, so a
    /// refusal is found at the entry at fault (where the database has
    /// deferrable constraints).
    fn check_constraints_immediately(&mut self) -> impl Future<Output = Done> + Send {
        async { Ok(()) }
    }

    // The app's rows.

    /// Locks the existing rows with these ids, in key order, without
    /// reading them.
    fn lock_in_key_order(
        &mut self,
        table: &Table,
        ids: &[&str],
    ) -> impl Future<Output = Done> + Send;
    /// Reads and locks the rows `ids` name, in the order of `ids`; `None`
    /// when two ids name one row (a uuid in two cases, `abc` and `ABC` on a
    /// case-insensitive key).
    fn lock_rows(
        &mut self,
        table: &Table,
        ids: &[&str],
    ) -> impl Future<Output = Done<Option<Vec<Locked>>>> + Send;
    /// Inserts rows whose ids had no row; an id another transaction
    /// inserted meanwhile is skipped. The keys (`Locked::key`) inserted.
    fn insert_new(
        &mut self,
        table: &Table,
        owned: Option<&[&Column]>,
        rows: &[&Row<'_, '_>],
    ) -> impl Future<Output = Done<BTreeSet<String>>> + Send;
    /// PUT of existing (locked) rows: the written columns replaced.
    fn replace(
        &mut self,
        table: &Table,
        owned: Option<&[&Column]>,
        rows: &[&Row<'_, '_>],
    ) -> impl Future<Output = Done> + Send;
    /// PATCH: exactly the given columns of existing rows.
    fn update(&mut self, table: &Table, rows: &[&Row<'_, '_>])
    -> impl Future<Output = Done> + Send;
    fn delete(&mut self, table: &Table, ids: &[&str]) -> impl Future<Output = Done> + Send;
    /// Adds one to `column` of these rows (NULL counts as 0).
    fn bump_versions(
        &mut self,
        table: &Table,
        column: &Column,
        ids: &[&str],
    ) -> impl Future<Output = Done> + Send;
    /// Adds `new − previous` to a delta column of one row.
    fn add_delta(
        &mut self,
        table: &Table,
        column: &Column,
        id: &str,
        new: &str,
        previous: &str,
    ) -> impl Future<Output = Done> + Send;
    /// A group of entries of a table without a policy, as few statements
    /// as the database allows; under `rls_role`, rows the role cannot see
    /// are the entries' refusals.
    fn write_plain(
        &mut self,
        group: &Group<'_, '_, '_>,
        rls_role: Option<&str>,
    ) -> impl Future<Output = Done> + Send;
    /// The column of an entry at fault whose value the database refused,
    /// with its words, where its error did not name it.
    fn refused_column(
        &mut self,
        prepared: &Prepared<'_, '_>,
    ) -> impl Future<Output = Done<Option<(String, String)>>> + Send;
}
