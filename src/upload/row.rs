//! A row as the write path carries it, whatever the database: its id and
//! the values it sets, as text each database's statements bind.

use std::borrow::Cow;

use super::schema::Column;

/// A row of a statement: its id and the values it sets, as the text the
/// column type parses (`None` is SQL NULL; see `coerce`).
#[derive(Debug, Clone)]
pub struct Row<'c, 'a> {
    pub id: Cow<'a, str>,
    pub values: Vec<(&'c Column, Option<Cow<'a, str>>)>,
}

impl Row<'_, '_> {
    /// The value for `column`: `None` when the row does not carry it.
    pub(crate) fn value(&self, column: &str) -> Option<Option<&str>> {
        self.values
            .iter()
            .find(|(c, _)| c.name == column)
            .map(|(_, v)| v.as_deref())
    }
}

/// A JSON string literal for `text`.
pub fn json_string(text: &str) -> String {
    // Serializing a &str cannot fail.
    serde_json::to_string(text).unwrap_or_default()
}
