//! A row as the database printed it (a JSON object's text: the current row
//! under lock, or a client's `old` values), read tolerantly. Members stay
//! raw JSON: a number beyond any float, or nesting of any depth, is kept as
//! its text. A value the database stored must never be a reason to refuse
//! later writes of its row.

use std::collections::HashMap;

use serde_json::value::RawValue;

pub struct Stored<'s> {
    text: &'s str,
    members: HashMap<String, &'s RawValue>,
}

impl<'s> Stored<'s> {
    /// `None` when `text` is not a JSON object.
    pub fn parse(text: &'s str) -> Option<Self> {
        // Parsing into raw values skips each member's content without
        // converting numbers or recursing into it.
        let members = serde_json::from_str(text).ok()?;
        Some(Self { text, members })
    }

    /// The row's JSON text, as the database printed it.
    pub fn json(&self) -> &'s str {
        self.text
    }

    /// A member as the text it stands for: a string decoded, any other
    /// value as its JSON text, `None` for null or a missing member.
    pub fn text(&self, column: &str) -> Option<String> {
        raw_as_text(self.members.get(column)?)
    }

    /// The members' names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.members.keys().map(String::as_str)
    }

    /// A member's raw JSON.
    pub fn raw(&self, column: &str) -> Option<&'s RawValue> {
        self.members.get(column).copied()
    }
}

/// Raw JSON as the text it stands for (see `Stored::text`).
pub fn raw_as_text(raw: &RawValue) -> Option<String> {
    let json = raw.get();
    match json {
        "null" => None,
        _ if json.starts_with('"') => {
            Some(serde_json::from_str::<String>(json).unwrap_or_else(|_| json.to_owned()))
        }
        _ => Some(json.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::Stored;

    #[test]
    fn huge_numbers_and_deep_nesting_are_read_as_text() {
        let deep = format!("{}1{}", "[".repeat(500), "]".repeat(500));
        let row = format!(
            r#"{{"id":"a","meta":{{"x":1e400}},"deep":{deep},"n":12345678901234567890123,"s":"\u00e9","z":null}}"#
        );
        let stored = Stored::parse(&row).expect("a JSON object");
        assert_eq!(stored.text("id").as_deref(), Some("a"));
        assert_eq!(stored.text("meta").as_deref(), Some(r#"{"x":1e400}"#));
        assert_eq!(stored.text("deep"), Some(deep));
        assert_eq!(stored.text("n").as_deref(), Some("12345678901234567890123"));
        assert_eq!(stored.text("s").as_deref(), Some("é"));
        assert_eq!(stored.text("z"), None);
        assert_eq!(stored.text("missing"), None);
    }

    #[test]
    fn only_an_object_is_a_row() {
        assert!(Stored::parse("[1]").is_none());
        assert!(Stored::parse("not json").is_none());
    }
}
