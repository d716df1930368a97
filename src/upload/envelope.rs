//! Wire shapes of an upload request, parsed into the domain `Batch`.
//!
//! Values are kept as borrowed raw JSON so numbers keep their exact text
//! (jsonb may hold numbers that no f64 represents) and nothing is copied
//! until the SQL parameter is built.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
use serde_json::value::RawValue;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    pub id: String,
    pub tx_id: Option<i64>,
    /// The entry's values in the order sent; `id` is never among them.
    pub data: Vec<(Cow<'a, str>, &'a RawValue)>,
    /// The SDK's `metadata` string (from `_metadata`), if any.
    pub metadata: Option<&'a RawValue>,
    /// The previous values (`trackPrevious`), if the client sent them.
    pub old: Option<&'a RawValue>,
}

/// The unit of atomicity: all of its entries apply, or none.
#[derive(Debug, Clone)]
pub struct ClientTransaction<'a> {
    pub tx_id: Option<i64>,
    pub entries: Vec<Entry<'a>>,
}

#[derive(Debug)]
pub struct Batch<'a> {
    pub client_id: Option<String>,
    pub transactions: Vec<ClientTransaction<'a>>,
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
}

impl EnvelopeError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Json(_) => "invalid_json",
            Self::Shape(_) => "invalid_envelope",
        }
    }
}

#[derive(Deserialize)]
struct WireBody<'a> {
    #[serde(default, borrow)]
    batch: Option<Vec<WireEntry<'a>>>,
    #[serde(default, borrow)]
    transactions: Option<Vec<WireTransaction<'a>>>,
    #[serde(default, alias = "clientId")]
    client_id: Option<String>,
}

#[derive(Deserialize)]
struct WireTransaction<'a> {
    #[serde(default, alias = "transactionId", alias = "tx_id")]
    transaction_id: Option<i64>,
    #[serde(borrow)]
    crud: Vec<WireEntry<'a>>,
}

#[derive(Deserialize)]
struct WireEntry<'a> {
    #[serde(default, alias = "opId")]
    op_id: Option<i64>,
    #[serde(default, borrow)]
    op: Option<Cow<'a, str>>,
    #[serde(default, rename = "type", alias = "table", borrow)]
    table: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    id: Option<&'a RawValue>,
    #[serde(default, alias = "txId", alias = "transactionId")]
    tx_id: Option<i64>,
    #[serde(default, alias = "opData", borrow)]
    data: Option<&'a RawValue>,
    #[serde(default, borrow)]
    metadata: Option<&'a RawValue>,
    #[serde(default, borrow)]
    old: Option<&'a RawValue>,
}

/// A JSON object's members, borrowed and in order.
struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some((key, value)) = map.next_entry::<Cow<'de, str>, &'de RawValue>()? {
                    members.push((key, value));
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

fn parse_op(op: &str) -> Option<Op> {
    match op {
        "PUT" | "put" => Some(Op::Put),
        "PATCH" | "patch" => Some(Op::Patch),
        "DELETE" | "delete" => Some(Op::Delete),
        _ => None,
    }
}

/// A row id: a JSON string, or a number taken as its text.
fn parse_id(raw: &RawValue) -> Option<String> {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => serde_json::from_str::<String>(text).ok(),
        Some(b'-' | b'0'..=b'9') => Some(text.to_owned()),
        _ => None,
    }
}

fn parse_members(raw: &RawValue) -> Result<Vec<(Cow<'_, str>, &RawValue)>, String> {
    serde_json::from_str::<Members>(raw.get())
        .map(|m| m.0)
        .map_err(|_| "`data` must be a JSON object".to_owned())
}

impl<'a> WireEntry<'a> {
    fn into_entry(self, position: usize, tx_id: Option<i64>) -> Result<Entry<'a>, EnvelopeError> {
        let at = |what: &str| EnvelopeError::Shape(format!("entry {position}: {what}"));
        let op = match self.op.as_deref() {
            None => return Err(at("`op` is missing")),
            Some(op) => parse_op(op).ok_or_else(|| {
                at(&format!(
                    "unknown op {}; expected PUT, PATCH or DELETE",
                    truncate_for_message(op)
                ))
            })?,
        };
        let table = self
            .table
            .ok_or_else(|| at("`type` (the table) is missing"))?;
        let id = self
            .id
            .ok_or_else(|| at("`id` is missing"))
            .and_then(|raw| parse_id(raw).ok_or_else(|| at("`id` must be a string")))?;
        let mut data = match self.data {
            Some(raw) => parse_members(raw).map_err(|m| at(&m))?,
            None => Vec::new(),
        };
        // The row id is the entry's `id`; clients sometimes repeat it in `data`.
        data.retain(|(key, _)| key != "id");
        Ok(Entry {
            op_id: self.op_id,
            op,
            table,
            id,
            tx_id: self.tx_id.or(tx_id),
            data,
            metadata: self.metadata,
            old: self.old,
        })
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

/// Splits a flat batch into client transactions: consecutive entries with the
/// same `tx_id`; an entry without one is a transaction of its own.
fn split_transactions(entries: Vec<Entry<'_>>) -> Vec<ClientTransaction<'_>> {
    let mut transactions: Vec<ClientTransaction> = Vec::new();
    for entry in entries {
        match transactions.last_mut() {
            Some(last) if entry.tx_id.is_some() && last.tx_id == entry.tx_id => {
                last.entries.push(entry)
            }
            _ => transactions.push(ClientTransaction {
                tx_id: entry.tx_id,
                entries: vec![entry],
            }),
        }
    }
    transactions
}

impl<'a> Batch<'a> {
    /// Parses any accepted body shape. `header_client_id` is the
    /// `PowerSync-Client-Id` header; the body's `client_id` wins.
    pub fn parse(body: &'a [u8], header_client_id: Option<&str>) -> Result<Self, EnvelopeError> {
        let wire: WireBody<'a> = serde_json::from_slice(body).map_err(|e| {
            if e.is_data() {
                EnvelopeError::Shape(format!("request body does not fit: {e}"))
            } else {
                EnvelopeError::Json(e.to_string())
            }
        })?;
        let client_id = wire
            .client_id
            .or_else(|| header_client_id.map(str::to_owned))
            .filter(|id| !id.is_empty());
        if let Some(id) = &client_id
            && (id.len() > 256 || id.chars().any(char::is_control))
        {
            return Err(EnvelopeError::Shape(
                "client_id must be at most 256 bytes without control characters".to_owned(),
            ));
        }
        let transactions = match (wire.batch, wire.transactions) {
            (Some(_), Some(_)) => {
                return Err(EnvelopeError::Shape(
                    "send either `batch` or `transactions`, not both".to_owned(),
                ));
            }
            (Some(batch), None) => {
                let entries = batch
                    .into_iter()
                    .enumerate()
                    .map(|(i, e)| e.into_entry(i, None))
                    .collect::<Result<Vec<_>, _>>()?;
                split_transactions(entries)
            }
            (None, Some(transactions)) => {
                let mut position = 0;
                let mut out = Vec::with_capacity(transactions.len());
                for transaction in transactions {
                    let mut entries = Vec::with_capacity(transaction.crud.len());
                    for wire_entry in transaction.crud {
                        entries.push(wire_entry.into_entry(position, transaction.transaction_id)?);
                        position += 1;
                    }
                    out.push(ClientTransaction {
                        tx_id: transaction.transaction_id,
                        entries,
                    });
                }
                out
            }
            (None, None) => {
                return Err(EnvelopeError::Shape(
                    "the body needs a `batch` or `transactions` array".to_owned(),
                ));
            }
        };
        Ok(Self {
            client_id,
            transactions,
        })
    }

    /// The Node demo's single-entry shape: `{"table", "data": {"id", ...}}`.
    pub fn parse_single(body: &'a [u8], op: Op) -> Result<Self, EnvelopeError> {
        #[derive(Deserialize)]
        struct Single<'a> {
            #[serde(borrow)]
            table: Option<Cow<'a, str>>,
            #[serde(default, borrow)]
            data: Option<&'a RawValue>,
        }
        let single: Single<'a> =
            serde_json::from_slice(body).map_err(|e| EnvelopeError::Json(e.to_string()))?;
        let shape = |m: &str| EnvelopeError::Shape(m.to_owned());
        let table = single.table.ok_or_else(|| shape("`table` is missing"))?;
        let raw = single.data.ok_or_else(|| shape("`data` is missing"))?;
        let members = parse_members(raw).map_err(|m| shape(&m))?;
        let id = members
            .iter()
            .find(|(key, _)| key == "id")
            .and_then(|(_, raw)| parse_id(raw))
            .ok_or_else(|| shape("`data.id` is missing or not a string"))?;
        let data = members.into_iter().filter(|(key, _)| key != "id").collect();
        Ok(Self {
            client_id: None,
            transactions: vec![ClientTransaction {
                tx_id: None,
                entries: vec![Entry {
                    op_id: None,
                    op,
                    table,
                    id,
                    tx_id: None,
                    data,
                    metadata: None,
                    old: None,
                }],
            }],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_batch_splits_by_tx_id() {
        let body = br#"{"batch":[
            {"op_id":1,"op":"PUT","type":"lists","id":"a","tx_id":1,"data":{"name":"x"}},
            {"op_id":2,"op":"PATCH","type":"lists","id":"a","tx_id":1,"data":{"name":"y"}},
            {"op_id":3,"op":"DELETE","type":"lists","id":"a","tx_id":2}]}"#;
        let batch = Batch::parse(body, Some("client-1")).unwrap();
        assert_eq!(batch.client_id.as_deref(), Some("client-1"));
        assert_eq!(batch.transactions.len(), 2);
        assert_eq!(batch.transactions[0].entries.len(), 2);
        assert_eq!(batch.transactions[1].entries[0].op, Op::Delete);
    }

    #[test]
    fn demo_entries_and_numbers_keep_their_text() {
        let body = br#"{"batch":[{"op":"PATCH","table":"items","id":"a","opData":{"big":123456789012345678901234567890}}]}"#;
        let batch = Batch::parse(body, None).unwrap();
        let entry = &batch.transactions[0].entries[0];
        assert_eq!(entry.table, "items");
        assert_eq!(entry.data[0].1.get(), "123456789012345678901234567890");
    }

    #[test]
    fn transactions_shape_and_body_client_id() {
        let body = br#"{"client_id":"c","transactions":[{"transaction_id":7,"crud":[{"op":"DELETE","type":"t","id":"1"}]}]}"#;
        let batch = Batch::parse(body, Some("header")).unwrap();
        assert_eq!(batch.client_id.as_deref(), Some("c"));
        assert_eq!(batch.transactions[0].tx_id, Some(7));
        assert_eq!(batch.transactions[0].entries[0].tx_id, Some(7));
    }

    #[test]
    fn malformed_envelopes_are_refused() {
        let cases: &[(&[u8], &str)] = &[
            (b"not json", "invalid_json"),
            (b"{}", "invalid_envelope"),
            (br#"{"batch":[{"type":"t","id":"1"}]}"#, "invalid_envelope"),
            (br#"{"batch":[{"op":"PUT","id":"1"}]}"#, "invalid_envelope"),
            (
                br#"{"batch":[{"op":"PUT","type":"t"}]}"#,
                "invalid_envelope",
            ),
            (
                br#"{"batch":[{"op":"UPSERT","type":"t","id":"1"}]}"#,
                "invalid_envelope",
            ),
            (
                br#"{"batch":[{"op":"PUT","type":"t","id":{}}]}"#,
                "invalid_envelope",
            ),
            (
                br#"{"batch":[{"op":"PUT","type":"t","id":"1","data":"x"}]}"#,
                "invalid_envelope",
            ),
            (br#"{"batch":{}}"#, "invalid_envelope"),
        ];
        for (body, code) in cases {
            let err = Batch::parse(body, None).expect_err(&String::from_utf8_lossy(body));
            assert_eq!(err.code(), *code, "{}", String::from_utf8_lossy(body));
        }
    }
}
