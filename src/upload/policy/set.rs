//! A set of entries of one policy table, each on a different row, with the
//! decisions of `apply_row` in a few set-based statements: one reads and
//! locks the current rows, each entry is checked against its row once, then
//! the rows that pass are written together.

use sqlx::PgConnection;

use super::check::{check_existing, check_new};
use super::guard::claim;
use super::resolve::Policy;
use super::row::apply_claimed;
use super::verdict::{ConflictNote, RowFailure, RowOutcome, Verdict, taken};
use super::write::{Decided, Insert, insert_set, write_set};
use crate::upload::batch::{Entry, Op};
use crate::upload::prepared::{Position, Prepared};
use crate::upload::rejection::Rejection;
use crate::upload::schema::Table;
use crate::upload::sql::{self, Row};

/// Why a set of policy entries was not applied.
pub enum SetFailure {
    /// The policy refused this entry, the first of the set in the client's
    /// order: the one the one-at-a-time application refuses too.
    Refused(Position, Rejection),
    /// The policy refused a later entry: which entry the one-at-a-time
    /// application blames depends on the writes before it.
    RefusedLater(Rejection),
    Db(sqlx::Error),
}

impl From<sqlx::Error> for SetFailure {
    fn from(err: sqlx::Error) -> Self {
        Self::Db(err)
    }
}

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
    fn note(&mut self, at: Position, failure: RowFailure) -> Result<(), sqlx::Error> {
        match failure {
            RowFailure::Refused(rejection) => {
                self.refused.push((at, rejection));
                Ok(())
            }
            RowFailure::Db(err) => Err(err),
        }
    }

    /// The refusal of the earliest refused entry, if any.
    fn failure(&mut self) -> Option<SetFailure> {
        self.refused.sort_by_key(|(at, _)| *at);
        match self.refused.drain(..).next() {
            Some((at, rejection)) if Some(at) == self.first => {
                Some(SetFailure::Refused(at, rejection))
            }
            Some((_, rejection)) => Some(SetFailure::RefusedLater(rejection)),
            None => None,
        }
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
    conn: &mut PgConnection,
    table: &Table,
    policy: &Policy<'c>,
    entries: &[SetEntry<'_, 'c, '_, '_>],
    user_id: &str,
    client_id: Option<&str>,
) -> Result<Vec<(Position, ConflictNote)>, SetFailure> {
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
        .filter_map(|c| c.row.as_ref().ok().map(|r| r.id.as_str()))
        .collect();
    let Some(current) = sql::lock_rows(conn, table, &ids).await? else {
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
                refusals.note(prepared.at, rejection.into())?;
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
                    Err(failure) => refusals.note(prepared.at, failure)?,
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
                Err(failure) => refusals.note(prepared.at, failure)?,
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
    conn: &mut PgConnection,
    table: &Table,
    policy: &Policy<'c>,
    lost: Vec<Insert<'_, 'c, '_, '_>>,
    user_id: &str,
    refusals: &mut Refusals,
) -> Result<Vec<(Position, ConflictNote)>, SetFailure> {
    let ids: Vec<&str> = lost.iter().map(|i| i.claimed.id.as_str()).collect();
    // The first read found these keys distinct.
    let current = sql::lock_rows(conn, table, &ids)
        .await?
        .ok_or_else(|| sqlx::Error::Decode("two new ids name one key".into()))?;
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
            Err(failure) => refusals.note(prepared.at, failure)?,
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
    conn: &mut PgConnection,
    table: &Table,
    policy: &Policy<'c>,
    mut claims: Vec<Claim<'_, 'c, '_, '_>>,
    user_id: &str,
) -> Result<Vec<(Position, ConflictNote)>, SetFailure> {
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
            Err(rejection) => Err(RowFailure::Refused(rejection)),
        };
        match outcome {
            Ok(RowOutcome::Applied) => {}
            Ok(RowOutcome::Conflict(note)) => notes.push((prepared.at, note)),
            Err(RowFailure::Refused(rejection)) if Some(prepared.at) == first => {
                return Err(SetFailure::Refused(prepared.at, rejection));
            }
            Err(RowFailure::Refused(rejection)) => return Err(SetFailure::RefusedLater(rejection)),
            Err(RowFailure::Db(err)) => return Err(SetFailure::Db(err)),
        }
    }
    Ok(notes)
}
