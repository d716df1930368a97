//! Builds the application: pool, migrations, per-capability state, the HTTP server.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::{Server, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers, from_fn};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use anyhow::Context;
use sqlx::PgPool;
use tracing_actix_web::TracingLogger;

use crate::config::Settings;
use crate::error::{self, ApiError};
use crate::telemetry::UplinkRootSpan;
use crate::{admin, attachments, auth, database, health, limits, metrics, openapi, upload};

pub struct Application {
    port: u16,
    server: Server,
    metrics_server: Option<(actix_web::dev::ServerHandle, u16)>,
}

impl Application {
    /// Connects, migrates when configured, binds the listener (port 0 picks a
    /// free port) and prepares the server; `run_until_stopped` serves.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let db = database::pool(&settings.database, settings.database_url())?;
        if settings.database.migrate_on_start {
            database::migrate(&db).await?;
        }
        let listener = TcpListener::bind((settings.server.host, settings.server.port))
            .with_context(|| {
                format!(
                    "Failed to bind {}:{}",
                    settings.server.host, settings.server.port
                )
            })?;
        let port = listener.local_addr()?.port();
        let state = AppState::build(settings, db).await?;
        reload_schema_on_sighup(state.writer.clone());
        let metrics_server = metrics::separate_server(
            &state.settings.metrics,
            state.settings.server.host,
            state.metrics.clone(),
        )?
        .map(|(server, port)| {
            let handle = server.handle();
            tokio::spawn(server);
            (handle, port)
        });
        let server = run(listener, state)?;
        Ok(Self {
            port,
            server,
            metrics_server,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the separate `/metrics` server, when `metrics.port` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_server.as_ref().map(|(_, port)| *port)
    }

    /// A handle to stop the server (tests use it; signals do the same).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGTERM/SIGINT, then lets in-flight requests finish.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        if let Some((handle, _)) = self.metrics_server {
            handle.stop(true).await;
        }
        result
    }
}

/// Everything the handlers share; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: PgPool,
    pub auth: auth::Auth,
    pub writer: upload::Writer,
    pub attachments: attachments::Attachments,
    pub metrics: metrics::Metrics,
    pub limits: limits::Limits,
    pub admin: admin::Admin,
}

impl AppState {
    pub async fn build(settings: Settings, db: PgPool) -> anyhow::Result<Self> {
        let auth = auth::Auth::build(&settings).await?;
        let writer = upload::Writer::build(&settings, &db).await?;
        let attachments = attachments::Attachments::build(&settings, &db).await?;
        let metrics = metrics::Metrics::new(
            db.clone(),
            settings.database.max_connections,
            settings.auth.identity.mode.as_str(),
        )?;
        let limits = limits::Limits::new(&settings.limits);
        let admin = admin::Admin::new(settings.admin.api_key_sha256.as_deref())?;
        Ok(Self {
            admin,
            metrics,
            limits,
            settings: Arc::new(settings),
            db,
            auth,
            writer,
            attachments,
        })
    }
}

/// `kill -HUP` re-reads the app's schema (after a migration of the app's tables).
fn reload_schema_on_sighup(writer: upload::Writer) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP; schema reloads need the admin API");
        return;
    };
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            if let Err(err) = writer.reload_schema().await {
                tracing::error!(error = %format!("{err:#}"), "schema reload failed; keeping the previous schema");
            }
        }
    });
}

fn run(listener: TcpListener, state: AppState) -> anyhow::Result<Server> {
    let server_settings = state.settings.server.clone();
    let max_body = server_settings.max_body_bytes;
    let mut server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(limits::limit_json_depth))
            .wrap(ErrorHandlers::new().default_handler(render_error_as_json))
            .wrap(TracingLogger::<UplinkRootSpan>::new())
            .wrap(limits::cors(&state.settings.server.cors_origins))
            .wrap(from_fn(metrics::track_requests))
            .app_data(web::Data::new(state.metrics.clone()))
            .app_data(web::Data::new(state.limits.clone()))
            .app_data(web::Data::new(state.admin.clone()))
            .app_data(web::Data::new(state.settings.clone()))
            .app_data(web::Data::new(state.db.clone()))
            .app_data(web::Data::new(state.auth.clone()))
            .app_data(web::Data::new(state.writer.clone()))
            .app_data(web::Data::new(state.attachments.clone()))
            .app_data(web::PayloadConfig::new(max_body))
            .app_data(
                web::JsonConfig::default()
                    .limit(max_body)
                    .error_handler(error::json_extractor_error),
            )
            .app_data(web::QueryConfig::default().error_handler(error::query_extractor_error))
            .app_data(web::PathConfig::default().error_handler(error::path_extractor_error))
            .configure(health::configure)
            .configure(auth::configure)
            .configure(upload::configure)
            .configure(attachments::configure)
            .configure(metrics::configure(&state.settings.metrics))
            .configure(openapi::configure)
            .configure(admin::configure)
            .default_service(web::to(no_route))
    })
    .shutdown_timeout(server_settings.shutdown_timeout.as_secs().max(1))
    .listen(listener)?;
    if server_settings.workers > 0 {
        server = server.workers(server_settings.workers);
    }
    Ok(server.run())
}

async fn no_route(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "no route for {} {}",
        req.method(),
        req.path()
    )))
}

/// Gives responses produced outside our handlers (actix's own 404/405/413…)
/// the same JSON error shape as ours.
fn render_error_as_json<B>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = res
        .response()
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let (req, old) = res.into_parts();
    if let Some(err) = old.error() {
        tracing::debug!(error = %err, %status, "framework error rendered as JSON");
    }
    let message = old
        .error()
        .map(|e| error::framework_error_message(e, status))
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
    let mut new: HttpResponse = error::json_error(status, error::code_for_status(status), &message);
    for (name, value) in old.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            new.headers_mut().insert(name.clone(), value.clone());
        }
    }
    if status == actix_web::http::StatusCode::SERVICE_UNAVAILABLE
        && !new.headers().contains_key(header::RETRY_AFTER)
    {
        new.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(error::RETRY_AFTER_SECS),
        );
    }
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, new).map_into_right_body(),
    ))
}
