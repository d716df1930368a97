//! The metrics listener: `GET /metrics` on `metrics.host:metrics.port`, a
//! server of its own so the API's port never exposes it.

use actix_web::http::header::{self, CacheControl, CacheDirective};
use actix_web::{HttpResponse, web};
use anyhow::Context;

use super::registry::Metrics;
use super::settings::MetricsSettings;

/// `GET /metrics` on the metrics listener (not part of the API, so not in
/// its OpenAPI document).
async fn serve(metrics: web::Data<Metrics>) -> Result<HttpResponse, crate::error::ApiError> {
    let text = metrics.render()?;
    Ok(HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        ))
        .insert_header(CacheControl(vec![CacheDirective::NoStore]))
        .body(text))
}

/// The running metrics listener and the port it bound.
pub struct Listener {
    pub server: actix_web::dev::Server,
    pub port: u16,
}

impl Listener {
    /// Binds `metrics.host:metrics.port` and prepares the server; `None`
    /// when metrics are off.
    pub fn bind(settings: &MetricsSettings, metrics: Metrics) -> anyhow::Result<Option<Self>> {
        if !settings.enabled {
            return Ok(None);
        }
        let (host, port) = (settings.host, settings.port);
        let listener = std::net::TcpListener::bind((host, port)).with_context(|| {
            format!(
                "Failed to bind the metrics listener {host}:{port} (metrics.host, metrics.port)"
            )
        })?;
        let bound = listener.local_addr()?.port();
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(web::Data::new(metrics.clone()))
                .route("/metrics", web::get().to(serve))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)?
        .run();
        Ok(Some(Self {
            server,
            port: bound,
        }))
    }
}
