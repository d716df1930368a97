//! The attachment and multipart records on the configured database: the
//! one place the attachment feature's statements pick their Postgres or
//! MySQL twin (as `either.rs` does for the other records), so `attachments/`
//! is written once and never names the driver.

use std::ops::{Deref, DerefMut};

use sqlx::pool::PoolConnection;
use sqlx::{MySql, MySqlConnection, PgConnection, Postgres, Transaction};

use super::attachments::{NewUpload, Record, StaleUpload};
use super::multipart::Upload;
use super::{attachments, multipart, mysql};
use crate::db::pool::Database;
use crate::db::{DbFailure, Own};

/// A connection to the attachment records: a transaction, whose row locks
/// hold until `commit`, or a pooled connection, where each statement stands
/// alone.
pub struct Session {
    conn: Conn,
    own: Own,
}

enum Conn {
    PostgresTransaction(Transaction<'static, Postgres>),
    PostgresPooled(PoolConnection<Postgres>),
    MySqlTransaction(Transaction<'static, MySql>),
    MySqlPooled(PoolConnection<MySql>),
}

/// The driver's connection under a `Conn`.
enum Driver<'a> {
    Postgres(&'a mut PgConnection),
    MySql(&'a mut MySqlConnection),
}

/// Runs the twin of `$module::$function` for the session's database, on its
/// connection and own tables, with the remaining arguments.
macro_rules! twin {
    ($session:expr, $module:ident::$function:ident($($arg:expr),*)) => {{
        let (driver, own) = $session.parts();
        match driver {
            Driver::Postgres(conn) => $module::$function(conn, own, $($arg),*).await,
            Driver::MySql(conn) => mysql::$module::$function(conn, own, $($arg),*).await,
        }
    }};
}

impl Session {
    /// Starts a transaction for a decision that row locks must keep atomic.
    /// Failing to start one (server down, pool exhausted) is transient.
    pub async fn begin(db: &Database) -> Result<Self, DbFailure> {
        let conn = match db {
            Database::Postgres(pool, _) => Conn::PostgresTransaction(
                crate::db::pool::begin(pool, None)
                    .await
                    .map_err(no_connection)?,
            ),
            Database::MySql(pool, _) => Conn::MySqlTransaction(
                crate::db::pool::begin(pool, None)
                    .await
                    .map_err(no_connection)?,
            ),
        };
        Ok(Self {
            conn,
            own: db.own().clone(),
        })
    }

    /// A pooled connection; failing to get one is transient.
    pub async fn pooled(db: &Database) -> Result<Self, DbFailure> {
        let conn = match db {
            Database::Postgres(pool, _) => {
                Conn::PostgresPooled(pool.acquire().await.map_err(no_connection)?)
            }
            Database::MySql(pool, _) => {
                Conn::MySqlPooled(pool.acquire().await.map_err(no_connection)?)
            }
        };
        Ok(Self {
            conn,
            own: db.own().clone(),
        })
    }

    /// Commits the transaction (a pooled connection has nothing to commit).
    pub async fn commit(self) -> Result<(), DbFailure> {
        match self.conn {
            Conn::PostgresTransaction(tx) => tx.commit().await?,
            Conn::MySqlTransaction(tx) => tx.commit().await?,
            Conn::PostgresPooled(_) | Conn::MySqlPooled(_) => {}
        }
        Ok(())
    }

    fn parts(&mut self) -> (Driver<'_>, &Own) {
        let driver = match &mut self.conn {
            Conn::PostgresTransaction(tx) => Driver::Postgres(tx),
            Conn::PostgresPooled(conn) => Driver::Postgres(conn),
            Conn::MySqlTransaction(tx) => Driver::MySql(tx),
            Conn::MySqlPooled(conn) => Driver::MySql(conn),
        };
        (driver, &self.own)
    }

    /// Records a pending upload, or refreshes the owner's existing one.
    pub async fn upsert_pending(&mut self, new: NewUpload<'_>) -> Result<Record, DbFailure> {
        twin!(self, attachments::upsert_pending(new))
    }

    /// `owner`'s attachment `id`, locked until the transaction (if any) ends.
    pub async fn find_for_update(
        &mut self,
        owner: &str,
        id: &str,
    ) -> Result<Option<Record>, DbFailure> {
        twin!(self, attachments::find_for_update(owner, id))
    }

    /// Whether the upload under `object_key` still accepts its bytes (see
    /// `attachments::lock_open_upload`).
    pub async fn lock_open_upload(&mut self, object_key: &str) -> Result<bool, DbFailure> {
        twin!(self, attachments::lock_open_upload(object_key))
    }

    /// Every user's attachment with this id that is not deleted.
    pub async fn find_by_id(&mut self, id: &str) -> Result<Vec<Record>, DbFailure> {
        twin!(self, attachments::find_by_id(id))
    }

    /// Marks the attachment uploaded; `None` when it was deleted meanwhile.
    pub async fn mark_uploaded(
        &mut self,
        owner: &str,
        id: &str,
        size: i64,
    ) -> Result<Option<Record>, DbFailure> {
        twin!(self, attachments::mark_uploaded(owner, id, size))
    }

    /// Keeps the row as a tombstone.
    pub async fn mark_deleted(&mut self, owner: &str, id: &str) -> Result<(), DbFailure> {
        twin!(self, attachments::mark_deleted(owner, id))
    }

    /// Whether `attachments.read_sql` lets `user_id` read `record`.
    pub async fn sql_allows_read(
        &mut self,
        read_sql: &str,
        user_id: &str,
        record: &Record,
    ) -> Result<bool, DbFailure> {
        match self.parts().0 {
            Driver::Postgres(conn) => {
                attachments::sql_allows_read(conn, read_sql, user_id, record).await
            }
            Driver::MySql(conn) => {
                mysql::attachments::sql_allows_read(conn, read_sql, user_id, record).await
            }
        }
    }

    /// Up to `limit` stale pending uploads, locked with `SKIP LOCKED`.
    pub async fn lock_stale_uploads(
        &mut self,
        max_age_secs: f64,
        limit: i64,
    ) -> Result<Vec<StaleUpload>, DbFailure> {
        twin!(self, attachments::lock_stale_uploads(max_age_secs, limit))
    }

    /// Removes the rows of these uploads that are still pending.
    pub async fn remove_pending(&mut self, object_keys: &[String]) -> Result<(), DbFailure> {
        twin!(self, attachments::remove_pending(object_keys))
    }

    /// Records the attachment's multipart upload, returning the one replaced.
    pub async fn replace_multipart(
        &mut self,
        upload: &Upload,
    ) -> Result<Option<Upload>, DbFailure> {
        twin!(self, multipart::replace(upload))
    }

    /// `owner`'s multipart upload for `id`, marked active (and locked).
    pub async fn touch_multipart(
        &mut self,
        owner: &str,
        id: &str,
    ) -> Result<Option<Upload>, DbFailure> {
        twin!(self, multipart::touch(owner, id))
    }

    /// The multipart upload `upload_id` if still in progress, share-locked.
    pub async fn lock_open_multipart(
        &mut self,
        upload_id: &str,
    ) -> Result<Option<Upload>, DbFailure> {
        twin!(self, multipart::lock_open(upload_id))
    }

    /// Removes the record of `upload_id`; whether there was one.
    pub async fn remove_multipart(&mut self, upload_id: &str) -> Result<bool, DbFailure> {
        twin!(self, multipart::remove(upload_id))
    }

    /// Up to `limit` multipart uploads nobody touched for `max_age_secs`.
    pub async fn lock_stale_multipart(
        &mut self,
        max_age_secs: f64,
        limit: i64,
    ) -> Result<Vec<Upload>, DbFailure> {
        twin!(self, multipart::lock_stale(max_age_secs, limit))
    }

    /// Which of `upload_ids` have a record.
    pub async fn known_multipart(
        &mut self,
        upload_ids: &[String],
    ) -> Result<Vec<String>, DbFailure> {
        twin!(self, multipart::known(upload_ids))
    }
}

fn no_connection(err: sqlx::Error) -> DbFailure {
    DbFailure::Transient(format!("attachments: no database connection: {err}"))
}

/// Where `complete` and `delete` read and write the attachment's row.
///
/// Local uploads go through uplink, which checks the row before putting a
/// body in place: there the decision runs in a transaction holding the row
/// lock, so a `PUT` lands before the storage checks or is refused. S3
/// uploads never look at the row, and a transaction held across S3 requests
/// would let slow storage use up the pool: there each statement takes a
/// pooled connection.
pub enum Decision {
    Locked(Session),
    Unlocked(Database),
}

/// The session of one statement of a `Decision`.
pub enum DecisionSession<'a> {
    InTransaction(&'a mut Session),
    Pooled(Session),
}

impl Deref for DecisionSession<'_> {
    type Target = Session;

    fn deref(&self) -> &Session {
        match self {
            Self::InTransaction(session) => session,
            Self::Pooled(session) => session,
        }
    }
}

impl DerefMut for DecisionSession<'_> {
    fn deref_mut(&mut self) -> &mut Session {
        match self {
            Self::InTransaction(session) => session,
            Self::Pooled(session) => session,
        }
    }
}

impl Decision {
    pub async fn begin(db: &Database, locked: bool) -> Result<Self, DbFailure> {
        Ok(if locked {
            Self::Locked(Session::begin(db).await?)
        } else {
            Self::Unlocked(db.clone())
        })
    }

    pub async fn session(&mut self) -> Result<DecisionSession<'_>, DbFailure> {
        Ok(match self {
            Self::Locked(session) => DecisionSession::InTransaction(session),
            Self::Unlocked(db) => DecisionSession::Pooled(Session::pooled(db).await?),
        })
    }

    pub async fn commit(self) -> Result<(), DbFailure> {
        match self {
            Self::Locked(session) => session.commit().await,
            Self::Unlocked(_) => Ok(()),
        }
    }
}
