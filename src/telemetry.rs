//! Tracing subscriber and the per-request root span.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing_actix_web::RootSpanBuilder;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::config::environment::Environment;
use crate::config::sections::{LogFormat, LogSettings};
use crate::error::{ApiError, code_for_status};

const NOTICE_TARGET: &str = "sqlx::postgres::notice";

/// Installs the global subscriber: JSON in production, human-readable in
/// development; the level comes from `RUST_LOG` when set, else from config.
pub fn init(settings: &LogSettings, environment: Environment) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Postgres NOTICEs (`relation "_sqlx_migrations" already exists,
    // skipping`) are chatter, not news; a filter naming the target keeps them.
    let filter = if settings.level.contains(NOTICE_TARGET)
        || std::env::var("RUST_LOG").is_ok_and(|v| v.contains(NOTICE_TARGET))
    {
        filter
    } else {
        filter.add_directive(
            format!("{NOTICE_TARGET}=warn")
                .parse()
                .expect("a valid directive"),
        )
    };
    let json = match settings.format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => environment.is_production(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    // A second init (tests spawn many apps in one process) is harmless.
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_events(FmtSpan::NONE)
            .try_init()
    } else {
        builder.compact().try_init()
    };
}

/// Root span of every request: request id, route template, status and the
/// authenticated user (recorded by the auth extractor).
pub struct UplinkRootSpan;

impl RootSpanBuilder for UplinkRootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        // Like tracing-actix-web's root span, but `http.target` is the path
        // only: query strings can carry signatures (presigned URLs) and tokens.
        let request_id = request
            .extensions()
            .get::<tracing_actix_web::RequestId>()
            .map(|id| id.to_string())
            .unwrap_or_default();
        let route = request
            .match_pattern()
            .map_or_else(|| "default".to_owned(), |p| crate::metrics::route_label(&p));
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.route = %route,
            http.target = %request.path(),
            http.client_ip = %request.connection_info().realip_remote_addr().unwrap_or(""),
            http.status_code = tracing::field::Empty,
            otel.name = %format!("{} {}", request.method(), route),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            request_id = %request_id,
            user_id = tracing::field::Empty,
            exception.message = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        // Like tracing-actix-web's, without the error's Debug form (a Rust
        // struct is no help in a log line): the code and message instead.
        let (status, error) = match outcome {
            Ok(response) => (response.status(), response.response().error()),
            Err(error) => (error.as_response_error().status_code(), Some(error)),
        };
        span.record("http.status_code", status.as_u16());
        span.record(
            "otel.status_code",
            if status.is_server_error() {
                "ERROR"
            } else {
                "OK"
            },
        );
        if let Some(error) = error {
            span.record("exception.message", error.to_string());
            log_refusal(status, error);
        }
    }
}

/// One event per failed request, as `code` and `message` fields: a client's
/// mistake (4xx) at INFO, since no operator needs to act on it; a 5xx at
/// WARN (the cause of an unexpected one is logged at ERROR where it happens).
fn log_refusal(status: StatusCode, error: &Error) {
    let (code, message) = match error.as_error::<ApiError>() {
        Some(ApiError::Unexpected(_)) => return,
        Some(api) => (api.code().as_str(), api.to_string()),
        None => (code_for_status(status), error.to_string()),
    };
    let status = status.as_u16();
    if status >= 500 {
        tracing::warn!(target: "uplink::http", status, code, "{message}");
    } else {
        tracing::info!(target: "uplink::http", status, code, "{message}");
    }
}

/// Records the authenticated user on the current request span.
pub fn record_user(user_id: &str) {
    Span::current().record("user_id", user_id);
}
