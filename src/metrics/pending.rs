//! The dead-letter gauge, refreshed by a periodic job: one count per
//! `metrics.refresh_interval` per replica, whatever the number of scrapers
//! (a count per scrape let 48 scrapers slow every user's uploads).

use std::time::Duration;

use super::registry::Metrics;
use crate::db::DbFailure;
use crate::db::pool::Database;
use crate::store::{dead_letters, mysql};

impl Metrics {
    /// Starts refreshing the database-backed gauges every `interval`, the
    /// first time now.
    pub fn spawn_refresh(&self, interval: Duration) {
        let metrics = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                // A slow database delays the next refresh, never a scrape:
                // the gauge keeps its last value meanwhile.
                match tokio::time::timeout(interval, metrics.count_pending()).await {
                    Ok(Ok(count)) => metrics.set_dead_letters_pending(count),
                    Ok(Err(err)) => {
                        tracing::debug!(error = %err, "dead-letter count unavailable for metrics");
                    }
                    Err(_) => tracing::debug!("dead-letter count timed out for metrics"),
                }
            }
        });
    }

    async fn count_pending(&self) -> Result<i64, DbFailure> {
        match self.db() {
            Database::Postgres(pool, own) => dead_letters::count_all_pending(pool, own).await,
            Database::MySql(pool, own) => mysql::dead_letters::count_all_pending(pool, own).await,
        }
    }
}
