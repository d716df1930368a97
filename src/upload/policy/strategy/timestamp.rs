//! `timestamp`: a write whose timestamp column is older than the server's
//! is stale.

use serde_json::Value;

use super::judgement::Judgement;
use crate::error::ErrorCode;
use crate::upload::policy::values::{as_text, parse_time, value_of};
use crate::upload::schema::Column;
use crate::upload::sql::Row;

pub fn judge<'c, 'a>(column: &'c Column, row: Row<'c, 'a>, server: &Value) -> Judgement<'c, 'a> {
    let client = value_of(&row, &column.name).and_then(|t| parse_time(&t));
    let on_server = server
        .get(&column.name)
        .and_then(as_text)
        .and_then(|t| parse_time(&t));
    if let (Some(client), Some(on_server)) = (client, on_server)
        && client < on_server
    {
        return Judgement::Stale {
            row,
            code: ErrorCode::StaleUpdate,
            message: format!("the server's row was modified at {on_server}, after this write"),
        };
    }
    Judgement::Current {
        row,
        bump_version: None,
    }
}
