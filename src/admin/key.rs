//! The admin key check: an extractor, so a handler cannot forget it.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{ApiError, ErrorCode};

/// Header carrying the admin key (`Authorization: Bearer <key>` works too).
pub const ADMIN_KEY_HEADER: &str = "x-admin-key";

/// The configured key hash; `None` turns the admin API off.
#[derive(Clone)]
pub struct Admin {
    key_sha256: Option<[u8; 32]>,
}

impl Admin {
    /// From `admin.api_key_sha256` (validated as 64 hex characters at load).
    pub fn new(api_key_sha256: Option<&str>) -> anyhow::Result<Self> {
        let key_sha256 = match api_key_sha256 {
            None => None,
            Some(hex_hash) => {
                let mut hash = [0u8; 32];
                hex::decode_to_slice(hex_hash, &mut hash).map_err(|_| {
                    anyhow::anyhow!("admin.api_key_sha256 must be 64 hex characters")
                })?;
                Some(hash)
            }
        };
        Ok(Self { key_sha256 })
    }

    fn check(&self, presented: Option<&str>) -> Result<AdminKey, ApiError> {
        let Some(expected) = &self.key_sha256 else {
            return Err(disabled());
        };
        let Some(presented) = presented.filter(|k| !k.is_empty()) else {
            return Err(ApiError::new(
                ErrorCode::MissingAdminKey,
                "send the admin key in X-Admin-Key or Authorization: Bearer",
            ));
        };
        let digest = Sha256::digest(presented.as_bytes());
        if bool::from(digest[..].ct_eq(expected)) {
            Ok(AdminKey(()))
        } else {
            Err(ApiError::new(
                ErrorCode::InvalidAdminKey,
                "the admin key is not valid",
            ))
        }
    }
}

fn disabled() -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        "the admin API is disabled (set admin.api_key_sha256)".to_owned(),
    )
}

fn presented_key(req: &HttpRequest) -> Option<&str> {
    if let Some(value) = req.headers().get(ADMIN_KEY_HEADER) {
        return value.to_str().ok().map(str::trim);
    }
    let authorization = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = authorization.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(key.trim())
}

/// Proof that the request carried the admin key.
pub struct AdminKey(());

impl FromRequest for AdminKey {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(match req.app_data::<web::Data<Admin>>() {
            Some(admin) => admin.check(presented_key(req)),
            None => Err(disabled()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_key_whose_hash_is_configured_passes() {
        let hash = hex::encode(Sha256::digest(b"s3cret-admin-key"));
        let admin = Admin::new(Some(&hash)).expect("valid hash");
        assert!(admin.check(Some("s3cret-admin-key")).is_ok());
        assert!(admin.check(Some("s3cret-admin-kez")).is_err());
        assert!(admin.check(None).is_err());
        let off = Admin::new(None).expect("no hash");
        assert_eq!(
            off.check(Some("s3cret-admin-key"))
                .err()
                .map(|err| err.code()),
            Some(ErrorCode::NotFound)
        );
    }
}
