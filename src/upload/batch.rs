//! The write path's domain view of an upload request: a batch of client
//! transactions of CRUD entries (parsed by `envelope`).

use std::borrow::Cow;

use serde_json::value::RawValue;

use super::rejection::Rejection;
use crate::error::ErrorCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, utoipa::ToSchema)]
#[schema(rename_all = "UPPERCASE")]
pub enum Op {
    Put,
    Patch,
    Delete,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }
}

/// One CRUD entry, as the client sent it.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub op_id: Option<i64>,
    pub op: Op,
    pub table: Cow<'a, str>,
    pub id: Cow<'a, str>,
    pub tx_id: Option<i64>,
    /// The entry's values in the order sent; `id` is never among them.
    pub data: Vec<(Cow<'a, str>, &'a RawValue)>,
    /// The SDK's `metadata` string (from `_metadata`), if any.
    pub metadata: Option<&'a RawValue>,
    /// The previous values (`old`, `previous_values`), if the client sent
    /// them: a JSON object.
    pub old: Option<&'a RawValue>,
    /// Members uplink does not know, kept verbatim for the dead letter.
    pub unknown: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl Entry<'_> {
    /// Why the entry cannot be applied as sent, before any table is looked
    /// at: a member uplink does not know may carry the payload, so the entry
    /// is never applied without it.
    pub fn refusal(&self) -> Option<Rejection> {
        let (key, _) = self.unknown.first()?;
        Some(Rejection::new(
            ErrorCode::UnknownField,
            format!(
                "entry field {} is not part of any client contract uplink knows; \
                 the entry was not applied",
                truncate_for_message(key)
            ),
        ))
    }
}

/// The unit of atomicity: all of its entries apply, or none.
#[derive(Debug, Clone)]
pub struct ClientTransaction<'a> {
    pub tx_id: Option<i64>,
    pub entries: Vec<Entry<'a>>,
}

/// Which body shape the request used; the response follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `{"batch": [...]}` and the single-row routes.
    Batch,
    /// `{"transactions": [{"crud": [...]}]}`: the reference write contract.
    Transactions,
}

#[derive(Debug)]
pub struct Batch<'a> {
    pub client_id: Option<String>,
    pub transactions: Vec<ClientTransaction<'a>>,
    pub shape: Shape,
}

impl Batch<'_> {
    pub fn entry_count(&self) -> usize {
        self.transactions.iter().map(|t| t.entries.len()).sum()
    }
}

/// Why the envelope itself is unusable (400).
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("request body is not valid JSON: {0}")]
    Json(String),
    #[error("{0}")]
    Shape(String),
    #[error("{0}")]
    ClientId(String),
}

impl EnvelopeError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Json(_) => ErrorCode::InvalidJson,
            Self::Shape(_) => ErrorCode::InvalidEnvelope,
            Self::ClientId(_) => ErrorCode::InvalidClientId,
        }
    }
}

/// Shortens client-supplied text before it goes into a message.
pub fn truncate_for_message(text: &str) -> String {
    const MAX: usize = 64;
    let mut out: String = text.chars().take(MAX).collect();
    if text.chars().count() > MAX {
        out.push('…');
    }
    serde_json::to_string(&out).unwrap_or_default()
}
