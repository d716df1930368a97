//! Why an entry (and its client transaction) was not applied.

use serde::Serialize;

use crate::error::ErrorCode;

#[derive(Debug, Clone, Serialize)]
pub struct Rejection {
    pub code: ErrorCode,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sqlstate: Option<String>,
    #[serde(rename = "constraint", skip_serializing_if = "Option::is_none")]
    pub constraint_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
}

impl Rejection {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
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
