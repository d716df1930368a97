//! Wire shapes of an upload request, parsed into the domain `Batch`.
//!
//! Values are kept as borrowed raw JSON so numbers keep their exact text
//! (jsonb may hold numbers that no f64 represents) and nothing is copied
//! until the SQL parameter is built.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::report::Rejection;

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
    pub id: String,
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
            "unknown_field",
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
}

impl EnvelopeError {
    pub fn code(&self) -> crate::error::ErrorCode {
        match self {
            Self::Json(_) => crate::error::ErrorCode::InvalidJson,
            Self::Shape(_) => crate::error::ErrorCode::InvalidEnvelope,
        }
    }
}

/// The body's members. Unknown keys are refused (400) rather than ignored:
/// a misspelt `batch` must never read as an empty upload.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = UploadBatch)]
#[schema(
    description = "An upload batch: exactly one of `batch` (flat, the SDK's `getCrudBatch()`; answered with `Report`) or `transactions` (grouped, the reference write contract; answered with `TransactionsReport`)."
)]
pub(super) struct WireBody<'a> {
    /// Entries; consecutive entries with one `tx_id` form one atomic unit.
    #[serde(default, borrow)]
    batch: Option<Vec<WireEntry<'a>>>,
    /// Client transactions, each one atomic unit.
    #[serde(default, borrow)]
    transactions: Option<Vec<WireTransaction<'a>>>,
    /// Enables exactly-once (alias `clientId`; or the `PowerSync-Client-Id` header).
    #[serde(default, alias = "clientId")]
    client_id: Option<String>,
    /// Sent by older reference-contract connectors; ignored there too
    /// (uplink always dead-letters a rejected transaction and goes on).
    #[serde(default, rename = "on_fatal_error")]
    #[schema(value_type = Option<Value>)]
    _on_fatal_error: Option<IgnoredAny>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ClientTransaction)]
struct WireTransaction<'a> {
    /// Aliases `transactionId`, `tx_id`, `txId`.
    #[serde(default, alias = "transactionId", alias = "tx_id", alias = "txId")]
    transaction_id: Option<i64>,
    #[serde(borrow)]
    crud: Vec<WireEntry<'a>>,
}

/// One entry in any client's spelling: the SDKs' `CrudEntry.toJSON()` /
/// `toJson()` (`op_id`, `type`, `tx_id`, `data`, `old`, `metadata`), the
/// reference write contract (`table`, `transaction_id`, `op_data`,
/// `previous_values`) and the SDKs' CrudEntry property names (`clientId` is
/// the op id there, `transactionId`, `opData`, `previousValues`). `null`
/// reads as absent (Dart's `toJson` writes every key). Any other member
/// rejects the entry with `unknown_field`. The schema names the SDK's
/// `toJSON` spelling; the others are in each member's description.
#[derive(Default, utoipa::ToSchema)]
#[schema(as = Entry)]
struct WireEntry<'a> {
    /// Aliases `opId`, `clientId`.
    op_id: Option<i64>,
    #[schema(value_type = Op, required = true)]
    op: Option<Cow<'a, str>>,
    /// The table (alias `table`).
    #[schema(rename = "type", value_type = String, required = true, min_length = 1)]
    table: Option<Cow<'a, str>>,
    /// The row id.
    #[schema(value_type = String, required = true, min_length = 1)]
    id: Option<&'a RawValue>,
    /// Aliases `txId`, `transaction_id`, `transactionId`.
    tx_id: Option<i64>,
    /// Column values (aliases `op_data`, `opData`); absent for DELETE.
    #[schema(value_type = Option<HashMap<String, Value>>)]
    data: Option<&'a RawValue>,
    /// The SDK's `metadata` string.
    #[schema(value_type = Option<Value>)]
    metadata: Option<&'a RawValue>,
    /// Previous values, when the client tracks them (aliases
    /// `previous_values`, `previousValues`); used for delta columns.
    #[schema(value_type = Option<HashMap<String, Value>>)]
    old: Option<&'a RawValue>,
    #[schema(ignore)]
    unknown: Vec<(Cow<'a, str>, &'a RawValue)>,
    /// Fields seen (bit `Field as u8`), to refuse one field given twice.
    #[schema(ignore)]
    seen: u8,
}

impl<'de: 'a, 'a> Deserialize<'de> for WireEntry<'a> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntryVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for EntryVisitor<'a> {
            type Value = WireEntry<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a CRUD entry object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entry = WireEntry::default();
                while let Some(Text(key)) = map.next_key::<Text<'a>>()? {
                    let Some(field) = Field::of(&key) else {
                        let value = map.next_value::<&'a RawValue>()?;
                        entry.unknown.push((key, value));
                        continue;
                    };
                    let bit = 1 << field as u8;
                    if entry.seen & bit != 0 {
                        return Err(de::Error::custom(format_args!(
                            "`{}` is given twice (as {})",
                            field.name(),
                            truncate_for_message(&key)
                        )));
                    }
                    entry.seen |= bit;
                    match field {
                        Field::OpId => entry.op_id = map.next_value()?,
                        Field::Op => entry.op = map.next_value::<Option<Text>>()?.map(|t| t.0),
                        Field::Table => {
                            entry.table = map.next_value::<Option<Text>>()?.map(|t| t.0)
                        }
                        Field::Id => entry.id = map.next_value()?,
                        Field::TxId => entry.tx_id = map.next_value()?,
                        Field::Data => entry.data = map.next_value()?,
                        Field::Metadata => entry.metadata = map.next_value()?,
                        Field::Old => entry.old = map.next_value()?,
                    }
                }
                Ok(entry)
            }
        }
        deserializer.deserialize_map(EntryVisitor(std::marker::PhantomData))
    }
}

/// A JSON string, borrowed from the body unless it has escapes (serde's
/// `Cow` impl always copies).
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for TextVisitor<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(TextVisitor(std::marker::PhantomData))
    }
}

/// An entry field, whatever its spelling.
#[derive(Clone, Copy)]
enum Field {
    OpId,
    Op,
    Table,
    Id,
    TxId,
    Data,
    Metadata,
    Old,
}

impl Field {
    fn of(key: &str) -> Option<Self> {
        Some(match key {
            "op_id" | "opId" | "clientId" => Self::OpId,
            "op" => Self::Op,
            "type" | "table" => Self::Table,
            "id" => Self::Id,
            "tx_id" | "txId" | "transaction_id" | "transactionId" => Self::TxId,
            "data" | "op_data" | "opData" => Self::Data,
            "metadata" => Self::Metadata,
            "old" | "previous_values" | "previousValues" => Self::Old,
            _ => return None,
        })
    }

    /// The name used in messages (the SDK's `toJSON` key).
    fn name(self) -> &'static str {
        match self {
            Self::OpId => "op_id",
            Self::Op => "op",
            Self::Table => "type",
            Self::Id => "id",
            Self::TxId => "tx_id",
            Self::Data => "data",
            Self::Metadata => "metadata",
            Self::Old => "old",
        }
    }
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
                while let Some((Text(key), value)) = map.next_entry::<Text<'de>, &'de RawValue>()? {
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
        if let Some(old) = self.old
            && !is_object_or_object_text(old)
        {
            return Err(at(
                "`old` (`previous_values`) must be a JSON object (or its JSON text)",
            ));
        }
        Ok(Entry {
            op_id: self.op_id,
            op,
            table,
            id,
            tx_id: self.tx_id.or(tx_id),
            data,
            metadata: self.metadata,
            old: self.old,
            unknown: self.unknown,
        })
    }
}

/// Previous values as an object, or as the JSON text of one (delta columns
/// read both).
fn is_object_or_object_text(raw: &RawValue) -> bool {
    let text = raw.get();
    text.starts_with('{')
        || serde_json::from_str::<String>(text)
            .is_ok_and(|inner| serde_json::from_str::<Members>(&inner).is_ok())
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
                EnvelopeError::Shape(format!(
                    "request body does not fit: {}",
                    crate::error::plain_serde_message(&e.to_string())
                ))
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
        let shape = if wire.transactions.is_some() {
            Shape::Transactions
        } else {
            Shape::Batch
        };
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
            shape,
        })
    }

    /// The Node demo's single-entry shape: `{"table", "data": {"id", ...}}`.
    /// Other members are kept and refuse the entry (`unknown_field`).
    pub fn parse_single(body: &'a [u8], op: Op) -> Result<Self, EnvelopeError> {
        let members = serde_json::from_slice::<Members<'a>>(body)
            .map_err(|e| EnvelopeError::Json(e.to_string()))?
            .0;
        let shape = |m: &str| EnvelopeError::Shape(m.to_owned());
        let (mut table, mut raw, mut unknown) = (None, None, Vec::new());
        for (key, value) in members {
            match key.as_ref() {
                "table" => table = Some(value),
                "data" => raw = Some(value),
                _ => unknown.push((key, value)),
            }
        }
        let table = table
            .and_then(|t| serde_json::from_str::<Cow<'a, str>>(t.get()).ok())
            .ok_or_else(|| shape("`table` is missing or not a string"))?;
        let raw = raw.ok_or_else(|| shape("`data` is missing"))?;
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
                    unknown,
                }],
            }],
            shape: Shape::Batch,
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
    fn every_spelling_reads_the_same_entry() {
        let spellings: &[&[u8]] = &[
            br#"{"batch":[{"op_id":3,"op":"PATCH","type":"t","id":"a","tx_id":2,"data":{"x":1},"old":{"x":0}}]}"#,
            br#"{"batch":[{"opId":3,"op":"PATCH","table":"t","id":"a","txId":2,"opData":{"x":1},"previousValues":{"x":0}}]}"#,
            br#"{"batch":[{"clientId":3,"op":"PATCH","table":"t","id":"a","transactionId":2,"op_data":{"x":1},"previous_values":{"x":0}}]}"#,
            br#"{"batch":[{"op_id":3,"op":"PATCH","type":"t","id":"a","transaction_id":2,"data":{"x":1},"old":{"x":0},"metadata":null}]}"#,
        ];
        let as_text = br#"{"batch":[{"op":"PATCH","type":"t","id":"a","old":"{\"x\":0}"}]}"#;
        assert!(Batch::parse(as_text, None).is_ok());
        for body in spellings {
            let batch = Batch::parse(body, None).unwrap();
            let entry = &batch.transactions[0].entries[0];
            let text = String::from_utf8_lossy(body);
            assert_eq!((entry.op_id, entry.tx_id), (Some(3), Some(2)), "{text}");
            assert_eq!(
                (entry.table.as_ref(), entry.data[0].1.get()),
                ("t", "1"),
                "{text}"
            );
            assert_eq!(entry.old.map(RawValue::get), Some(r#"{"x":0}"#), "{text}");
            assert!(
                entry.metadata.is_none() && entry.refusal().is_none(),
                "{text}"
            );
        }
    }

    #[test]
    fn unknown_members_refuse_the_entry_and_are_kept() {
        let body = br#"{"batch":[{"op":"PATCH","type":"t","id":"a","payload":{"x":1}}]}"#;
        let batch = Batch::parse(body, None).unwrap();
        let entry = &batch.transactions[0].entries[0];
        assert_eq!(entry.unknown[0].0, "payload");
        assert_eq!(entry.unknown[0].1.get(), r#"{"x":1}"#);
        let refusal = entry.refusal().unwrap();
        assert_eq!(refusal.code, "unknown_field");
        assert!(
            refusal.message.contains("\"payload\""),
            "{}",
            refusal.message
        );
        let single =
            Batch::parse_single(br#"{"table":"t","data":{"id":"a"},"extra":1}"#, Op::Put).unwrap();
        assert!(single.transactions[0].entries[0].refusal().is_some());
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
            (br#"{"batch":[],"extra":1}"#, "invalid_envelope"),
            (
                br#"{"transactions":[{"crud":[],"extra":1}]}"#,
                "invalid_envelope",
            ),
            (
                br#"{"batch":[{"op":"PUT","type":"t","id":"1","data":{},"opData":{}}]}"#,
                "invalid_envelope",
            ),
            (
                br#"{"batch":[{"op":"PUT","type":"t","id":"1","old":[1]}]}"#,
                "invalid_envelope",
            ),
            (
                br#"{"batch":[{"op":"PUT","type":"t","id":"1","old":"name"}]}"#,
                "invalid_envelope",
            ),
        ];
        for (body, code) in cases {
            let err = Batch::parse(body, None).expect_err(&String::from_utf8_lossy(body));
            assert_eq!(
                err.code().as_str(),
                *code,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
