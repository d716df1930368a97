//! The benchmark's results: one row per case, ratios, targets; printed as a
//! table and written as JSON.

use std::fmt::Write;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::load::{CpuSplit, Outcome};

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Latency {
    fn from(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| (us as f64 / 1000.0 * 1000.0).round() / 1000.0;
        Self {
            mean: (h.mean() / 1000.0 * 1000.0).round() / 1000.0,
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Case {
    pub workload: &'static str,
    pub target: &'static str,
    /// Signing algorithm of the tokens workload.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// Requests per second asked for (fixed-rate case); absent = closed loop.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_rps: Option<f64>,
    pub connections: usize,
    pub batch_size: usize,
    pub seconds: f64,
    pub requests: u64,
    /// Entries applied (write workloads) or requests answered (others).
    pub ops: u64,
    pub errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    pub requests_per_s: f64,
    pub ops_per_s: f64,
    pub latency_ms: Latency,
    /// CPU seconds used during the measured window.
    pub cpu_s: CpuSplit,
    /// Highest uplink RSS sampled during this case.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uplink_rss_mb: Option<f64>,
    /// uplink's VmHWM after this case (peak since it started).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uplink_peak_rss_mb: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table_at_start: Option<&'static str>,
}

pub fn mb(kb: Option<u64>) -> Option<f64> {
    kb.map(|kb| (kb as f64 / 1024.0 * 10.0).round() / 10.0)
}

fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

impl Case {
    pub fn new(
        workload: &'static str,
        target: &'static str,
        batch_size: usize,
        connections: usize,
        o: &Outcome,
    ) -> Self {
        let seconds = o.elapsed.as_secs_f64().max(1e-9);
        Self {
            workload,
            target,
            alg: None,
            rate_rps: None,
            connections,
            batch_size,
            seconds: (seconds * 100.0).round() / 100.0,
            requests: o.requests,
            ops: o.ops,
            errors: o.errors,
            first_error: o.first_error.clone(),
            requests_per_s: round(o.requests.saturating_sub(o.errors) as f64 / seconds),
            ops_per_s: round(o.ops as f64 / seconds),
            latency_ms: Latency::from(&o.latency_us),
            cpu_s: CpuSplit {
                uplink_s: o.cpu.uplink_s.map(|s| (s * 100.0).round() / 100.0),
                database_s: o.cpu.database_s.map(|s| (s * 100.0).round() / 100.0),
                client_s: o.cpu.client_s.map(|s| (s * 100.0).round() / 100.0),
            },
            uplink_rss_mb: mb(o.server_rss_peak_kb),
            uplink_peak_rss_mb: None,
            table_at_start: None,
        }
    }

    fn label(&self) -> String {
        let mut label = format!("{} {}", self.workload, self.target);
        if let Some(alg) = &self.alg {
            let _ = write!(label, " {alg}");
        }
        if let Some(rate) = self.rate_rps {
            let _ = write!(label, " @{rate:.0}/s");
        }
        label
    }
}

/// One of the project's performance targets and whether this run met it.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub value: Option<f64>,
    pub target: String,
    pub met: Option<bool>,
}

fn opt(x: Option<f64>, digits: usize) -> String {
    x.map_or_else(|| "-".to_owned(), |x| format!("{x:.digits$}"))
}

pub fn table(cases: &[Case]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<28} {:>5} {:>9} {:>10} {:>8} {:>8} {:>8} {:>8} {:>6}  {:>17}  {:>7}",
        "case",
        "conns",
        "req/s",
        "ops/s",
        "p50 ms",
        "p99 ms",
        "p99.9",
        "max ms",
        "errors",
        "cpu s uplink/db/gen",
        "rss MB"
    );
    for c in cases {
        let _ = writeln!(
            out,
            "{:<28} {:>5} {:>9.1} {:>10.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>6}  {:>5}/{:>5}/{:>5}  {:>7}",
            c.label(),
            c.connections,
            c.requests_per_s,
            c.ops_per_s,
            c.latency_ms.p50,
            c.latency_ms.p99,
            c.latency_ms.p999,
            c.latency_ms.max,
            c.errors,
            opt(c.cpu_s.uplink_s, 1),
            opt(c.cpu_s.database_s, 1),
            opt(c.cpu_s.client_s, 1),
            opt(c.uplink_rss_mb, 1),
        );
    }
    out
}

pub fn checks_table(checks: &[Check]) -> String {
    let mut out = String::new();
    for c in checks {
        let verdict = match c.met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "not measured",
        };
        let _ = writeln!(
            out,
            "{:<44} {:>10}   target {:<10} {}",
            c.name,
            opt(c.value, 2),
            c.target,
            verdict
        );
    }
    out
}
