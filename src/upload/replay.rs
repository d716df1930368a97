//! Replaying a dead letter: its entries run again through the write path
//! as one client transaction, carefully, and it is marked replayed in the
//! same database transaction, so a replay happens once. Written once for
//! every database; `backend::factory::replay` opens the transaction.

use super::apply::{Actor, Apply, Mode, apply_in};
use super::backend::Backend;
use super::batch::{Batch, ClientTransaction};
use super::failure::Failure;
use super::plan::Allowed;
use super::report::Report;
use crate::db::Own;
use crate::error::ErrorCode;

#[derive(Debug, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ReplayOutcome {
    Applied(Report),
    Rejected(Report),
    AlreadyReplayed,
    NotFound,
}

/// Replays dead letter `id` inside the open transaction of `conn` (the
/// app's writes as `rls_role`, if set).
pub async fn replay_in(
    conn: &mut impl Backend,
    own: &Own,
    allowed: &Allowed<'_>,
    rls_role: Option<&str>,
    id: i64,
) -> Result<ReplayOutcome, Failure> {
    let Some(letter) = conn.lock_dead_letter(own, id).await? else {
        return Ok(ReplayOutcome::NotFound);
    };
    if letter.replayed {
        return Ok(ReplayOutcome::AlreadyReplayed);
    }
    let body = format!(r#"{{"batch":{}}}"#, letter.entries);
    let mut batch =
        Batch::parse(body.as_bytes(), None).map_err(|e| Failure::Unexpected(anyhow::anyhow!(e)))?;
    // The client the entries came from (delta columns need it); its
    // progress is not tracked: these op_ids were consumed already.
    batch.client_id = letter.client_id;
    // The entries form one client transaction, whatever their tx_id says.
    let all: Vec<_> = batch
        .transactions
        .drain(..)
        .flat_map(|t| t.entries)
        .collect();
    batch.transactions = vec![ClientTransaction {
        tx_id: all.first().and_then(|e| e.tx_id),
        entries: all,
    }];
    let claims = serde_json::json!({ "sub": letter.user_id });
    let options = Apply {
        actor: Actor {
            user_id: &letter.user_id,
            claims: &claims,
        },
        dead_letters: None,
        track_progress: false,
        rls_role,
        own,
    };
    conn.check_constraints_immediately().await?;
    let report = apply_in(conn, allowed, &batch, &options, Mode::Careful, true).await?;
    if report.rejected == 0 {
        conn.mark_replayed(own, id).await?;
        return Ok(ReplayOutcome::Applied(report));
    }
    let code = report
        .results
        .iter()
        .find_map(|r| r.code.filter(|c| *c != ErrorCode::TransactionRejected))
        .unwrap_or(ErrorCode::TransactionRejected);
    conn.note_replay_failure(own, id, &format!("rejected again: {code}"))
        .await?;
    Ok(ReplayOutcome::Rejected(report))
}
