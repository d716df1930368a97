//! The registry: every metric uplink keeps, how the handlers and the write
//! path feed them, and the middleware that counts requests.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{HttpRequest, web};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::db::pool::Database;

/// Label for requests that matched no route: the raw path would let any
/// client create unbounded series.
const UNMATCHED: &str = "unmatched";

/// The `method` label: the standard methods by name, anything a client
/// invents as `other` (every label value comes from a closed set).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// One entry of a processed batch, as metric labels: its table (`other`
/// outside `write.tables`), op and outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryOutcome<'a> {
    pub table: &'a str,
    pub op: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone)]
pub struct Metrics {
    inner: std::sync::Arc<Inner>,
}

struct Inner {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    write_entries: IntCounterVec,
    batch_entries: Histogram,
    dead_letters: IntCounter,
    write_retries: IntCounter,
    connection_wait: Histogram,
    tokens_issued: IntCounterVec,
    urls_signed: IntCounterVec,
    pool_connections: IntGaugeVec,
    dead_letters_pending: IntGauge,
    in_flight: IntGauge,
    identity_mode: &'static str,
    db: Database,
}

impl Metrics {
    pub fn new(
        db: Database,
        max_connections: u32,
        identity_mode: &'static str,
    ) -> anyhow::Result<Self> {
        let registry = Registry::new_custom(Some("uplink".to_owned()), None)?;
        let http_requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route template and status",
            ),
            &["method", "route", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by route template and status",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["method", "route", "status"],
        )?;
        let write_entries = IntCounterVec::new(
            Opts::new(
                "write_entries_total",
                "Write-path entries by table, op and outcome (applied, duplicate, conflict, rejected)",
            ),
            &["table", "op", "outcome"],
        )?;
        let batch_entries = Histogram::with_opts(
            HistogramOpts::new("write_batch_entries", "Entries per processed upload batch")
                .buckets(vec![
                    1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 5000.0,
                ]),
        )?;
        let dead_letters = IntCounter::new(
            "dead_letters_total",
            "Client transactions rejected and stored as dead letters",
        )?;
        let write_retries = IntCounter::new(
            "write_retries_total",
            "Batch attempts retried inside uplink after a deadlock or serialization failure",
        )?;
        let connection_wait = Histogram::with_opts(
            HistogramOpts::new(
                "db_connection_wait_seconds",
                "Time an upload batch waited for a database connection and its BEGIN",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
        )?;
        let tokens_issued = IntCounterVec::new(
            Opts::new(
                "tokens_issued_total",
                "PowerSync tokens issued by identity mode",
            ),
            &["identity_mode"],
        )?;
        let urls_signed = IntCounterVec::new(
            Opts::new(
                "attachment_urls_signed_total",
                "Attachment URLs signed by purpose",
            ),
            &["purpose"],
        )?;
        let pool_connections = IntGaugeVec::new(
            Opts::new(
                "db_pool_connections",
                "Database pool connections by state (idle, in_use)",
            ),
            &["state"],
        )?;
        let pool_max = IntGauge::new(
            "db_pool_max_connections",
            "Configured pool size (database.max_connections); in_use at this value means requests wait",
        )?;
        let dead_letters_pending = IntGauge::new(
            "dead_letters_pending",
            "Dead letters not yet replayed (all replicas; read from the database every metrics.refresh_interval)",
        )?;
        // Per process, like every metric here but dead_letters_pending: with
        // replicas, Prometheus' `instance` label tells them apart.
        let in_flight = IntGauge::new(
            "http_requests_in_flight",
            "Requests this replica is serving now (received, not yet answered)",
        )?;
        let build_info = IntGaugeVec::new(
            Opts::new("build_info", "Always 1; labels describe the running build"),
            &["version"],
        )?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(write_entries.clone()))?;
        registry.register(Box::new(batch_entries.clone()))?;
        registry.register(Box::new(dead_letters.clone()))?;
        registry.register(Box::new(write_retries.clone()))?;
        registry.register(Box::new(connection_wait.clone()))?;
        registry.register(Box::new(tokens_issued.clone()))?;
        registry.register(Box::new(urls_signed.clone()))?;
        registry.register(Box::new(pool_connections.clone()))?;
        registry.register(Box::new(pool_max.clone()))?;
        registry.register(Box::new(dead_letters_pending.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        registry.register(Box::new(build_info))?;
        pool_max.set(i64::from(max_connections));
        Ok(Self {
            inner: std::sync::Arc::new(Inner {
                registry,
                http_requests,
                http_duration,
                write_entries,
                batch_entries,
                dead_letters,
                write_retries,
                connection_wait,
                tokens_issued,
                urls_signed,
                pool_connections,
                dead_letters_pending,
                in_flight,
                identity_mode,
                db,
            }),
        })
    }

    /// The application's metrics, from a request (absent only in apps built
    /// without them, e.g. unit tests of a single module).
    pub fn of(req: &HttpRequest) -> Option<&Self> {
        req.app_data::<web::Data<Self>>().map(|data| data.get_ref())
    }

    /// Counts what a processed batch did, entry by entry as the write path
    /// reports it, the client transactions it dead-lettered, and how long
    /// its transaction waited for a connection.
    pub fn record_batch(
        &self,
        entries: &[EntryOutcome<'_>],
        dead_lettered: usize,
        connection_wait: std::time::Duration,
    ) {
        let inner = &self.inner;
        inner.batch_entries.observe(entries.len() as f64);
        inner.connection_wait.observe(connection_wait.as_secs_f64());
        for entry in entries {
            inner
                .write_entries
                .with_label_values(&[entry.table, entry.op, entry.outcome])
                .inc();
        }
        inner.dead_letters.inc_by(dead_lettered as u64);
    }

    /// One attempt at a batch retried after a deadlock or serialization
    /// failure (whether the batch then applied or not).
    pub fn write_retried(&self) {
        self.inner.write_retries.inc();
    }

    /// One PowerSync token issued by the configured identity mode.
    pub fn token_issued(&self) {
        self.inner
            .tokens_issued
            .with_label_values(&[self.inner.identity_mode])
            .inc();
    }

    /// One attachment URL signed; `purpose` is `upload` or `download`.
    pub fn url_signed(&self, purpose: &'static str) {
        self.inner.urls_signed.with_label_values(&[purpose]).inc();
    }

    fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let status = status.to_string();
        let labels = [method, route, status.as_str()];
        self.inner.http_requests.with_label_values(&labels).inc();
        self.inner
            .http_duration
            .with_label_values(&labels)
            .observe(seconds);
    }

    /// Sets the pending dead-letter gauge (the periodic job's count).
    pub fn set_dead_letters_pending(&self, count: i64) {
        self.inner.dead_letters_pending.set(count);
    }

    /// Samples the in-process gauges and renders every metric in the text
    /// format; touches no database.
    pub fn render(&self) -> anyhow::Result<String> {
        let inner = &self.inner;
        let (size, idle) = inner.db.pool_size();
        let size = i64::from(size);
        let idle = i64::try_from(idle).unwrap_or(i64::MAX);
        inner
            .pool_connections
            .with_label_values(&["idle"])
            .set(idle);
        inner
            .pool_connections
            .with_label_values(&["in_use"])
            .set((size - idle).max(0));
        let mut out = Vec::new();
        TextEncoder::new().encode(&inner.registry.gather(), &mut out)?;
        Ok(String::from_utf8(out)?)
    }
}

/// Middleware: counts and times every request by route template and status.
/// A route pattern as the docs and OpenAPI write it: `{key:.*}` is `{key}`
/// (the regex says how actix matches, not what the route is called).
pub fn route_label(pattern: &str) -> String {
    let mut label = String::with_capacity(pattern.len());
    let mut depth = 0usize;
    let mut in_regex = false;
    for c in pattern.chars() {
        match c {
            '{' => {
                depth += 1;
                if in_regex {
                    continue;
                }
            }
            '}' => {
                depth = depth.saturating_sub(1);
                if in_regex && depth > 0 {
                    continue;
                }
                in_regex = false;
            }
            ':' if depth == 1 => {
                in_regex = true;
                continue;
            }
            _ if in_regex => continue,
            _ => {}
        }
        label.push(c);
    }
    label
}

pub async fn track_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let method = method_label(req.method());
    let route = req.match_pattern();
    // A guard: a request whose client went away is dropped, not finished.
    let _in_flight = metrics
        .as_ref()
        .map(|m| InFlight::enter(&m.inner.in_flight));
    let result = next.call(req).await;
    if let Some(metrics) = metrics {
        let status = match &result {
            Ok(response) => response.status(),
            Err(err) => err.as_response_error().status_code(),
        };
        let route = route.as_deref().map(route_label);
        let route = route.as_deref().unwrap_or(UNMATCHED);
        metrics.observe_request(
            method,
            route,
            status.as_u16(),
            started.elapsed().as_secs_f64(),
        );
    }
    result
}

/// One request counted in `http_requests_in_flight` while it lives.
struct InFlight(IntGauge);

impl InFlight {
    fn enter(gauge: &IntGauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::route_label;

    #[test]
    fn a_route_label_drops_the_match_regex() {
        assert_eq!(
            route_label("/api/attachments/files/{key:.*}"),
            "/api/attachments/files/{key}"
        );
        assert_eq!(route_label("/a/{id:\\d{3}}/b/{x}"), "/a/{id}/b/{x}");
        assert_eq!(route_label("/api/data"), "/api/data");
    }
}
