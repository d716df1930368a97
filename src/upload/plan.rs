//! Validates entries against the allow-list and groups them into statements.
//!
//! Consecutive entries on the same table with the same operation become one
//! set-based statement. A statement never touches the same row twice: a
//! repeated id starts the next statement. That keeps the result equal to
//! applying the entries one at a time, including which write fails: merging
//! two writes of one row could hide a failing intermediate state.

use std::borrow::Cow;
use std::collections::HashSet;

use super::coerce::coerce;
use super::envelope::{Entry, Op, truncate_for_message};
use super::report::Rejection;
use super::schema::{Catalog, Column, Table};
use super::settings::WriteSettings;
use super::sql::Row;

/// An entry that passed validation: its table and coerced values.
#[derive(Debug, Clone)]
pub struct Prepared<'c, 'a> {
    pub table: &'c Table,
    /// The client-owned columns, when the table declares them.
    pub owned: Option<&'c [&'c Column]>,
    pub op: Op,
    pub row: Row<'c, 'a>,
}

/// Per table, the resolved client-owned columns (built once per catalogue).
#[derive(Debug, Default)]
pub struct Allowed<'c> {
    tables: std::collections::HashMap<&'c str, (&'c Table, Option<Vec<&'c Column>>)>,
}

impl<'c> Allowed<'c> {
    pub fn new(catalog: &'c Catalog, settings: &WriteSettings) -> Self {
        let mut tables = std::collections::HashMap::new();
        for (name, table_settings) in &settings.tables {
            let Some(table) = catalog.tables.get(name) else {
                continue;
            };
            let owned = table_settings.columns.as_ref().map(|names| {
                names
                    .iter()
                    .filter_map(|n| table.column(n))
                    .filter(|c| c.writable)
                    .collect::<Vec<_>>()
            });
            tables.insert(table.name.as_str(), (table, owned));
        }
        Self { tables }
    }

    /// Checks the table and columns and coerces the values.
    pub fn prepare<'s, 'a>(&'s self, entry: &Entry<'a>) -> Result<Prepared<'s, 'a>, Rejection> {
        let Some((table, owned)) = self.tables.get(entry.table.as_ref()) else {
            return Err(Rejection::new(
                "unknown_table",
                format!(
                    "table {} is not writable by clients",
                    truncate_for_message(&entry.table)
                ),
            ));
        };
        let mut values: Vec<(&Column, Cow<'a, str>)> = Vec::with_capacity(entry.data.len());
        if entry.op != Op::Delete {
            for (key, raw) in &entry.data {
                let column = match owned {
                    Some(owned) => owned.iter().copied().find(|c| c.name == key.as_ref()),
                    None => table.column(key).filter(|c| c.writable),
                };
                let Some(column) = column else {
                    return Err(Rejection::new(
                        "unknown_column",
                        format!(
                            "column {} of table `{}` is not writable by clients",
                            truncate_for_message(key),
                            table.name
                        ),
                    ));
                };
                let value = coerce(column, raw).map_err(|message| {
                    Rejection::new("invalid_value", message).with_column(&column.name)
                })?;
                // A repeated key: the last one wins, as in JavaScript.
                values.retain(|(c, _)| c.name != column.name);
                values.push((column, value));
            }
        }
        Ok(Prepared {
            table,
            owned: owned.as_deref(),
            op: entry.op,
            row: Row {
                id: entry.id.clone(),
                values,
            },
        })
    }
}

/// One statement's worth of rows.
#[derive(Debug)]
pub struct Group<'p, 'c, 'a> {
    pub table: &'c Table,
    pub owned: Option<&'c [&'c Column]>,
    pub op: Op,
    pub rows: Vec<&'p Row<'c, 'a>>,
}

fn column_set(row: &Row) -> Vec<String> {
    let mut names: Vec<String> = row.values.iter().map(|(c, _)| c.name.clone()).collect();
    names.sort();
    names
}

/// Groups entries, in order, into statements (see the module docs).
pub fn group<'p, 'c, 'a>(entries: &[&'p Prepared<'c, 'a>]) -> Vec<Group<'p, 'c, 'a>> {
    let mut groups: Vec<Group> = Vec::new();
    let mut ids: HashSet<&str> = HashSet::new();
    for entry in entries {
        // PATCH {} changes nothing; it needs no statement.
        if entry.op == Op::Patch && entry.row.values.is_empty() {
            continue;
        }
        let fits = groups.last().is_some_and(|g| {
            std::ptr::eq(g.table, entry.table)
                && g.op == entry.op
                && !ids.contains(entry.row.id.as_str())
                // Without declared columns a PUT statement covers one column set.
                && !(entry.op == Op::Put
                    && entry.owned.is_none()
                    && column_set(g.rows[0]) != column_set(&entry.row))
        });
        if !fits {
            ids.clear();
            groups.push(Group {
                table: entry.table,
                owned: entry.owned,
                op: entry.op,
                rows: Vec::new(),
            });
        }
        ids.insert(entry.row.id.as_str());
        if let Some(group) = groups.last_mut() {
            group.rows.push(&entry.row);
        }
    }
    // A stable lock order inside each statement.
    for group in &mut groups {
        group.rows.sort_by(|a, b| a.id.cmp(&b.id));
    }
    groups
}
