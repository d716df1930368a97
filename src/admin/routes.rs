//! Admin handlers. Each takes `AdminKey`, so none runs without the key.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::key::AdminKey;
use crate::db::DbFailure;
use crate::error::{ApiError, ErrorCode};
use crate::store::{conflicts, either};
use crate::upload::{ReplayOutcome, Writer};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/admin/dead-letters", web::get().to(list_dead_letters))
        .route(
            "/api/admin/dead-letters/{id}",
            web::get().to(show_dead_letter),
        )
        .route(
            "/api/admin/dead-letters/{id}",
            web::delete().to(discard_dead_letter),
        )
        .route(
            "/api/admin/dead-letters/{id}/replay",
            web::post().to(replay_dead_letter),
        )
        .route("/api/admin/conflicts", web::get().to(list_conflicts))
        .route(
            "/api/admin/conflicts/{id}/resolve",
            web::post().to(resolve_conflict),
        )
        .route("/api/admin/schema/reload", web::post().to(reload_schema));
}

/// Largest page of a listing.
const MAX_LIMIT: i64 = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// How many, newest first (1 to 1000; default 50).
    limit: Option<i64>,
    /// Include dead letters already replayed.
    #[serde(default)]
    all: bool,
    /// Only letters older than this id (the previous page's `next_before`).
    before: Option<i64>,
}

fn limit(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(50),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::new(
            ErrorCode::InvalidQuery,
            format!("`limit` must be between 1 and {MAX_LIMIT}"),
        )),
    }
}

fn anyhow_error(err: anyhow::Error) -> ApiError {
    if DbFailure::is_transient_cause(&err) {
        ApiError::new(
            ErrorCode::Unavailable,
            "the database is unavailable".to_owned(),
        )
    } else {
        ApiError::Unexpected(err)
    }
}

fn no_dead_letter(id: i64) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("no dead letter {id}"))
}

#[utoipa::path(
    get,
    path = "/api/admin/dead-letters",
    tag = "admin",
    security(("admin_key" = [])),
    params(
        ("limit" = Option<i64>, Query, description = "How many, newest first (1 to 1000; default 50)", minimum = 1, maximum = 1000),
        ("all" = Option<bool>, Query, description = "Include dead letters already replayed"),
        ("before" = Option<i64>, Query, description = "Only letters older than this id: the previous page's `next_before`"),
    ),
    responses(
        (status = 200, description = "Dead letters, newest first: at most `limit`, and about 1 MiB of entries \
            (a letter over 64 KiB is listed without them, `entries_truncated`; GET it by id); \
            `next_before` when older ones remain", body = crate::store::dead_letters::DeadLetterList),
        (status = 400, description = "Bad query", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or wrong admin key", body = crate::error::ErrorBody),
        (status = 404, description = "The admin API is disabled", body = crate::error::ErrorBody),
        (status = 503, description = "Database unavailable; retry", body = crate::error::ErrorBody),
    )
)]
#[tracing::instrument(name = "admin_list_dead_letters", skip_all)]
pub async fn list_dead_letters(
    _: AdminKey,
    query: web::Query<ListQuery>,
    writer: web::Data<Writer>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page =
        either::dead_letter_page(writer.db(), limit(query.limit)?, query.all, query.before).await?;
    Ok(HttpResponse::Ok().json(page))
}

#[utoipa::path(
    get,
    path = "/api/admin/dead-letters/{id}",
    tag = "admin",
    security(("admin_key" = [])),
    params(("id" = i64, Path, description = "Dead letter id")),
    responses(
        (status = 200, description = "The dead letter with its entries", body = crate::store::dead_letters::DeadLetter),
        (status = 400, description = "Bad id", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or wrong admin key", body = crate::error::ErrorBody),
        (status = 404, description = "No such dead letter, or the admin API is disabled", body = crate::error::ErrorBody),
        (status = 503, description = "Database unavailable; retry", body = crate::error::ErrorBody),
    )
)]
#[tracing::instrument(name = "admin_show_dead_letter", skip_all, fields(id = *id))]
pub async fn show_dead_letter(
    _: AdminKey,
    id: web::Path<i64>,
    writer: web::Data<Writer>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let letter = either::dead_letter(writer.db(), id)
        .await?
        .ok_or_else(|| no_dead_letter(id))?;
    Ok(HttpResponse::Ok().json(letter))
}

#[utoipa::path(
    post,
    path = "/api/admin/dead-letters/{id}/replay",
    tag = "admin",
    security(("admin_key" = [])),
    params(("id" = i64, Path, description = "Dead letter id")),
    responses(
        (status = 200, description = "Replayed: `outcome` is `applied` (marked replayed) or `rejected` (still failing; kept)", body = crate::admin::schemas::ReplayResult),
        (status = 400, description = "Bad id", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or wrong admin key", body = crate::error::ErrorBody),
        (status = 404, description = "No such dead letter, or the admin API is disabled", body = crate::error::ErrorBody),
        (status = 409, description = "Already replayed", body = crate::error::ErrorBody),
        (status = 503, description = "Database unavailable; retry", body = crate::error::ErrorBody),
    )
)]
#[tracing::instrument(name = "admin_replay_dead_letter", skip_all, fields(id = *id))]
pub async fn replay_dead_letter(
    _: AdminKey,
    id: web::Path<i64>,
    writer: web::Data<Writer>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    match writer.replay_dead_letter(id).await.map_err(anyhow_error)? {
        ReplayOutcome::NotFound => Err(no_dead_letter(id)),
        ReplayOutcome::AlreadyReplayed => Err(ApiError::Refused {
            code: ErrorCode::AlreadyReplayed,
            message: format!("dead letter {id} was already replayed"),
        }),
        outcome => Ok(HttpResponse::Ok().json(outcome)),
    }
}

#[utoipa::path(
    delete,
    path = "/api/admin/dead-letters/{id}",
    tag = "admin",
    security(("admin_key" = [])),
    params(("id" = i64, Path, description = "Dead letter id")),
    responses(
        (status = 204, description = "Discarded"),
        (status = 400, description = "Bad id", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or wrong admin key", body = crate::error::ErrorBody),
        (status = 404, description = "No such dead letter, or the admin API is disabled", body = crate::error::ErrorBody),
        (status = 503, description = "Database unavailable; retry", body = crate::error::ErrorBody),
    )
)]
#[tracing::instrument(name = "admin_discard_dead_letter", skip_all, fields(id = *id))]
pub async fn discard_dead_letter(
    _: AdminKey,
    id: web::Path<i64>,
    writer: web::Data<Writer>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    if either::discard_dead_letter(writer.db(), id).await? {
        tracing::info!(id, "dead letter discarded");
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(no_dead_letter(id))
    }
}

#[utoipa::path(
    post,
    path = "/api/admin/schema/reload",
    tag = "admin",
    security(("admin_key" = [])),
    responses(
        (status = 200, description = "The app's schema was re-read", body = crate::admin::schemas::Reloaded),
        (status = 401, description = "Missing or wrong admin key", body = crate::error::ErrorBody),
        (status = 404, description = "The admin API is disabled", body = crate::error::ErrorBody),
        (status = 409, description = "The live schema no longer fits `write.tables`; the previous schema stays in use", body = crate::error::ErrorBody),
        (status = 503, description = "Database unavailable; retry", body = crate::error::ErrorBody),
    )
)]
#[tracing::instrument(name = "admin_reload_schema", skip_all)]
pub async fn reload_schema(
    _: AdminKey,
    writer: web::Data<Writer>,
) -> Result<HttpResponse, ApiError> {
    match writer.reload_schema().await {
        Ok(()) => Ok(HttpResponse::Ok().json(json!({ "reloaded": true }))),
        Err(err) => match anyhow_error(err) {
            ApiError::Unexpected(err) => {
                // The operator needs the reason (a column gone, a table
                // renamed); it names config keys and tables, not secrets.
                tracing::warn!(error = %format!("{err:#}"), "schema reload refused");
                Err(ApiError::Refused {
                    code: ErrorCode::SchemaMismatch,
                    message: format!("{err:#}"),
                })
            }
            other => Err(other),
        },
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConflictQuery {
    /// `false` (default): open conflicts; `true`: resolved ones; `all`: both.
    resolved: Option<String>,
    user_id: Option<String>,
    table: Option<String>,
    limit: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/api/admin/conflicts",
    tag = "admin",
    security(("admin_key" = [])),
    params(
        ("resolved" = Option<String>, Query, description = "`false` (default): open conflicts; `true`: resolved ones; `all`: both", pattern = "^(true|false|all)$"),
        ("user_id" = Option<String>, Query, description = "Only this user's conflicts"),
        ("table" = Option<String>, Query, description = "Only conflicts on this table"),
        ("limit" = Option<i64>, Query, description = "How many, newest first (1 to 1000; default 50)", minimum = 1, maximum = 1000),
    ),
    responses(
        (status = 200, description = "Write conflicts, newest first", body = crate::admin::schemas::ConflictList),
        (status = 400, description = "Bad query", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or wrong admin key", body = crate::error::ErrorBody),
        (status = 404, description = "The admin API is disabled", body = crate::error::ErrorBody),
        (status = 503, description = "Database unavailable; retry", body = crate::error::ErrorBody),
    )
)]
#[tracing::instrument(name = "admin_list_conflicts", skip_all)]
pub async fn list_conflicts(
    _: AdminKey,
    query: web::Query<ConflictQuery>,
    writer: web::Data<Writer>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let resolved = match query.resolved.as_deref() {
        None | Some("false") => Some(false),
        Some("true") => Some(true),
        Some("all") => None,
        Some(_) => {
            return Err(ApiError::new(
                ErrorCode::InvalidQuery,
                "`resolved` must be true, false or all",
            ));
        }
    };
    let filter = conflicts::Filter {
        resolved,
        user_id: query.user_id.as_deref(),
        table_name: query.table.as_deref(),
        limit: limit(query.limit)?,
    };
    let found = either::write_conflicts(writer.db(), &filter).await?;
    Ok(HttpResponse::Ok().json(json!({ "conflicts": found })))
}

#[utoipa::path(
    post,
    path = "/api/admin/conflicts/{id}/resolve",
    tag = "admin",
    security(("admin_key" = [])),
    params(("id" = String, Path, description = "Conflict id (uuid)", pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")),
    responses(
        (status = 200, description = "The conflict, marked resolved (resolving again changes nothing)", body = crate::store::conflicts::Conflict),
        (status = 400, description = "Bad id", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or wrong admin key", body = crate::error::ErrorBody),
        (status = 404, description = "No such conflict, or the admin API is disabled", body = crate::error::ErrorBody),
        (status = 503, description = "Database unavailable; retry", body = crate::error::ErrorBody),
    )
)]
#[tracing::instrument(name = "admin_resolve_conflict", skip_all, fields(id = %id.as_str()))]
pub async fn resolve_conflict(
    _: AdminKey,
    id: web::Path<String>,
    writer: web::Data<Writer>,
) -> Result<HttpResponse, ApiError> {
    let id = uuid::Uuid::parse_str(&id)
        .map_err(|_| ApiError::new(ErrorCode::InvalidPath, "the conflict id must be a uuid"))?;
    let conflict = either::resolve_conflict(writer.db(), id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no write conflict {id}")))?;
    tracing::info!(%id, "write conflict resolved");
    Ok(HttpResponse::Ok().json(conflict))
}
