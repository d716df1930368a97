//! Who may get a token (`auth.identity.mode`).

use actix_web::HttpRequest;
use actix_web::http::header::HeaderName;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::credential::credential;
use super::settings::{IdentityMode, IdentitySettings};
use super::upstream::Upstream;
use super::verify;
use crate::error::{ApiError, ErrorCode};

pub enum Identity {
    Dev { default_user_id: String },
    Jwt(Box<Upstream>),
    ApiKey(Vec<ApiKey>),
}

pub struct ApiKey {
    sha256: [u8; 32],
    user_id: String,
    parameters: Map<String, Value>,
}

/// What the caller asked for (dev mode only honours it).
#[derive(Default)]
pub struct Requested {
    pub user_id: Option<String>,
    pub parameters: Option<Map<String, Value>>,
}

/// The user a token is issued for.
pub struct Grant {
    pub user_id: String,
    pub parameters: Option<Map<String, Value>>,
}

impl Identity {
    pub fn build(settings: &IdentitySettings) -> anyhow::Result<Self> {
        Ok(match settings.mode {
            IdentityMode::Dev => Self::Dev {
                default_user_id: settings.dev.default_user_id.clone(),
            },
            IdentityMode::Jwt => Self::Jwt(Box::new(Upstream::new(&settings.jwt)?)),
            IdentityMode::ApiKey => Self::ApiKey(
                settings
                    .api_key
                    .keys
                    .iter()
                    .map(|key| {
                        let mut sha256 = [0u8; 32];
                        hex::decode_to_slice(&key.sha256, &mut sha256).map_err(|_| {
                            anyhow::anyhow!("auth.identity.api_key.keys: sha256 is not hex")
                        })?;
                        Ok(ApiKey {
                            sha256,
                            user_id: key.user_id.clone(),
                            parameters: key.parameters.clone(),
                        })
                    })
                    .collect::<anyhow::Result<_>>()?,
            ),
        })
    }

    pub fn upstream(&self) -> Option<&Upstream> {
        match self {
            Self::Jwt(upstream) => Some(upstream),
            _ => None,
        }
    }

    /// Who the caller of the token endpoint is, from the request's headers
    /// alone: the endpoint checks this before it reads any body.
    pub async fn caller(&self, req: &HttpRequest) -> Result<Caller, ApiError> {
        match self {
            Self::Dev { default_user_id } => Ok(Caller::Anyone {
                default_user_id: default_user_id.clone(),
            }),
            Self::Jwt(upstream) => {
                let token = credential(req)?;
                let header = verify::header(token)?;
                let verified = upstream.verify(token, &header).await?;
                Ok(Caller::Known(Grant {
                    user_id: verified.user_id,
                    parameters: Some(verified.parameters),
                }))
            }
            Self::ApiKey(keys) => {
                let presented = match req.headers().get(HeaderName::from_static("x-api-key")) {
                    Some(value) => value.to_str().map_err(|_| {
                        ApiError::new(ErrorCode::InvalidToken, "the X-API-Key header is not text")
                    })?,
                    None => credential(req)?,
                };
                let digest: [u8; 32] = Sha256::digest(presented.trim().as_bytes()).into();
                // Compare against every key so timing does not reveal which matched.
                let mut granted = None;
                for key in keys {
                    if bool::from(key.sha256.ct_eq(&digest)) {
                        granted = Some(key);
                    }
                }
                let key = granted.ok_or_else(|| {
                    ApiError::new(ErrorCode::InvalidToken, "the API key is not valid")
                })?;
                Ok(Caller::Known(Grant {
                    user_id: key.user_id.clone(),
                    parameters: Some(key.parameters.clone()),
                }))
            }
        }
    }
}

/// The token endpoint's caller, once its headers are checked.
pub enum Caller {
    /// Dev mode: anyone, for the user the request names.
    Anyone { default_user_id: String },
    /// A credential named the user.
    Known(Grant),
}

impl Caller {
    /// The user a token is issued for: what the request asked for in dev
    /// mode, the credential's user otherwise.
    pub fn grant(self, requested: Requested) -> Grant {
        match self {
            Self::Anyone { default_user_id } => Grant {
                user_id: requested.user_id.unwrap_or(default_user_id),
                parameters: requested.parameters,
            },
            Self::Known(grant) => grant,
        }
    }
}
