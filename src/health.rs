//! Liveness and readiness probes.

use std::time::Duration;

use actix_web::{HttpResponse, get, web};
use serde_json::json;
use sqlx::PgPool;

use crate::attachments::Attachments;
use crate::error::ApiError;

const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(live).service(ready);
}

/// 200 while the process serves requests.
#[get("/health/live")]
async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// 200 when the database answers a query and attachment storage is
/// reachable, each within a short timeout.
#[get("/health/ready")]
async fn ready(
    db: web::Data<PgPool>,
    attachments: web::Data<Attachments>,
) -> Result<HttpResponse, ApiError> {
    let probe = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(db.get_ref());
    match tokio::time::timeout(READY_TIMEOUT, probe).await {
        Ok(Ok(_)) => {
            check_storage(&attachments).await?;
            Ok(HttpResponse::Ok()
                .json(json!({"status": "ready", "database": "ok", "storage": "ok"})))
        }
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "readiness: database unreachable");
            Err(ApiError::Unavailable("database unreachable".to_owned()))
        }
        Err(_) => Err(ApiError::Unavailable(
            "database did not answer in time".to_owned(),
        )),
    }
}

async fn check_storage(attachments: &Attachments) -> Result<(), ApiError> {
    match tokio::time::timeout(READY_TIMEOUT, attachments.check_storage()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => {
            tracing::warn!(error = ?err, storage = attachments.storage_name(), "readiness: attachment storage unreachable");
            Err(ApiError::Unavailable(
                "attachment storage unreachable".to_owned(),
            ))
        }
        Err(_) => Err(ApiError::Unavailable(
            "attachment storage did not answer in time".to_owned(),
        )),
    }
}
