//! `AuthUser` as an extractor: a handler that takes it cannot forget to
//! authenticate.

use std::future::{Future, ready};
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use anyhow::anyhow;
use futures_util::{StreamExt, stream};
use tokio::sync::oneshot;

use super::credential::credential;
use super::state::Auth;
use super::user::AuthUser;
use crate::error::ApiError;
use crate::telemetry;

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
