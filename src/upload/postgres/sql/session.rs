//! Settings of the database transaction a batch runs in: the role its
//! writes run as, and when constraints are checked.

use sqlx::PgConnection;

use super::statement::quote_ident;

/// Runs the app's writes as `role` with the PostgREST request settings
/// (`claims` is the verified token's claims as JSON), so row-level security
/// policies written for PostgREST/Supabase hold.
pub async fn assume_role(
    conn: &mut PgConnection,
    role: &str,
    claims: &str,
    user_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "SELECT set_config('request.jwt.claims', $1, true), set_config('request.jwt.claim.sub', $2, true)",
    )
    .bind(claims)
    .bind(user_id)
    .execute(&mut *conn)
    .await?;
    set_role(conn, role).await
}

/// Back to uplink's own role (its bookkeeping runs as uplink).
pub async fn reset_role(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("RESET ROLE").execute(conn).await.map(|_| ())
}

async fn set_role(conn: &mut PgConnection, role: &str) -> Result<(), sqlx::Error> {
    sqlx::query(&format!("SET LOCAL ROLE {}", quote_ident(role)))
        .execute(conn)
        .await
        .map(|_| ())
}

/// Checks deferred constraints per statement, so a violation is attributed
/// to its client transaction rather than failing the commit.
pub async fn check_constraints_immediately(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SET CONSTRAINTS ALL IMMEDIATE")
        .execute(conn)
        .await
        .map(|_| ())
}

/// Of `ids`, those that exist though `role` cannot see them (row-level
/// security): read as uplink, then back to `role`.
pub async fn hidden_rows(
    conn: &mut PgConnection,
    table: &crate::upload::schema::Table,
    role: &str,
    ids: &[&str],
) -> Result<Vec<String>, sqlx::Error> {
    reset_role(conn).await?;
    let existing: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT \"id\"::text FROM {} WHERE \"id\" = ANY($1::text[]::{}[])",
        quote_ident(&table.name),
        table.id_type
    ))
    .persistent(false)
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    set_role(conn, role).await?;
    Ok(existing)
}
