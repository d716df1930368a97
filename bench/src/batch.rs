//! The entries a virtual client generates and the upload batch that carries
//! them, serialised as the PowerSync SDK sends it.

use std::fmt::Write;

use chrono::{DateTime, SecondsFormat, Utc};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct Put {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub description: String,
    pub list_id: Uuid,
    /// The row's state (tables with a state machine).
    pub status: Option<&'static str>,
}

/// Ticks a todo off: the app's most common update.
#[derive(Debug, Clone)]
pub struct Patch {
    pub id: Uuid,
    pub completed_at: DateTime<Utc>,
    /// The row's next state (tables with a state machine).
    pub status: Option<&'static str>,
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
                "{{\"created_at\":\"{}\",\"description\":{},\"completed\":0,\"created_by\":{},\"list_id\":\"{}\"{}}}",
                timestamp(p.created_at),
                json_string(&p.description),
                json_string(user_id),
                p.list_id,
                status_member(p.status)
            )),
            Entry::Patch(p) => Some(format!(
                "{{\"completed\":1,\"completed_at\":\"{}\",\"completed_by\":{}{}}}",
                timestamp(p.completed_at),
                json_string(user_id),
                status_member(p.status)
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

/// `,"status":"…"` when the row has a state.
fn status_member(status: Option<&str>) -> String {
    status
        .map(|s| format!(",\"status\":{}", json_string(s)))
        .unwrap_or_default()
}
