//! The generated work: batches of todo entries from virtual clients.
//!
//! Each connection drives one virtual client. Its content generator is seeded
//! from the run's seed and the connection number only, so uplink and the
//! baselines receive the same sequence of entries (same operations, same
//! values, same positions). Row ids come from a second generator salted per
//! target run, so runs that share a table never collide.

use std::collections::HashMap;
use std::fmt::Write;

use chrono::{DateTime, Duration as ChronoDuration, SecondsFormat, Utc};
use uuid::Uuid;

use crate::rng::Rng;

/// What one request of a workload carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// Batches of PUTs of new todos.
    Put100,
    /// 60% PUT new / 30% PATCH / 10% DELETE of the client's earlier rows,
    /// several client transactions per batch, with a client id.
    Mixed,
    /// `put100` on a todos table whose owner is `created_by`.
    #[value(name = "put100-owner")]
    #[serde(rename = "put100-owner")]
    Put100Owner,
    /// `mixed` on a todos table with an owner (`created_by`) and a version
    /// column: each PATCH sends the version the client saw.
    #[value(name = "mixed-policies")]
    #[serde(rename = "mixed-policies")]
    MixedPolicies,
    /// `GET /api/auth/token` (dev identity).
    Tokens,
    /// `POST /api/attachments/upload-url`.
    Presign,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Self::Put100 => "put100",
            Self::Mixed => "mixed",
            Self::Put100Owner => "put100-owner",
            Self::MixedPolicies => "mixed-policies",
            Self::Tokens => "tokens",
            Self::Presign => "presign",
        }
    }

    pub fn writes(self) -> bool {
        matches!(
            self,
            Self::Put100 | Self::Mixed | Self::Put100Owner | Self::MixedPolicies
        )
    }

    /// Whether batches mix PUT, PATCH and DELETE (else: PUTs only).
    pub fn mixed(self) -> bool {
        matches!(self, Self::Mixed | Self::MixedPolicies)
    }

    /// The workload without policies that this one is compared with.
    pub fn plain(self) -> Option<Self> {
        match self {
            Self::Put100Owner => Some(Self::Put100),
            Self::MixedPolicies => Some(Self::Mixed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Put {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub description: String,
    pub list_id: Uuid,
}

/// Ticks a todo off: the app's most common update.
#[derive(Debug, Clone)]
pub struct Patch {
    pub id: Uuid,
    pub completed_at: DateTime<Utc>,
    /// The row's version the client saw (tables with a version column).
    pub version: Option<i64>,
}

#[derive(Debug, Clone)]
pub enum Entry {
    Put(Put),
    Patch(Patch),
    Delete(Uuid),
}

impl Entry {
    /// The entry's `data` object as the SDK sends it (SQLite values:
    /// booleans as 0/1); DELETEs have none.
    pub fn data(&self, user_id: &str) -> Option<String> {
        match self {
            Entry::Put(p) => Some(format!(
                "{{\"created_at\":\"{}\",\"description\":{},\"completed\":0,\"created_by\":{},\"list_id\":\"{}\"}}",
                timestamp(p.created_at),
                json_string(&p.description),
                json_string(user_id),
                p.list_id
            )),
            Entry::Patch(p) => Some(format!(
                "{{\"completed\":1,\"completed_at\":\"{}\",\"completed_by\":{}{}}}",
                timestamp(p.completed_at),
                json_string(user_id),
                p.version
                    .map(|v| format!(",\"version\":{v}"))
                    .unwrap_or_default()
            )),
            Entry::Delete(_) => None,
        }
    }

    pub fn id(&self) -> Uuid {
        match self {
            Entry::Put(p) => p.id,
            Entry::Patch(p) => p.id,
            Entry::Delete(id) => *id,
        }
    }
}

/// One upload batch: client transactions of entries, op ids consecutive.
#[derive(Debug, Clone)]
pub struct Batch {
    pub user_id: String,
    pub client_id: Option<String>,
    pub first_op_id: i64,
    pub first_tx_id: i64,
    pub transactions: Vec<Vec<Entry>>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.transactions.iter().map(Vec::len).sum()
    }

    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.transactions.iter().flatten()
    }

    pub fn last_op_id(&self) -> i64 {
        self.first_op_id + self.len() as i64 - 1
    }

    /// The body `uploadData()` sends: the SDK's `CrudEntry.toJSON()` shape.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(self.len() * 220 + 64);
        out.push_str("{\"batch\":[");
        let mut op_id = self.first_op_id;
        let mut first = true;
        for (t, transaction) in self.transactions.iter().enumerate() {
            let tx_id = self.first_tx_id + t as i64;
            for entry in transaction {
                if !first {
                    out.push(',');
                }
                first = false;
                let op = match entry {
                    Entry::Put(_) => "PUT",
                    Entry::Patch(_) => "PATCH",
                    Entry::Delete(_) => "DELETE",
                };
                let id = entry.id();
                let _ = write!(
                    out,
                    "{{\"op_id\":{op_id},\"op\":\"{op}\",\"type\":\"todos\",\"id\":\"{id}\",\"tx_id\":{tx_id}"
                );
                if let Some(data) = entry.data(&self.user_id) {
                    out.push_str(",\"data\":");
                    out.push_str(&data);
                }
                out.push('}');
                op_id += 1;
            }
        }
        out.push(']');
        if let Some(client_id) = &self.client_id {
            let _ = write!(out, ",\"client_id\":{}", json_string(client_id));
        }
        out.push('}');
        out
    }
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn json_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

/// The state of one virtual device.
pub struct VirtualClient {
    pub user_id: String,
    client_id: String,
    list_id: Uuid,
    content: Rng,
    ids: Rng,
    /// Rows this client created and has not deleted, oldest first.
    live: Vec<Uuid>,
    /// The version of each row, when the table has a version column: rows
    /// start at 1 and each applied PATCH bumps it.
    versions: Option<HashMap<Uuid, i64>>,
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
            versions: None,
            next_op_id: 1,
            next_tx_id: 1,
            created: 0,
            clock: DateTime::<Utc>::from_timestamp(1_767_225_600, 0).unwrap_or_default(),
        }
    }

    /// PATCHes send the version of the row they change.
    pub fn with_versions(mut self) -> Self {
        self.versions = Some(HashMap::new());
        self
    }

    /// The version a PATCH of `id` sends; the row's next one is one higher.
    fn version_seen(&mut self, id: Uuid) -> Option<i64> {
        let version = self.versions.as_mut()?.entry(id).or_insert(1);
        *version += 1;
        Some(*version - 1)
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
                        let version = self.version_seen(id);
                        changes.push(Entry::Patch(Patch {
                            id,
                            completed_at,
                            version,
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
                        if let Some(versions) = &mut self.versions {
                            versions.remove(id);
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
    fn patches_send_the_version_each_row_is_at() {
        let mut client = VirtualClient::new("u", 0, Uuid::nil(), 1, 2).with_versions();
        let mut at: HashMap<Uuid, i64> = HashMap::new();
        for _ in 0..20 {
            let batch = client.mixed_batch(20, 2);
            let body: serde_json::Value =
                serde_json::from_str(&batch.to_json()).expect("valid JSON");
            for (entry, sent) in batch
                .entries()
                .zip(body["batch"].as_array().expect("batch"))
            {
                match entry {
                    Entry::Put(p) => {
                        at.insert(p.id, 1);
                    }
                    Entry::Patch(p) => {
                        let version = at.get_mut(&p.id).expect("a live row");
                        assert_eq!(sent["data"]["version"], *version);
                        *version += 1;
                    }
                    Entry::Delete(id) => {
                        at.remove(id);
                    }
                }
            }
        }
        assert!(at.values().any(|v| *v > 2), "some rows were patched twice");
    }
}
