//! `GET|POST /api/auth/token`, `GET /.well-known/jwks.json`, `GET /api/auth/keys`.

use actix_web::http::header::{self, CacheControl, CacheDirective};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tracing_actix_web::RootSpan;

use super::identity::Requested;
use super::state::Auth;
use super::user::AuthUser;
use crate::error::{ApiError, ErrorCode};

/// Longest user id accepted (the `sub` of issued tokens).
const MAX_USER_ID_LEN: usize = 255;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/.well-known/jwks.json", web::get().to(jwks))
        .route("/api/auth/keys", web::get().to(jwks))
        .route("/api/auth/token", web::get().to(token))
        .route("/api/auth/token", web::post().to(token))
        .route("/api/auth/me", web::get().to(me));
}

/// Who the presented token belongs to: lets a client (or an operator
/// debugging a provider setup) check a token against this server.
#[tracing::instrument(skip_all)]
async fn me(user: AuthUser) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(CacheControl(vec![CacheDirective::NoStore]))
        .json(serde_json::json!({ "user_id": user.user_id(), "claims": user.claims() }))
}

#[tracing::instrument(skip_all)]
async fn jwks(auth: web::Data<Auth>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(CacheControl(vec![
            CacheDirective::Public,
            CacheDirective::MaxAge(300),
        ]))
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .json(auth.keys().jwks())
}

#[derive(Deserialize, Default)]
struct TokenQuery {
    #[serde(alias = "userId")]
    user_id: Option<String>,
    /// A JSON object, as text.
    parameters: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    #[serde(alias = "userId")]
    user_id: Option<String>,
    parameters: Option<Map<String, Value>>,
}

#[derive(Serialize)]
struct TokenResponse<'a> {
    token: &'a str,
    powersync_url: &'a str,
    expires_at: String,
    user_id: &'a str,
}

#[tracing::instrument(skip_all)]
async fn token(
    req: HttpRequest,
    query: web::Query<TokenQuery>,
    body: web::Bytes,
    auth: web::Data<Auth>,
    root_span: RootSpan,
) -> Result<HttpResponse, ApiError> {
    crate::limits::check_token_ip(&req)?;
    let requested = requested(query.into_inner(), &body)?;
    let grant = auth.identity().grant(&req, requested).await?;
    check_user_id(&grant.user_id)?;
    crate::limits::check_token_user(&req, &grant.user_id)?;
    // On the request's root span (this handler's own span has no user field).
    root_span.record("user_id", grant.user_id.as_str());
    // Signed on the worker: with aws-lc even RS256 takes a fraction of a
    // millisecond, and a hop to the blocking pool adds work but no capacity
    // when the workers already use every core.
    let issued = auth.issue(&grant.user_id, grant.parameters.as_ref())?;
    let expires_at = chrono::DateTime::from_timestamp(issued.expires_at, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    if let Some(metrics) = crate::metrics::Metrics::of(&req) {
        metrics.token_issued();
    }
    Ok(HttpResponse::Ok()
        .insert_header(CacheControl(vec![CacheDirective::NoStore]))
        .json(TokenResponse {
            token: &issued.token,
            powersync_url: auth.powersync_url(),
            expires_at,
            user_id: &grant.user_id,
        }))
}

fn requested(query: TokenQuery, body: &[u8]) -> Result<Requested, ApiError> {
    let body: TokenBody = if body.iter().all(u8::is_ascii_whitespace) {
        TokenBody::default()
    } else {
        serde_json::from_slice(body).map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidBody,
                format!("request body does not fit: {e}"),
            )
        })?
    };
    let query_parameters = match query.parameters {
        None => None,
        Some(text) => Some(
            serde_json::from_str::<Map<String, Value>>(&text).map_err(|_| {
                ApiError::new(
                    ErrorCode::InvalidQuery,
                    "`parameters` must be a JSON object",
                )
            })?,
        ),
    };
    Ok(Requested {
        user_id: body.user_id.or(query.user_id),
        parameters: body.parameters.or(query_parameters),
    })
}

fn check_user_id(user_id: &str) -> Result<(), ApiError> {
    if user_id.is_empty()
        || user_id.len() > MAX_USER_ID_LEN
        || user_id.chars().any(char::is_control)
    {
        return Err(ApiError::new(
            ErrorCode::InvalidUserId,
            format!("the user id must be 1 to {MAX_USER_ID_LEN} bytes without control characters"),
        ));
    }
    Ok(())
}
