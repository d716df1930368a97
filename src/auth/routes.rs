//! `GET|POST /api/auth/token`, `GET /.well-known/jwks.json`, `GET /api/auth/keys`.

use actix_web::http::header::{self, CacheControl, CacheDirective};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tracing_actix_web::RootSpan;

use super::identity::Requested;
use super::state::Auth;
use super::user::{AuthUser, check_user_id};
use crate::error::{ApiError, ErrorCode};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/.well-known/jwks.json", web::get().to(jwks))
        .route("/api/auth/keys", web::get().to(jwks))
        .route("/api/auth/token", web::get().to(token))
        .route("/api/auth/token", web::post().to(token))
        .route("/api/auth/me", web::get().to(me));
}

/// Who the presented token belongs to: lets a client (or an operator
/// debugging a provider setup) check a token against this server.
#[utoipa::path(get, path = "/api/auth/me", tag = "credentials",
    description = "Who the presented token belongs to (to check a client or provider setup).",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The token's user and claims", body = crate::auth::schemas::Me),
        (status = 401, description = "Missing or invalid token", body = crate::error::ErrorBody),
        (status = 503, description = "The identity provider's keys are unreachable", body = crate::error::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
#[tracing::instrument(skip_all)]
async fn me(user: AuthUser) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(CacheControl(vec![CacheDirective::NoStore]))
        .json(serde_json::json!({ "user_id": user.user_id(), "claims": user.claims() }))
}

#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "credentials",
    description = "Public keys for the PowerSync Service (`client_auth.jwks_uri`). Cached 5 minutes.",
    responses((status = 200, description = "Every configured key, signing or not", body = crate::auth::schemas::Jwks)))]
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

/// Body of `POST /api/auth/token` (all fields optional; `dev` mode honours them).
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = TokenRequest)]
struct TokenBody {
    /// The user to issue for (`dev` identity mode only). Alias: `userId`.
    #[serde(alias = "userId")]
    #[schema(min_length = 1, max_length = 255, pattern = "^[^\\x00-\\x1f\\x7f]+$")]
    user_id: Option<String>,
    /// Copied into the token's `parameters` claim (`dev` mode only).
    #[schema(value_type = Option<HashMap<String, Value>>)]
    parameters: Option<Map<String, Value>>,
}

/// What `fetchCredentials()` returns to the SDK.
#[derive(Serialize, utoipa::ToSchema)]
struct TokenResponse<'a> {
    /// A JWT for the PowerSync Service.
    token: &'a str,
    /// The PowerSync Service URL (`auth.powersync_url`).
    powersync_url: &'a str,
    /// RFC 3339 expiry of `token`.
    #[schema(format = DateTime)]
    expires_at: String,
    user_id: &'a str,
}

#[utoipa::path(post, path = "/api/auth/token", tag = "credentials", operation_id = "token_post",
    description = "A PowerSync token for `fetchCredentials()`. Who may get one is `auth.identity.mode`: \
                   `dev` (anyone, `?user_id=`), `jwt` (Bearer token of the identity provider), \
                   `api_key` (Bearer API key). POST takes the same request in a JSON body.",
    params(
        ("user_id" = Option<String>, Query, description = "dev mode: the user (default auth.identity.dev.default_user_id)"),
        ("parameters" = Option<String>, Query, description = "dev mode: a JSON object, as text, for the token's `parameters` claim", pattern = "^\\s*\\{"),
    ),
    request_body(content = TokenBody, content_type = "application/json"),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "A token", body = TokenResponse),
        (status = 400, description = "Bad body, user id or parameters", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or invalid credential (jwt, api_key modes)", body = crate::error::ErrorBody),
        (status = 403, description = "The credential may not get a token", body = crate::error::ErrorBody),
        (status = 413, description = "Body over server.max_body_bytes", body = crate::error::ErrorBody),
        (status = 429, description = "Rate limited (limits.token_per_ip, limits.token_per_user)", body = crate::error::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "The identity provider's keys are unreachable", body = crate::error::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
#[tracing::instrument(skip_all)]
async fn token(
    req: HttpRequest,
    query: web::Query<TokenQuery>,
    body: web::Payload,
    auth: web::Data<Auth>,
    root_span: RootSpan,
) -> Result<HttpResponse, ApiError> {
    // The limit and the credential come from the headers: an unknown caller
    // is turned away before uplink reads (and holds) any body byte.
    crate::limits::check_token_ip(&req)?;
    let caller = auth.identity().caller(&req).await?;
    let body = body
        .to_bytes()
        .await
        .map_err(|_| ApiError::new(ErrorCode::InvalidBody, "request body could not be read"))?;
    let grant = caller.grant(requested(query.into_inner(), &body)?);
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
