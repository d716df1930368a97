//! A set of entries of one policy table, each on a different row, with the
//! decisions of `apply_row` in a few set-based statements: one reads and
//! locks the current rows, each entry is checked against its row once, then
//! the rows that pass are written together.

use super::check::{check_existing, check_new};
use super::guard::claim;
use super::resolve::Policy;
use super::row::apply_claimed;
use super::verdict::{ConflictNote, RowOutcome, Verdict, taken};
use super::write::{Decided, Insert, insert_set, write_set};
use crate::error::ErrorCode;
use crate::upload::backend::Backend;
use crate::upload::batch::{Entry, Op};
use crate::upload::failure::Failure;
use crate::upload::prepared::{Position, Prepared};
use crate::upload::rejection::Rejection;
use crate::upload::row::Row;
use crate::upload::schema::Table;

/// An entry of a set, with the batch entry it came from.
pub type SetEntry<'p, 'c, 'a, 'b> = (&'p Prepared<'c, 'a>, &'b Entry<'a>);

/// An entry of the set after `claim`.
struct Claim<'p, 'c, 'a, 'b> {
    prepared: &'p Prepared<'c, 'a>,
    entry: &'b Entry<'a>,
    row: Result<Row<'c, 'a>, Rejection>,
}

/// Entries refused so far, and how a refusal is reported.
struct Refusals {
    first: Option<Position>,
    refused: Vec<(Position, Rejection)>,
}

impl Refusals {
    fn note(&mut self, at: Position, rejection: Rejection) {
        self.refused.push((at, rejection));
    }

    /// The refusal of the earliest refused entry, if any. It names the
    /// entry only when that is the first of the set in the client's order:
    /// the one the one-at-a-time application refuses too. Which later entry
    /// that application blames depends on the writes before it.
    fn failure(&mut self) -> Option<Failure> {
        self.refused.sort_by_key(|(at, _)| *at);
        let (at, rejection) = self.refused.drain(..).next()?;
        Some(Failure::refused_at(
            Some(at).filter(|at| Some(*at) == self.first),
            rejection,
        ))
    }
}

/// What the set decided: writes to existing rows, new rows, notes.
struct Decisions<'p, 'c, 'a, 'b> {
    writes: Vec<Decided<'p, 'c, 'a>>,
    inserts: Vec<Insert<'p, 'c, 'a, 'b>>,
    notes: Vec<(Position, ConflictNote)>,
}

impl<'p, 'c, 'a> Decisions<'p, 'c, 'a, '_> {
    /// Files a verdict: a write to make, a note to report.
    fn file(&mut self, prepared: &'p Prepared<'c, 'a>, verdict: Verdict<'c, 'a>) {
        match verdict {
            Verdict::Keep(note) => self.notes.push((prepared.at, note)),
            Verdict::Write(write, note) => {
                self.writes.push(Decided { prepared, write });
                self.notes.extend(note.map(|n| (prepared.at, n)));
            }
        }
    }
}

/// Applies entries of one policy table, each on a different row. A new id
/// is inserted without replacing a row that appeared meanwhile, and an
/// entry that loses that race is checked against the winner's row, as in
/// `apply_row`. Returns the conflict notes in the client's order.
pub async fn apply_set<'c>(
    conn: &mut impl Backend,
    table: &Table,
    policy: &Policy<'c>,
    entries: &[SetEntry<'_, 'c, '_, '_>],
    user_id: &str,
    client_id: Option<&str>,
) -> Result<Vec<(Position, ConflictNote)>, Failure> {
    let claims: Vec<Claim> = entries
        .iter()
        .map(|&(prepared, entry)| Claim {
            prepared,
            entry,
            row: claim(table, policy, prepared, user_id, client_id),
        })
        .collect();
    let ids: Vec<&str> = claims
        .iter()
        .filter_map(|c| c.row.as_ref().ok().map(|r| &*r.id))
        .collect();
    let Some(current) = conn.lock_rows(table, &ids).await? else {
        // Two ids name one row (say, a uuid in upper and lower case).
        return apply_each(conn, table, policy, claims, user_id).await;
    };
    let mut refusals = Refusals {
        first: entries.iter().map(|(p, _)| p.at).min(),
        refused: Vec::new(),
    };
    let mut decisions = Decisions {
        writes: Vec::new(),
        inserts: Vec::new(),
        notes: Vec::new(),
    };
    let mut current = current.into_iter();
    for Claim {
        prepared,
        entry,
        row,
    } in claims
    {
        let row = match row {
            Ok(row) => row,
            Err(rejection) => {
                refusals.note(prepared.at, rejection);
                continue;
            }
        };
        let Some(locked) = current.next() else {
            continue;
        };
        match locked.current {
            Some(current) => {
                match check_existing(table, policy, prepared, entry, row, &current, user_id) {
                    Ok(verdict) => decisions.file(prepared, verdict),
                    Err(rejection) => refusals.note(prepared.at, rejection),
                }
            }
            // No row: PATCH and DELETE do nothing (deletes win); PUT inserts.
            None if prepared.op != Op::Put => {}
            None => match check_new(policy, entry, row.clone()) {
                Ok(new_row) => decisions.inserts.push(Insert {
                    prepared,
                    entry,
                    key: locked.key,
                    claimed: row,
                    row: new_row,
                }),
                Err(rejection) => refusals.note(prepared.at, rejection),
            },
        }
    }
    if let Some(failure) = refusals.failure() {
        return Err(failure);
    }
    write_set(conn, table, &decisions.writes).await?;
    let inserted = insert_set(conn, table, &decisions.inserts).await?;
    let lost: Vec<Insert> = decisions
        .inserts
        .into_iter()
        .filter(|insert| !inserted.contains(&insert.key))
        .collect();
    let mut notes = decisions.notes;
    if !lost.is_empty() {
        notes.extend(recheck_lost(conn, table, policy, lost, user_id, &mut refusals).await?);
    }
    notes.sort_by_key(|(at, _)| *at);
    Ok(notes)
}

/// Other transactions inserted these ids since the read: checks the entries
/// against their rows and writes them.
async fn recheck_lost<'c>(
    conn: &mut impl Backend,
    table: &Table,
    policy: &Policy<'c>,
    lost: Vec<Insert<'_, 'c, '_, '_>>,
    user_id: &str,
    refusals: &mut Refusals,
) -> Result<Vec<(Position, ConflictNote)>, Failure> {
    let ids: Vec<&str> = lost.iter().map(|i| &*i.claimed.id).collect();
    let Some(current) = conn.lock_rows(table, &ids).await? else {
        // The first read found these keys distinct.
        return Err(Failure::refused(Rejection::new(
            ErrorCode::DatabaseError,
            format!("two new ids of `{}` name one key", table.name),
        )));
    };
    let mut decisions = Decisions {
        writes: Vec::new(),
        inserts: Vec::new(),
        notes: Vec::new(),
    };
    for (insert, locked) in lost.into_iter().zip(current) {
        let Insert {
            prepared,
            entry,
            claimed,
            ..
        } = insert;
        let verdict = match locked.current {
            Some(current) => {
                check_existing(table, policy, prepared, entry, claimed, &current, user_id)
            }
            None => Err(taken(table, &claimed.id)),
        };
        match verdict {
            Ok(verdict) => decisions.file(prepared, verdict),
            Err(rejection) => refusals.note(prepared.at, rejection),
        }
    }
    if let Some(failure) = refusals.failure() {
        return Err(failure);
    }
    write_set(conn, table, &decisions.writes).await?;
    Ok(decisions.notes)
}

/// The claimed entries one at a time, in the client's order.
async fn apply_each<'c>(
    conn: &mut impl Backend,
    table: &Table,
    policy: &Policy<'c>,
    mut claims: Vec<Claim<'_, 'c, '_, '_>>,
    user_id: &str,
) -> Result<Vec<(Position, ConflictNote)>, Failure> {
    claims.sort_by_key(|c| c.prepared.at);
    let first = claims.first().map(|c| c.prepared.at);
    let mut notes = Vec::new();
    for Claim {
        prepared,
        entry,
        row,
    } in claims
    {
        let outcome = match row {
            Ok(row) => apply_claimed(conn, table, policy, prepared, entry, row, user_id).await,
            Err(rejection) => Err(Failure::refused(rejection)),
        };
        match outcome {
            Ok(RowOutcome::Applied) => {}
            Ok(RowOutcome::Conflict(note)) => notes.push((prepared.at, note)),
            // Only the set's first entry is the one-at-a-time culprit.
            Err(Failure::Refused { rejection, .. }) => {
                return Err(Failure::Refused {
                    at: Some(prepared.at).filter(|at| Some(*at) == first),
                    rejection,
                });
            }
            Err(other) => return Err(other),
        }
    }
    Ok(notes)
}
