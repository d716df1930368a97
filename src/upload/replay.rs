//! Replaying a dead letter: its entries run again through the write path
//! as one client transaction, carefully, and it is marked replayed in the
//! same database transaction, so a replay happens once.

use anyhow::Context;
use sqlx::PgPool;

use super::apply::{Actor, Apply, Mode, apply_in};
use super::batch::{Batch, ClientTransaction};
use super::plan::Allowed;
use super::postgres::sql;
use super::report::Report;
use crate::db::Own;
use crate::error::ErrorCode;
use crate::store::dead_letters;

#[derive(Debug, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ReplayOutcome {
    Applied(Report),
    Rejected(Report),
    AlreadyReplayed,
    NotFound,
}

/// Replays dead letter `id` (the app's writes as `rls_role`, if set).
pub async fn replay(
    db: &PgPool,
    own: &Own,
    allowed: &Allowed<'_>,
    rls_role: Option<&str>,
    id: i64,
) -> anyhow::Result<ReplayOutcome> {
    let mut tx = db.begin().await.context("Failed to begin")?;
    let Some(letter) = dead_letters::lock_for_replay(&mut tx, own, id)
        .await
        .context("Failed to read the dead letter")?
    else {
        return Ok(ReplayOutcome::NotFound);
    };
    if letter.replayed {
        return Ok(ReplayOutcome::AlreadyReplayed);
    }
    let body = format!(r#"{{"batch":{}}}"#, letter.entries);
    let mut batch = Batch::parse(body.as_bytes(), None).map_err(|e| anyhow::anyhow!(e))?;
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
    sql::check_constraints_immediately(&mut tx)
        .await
        .map_err(super::failure::Failure::from)?;
    let report = apply_in(&mut *tx, allowed, &batch, &options, Mode::Careful, true).await?;
    let outcome = if report.rejected == 0 {
        dead_letters::mark_replayed(&mut tx, own, id).await?;
        ReplayOutcome::Applied(report)
    } else {
        let code = report
            .results
            .iter()
            .find_map(|r| r.code.filter(|c| *c != ErrorCode::TransactionRejected))
            .unwrap_or(ErrorCode::TransactionRejected);
        dead_letters::note_replay_failure(&mut tx, own, id, &format!("rejected again: {code}"))
            .await?;
        ReplayOutcome::Rejected(report)
    };
    tx.commit().await.context("Failed to commit the replay")?;
    Ok(outcome)
}
