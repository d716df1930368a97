//! Tracing subscriber and the per-request root span.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RootSpanBuilder};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::config::environment::Environment;
use crate::config::sections::{LogFormat, LogSettings};

/// Installs the global subscriber: JSON in production, human-readable in
/// development; the level comes from `RUST_LOG` when set, else from config.
pub fn init(settings: &LogSettings, environment: Environment) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
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
            .unwrap_or_else(|| "default".to_owned());
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
            exception.details = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

/// Records the authenticated user on the current request span.
pub fn record_user(user_id: &str) {
    Span::current().record("user_id", user_id);
}
