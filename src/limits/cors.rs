//! CORS: the allow-list of browser origins (`server.cors_origins`).

use actix_cors::Cors;
use actix_web::http::header;
use actix_web::middleware::Condition;

use crate::config::error::ConfigError;

/// CORS for browser apps (PowerSync Web SDK): only the configured origins.
/// With none configured the middleware is off: no CORS headers, so browsers
/// refuse cross-origin calls, and requests carrying `Origin` from non-browser
/// clients pass untouched.
pub fn cors(origins: &[String]) -> Condition<Cors> {
    Condition::new(!origins.is_empty(), cors_for(origins))
}

fn cors_for(origins: &[String]) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::HeaderName::from_static("powersync-client-id"),
            header::HeaderName::from_static("x-admin-key"),
            // Browser uploads to uplink's local attachment store send these.
            header::HeaderName::from_static("x-uplink-signature"),
            header::HeaderName::from_static("x-amz-checksum-sha256"),
        ])
        .expose_headers([header::RETRY_AFTER, header::WWW_AUTHENTICATE, header::ETAG])
        .max_age(3600);
    for origin in origins {
        if origin == "*" {
            cors = cors.allow_any_origin().send_wildcard();
        } else {
            cors = cors.allowed_origin(origin);
        }
    }
    cors
}

/// `server.cors_origins`: exact origins (`https://app.example.com`) or `*`.
pub fn validate_cors_origins(origins: &[String]) -> Result<(), ConfigError> {
    for origin in origins {
        if origin == "*" {
            continue;
        }
        let ok = (origin.starts_with("https://") || origin.starts_with("http://"))
            && !origin.ends_with('/')
            && header::HeaderValue::from_str(origin).is_ok()
            && origin
                .split("://")
                .nth(1)
                .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'));
        if !ok {
            return Err(ConfigError::invalid(
                "server.cors_origins",
                format!(
                    "`{origin}` is not an origin: use scheme://host[:port] without a path, or *"
                ),
            ));
        }
    }
    Ok(())
}
