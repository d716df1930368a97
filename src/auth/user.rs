//! `AuthUser`: the authenticated caller of a route, as verified.

use serde_json::Value;

use crate::error::{ApiError, ErrorCode};

/// Longest user id accepted (the `sub` of issued tokens).
pub const MAX_USER_ID_LEN: usize = 255;

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

/// The rule every user id meets, whoever vouches for it (the token
/// endpoint's identity modes, a provider token on uplink's routes): uplink
/// keys rows, limits and object keys by it. No whitespace at either end: a
/// database that pads text (MySQL's PAD SPACE collations) would take `x `
/// for `x`, and share that user's checkpoints and conflicts.
pub fn check_user_id(user_id: &str) -> Result<(), ApiError> {
    if user_id.is_empty()
        || user_id.len() > MAX_USER_ID_LEN
        || user_id.chars().any(char::is_control)
        || user_id.trim() != user_id
    {
        return Err(ApiError::new(
            ErrorCode::InvalidUserId,
            format!(
                "the user id must be 1 to {MAX_USER_ID_LEN} bytes without control characters \
                 or whitespace at either end"
            ),
        ));
    }
    Ok(())
}
