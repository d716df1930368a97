//! Wire shapes of an upload request, parsed into the domain `Batch`.
//!
//! Values are kept as borrowed raw JSON so numbers keep their exact text
//! (jsonb may hold numbers that no f64 represents) and nothing is copied
//! until the SQL parameter is built.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::IgnoredAny;

pub use super::batch::{Batch, ClientTransaction, Entry, EnvelopeError, Op, Shape};
use super::spellings::{Members, WireEntry, parse_id, parse_members};

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

/// Reads the body as text when it is UTF-8, as clients send it: serde_json
/// then checks the encoding once here instead of once per string and raw
/// value. Other bytes are read as before, for the same error.
fn from_body<'a, T: Deserialize<'a>>(body: &'a [u8]) -> serde_json::Result<T> {
    match std::str::from_utf8(body) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(body),
    }
}

impl<'a> Batch<'a> {
    /// Parses any accepted body shape. `header_client_id` is the
    /// `PowerSync-Client-Id` header; the body's `client_id` wins.
    pub fn parse(body: &'a [u8], header_client_id: Option<&str>) -> Result<Self, EnvelopeError> {
        // JSON but not an object (`[…]`, `42`): serde would read an array as
        // the struct's fields in order and describe a mismatch inside it.
        if body.trim_ascii_start().first().is_some_and(|&b| b != b'{')
            && serde_json::from_slice::<IgnoredAny>(body).is_ok()
        {
            return Err(EnvelopeError::Shape(
                "the body must be a JSON object with `batch` or `transactions`".to_owned(),
            ));
        }
        let wire: WireBody<'a> = from_body(body).map_err(|e| {
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
        if let Some(id) = &client_id {
            super::client_id::check(id).map_err(EnvelopeError::ClientId)?;
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
        let members = from_body::<Members<'a>>(body)
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
    use serde_json::value::RawValue;

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
    fn data_members_are_decoded_in_order_without_the_id() {
        let body = br#"{"batch":[{"op":"PUT","type":"t","id":"a","data":{"n\u0061me":"x","\u0069d":"a","n":1.50}}]}"#;
        let batch = Batch::parse(body, None).unwrap();
        let data: Vec<(&str, &str)> = batch.transactions[0].entries[0]
            .data
            .iter()
            .map(|(key, raw)| (key.as_ref(), raw.get()))
            .collect();
        assert_eq!(data, [("name", r#""x""#), ("n", "1.50")]);
    }

    #[test]
    fn unknown_members_refuse_the_entry_and_are_kept() {
        let body = br#"{"batch":[{"op":"PATCH","type":"t","id":"a","payload":{"x":1}}]}"#;
        let batch = Batch::parse(body, None).unwrap();
        let entry = &batch.transactions[0].entries[0];
        assert_eq!(entry.unknown[0].0, "payload");
        assert_eq!(entry.unknown[0].1.get(), r#"{"x":1}"#);
        let refusal = entry.refusal().unwrap();
        assert_eq!(refusal.code.as_str(), "unknown_field");
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
            (
                br#"{"batch":[{"op":"PUT","type":"t","id":"1","data":[1]}]}"#,
                "invalid_envelope",
            ),
            (
                br#"{"batch":[{"op":"PUT","type":"t","id":"1","data":{"\ud800":1}}]}"#,
                "invalid_envelope",
            ),
            (
                br#"{"batch":[{"op":"PUT","type":"t","id":"1","data":{"a":1,}}]}"#,
                "invalid_json",
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
