//! Periodic housekeeping (stale attachment uploads, expired dead letters):
//! one loop, one way of reporting what a pass removed.

use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

/// Runs `pass` every `period` while the process lives, the first time
/// `first_after` from now; logs how many `what` each pass removed, and
/// failures (the next pass retries).
pub fn every<F, Fut, E>(period: Duration, first_after: Duration, what: &'static str, mut pass: F)
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<u64, E>> + Send,
    E: Debug,
{
    tokio::spawn(async move {
        let start = tokio::time::Instant::now() + first_after;
        let mut ticker = tokio::time::interval_at(start, period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match pass().await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "removed {what}"),
                Err(err) => tracing::warn!(error = ?err, "removing {what} failed; will retry"),
            }
        }
    });
}
