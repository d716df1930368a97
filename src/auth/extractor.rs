//! `AuthUser`: the authenticated caller of a route. A handler that takes it
//! cannot forget to authenticate.

use std::future::{Future, ready};
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use anyhow::anyhow;
use futures_util::{StreamExt, stream};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::auth::Auth;
use crate::error::{ApiError, ErrorCode};
use crate::telemetry;

#[derive(Debug, Clone)]
pub struct AuthUser {
    user_id: String,
    claims: Value,
}

impl AuthUser {
    pub(crate) fn new(user_id: String, claims: Value) -> Self {
        Self { user_id, claims }
    }

    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The verified token's full claims (for RLS `request.jwt.claims`).
    pub fn claims(&self) -> &Value {
        &self.claims
    }
}

/// The credential of `Authorization: Bearer <t>` or `Authorization: Token <t>`
/// (the schemes the PowerSync Service accepts).
pub fn credential(req: &HttpRequest) -> Result<&str, ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Err(ApiError::new(
            ErrorCode::MissingToken,
            "send Authorization: Bearer <token>",
        ));
    };
    let value = value.to_str().map_err(|_| malformed_header())?.trim();
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !(scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token")) {
        return Err(malformed_header());
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(ApiError::new(
            ErrorCode::MissingToken,
            "the Authorization header holds no token",
        ));
    }
    Ok(token)
}

fn malformed_header() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidToken,
        "the Authorization header must be `Bearer <token>` or `Token <token>`",
    )
}

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    /// Extractors after this one (the body) get a payload that yields
    /// nothing until authentication succeeded: actix polls a handler's
    /// extractors together, and an unauthenticated caller must not make
    /// uplink read (and wait for) a body.
    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let token = credential(req).map(str::to_owned);
        let auth = req.app_data::<web::Data<Auth>>().cloned();
        let (authenticated, gate) = oneshot::channel();
        *payload = after_gate(gate, payload.take());
        Box::pin(async move {
            let token = token?;
            let auth = auth.ok_or_else(|| anyhow!("auth state is not registered"))?;
            let user = auth.authenticate(&token).await?;
            telemetry::record_user(user.user_id());
            let _ = authenticated.send(());
            Ok(user)
        })
    }
}

/// `body`, once `gate` opens; nothing if it closes unopened.
fn after_gate(gate: oneshot::Receiver<()>, body: Payload) -> Payload {
    let opened = async move { gate.await.ok().map(|()| body) };
    Payload::Stream {
        payload: Box::pin(stream::once(opened).filter_map(ready).flatten()),
    }
}
