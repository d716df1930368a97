//! One CRUD entry in any client's spelling, read into an `Entry`: the
//! SDKs' field names, the reference write contract's and the Node demo's.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::batch::{Entry, EnvelopeError, Op, truncate_for_message};

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
pub(super) struct WireEntry<'a> {
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
    data: Option<Data<'a>>,
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

/// An entry's `data`, read with the envelope in one pass (not kept whole
/// and read again): its members in order, each value kept as its raw text.
/// Anything but an object is only noted here and refused by `into_entry`,
/// after the entry's other fields. A scalar serde_json cannot read (a
/// number beyond f64, a lone surrogate escape) fails the body as invalid
/// JSON instead.
pub(super) enum Data<'a> {
    Members(Vec<(Cow<'a, str>, &'a RawValue)>),
    NotAnObject,
}

impl<'de: 'a, 'a> Deserialize<'de> for Data<'a> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DataVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for DataVisitor<'a> {
            type Value = Data<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::with_capacity(8);
                let mut names_read = true;
                // Names are taken raw and decoded here, so a name serde_json
                // will not decode (a lone surrogate escape) refuses `data`
                // instead of failing the whole body.
                while let Some(name) = map.next_key::<&'a RawValue>()? {
                    let value = map.next_value::<&'a RawValue>()?;
                    match string_text(name) {
                        Some(name) => members.push((name, value)),
                        None => names_read = false,
                    }
                }
                Ok(if names_read {
                    Data::Members(members)
                } else {
                    Data::NotAnObject
                })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Data::NotAnObject)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Data::NotAnObject)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Data::NotAnObject)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Data::NotAnObject)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Data::NotAnObject)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Data::NotAnObject)
            }
        }
        deserializer.deserialize_any(DataVisitor(std::marker::PhantomData))
    }
}

/// The text of a raw JSON string: borrowed unless it has escapes, `None`
/// where serde_json would not decode it (a lone surrogate escape).
fn string_text(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\\') {
        serde_json::from_str::<String>(text).ok().map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(inner))
    }
}

/// A JSON object's members, borrowed and in order.
pub(super) struct Members<'a>(pub(super) Vec<(Cow<'a, str>, &'a RawValue)>);

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
pub(super) fn parse_id(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => string_text(raw),
        Some(b'-' | b'0'..=b'9') => Some(Cow::Borrowed(text)),
        _ => None,
    }
}

const DATA_NOT_AN_OBJECT: &str = "`data` must be a JSON object";

pub(super) fn parse_members(raw: &RawValue) -> Result<Vec<(Cow<'_, str>, &RawValue)>, String> {
    match serde_json::from_str::<Data>(raw.get()) {
        Ok(Data::Members(members)) => Ok(members),
        _ => Err(DATA_NOT_AN_OBJECT.to_owned()),
    }
}

impl<'a> WireEntry<'a> {
    pub(super) fn into_entry(
        self,
        position: usize,
        tx_id: Option<i64>,
    ) -> Result<Entry<'a>, EnvelopeError> {
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
            Some(Data::Members(members)) => members,
            Some(Data::NotAnObject) => return Err(at(DATA_NOT_AN_OBJECT)),
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
