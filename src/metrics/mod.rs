//! Prometheus metrics: one registry per application (tests run many apps in
//! one process), rendered in the text format at `GET /metrics` on a
//! listener of their own (`listener`), never on the API's port.
//!
//! Counters are per process; Prometheus sums them over replicas. Gauges that
//! need the database are set by a periodic job of the feature that owns
//! the data (`upload::dead_letter::spawn_pending_gauge`), so a scrape costs
//! the database nothing however often it comes.

mod listener;
mod registry;
mod settings;

pub use listener::Listener;
pub use registry::{EntryOutcome, Metrics, route_label, track_requests};
pub use settings::MetricsSettings;
