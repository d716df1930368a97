//! The generated work: virtual clients and the batches of todo entries they
//! upload.
//!
//! Each connection drives one virtual client. Its content generator is seeded
//! from the run's seed and the connection number only, so uplink and the
//! baselines receive the same sequence of entries (same operations, same
//! values, same positions). Row ids come from a second generator salted per
//! target run, so runs that share a table never collide.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use uuid::Uuid;

use crate::batch::{Batch, Entry, Patch, Put};
use crate::rng::Rng;

/// The state of one virtual device.
pub struct VirtualClient {
    pub user_id: String,
    client_id: String,
    list_id: Uuid,
    content: Rng,
    ids: Rng,
    /// Rows this client created and has not deleted, oldest first.
    live: Vec<Uuid>,
    /// Whether rows carry a `status` (the policy cases' state machine):
    /// PUTs create them `open`, PATCHes move them to `done`.
    statuses: bool,
    next_op_id: i64,
    next_tx_id: i64,
    created: u64,
    clock: DateTime<Utc>,
}

impl VirtualClient {
    /// `seed` fixes the content; `id_salt` only the row ids.
    pub fn new(user_id: &str, index: usize, list_id: Uuid, seed: u64, id_salt: u64) -> Self {
        let stream = (index as u64).wrapping_mul(0xA24B_AED4_963E_E407);
        Self {
            user_id: user_id.to_owned(),
            client_id: format!("bench-{id_salt:016x}-{index}"),
            list_id,
            content: Rng::new(seed ^ stream),
            ids: Rng::new(id_salt ^ stream),
            live: Vec::new(),
            statuses: false,
            next_op_id: 1,
            next_tx_id: 1,
            created: 0,
            clock: DateTime::<Utc>::from_timestamp(1_767_225_600, 0).unwrap_or_default(),
        }
    }

    /// Rows carry a `status`: `open` when created, `done` when ticked off.
    pub fn with_statuses(mut self) -> Self {
        self.statuses = true;
        self
    }

    fn status(&self, status: &'static str) -> Option<&'static str> {
        self.statuses.then_some(status)
    }

    fn tick(&mut self) -> DateTime<Utc> {
        self.clock += ChronoDuration::milliseconds(1 + self.content.below(50) as i64);
        self.clock
    }

    fn put(&mut self) -> Entry {
        self.created += 1;
        let words = [
            "buy milk",
            "call the plumber",
            "water the plants",
            "book flights",
            "review the pull request",
            "renew passport",
        ];
        let description = format!(
            "{} #{}",
            words[self.content.below(words.len())],
            self.created
        );
        let created_at = self.tick();
        Entry::Put(Put {
            id: self.ids.uuid(),
            created_at,
            description,
            list_id: self.list_id,
            status: self.status("open"),
        })
    }

    /// `size` PUTs of new rows, one client transaction.
    pub fn put_batch(&mut self, size: usize) -> Batch {
        let entries: Vec<Entry> = (0..size).map(|_| self.put()).collect();
        self.finish(vec![entries], false)
    }

    /// `size` entries over `transactions` client transactions; each is a
    /// short session on the device: add todos, tick some earlier ones off,
    /// remove one (60% / 30% / 10%). PATCH and DELETE pick distinct rows
    /// from earlier batches, so every row is touched once per batch.
    pub fn mixed_batch(&mut self, size: usize, transactions: usize) -> Batch {
        let transactions = transactions.clamp(1, size.max(1));
        let mut picked: Vec<Uuid> = Vec::new();
        let mut out = Vec::with_capacity(transactions);
        for t in 0..transactions {
            let n = size / transactions + usize::from(t < size % transactions);
            let patches = (n * 3).div_ceil(10);
            let deletes = n / 10;
            let mut entries = Vec::with_capacity(n);
            let mut changes = Vec::new();
            for _ in 0..patches {
                match self.pick(&mut picked) {
                    Some(id) => {
                        let completed_at = self.tick();
                        changes.push(Entry::Patch(Patch {
                            id,
                            completed_at,
                            status: self.status("done"),
                        }));
                    }
                    None => break,
                }
            }
            let mut removals = Vec::new();
            for _ in 0..deletes {
                match self.pick(&mut picked) {
                    Some(id) => removals.push(Entry::Delete(id)),
                    None => break,
                }
            }
            // Too few earlier rows (the first batches): PUTs make up the rest.
            while entries.len() + changes.len() + removals.len() < n {
                entries.push(self.put());
            }
            entries.extend(changes);
            entries.extend(removals);
            out.push(entries);
        }
        // Deleted rows leave the pool; new rows join it for later batches.
        for transaction in &out {
            for entry in transaction {
                match entry {
                    Entry::Put(p) => self.live.push(p.id),
                    Entry::Delete(id) => {
                        if let Some(i) = self.live.iter().position(|x| x == id) {
                            self.live.swap_remove(i);
                        }
                    }
                    Entry::Patch(_) => {}
                }
            }
        }
        self.finish(out, true)
    }

    /// A random live row not yet used in this batch.
    fn pick(&mut self, picked: &mut Vec<Uuid>) -> Option<Uuid> {
        if self.live.len() <= picked.len() {
            return None;
        }
        for _ in 0..16 {
            let id = self.live[self.content.below(self.live.len())];
            if !picked.contains(&id) {
                picked.push(id);
                return Some(id);
            }
        }
        None
    }

    fn finish(&mut self, transactions: Vec<Vec<Entry>>, with_client_id: bool) -> Batch {
        let batch = Batch {
            user_id: self.user_id.clone(),
            client_id: with_client_id.then(|| self.client_id.clone()),
            first_op_id: self.next_op_id,
            first_tx_id: self.next_tx_id,
            transactions,
        };
        self.next_op_id += batch.len() as i64;
        self.next_tx_id += batch.transactions.len() as i64;
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(batch: &Batch) -> Vec<Vec<&'static str>> {
        batch
            .transactions
            .iter()
            .map(|t| {
                t.iter()
                    .map(|e| match e {
                        Entry::Put(_) => "PUT",
                        Entry::Patch(_) => "PATCH",
                        Entry::Delete(_) => "DELETE",
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn mixed_batches_have_the_requested_split_once_rows_exist() {
        let mut client = VirtualClient::new("u", 0, Uuid::nil(), 1, 2);
        let first = client.mixed_batch(100, 5);
        assert!(first.entries().all(|e| matches!(e, Entry::Put(_))));
        let second = client.mixed_batch(100, 5);
        let count = |kind: &str| {
            shape(&second)
                .iter()
                .flatten()
                .filter(|k| **k == kind)
                .count()
        };
        assert_eq!(
            (count("PUT"), count("PATCH"), count("DELETE")),
            (60, 30, 10)
        );
        assert_eq!(second.transactions.len(), 5);
        assert_eq!(second.first_op_id, 101);
        assert_eq!(second.last_op_id(), 200);
        // Each row at most once per batch.
        let mut ids: Vec<Uuid> = second
            .entries()
            .map(|e| match e {
                Entry::Put(p) => p.id,
                Entry::Patch(p) => p.id,
                Entry::Delete(id) => *id,
            })
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 100);
    }

    #[test]
    fn the_id_salt_changes_ids_but_not_the_content() {
        let mut a = VirtualClient::new("u", 3, Uuid::nil(), 1, 10);
        let mut b = VirtualClient::new("u", 3, Uuid::nil(), 1, 11);
        for _ in 0..3 {
            let (x, y) = (a.mixed_batch(50, 5), b.mixed_batch(50, 5));
            assert_eq!(shape(&x), shape(&y));
            let (Entry::Put(p), Entry::Put(q)) = (&x.transactions[0][0], &y.transactions[0][0])
            else {
                panic!("a transaction starts with PUTs");
            };
            assert_eq!(p.description, q.description);
            assert_ne!(p.id, q.id);
        }
    }

    #[test]
    fn the_body_is_the_sdk_shape() {
        let mut client = VirtualClient::new("user \"1\"", 0, Uuid::nil(), 1, 2);
        client.mixed_batch(10, 2);
        let batch = client.mixed_batch(10, 2);
        let body: serde_json::Value = serde_json::from_str(&batch.to_json()).expect("valid JSON");
        let entries = body["batch"].as_array().expect("batch array");
        assert_eq!(entries.len(), 10);
        assert_eq!(entries[0]["op_id"], 11);
        assert_eq!(entries[0]["type"], "todos");
        assert_eq!(entries[0]["data"]["created_by"], "user \"1\"");
        assert!(
            body["client_id"]
                .as_str()
                .is_some_and(|c| c.starts_with("bench-"))
        );
        assert!(
            entries
                .iter()
                .any(|e| e["op"] == "PATCH" && e["data"]["completed"] == 1)
        );
    }

    #[test]
    fn with_statuses_puts_create_open_rows_and_patches_tick_them_done() {
        let mut client = VirtualClient::new("u", 0, Uuid::nil(), 1, 2).with_statuses();
        let mut patched = 0;
        for _ in 0..5 {
            let body: serde_json::Value =
                serde_json::from_str(&client.mixed_batch(20, 2).to_json()).expect("valid JSON");
            for sent in body["batch"].as_array().expect("batch") {
                match sent["op"].as_str() {
                    Some("PUT") => assert_eq!(sent["data"]["status"], "open", "{sent}"),
                    Some("PATCH") => {
                        assert_eq!(sent["data"]["status"], "done", "{sent}");
                        patched += 1;
                    }
                    _ => assert!(sent.get("data").is_none_or(|d| d.is_null()), "{sent}"),
                }
            }
        }
        assert!(patched > 0);
        let plain = VirtualClient::new("u", 0, Uuid::nil(), 1, 2).mixed_batch(20, 2);
        assert!(!plain.to_json().contains("status"));
    }
}
