//! What a request did, per entry: the response body of `POST /api/data`.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Applied,
    Duplicate,
    Conflict,
    Rejected,
}

/// Why an entry (and its client transaction) was not applied.
#[derive(Debug, Clone, Serialize)]
pub struct Rejection {
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sqlstate: Option<String>,
    #[serde(rename = "constraint", skip_serializing_if = "Option::is_none")]
    pub constraint_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
}

impl Rejection {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            sqlstate: None,
            constraint_name: None,
            column: None,
        }
    }

    pub fn with_column(mut self, column: &str) -> Self {
        self.column = Some(column.to_owned());
        self
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct EntryResult {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub op_id: Option<i64>,
    pub table: String,
    pub id: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(rename = "constraint", skip_serializing_if = "Option::is_none")]
    pub constraint_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Report {
    pub applied: usize,
    pub duplicates: usize,
    pub conflicts: usize,
    pub rejected: usize,
    /// Every entry whose status is not `applied`, in request order.
    pub results: Vec<EntryResult>,
}
