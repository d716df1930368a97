//! Validates entries against the allow-list and groups them into statements.
//!
//! Consecutive entries on the same table with the same operation become one
//! set-based statement. A statement never touches the same row twice: a
//! repeated id starts the next statement. That keeps the result equal to
//! applying the entries one at a time, including which write fails: merging
//! two writes of one row could hide a failing intermediate state.

use std::borrow::Cow;

use super::batch::{Entry, Op, truncate_for_message};
use super::coerce::coerce;
use super::policy::resolve::Policy;
use super::prepared::{Position, Prepared};
use super::rejection::Rejection;
use super::row::Row;
use super::schema::{Catalog, Column, Table};
use super::settings::{ConflictStrategy, WriteSettings};
use crate::error::ErrorCode;

struct AllowedTable<'c> {
    table: &'c Table,
    owned: Option<Vec<&'c Column>>,
    policy: Policy<'c>,
    one_at_a_time: bool,
}

/// Per table, the resolved client-owned columns and policy.
pub struct Allowed<'c> {
    tables: std::collections::HashMap<&'c str, AllowedTable<'c>>,
}

impl<'c> Allowed<'c> {
    /// Tables whose policy no longer resolves (the schema changed under a
    /// running server) are left out: their entries get `unknown_table`.
    pub fn new(catalog: &'c Catalog, settings: &'c WriteSettings) -> Self {
        let mut tables = std::collections::HashMap::new();
        for (name, table_settings) in &settings.tables {
            let Some(table) = catalog.tables.get(name) else {
                continue;
            };
            let Ok(policy) = Policy::resolve(table, table_settings) else {
                continue;
            };
            // The version column is the policy's: a PUT that replaces a
            // row keeps (then bumps) it rather than resetting it to its
            // DEFAULT, whatever `columns` lists.
            let managed = policy
                .conflict
                .filter(|c| c.strategy == ConflictStrategy::Version)
                .map(|c| c.column.name.as_str());
            let owned = table_settings.columns.as_ref().map(|names| {
                names
                    .iter()
                    .filter_map(|n| table.column(n))
                    .filter(|c| c.writable && Some(c.name.as_str()) != managed)
                    .collect::<Vec<_>>()
            });
            let one_at_a_time = settings.policies_one_row_at_a_time || !policy.set_based();
            tables.insert(
                table.name.as_str(),
                AllowedTable {
                    table,
                    owned,
                    policy,
                    one_at_a_time,
                },
            );
        }
        Self { tables }
    }

    /// Checks the table and columns and coerces the values.
    pub fn prepare<'s, 'a>(
        &'s self,
        at: Position,
        entry: &Entry<'a>,
    ) -> Result<Prepared<'s, 'a>, Rejection> {
        if let Some(refusal) = entry.refusal() {
            return Err(refusal);
        }
        let Some(AllowedTable {
            table,
            owned,
            policy,
            one_at_a_time,
        }) = self.tables.get(entry.table.as_ref())
        else {
            return Err(Rejection::new(
                ErrorCode::UnknownTable,
                format!(
                    "table {} is not writable by clients",
                    truncate_for_message(&entry.table)
                ),
            ));
        };
        if entry.id.contains('\0') {
            return Err(Rejection::new(
                ErrorCode::InvalidValue,
                "the row id contains a NUL character (\\u0000), which Postgres cannot store",
            ));
        }
        let version_column = policy
            .conflict
            .filter(|c| c.strategy == ConflictStrategy::Version)
            .map(|c| c.column.name.as_str());
        let mut values: Vec<(&Column, Option<Cow<'a, str>>)> = Vec::with_capacity(entry.data.len());
        let mut conflict_value = None;
        let mut read_only_hits = Vec::new();
        if entry.op != Op::Delete {
            for (key, raw) in &entry.data {
                if Some(key.as_ref()) == version_column {
                    conflict_value = Some(Cow::Borrowed(raw.get()));
                    continue;
                }
                if policy.read_only.contains(&key.as_ref()) {
                    read_only_hits.push(key.to_string());
                    continue;
                }
                let column = match owned {
                    Some(owned) => owned.iter().copied().find(|c| c.name == key.as_ref()),
                    None => table.column(key).filter(|c| c.writable),
                };
                let Some(column) = column else {
                    return Err(Rejection::new(
                        ErrorCode::UnknownColumn,
                        format!(
                            "column {} of table `{}` is not writable by clients",
                            truncate_for_message(key),
                            table.name
                        ),
                    ));
                };
                let value = coerce(column, raw).map_err(|message| {
                    Rejection::new(ErrorCode::InvalidValue, message).with_column(&column.name)
                })?;
                // A repeated key: the last one wins, as in JavaScript.
                if let Some(earlier) = values.iter().position(|(c, _)| c.name == column.name) {
                    values.remove(earlier);
                }
                values.push((column, value));
            }
        }
        Ok(Prepared {
            at,
            table,
            owned: owned.as_deref(),
            policy: policy.checks_rows().then_some(policy),
            one_at_a_time: *one_at_a_time,
            op: entry.op,
            row: Row {
                id: entry.id.clone(),
                values,
            },
            conflict_value,
            read_only_hits,
        })
    }
}

/// One statement's worth of rows, a set of policy entries, or one entry of
/// a policy applied one row at a time.
#[derive(Debug)]
pub enum Step<'p, 'c, 'a> {
    Statement(Group<'p, 'c, 'a>),
    PerRow(&'p Prepared<'c, 'a>),
}

/// Entries of one table, each on a different row. Several operations share a
/// group only when the table's rows are independent (see `sql::combined`).
#[derive(Debug)]
pub struct Group<'p, 'c, 'a> {
    pub table: &'c Table,
    pub owned: Option<&'c [&'c Column]>,
    /// The table's policy: the group is checked and written by
    /// `policy::apply_set`.
    pub policy: Option<&'c Policy<'c>>,
    pub entries: Vec<&'p Prepared<'c, 'a>>,
}

impl<'p, 'c, 'a> Group<'p, 'c, 'a> {
    /// The rows of the entries with this operation.
    pub fn rows(&self, op: Op) -> Vec<&'p Row<'c, 'a>> {
        self.entries
            .iter()
            .filter(|e| e.op == op)
            .map(|e| &e.row)
            .collect()
    }

    /// The one operation of the group, if it has only one.
    pub fn single_op(&self) -> Option<Op> {
        let first = self.entries.first()?.op;
        self.entries.iter().all(|e| e.op == first).then_some(first)
    }
}

/// Whether two rows carry the same columns (each carries a column once).
fn same_columns(a: &Row, b: &Row) -> bool {
    a.values.len() == b.values.len()
        && a.values
            .iter()
            .all(|(c, _)| b.values.iter().any(|(d, _)| d.name == c.name))
}

/// How a backend tells which ids may name one row, for groups that mix
/// operations (`Backend::mix_key`).
pub type MixKey = for<'i> fn(&Table, &'i str) -> Option<Cow<'i, str>>;

/// What `group` remembers of the statement it is filling, so that the
/// next entry is checked against it without going over its entries.
struct Open<'p, 'c, 'a> {
    /// The rows it writes, by `RowKey` (foldhash: the keys are the
    /// client's ids, but the set lives for one request and only decides
    /// where a statement ends).
    ids: foldhash::HashSet<Cow<'p, str>>,
    /// The same rows by `mix_key`, worked out when an entry of another
    /// operation first asks to join (most statements keep one).
    mix_ids: MixIds<'p>,
    /// Its one operation, while it has only one.
    single_op: Option<Op>,
    /// Its first PUT, whose column set the others must carry.
    first_put: Option<&'p Row<'c, 'a>>,
}

/// An open statement's rows by `mix_key`.
enum MixIds<'p> {
    NotYetNeeded,
    Distinct(foldhash::HashSet<Cow<'p, str>>),
    /// Two may be one row, or one has no such key: the statement keeps one
    /// operation.
    Unmixable,
}

impl<'p> MixIds<'p> {
    fn of(keys: impl Iterator<Item = Option<Cow<'p, str>>>) -> Self {
        let mut distinct = foldhash::HashSet::default();
        for key in keys {
            if !key.is_some_and(|key| distinct.insert(key)) {
                return Self::Unmixable;
            }
        }
        Self::Distinct(distinct)
    }
}

impl<'p, 'c, 'a> Open<'p, 'c, 'a> {
    /// Whether `entry`, of another operation, may join `group`: by
    /// `mix_key`, none of its rows may be the entry's.
    fn mixes(
        &mut self,
        group: &Group<'p, 'c, 'a>,
        mix_key: Option<MixKey>,
        entry: &'p Prepared<'c, 'a>,
    ) -> bool {
        let Some(mix_key) = mix_key else {
            return false;
        };
        if matches!(self.mix_ids, MixIds::NotYetNeeded) {
            self.mix_ids = MixIds::of(group.entries.iter().map(|&e| mix_key(e.table, &e.row.id)));
        }
        match &self.mix_ids {
            MixIds::Distinct(distinct) => {
                mix_key(entry.table, &entry.row.id).is_some_and(|key| !distinct.contains(&key))
            }
            _ => false,
        }
    }

    /// Notes `entry`, now in the open statement.
    fn add(
        &mut self,
        mix_key: Option<MixKey>,
        entry: &'p Prepared<'c, 'a>,
        key: Option<Cow<'p, str>>,
    ) {
        if entry.op == Op::Put && self.first_put.is_none() {
            self.first_put = Some(&entry.row);
        }
        self.ids.extend(key);
        if let MixIds::Distinct(distinct) = &mut self.mix_ids
            && !mix_key
                .and_then(|mix_key| mix_key(entry.table, &entry.row.id))
                .is_some_and(|key| distinct.insert(key))
        {
            self.mix_ids = MixIds::Unmixable;
        }
    }
}

/// Groups entries, in order, into statements (see the module docs).
/// `mix_key`, where given, lets different operations of distinct rows share
/// a group where the table allows it.
pub fn group<'p, 'c, 'a>(
    entries: &[&'p Prepared<'c, 'a>],
    mix_key: Option<MixKey>,
) -> Vec<Step<'p, 'c, 'a>> {
    let mut steps: Vec<Step> = Vec::new();
    let mut open = Open {
        ids: foldhash::HashSet::default(),
        mix_ids: MixIds::NotYetNeeded,
        single_op: None,
        first_put: None,
    };
    for &entry in entries {
        if entry.policy.is_some() && entry.one_at_a_time {
            steps.push(Step::PerRow(entry));
            continue;
        }
        // PATCH {} changes nothing; it needs no statement (a policy may
        // still refuse it or report a conflict).
        if entry.policy.is_none() && entry.op == Op::Patch && entry.row.values.is_empty() {
            continue;
        }
        let last = match steps.last() {
            Some(Step::Statement(g)) => Some(g),
            _ => None,
        };
        let key = entry.table.row_key.of(&entry.row.id);
        let fits = last.is_some_and(|g| {
            std::ptr::eq(g.table, entry.table)
                && key.as_ref().is_some_and(|key| !open.ids.contains(key))
                && (open.single_op == Some(entry.op)
                    || (g.table.rows_independent && open.mixes(g, mix_key, entry)))
                // Without declared columns a PUT statement covers one column
                // set (`apply_set` splits its writes by column set itself).
                && !(entry.op == Op::Put
                    && entry.policy.is_none()
                    && entry.owned.is_none()
                    && open
                        .first_put
                        .is_some_and(|row| !same_columns(row, &entry.row)))
        });
        if fits {
            if open.single_op != Some(entry.op) {
                open.single_op = None;
            }
        } else {
            open.ids.clear();
            open.mix_ids = MixIds::NotYetNeeded;
            open.single_op = Some(entry.op);
            open.first_put = None;
            steps.push(Step::Statement(Group {
                table: entry.table,
                owned: entry.owned,
                policy: entry.policy,
                entries: Vec::new(),
            }));
        }
        open.add(mix_key, entry, key);
        if let Some(Step::Statement(group)) = steps.last_mut() {
            group.entries.push(entry);
        }
    }
    // A stable lock order inside each statement.
    for step in &mut steps {
        if let Step::Statement(group) = step {
            group.entries.sort_by(|a, b| a.row.id.cmp(&b.row.id));
        }
    }
    steps
}
