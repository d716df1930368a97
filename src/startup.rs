//! Builds the application: pool, migrations, per-capability state, the HTTP server.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers, from_fn};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use anyhow::Context;
use tracing_actix_web::TracingLogger;

use crate::db::pool::Database;
use crate::error::{self, ApiError, ErrorCode};
use crate::settings::Settings;
use crate::telemetry::UplinkRootSpan;
use crate::{admin, attachments, auth, body, health, limits, metrics, openapi, upload};

pub struct Application {
    port: u16,
    server: Server,
    metrics_server: Option<(actix_web::dev::ServerHandle, u16)>,
    connections: OpenConnections,
    db: Database,
    auth: auth::Auth,
}

impl Application {
    /// Connects, migrates when configured, binds the listener (port 0 picks a
    /// free port) and prepares the server; `run_until_stopped` serves.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        // Settings built in code (tests, embedders) pass the checks that
        // loading applies.
        settings.validate()?;
        warn_if_dev_identity(&settings);
        for (key, message) in settings.warnings() {
            tracing::warn!(key, "{key} {message}");
        }
        let db = crate::db::pool::connect(&settings.database, settings.database_url())?;
        let reachable = crate::db::pool::reachable(&db).await;
        if reachable && settings.database.migrate_on_start {
            crate::db::migrate::run(&db).await?;
        }
        let listener = TcpListener::bind((settings.server.host, settings.server.port))
            .with_context(|| {
                format!(
                    "Failed to bind {}:{}",
                    settings.server.host, settings.server.port
                )
            })?;
        let port = listener.local_addr()?.port();
        let state = AppState::build(settings, db.clone(), reachable).await?;
        if !reachable {
            tracing::warn!("the database is unreachable: listening, not ready until it answers");
            connect_when_the_database_answers(&state);
        }
        reload_schema_on_sighup(state.writer.clone());
        upload::dead_letter::spawn_retention(
            state.db.clone(),
            state.settings.write.dead_letters.retention,
        );
        let metrics_server =
            metrics::Listener::bind(&state.settings.metrics, state.metrics.clone())?.map(
                |listener| {
                    let handle = listener.server.handle();
                    tokio::spawn(listener.server);
                    upload::dead_letter::spawn_pending_gauge(
                        state.db.clone(),
                        state.metrics.clone(),
                        state.settings.metrics.refresh_interval,
                    );
                    (handle, listener.port)
                },
            );
        let connections = OpenConnections::default();
        let auth = state.auth.clone();
        let server = run(listener, state, connections.clone())?;
        Ok(Self {
            port,
            server,
            metrics_server,
            connections,
            db,
            auth,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the metrics listener, unless `metrics.enabled` is off.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_server.as_ref().map(|(_, port)| *port)
    }

    /// `kill -HUP` also re-reads the signing keys: `load` reads the
    /// configuration again (the files may have changed) and its `auth.keys`
    /// replace the keys in force, unless they do not load.
    pub fn reload_keys_on_sighup(
        &self,
        load: impl Fn() -> anyhow::Result<Settings> + Send + 'static,
    ) {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; new signing keys need a restart");
            return;
        };
        let auth = self.auth.clone();
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                let reloaded = load().and_then(|settings| {
                    auth.reload_keys(
                        &settings.auth,
                        settings.environment,
                        &settings.server.data_dir,
                    )
                });
                if let Err(err) = reloaded {
                    tracing::error!(error = %format!("{err:#}"), "signing key reload failed; keeping the keys in force");
                }
            }
        });
    }

    /// A handle to stop the server (tests use it; signals do the same).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGTERM/SIGINT, then lets in-flight requests finish and
    /// returns as soon as the last connection is closed. (actix alone
    /// notices that only on a once-a-second check, plus a 300 ms delay.)
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let result = tokio::select! {
            result = self.server => result,
            () = signalled_and_drained(self.connections, handle) => {
                tracing::info!("every connection is closed; stopping");
                Ok(())
            }
        };
        if let Some((handle, _)) = self.metrics_server {
            handle.stop(true).await;
        }
        // The server is done: hang up on the database rather than leave it
        // to notice the process is gone (or, embedded, keep idle sessions).
        self.db.close().await;
        result
    }
}

/// Connections the HTTP server has open, counted by a guard that lives in
/// each connection's data (dropped with the connection and its requests).
#[derive(Clone, Default)]
struct OpenConnections(Arc<std::sync::atomic::AtomicUsize>);

struct ConnectionGuard(OpenConnections);

impl OpenConnections {
    fn open(&self) -> ConnectionGuard {
        self.0.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        ConnectionGuard(self.clone())
    }

    fn count(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::Acquire)
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        (self.0).0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Resolves once SIGTERM or SIGINT arrived (the server then stops accepting
/// and lets open connections finish) and no connection is open any more.
async fn signalled_and_drained(connections: OpenConnections, server: ServerHandle) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal listeners only `ServerHandle::stop` ends the server.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    // The command is sent now; the server's own future reports the end.
    let _stopping = server.stop(true);
    while connections.count() > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Retries what start-up could not do while Postgres was down (migrations,
/// reading the schema), then reports ready.
fn connect_when_the_database_answers(state: &AppState) {
    let db = state.db.clone();
    let migrate = state.settings.database.migrate_on_start;
    let writer = state.writer.clone();
    let startup = state.startup.clone();
    tokio::spawn(async move {
        let mut delay = Duration::from_millis(250);
        loop {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_CONNECT_DELAY);
            if !crate::db::pool::reachable(&db).await {
                continue;
            }
            let prepared = async {
                if migrate {
                    crate::db::migrate::run(&db).await?;
                }
                writer.reload_schema().await
            };
            match prepared.await {
                Ok(()) => {
                    startup.mark_done();
                    tracing::info!("the database answers: uplink is ready");
                    return;
                }
                Err(err) => {
                    tracing::error!(error = %format!("{err:#}"), "start-up work failed; retrying");
                }
            }
        }
    });
}

/// Longest wait between two attempts to reach the database at start-up.
const MAX_CONNECT_DELAY: Duration = Duration::from_secs(5);

/// Everything the handlers share; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: Database,
    pub auth: auth::Auth,
    pub writer: upload::Writer,
    /// `None` when `attachments.enabled` is off: the routes are not served.
    pub attachments: Option<attachments::Attachments>,
    pub metrics: metrics::Metrics,
    pub limits: limits::Limits,
    pub admin: admin::Admin,
    pub startup: health::Startup,
}

impl AppState {
    /// With `db_reachable` false the schema is read later
    /// (`connect_when_the_database_answers`) and start-up is pending.
    pub async fn build(
        settings: Settings,
        db: Database,
        db_reachable: bool,
    ) -> anyhow::Result<Self> {
        let auth = auth::Auth::build(
            &settings.auth,
            settings.environment,
            &settings.server.data_dir,
        )
        .await?;
        let metrics = metrics::Metrics::new(
            db.clone(),
            settings.database.max_connections,
            settings.auth.identity.mode.as_str(),
        )?;
        let rls = settings.database.rls.as_ref();
        let (writer, startup) = if db_reachable {
            let writer = upload::Writer::build(&settings.write, rls, &db, Some(&metrics)).await?;
            (writer, health::Startup::done())
        } else {
            let writer = upload::Writer::new(&settings.write, rls, &db, Some(&metrics));
            (writer, health::Startup::pending())
        };
        let attachments = if settings.attachments.enabled {
            Some(
                attachments::Attachments::build(
                    &settings.attachments,
                    &settings.server.data_dir,
                    settings.limits.trust_forwarded_for,
                    &db,
                )
                .await?,
            )
        } else {
            None
        };
        let limits = limits::Limits::new(&settings.limits);
        let admin = admin::Admin::new(settings.admin.api_key_sha256.as_deref())?;
        Ok(Self {
            startup,
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

/// Dev identity hands a token for any user id to anyone who asks: say so
/// loudly, every start, so it is never left on by accident.
fn warn_if_dev_identity(settings: &Settings) {
    if settings.auth.identity.mode != auth::IdentityMode::Dev {
        return;
    }
    tracing::warn!(
        host = %settings.server.host,
        "\n\
         ************************************************************\n\
         *  DEV IDENTITY IS ON: GET /api/auth/token?user_id=ANYONE   *\n\
         *  hands out a token for any user, with no credentials.     *\n\
         *  Anyone who can reach this port can read and write as     *\n\
         *  every user. Never expose it; production refuses it.      *\n\
         *  Set auth.identity.mode to jwt or api_key for real users. *\n\
         ************************************************************"
    );
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

fn run(
    listener: TcpListener,
    state: AppState,
    connections: OpenConnections,
) -> anyhow::Result<Server> {
    let server_settings = state.settings.server.clone();
    let max_body = server_settings.max_body_bytes;
    let mut server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(body::guard_body))
            .wrap(ErrorHandlers::new().default_handler(render_error_as_json))
            .wrap(TracingLogger::<UplinkRootSpan>::new())
            .wrap(limits::cors(&state.settings.server.cors_origins))
            .wrap(from_fn(metrics::track_requests))
            .app_data(web::Data::new(state.metrics.clone()))
            .app_data(web::Data::new(state.limits.clone()))
            .app_data(web::Data::new(state.admin.clone()))
            .app_data(web::Data::new(state.startup.clone()))
            .app_data(web::Data::new(crate::body::BodyLimits {
                max_bytes: state.settings.server.max_body_bytes,
                max_json_depth: state.settings.limits.max_json_depth,
                timeout: state.settings.server.body_timeout,
            }))
            .app_data(web::Data::new(state.db.clone()))
            .app_data(web::Data::new(state.auth.clone()))
            .app_data(web::Data::new(state.writer.clone()))
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
            .configure(upload::routes::configure)
            .configure(|cfg| {
                if let Some(attachments) = &state.attachments {
                    cfg.app_data(web::Data::new(attachments.clone()));
                    attachments::configure(cfg);
                } else {
                    // Off: say so, as the admin API does, rather than `no route`.
                    cfg.service(
                        web::scope("/api/attachments")
                            .default_service(web::to(attachments_disabled)),
                    );
                }
            })
            .configure(openapi::configure)
            .configure(admin::configure)
            .default_service(web::to(no_route))
    })
    .on_connect(move |_, data| {
        data.insert(Arc::new(connections.open()));
    })
    .shutdown_timeout(server_settings.shutdown_timeout.as_secs().max(1))
    // actix would stop at once on SIGINT; `signalled_and_drained` stops
    // gracefully on SIGTERM and SIGINT alike.
    .disable_signals()
    .listen(listener)?;
    if server_settings.workers > 0 {
        server = server.workers(server_settings.workers);
    }
    Ok(server.run())
}

async fn attachments_disabled() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        ErrorCode::NotFound,
        "attachments are disabled: set attachments.enabled",
    ))
}

async fn no_route(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        ErrorCode::NotFound,
        format!("no route for {} {}", req.method(), req.path()),
    ))
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
