//! Per-user cap on upload requests in flight (per replica): a user's
//! concurrent batches beyond the cap wait for a slot, and never hold more
//! of the database's connections than the cap, so one user (a device
//! backlog replayed from many tabs, or a hostile client) cannot starve the
//! others of connections.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// How long a request waits for one of its user's slots before it is
/// refused with 429 (the client retries after `Retry-After`).
const WAIT: Duration = Duration::from_secs(5);

pub struct InFlight {
    per_user: u32,
    users: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

/// A user's upload slot, released when dropped.
pub struct Slot {
    permit: Option<OwnedSemaphorePermit>,
    user: String,
    per_user: u32,
    users: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

impl InFlight {
    /// `per_user: 0` turns the cap off.
    pub fn new(per_user: u32) -> Self {
        Self {
            per_user,
            users: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Takes one of `user`'s slots, waiting up to `WAIT` for one.
    pub async fn acquire(&self, user: &str) -> Result<Option<Slot>, ApiError> {
        if self.per_user == 0 {
            return Ok(None);
        }
        let semaphore = {
            let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
            users
                .entry(user.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_user as usize)))
                .clone()
        };
        match tokio::time::timeout(WAIT, semaphore.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Some(Slot {
                permit: Some(permit),
                user: user.to_owned(),
                per_user: self.per_user,
                users: self.users.clone(),
            })),
            _ => Err(ApiError::RateLimited {
                retry_after_secs: 1,
            }),
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        drop(self.permit.take());
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        // Forget a user none of whose slots is taken or waited for.
        if users.get(&self.user).is_some_and(|s| {
            Arc::strong_count(s) == 1 && s.available_permits() == self.per_user as usize
        }) {
            users.remove(&self.user);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::InFlight;

    #[tokio::test]
    async fn a_user_holds_at_most_its_slots_and_others_are_not_held_up() {
        let in_flight = InFlight::new(2);
        let first = in_flight.acquire("alice").await.unwrap();
        let second = in_flight.acquire("alice").await.unwrap();
        assert!(in_flight.acquire("bob").await.unwrap().is_some());
        let waiting = tokio::spawn({
            let users = in_flight.users.clone();
            async move {
                let in_flight = InFlight { per_user: 2, users };
                in_flight.acquire("alice").await.map(|s| s.is_some())
            }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "a third slot waits");
        drop(first);
        assert!(matches!(waiting.await.unwrap(), Ok(true)));
        drop(second);
        assert!(
            in_flight.users.lock().unwrap().is_empty(),
            "idle users are forgotten"
        );
    }
}
