//! The run's summary: uplink's rate over each baseline's, and the
//! performance targets met or missed.

use crate::report::{Case, Check};
use crate::run::Run;
use crate::workload::Workload;

impl Run {
    pub fn find(&self, workload: &str, target: &str) -> Option<&Case> {
        self.cases
            .iter()
            .find(|c| c.workload == workload && c.target == target && c.rate_rps.is_none())
    }

    pub fn ratio(&self, workload: &str, over: &str) -> Option<f64> {
        self.ratio_of(workload, self.find(workload, over)?)
    }

    /// uplink's rate in `workload` over the rate of `base`.
    pub fn ratio_of(&self, workload: &str, base: &Case) -> Option<f64> {
        let uplink = self.find(workload, "uplink")?.ops_per_s;
        let base = base.ops_per_s;
        (base > 0.0).then(|| (uplink / base * 1000.0).round() / 1000.0)
    }

    /// A policy case's rate over its plain case's (both uplink, same run).
    pub fn policy_ratio(&self, workload: Workload) -> Option<f64> {
        let plain = self.find(workload.plain()?.name(), "uplink")?;
        self.ratio_of(workload.name(), plain)
    }

    pub fn ratios(&self) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        for workload in ["put100", "mixed"] {
            out.insert(
                workload.to_owned(),
                serde_json::json!({
                    "uplink_over_naive": self.ratio(workload, "naive"),
                    "uplink_over_naive_typed": self.ratio(workload, "naive-typed"),
                    "uplink_over_sql_limit": self.ratio(workload, "sql-limit"),
                }),
            );
        }
        for workload in [Workload::Put100Owner, Workload::MixedPolicies] {
            if let Some(plain) = workload.plain() {
                out.insert(
                    workload.name().to_owned(),
                    serde_json::json!({
                        format!("uplink_over_{}", plain.name()): self.policy_ratio(workload),
                    }),
                );
            }
        }
        serde_json::Value::Object(out)
    }

    pub fn checks(&self) -> Vec<Check> {
        let check = |name: &str, value: Option<f64>, target: &str, met: fn(f64) -> bool| Check {
            name: name.to_owned(),
            value,
            target: target.to_owned(),
            met: value.map(met),
        };
        let mixed_rss = self
            .find("mixed", "uplink")
            .and_then(|c| c.uplink_peak_rss_mb);
        let startup = self.startups_ms.iter().copied().reduce(f64::max);
        // MariaDB's mixed limit is four statements, not one (see
        // docs/performance.md): its target is higher.
        let (mixed_target, mixed_met): (&str, fn(f64) -> bool) = if self.is_mysql() {
            (">= 0.90", |v| v >= 0.90)
        } else {
            (">= 0.80", |v| v >= 0.80)
        };
        vec![
            check(
                "put100: uplink / sql-limit",
                self.ratio("put100", "sql-limit"),
                ">= 0.90",
                |v| v >= 0.90,
            ),
            check(
                "put100: uplink / naive",
                self.ratio("put100", "naive"),
                ">= 4.0",
                |v| v >= 4.0,
            ),
            check(
                "mixed (exactly-once): uplink / sql-limit",
                self.ratio("mixed", "sql-limit"),
                mixed_target,
                mixed_met,
            ),
            check(
                "put100-owner / put100 (uplink)",
                self.policy_ratio(Workload::Put100Owner),
                ">= 0.85",
                |v| v >= 0.85,
            ),
            check(
                "mixed-policies / mixed (uplink)",
                self.policy_ratio(Workload::MixedPolicies),
                ">= 0.75",
                |v| v >= 0.75,
            ),
            check(
                &format!(
                    "peak RSS MB after mixed, {} connections",
                    self.args.connections
                ),
                mixed_rss,
                "< 50",
                |v| v < 50.0,
            ),
            check(
                "start-up to ready, ms (slowest start)",
                startup,
                "< 1000",
                |v| v < 1000.0,
            ),
        ]
    }
}
