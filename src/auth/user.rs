//! `AuthUser`: the authenticated caller of a route, as verified.

use serde_json::Value;

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
