//! The write path: applies the SDK's upload batches to the app's database
//! exactly once, in order, with set-based statements: Postgres here, MySQL
//! and MariaDB in `mysql` (which shares every step but the statements).
//!
//! This file holds the `Writer` (build, schema reload, retries). A request
//! goes `routes` → `envelope` (wire shapes into a `batch`) → `Writer::apply`
//! → `apply` (one database transaction: `work` marks duplicates and
//! prepares entries with `plan`, `run` executes the grouped steps, the
//! `policy` steps for tables with a policy, `careful` localises a refusal)
//! → `bookkeeping` (conflicts, dead letters; progress in `store`) →
//! `report`. Every statement on the app's tables is in `sql`.

mod allow_list;
mod apply;
mod backend;
mod batch;
mod bookkeeping;
mod careful;
pub mod cli;
mod client_id;
mod coerce;
pub mod dead_letter;
pub mod envelope;
mod failure;
mod integral;
mod jsonb;
mod mysql;
mod plan;
mod policy;
mod postgres;
mod prepared;
mod rejection;
mod replay;
pub mod report;
pub mod routes;
mod row;
mod run;
pub mod schema;
pub mod schemas;
pub mod settings;
mod spellings;
mod work;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::RwLock;

pub use apply::Actor;
pub use backend::factory::load_catalog;
pub use replay::ReplayOutcome;
pub use settings::{DeadLetterSettings, TableSettings, WriteSettings};

/// Value coercion, exposed for the fuzz targets (fuzz/).
#[doc(hidden)]
pub use coerce::coerce;
/// What uplink stores of a client's JSON and reads back from a stored row,
/// exposed for the fuzz targets (fuzz/).
#[doc(hidden)]
pub use jsonb::jsonb_safe;
#[doc(hidden)]
pub use policy::Stored;
#[doc(hidden)]
pub use policy::probe::{Decision, decide_batch};

use apply::{Apply, Mode};
use envelope::Batch;
use failure::Failure;
use plan::Allowed;
use report::Report;
use schema::Catalog;

use crate::config::ConfigError;
use crate::config::sections::RlsSettings;
use crate::db::DbFailure;
use crate::db::pool::Database;
use crate::error::{ApiError, ErrorCode};
use crate::metrics::Metrics;

/// The write path's shared state: settings and the introspected catalogue.
#[derive(Clone)]
pub struct Writer {
    inner: Arc<WriterInner>,
}

struct WriterInner {
    db: Database,
    settings: WriteSettings,
    rls_role: Option<String>,
    catalog: RwLock<Option<Arc<Catalog>>>,
    /// Where retries are counted (none for the command line).
    metrics: Option<Metrics>,
}

impl Writer {
    /// Introspects the app's tables and checks the allow-list against them.
    /// When the database is unreachable, start anyway (readiness reports it)
    /// and introspect on first use.
    pub async fn build(
        settings: &WriteSettings,
        rls: Option<&RlsSettings>,
        db: &Database,
        metrics: Option<&Metrics>,
    ) -> anyhow::Result<Self> {
        let writer = Self::new(settings, rls, db, metrics);
        match load_catalog(db, &settings.schema).await {
            Ok(catalog) => {
                allow_list::check(&catalog, settings)?;
                *writer.inner.catalog.write().await = Some(Arc::new(catalog));
            }
            Err(err) => {
                tracing::warn!(error = %format!("{err:#}"), "schema introspection deferred: database unreachable");
            }
        }
        Ok(writer)
    }

    /// Without introspecting: the schema is read on first use or by
    /// `reload_schema` (start-up while the database is down).
    pub fn new(
        settings: &WriteSettings,
        rls: Option<&RlsSettings>,
        db: &Database,
        metrics: Option<&Metrics>,
    ) -> Self {
        Self {
            inner: Arc::new(WriterInner {
                db: db.clone(),
                settings: settings.clone(),
                rls_role: rls.map(|r| r.role.clone()),
                catalog: RwLock::new(None),
                metrics: metrics.cloned(),
            }),
        }
    }

    pub fn settings(&self) -> &WriteSettings {
        &self.inner.settings
    }

    pub fn db(&self) -> &Database {
        &self.inner.db
    }

    /// Re-reads the schema (SIGHUP, admin API). A schema that no longer fits
    /// the configuration keeps the previous catalogue and reports why.
    pub async fn reload_schema(&self) -> anyhow::Result<()> {
        let catalog = load_catalog(&self.inner.db, &self.inner.settings.schema).await?;
        allow_list::check(&catalog, &self.inner.settings)
            .map_err(|e: ConfigError| anyhow::anyhow!(e))?;
        *self.inner.catalog.write().await = Some(Arc::new(catalog));
        tracing::info!("schema reloaded");
        Ok(())
    }

    async fn catalog(&self) -> Result<Arc<Catalog>, ApiError> {
        if let Some(catalog) = self.inner.catalog.read().await.as_ref() {
            return Ok(catalog.clone());
        }
        match self.reload_schema().await {
            Ok(()) => {}
            Err(err) => {
                tracing::warn!(error = %format!("{err:#}"), "schema introspection failed");
                return Err(unreadable_schema());
            }
        }
        self.inner
            .catalog
            .read()
            .await
            .clone()
            .ok_or_else(unreadable_schema)
    }

    /// Applies a batch: one database transaction, retried internally on
    /// serialization failures and deadlocks.
    #[tracing::instrument(skip_all, fields(entries = batch.entry_count(), client_id = batch.client_id.as_deref()))]
    pub async fn apply(&self, actor: Actor<'_>, batch: &Batch<'_>) -> Result<Report, ApiError> {
        let catalog = self.catalog().await?;
        let allowed = Allowed::new(&catalog, &self.inner.settings);
        let options = Apply {
            actor,
            dead_letters: Some(self.inner.settings.dead_letters.cap()),
            track_progress: true,
            rls_role: self.inner.rls_role.as_deref(),
            own: self.inner.db.own(),
        };
        let retries = self.inner.settings.transient_retries;
        let mut mode = Mode::Fast;
        let mut lock_rows = false;
        let mut attempt = 0;
        loop {
            let outcome = self
                .attempt(
                    &allowed,
                    batch,
                    &options,
                    mode,
                    lock_rows,
                    catalog.has_deferrable,
                )
                .await;
            match outcome {
                Ok(report) => return Ok(report),
                Err(Failure::Refused { .. }) if mode == Mode::Fast => mode = Mode::Careful,
                Err(Failure::Retryable(cause)) if attempt < retries => {
                    attempt += 1;
                    if let Some(metrics) = &self.inner.metrics {
                        metrics.write_retried();
                    }
                    lock_rows = true;
                    tracing::debug!(%cause, attempt, "retrying batch after a transient conflict");
                    tokio::time::sleep(Duration::from_millis(10 * 2u64.pow(attempt))).await;
                }
                Err(failure) => return Err(response(failure)),
            }
        }
    }

    async fn attempt(
        &self,
        allowed: &Allowed<'_>,
        batch: &Batch<'_>,
        options: &Apply<'_>,
        mode: Mode,
        lock_rows: bool,
        deferrable: bool,
    ) -> Result<Report, Failure> {
        let db = &self.inner.db;
        let (report, commit) =
            backend::factory::attempt(db, allowed, batch, options, mode, lock_rows, deferrable)
                .await?;
        match commit {
            Ok(()) => Ok(report),
            Err(Failure::Unavailable(message)) => {
                // The connection died around COMMIT: the batch may have
                // committed. With a client id the progress row tells; never
                // answer "nothing applied" for a batch that was.
                if self.committed(batch, options.actor.user_id).await {
                    Ok(report)
                } else {
                    Err(Failure::Unavailable(message))
                }
            }
            Err(other) => Err(other),
        }
    }

    /// Whether the client's progress already covers every op_id of `batch`
    /// (read on a fresh connection). False when unknown.
    async fn committed(&self, batch: &Batch<'_>, user_id: &str) -> bool {
        let Some(client_id) = batch.client_id.as_deref() else {
            return false;
        };
        let Some(last_in_batch) = batch
            .transactions
            .iter()
            .flat_map(|t| &t.entries)
            .filter_map(|e| e.op_id)
            .max()
        else {
            return false;
        };
        let progress = crate::store::either::last_op_id(&self.inner.db, user_id, client_id).await;
        matches!(progress, Ok(Some(last)) if last >= last_in_batch)
    }

    /// Re-applies a dead letter's entries through the same code path; it is
    /// marked replayed in the same transaction, so a replay happens once.
    pub async fn replay_dead_letter(&self, id: i64) -> anyhow::Result<ReplayOutcome> {
        let catalog = self.catalog().await.map_err(|e| anyhow::anyhow!(e))?;
        let allowed = Allowed::new(&catalog, &self.inner.settings);
        backend::factory::replay(&self.inner.db, &allowed, self.inner.rls_role.as_deref(), id)
            .await
            .map_err(|failure| match failure {
                // Kept transient, for the admin API's 503.
                Failure::Unavailable(cause) => DbFailure::Transient(cause).into(),
                Failure::Retryable(cause) => DbFailure::Conflict(cause).into(),
                other => other.into(),
            })
    }
}

fn unreadable_schema() -> ApiError {
    ApiError::new(
        ErrorCode::Unavailable,
        "the database schema could not be read",
    )
}

/// How a batch that could not be applied is answered. The careful mode
/// contains the app's refusals in savepoints: a refusal that reaches here
/// came from uplink's own statements.
fn response(failure: Failure) -> ApiError {
    match failure {
        // Fed with text from the request (the user or client id).
        Failure::Refused { rejection, .. } if rejection.code == ErrorCode::InvalidValue => {
            ApiError::new(
                ErrorCode::InvalidValue,
                "the request carries text the database cannot store (NUL bytes, invalid Unicode, or too long)",
            )
        }
        Failure::Refused { rejection, .. } => ApiError::Unexpected(anyhow::anyhow!(
            "uplink's own statement was refused: {} ({:?})",
            rejection.message,
            rejection.sqlstate
        )),
        Failure::Retryable(cause) => ApiError::new(
            ErrorCode::Unavailable,
            format!("the database kept reporting conflicts ({cause})"),
        ),
        Failure::Unavailable(message) => ApiError::new(ErrorCode::Unavailable, message),
        Failure::DeadLetterLimit(message) => ApiError::Refused {
            code: ErrorCode::DeadLetterLimit,
            message,
        },
        Failure::Unexpected(err) => ApiError::Unexpected(err),
    }
}
