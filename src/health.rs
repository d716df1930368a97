//! Liveness and readiness probes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::{HttpResponse, get, web};
use serde_json::json;

use crate::attachments::Attachments;
use crate::db::pool::Database;
use crate::error::{ApiError, ErrorCode};

const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(live).service(ready);
}

/// Whether the start-up work that needs the database (migrations, reading
/// the schema) is done; uplink listens before it is when Postgres is down.
#[derive(Clone)]
pub struct Startup(Arc<AtomicBool>);

impl Startup {
    pub fn done() -> Self {
        Self(Arc::new(AtomicBool::new(true)))
    }

    pub fn pending() -> Self {
        Self(Arc::new(AtomicBool::new(false)))
    }

    pub fn mark_done(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub fn is_done(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// 200 while the process serves requests.
#[utoipa::path(get, path = "/health/live", tag = "health",
    responses((status = 200, description = "The process serves requests", body = crate::openapi::schemas::Live)))]
#[get("/health/live")]
async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// 200 when start-up is done, the database answers a query and attachment
/// storage is reachable, each within a short timeout.
#[utoipa::path(get, path = "/health/ready", tag = "health",
    responses(
        (status = 200, description = "Database and attachment storage reachable", body = crate::openapi::schemas::Ready),
        (status = 503, description = "Database or storage unreachable", body = crate::error::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
#[get("/health/ready")]
async fn ready(
    startup: web::Data<Startup>,
    db: web::Data<Database>,
    attachments: Option<web::Data<Attachments>>,
) -> Result<HttpResponse, ApiError> {
    if !startup.is_done() {
        return Err(ApiError::new(
            ErrorCode::Unavailable,
            "starting: waiting for the database (migrations, schema)".to_owned(),
        ));
    }
    match tokio::time::timeout(READY_TIMEOUT, db.ping()).await {
        Ok(Ok(())) => {
            let storage = match attachments {
                Some(attachments) => {
                    check_storage(&attachments).await?;
                    "ok"
                }
                None => "disabled",
            };
            Ok(HttpResponse::Ok()
                .json(json!({"status": "ready", "database": "ok", "storage": storage})))
        }
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "readiness: database unreachable");
            Err(ApiError::new(
                ErrorCode::Unavailable,
                "database unreachable".to_owned(),
            ))
        }
        Err(_) => Err(ApiError::new(
            ErrorCode::Unavailable,
            "database did not answer in time".to_owned(),
        )),
    }
}

async fn check_storage(attachments: &Attachments) -> Result<(), ApiError> {
    match tokio::time::timeout(READY_TIMEOUT, attachments.check_storage()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => {
            tracing::warn!(error = ?err, storage = attachments.storage_name(), "readiness: attachment storage unreachable");
            Err(ApiError::new(
                ErrorCode::Unavailable,
                "attachment storage unreachable".to_owned(),
            ))
        }
        Err(_) => Err(ApiError::new(
            ErrorCode::Unavailable,
            "attachment storage did not answer in time".to_owned(),
        )),
    }
}
