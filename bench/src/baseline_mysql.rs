//! The baselines on MySQL/MariaDB: the same entries written straight to the
//! database with uplink's session settings. Values travel as uplink binds
//! them there: ids as uuid text, timestamps as DATETIME(6) text in UTC,
//! booleans as 0/1.

use std::fmt::Write;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::{Executor, MySqlConnection, MySqlPool};
use uuid::Uuid;

use crate::batch::{Batch, Entry, Patch, Put};

/// uplink's session: strict values, UTC, and READ COMMITTED (no gap locks
/// between concurrent upserts, as on Postgres).
const SESSION: [&str; 2] = [
    "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,\
     ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION', time_zone = '+00:00'",
    "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
];

/// Whether `url` names a MySQL or MariaDB server.
pub fn is_mysql_url(url: &str) -> bool {
    url.starts_with("mysql://") || url.starts_with("mariadb://")
}

/// The URL as sqlx (and uplink) spell it: MariaDB speaks the MySQL protocol.
pub fn sqlx_url(url: &str) -> String {
    match url.strip_prefix("mariadb://") {
        Some(rest) => format!("mysql://{rest}"),
        None => url.to_owned(),
    }
}

/// A plain pool for the baselines: as many connections as the load has.
pub async fn pool(url: &str, connections: usize) -> anyhow::Result<MySqlPool> {
    // sqlx's own session defaults are off: the session is exactly uplink's.
    let options = MySqlConnectOptions::from_str(&sqlx_url(url))
        .context("Failed to parse --database-url")?
        .pipes_as_concat(false)
        .no_engine_substitution(false)
        .timezone(None);
    MySqlPoolOptions::new()
        .max_connections(connections as u32)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(|conn, _| {
            Box::pin(async move {
                for statement in SESSION {
                    conn.execute(statement).await?;
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .context("Failed to connect to --database-url")
}

/// The local mysqld (or mariadbd) behind the database, from its pid file,
/// if the server runs on this machine.
pub async fn find_server(db: &MySqlPool) -> Option<u32> {
    let (datadir, pid_file): (String, String) =
        sqlx::query_as("SELECT CAST(@@datadir AS CHAR), CAST(@@pid_file AS CHAR)")
            .fetch_one(db)
            .await
            .ok()?;
    let pid: u32 = std::fs::read_to_string(std::path::Path::new(&datadir).join(pid_file))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).ok()?;
    (cmdline.contains("mysqld") || cmdline.contains("mariadbd")).then_some(pid)
}

fn datetime(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

/// `n` groups of `group` joined by commas: the placeholders of a statement.
fn repeat(group: &str, n: usize) -> String {
    let mut out = String::with_capacity((group.len() + 1) * n);
    for i in 0..n {
        if i > 0 {
            out.push(',');
        }
        out.push_str(group);
    }
    out
}

/// The lists the todos go into, for runs without uplink (which otherwise
/// creates them, as an app would).
pub async fn create_lists(db: &MySqlPool, ids: &[Uuid], owner: &str) -> anyhow::Result<()> {
    let sql = format!(
        "INSERT INTO lists (id, created_at, name, owner_id) VALUES {} \
         ON DUPLICATE KEY UPDATE name = VALUES(name), owner_id = VALUES(owner_id)",
        repeat("(?, ?, ?, ?)", ids.len())
    );
    let now = datetime(Utc::now());
    let mut query = sqlx::query(&sql);
    for (i, id) in ids.iter().enumerate() {
        query = query
            .bind(id.hyphenated())
            .bind(now.clone())
            .bind(format!("bench list {i}"))
            .bind(owner);
    }
    query
        .execute(db)
        .await
        .context("Failed to create the benchmark's lists")?;
    Ok(())
}

/// The reference demos' MySQL persister (Node.js): per entry, an insert of
/// the entry's keys (then `id`) with `ON DUPLICATE KEY UPDATE` of the keys,
/// an update of the patched keys, a delete by id; prepared statements.
const DEMO_PUT: &str = "INSERT INTO todos (created_at, description, completed, created_by, list_id, id) \
     VALUES (?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE created_at = VALUES(created_at), \
     description = VALUES(description), completed = VALUES(completed), \
     created_by = VALUES(created_by), list_id = VALUES(list_id)";
const DEMO_PATCH: &str =
    "UPDATE todos SET completed = ?, completed_at = ?, completed_by = ? WHERE id = ?";
const DEMO_DELETE: &str = "DELETE FROM todos WHERE id = ?";

/// The reference demos' way: each entry its own statement, in order.
pub async fn naive(pool: &MySqlPool, batch: &Batch) -> anyhow::Result<u64> {
    let mut tx = pool.begin().await.context("begin")?;
    for entry in batch.entries() {
        match entry {
            Entry::Put(p) => {
                sqlx::query(DEMO_PUT)
                    .bind(datetime(p.created_at))
                    .bind(&p.description)
                    .bind(false)
                    .bind(&batch.user_id)
                    .bind(p.list_id.hyphenated())
                    .bind(p.id.hyphenated())
                    .execute(&mut *tx)
                    .await
            }
            Entry::Patch(p) => {
                sqlx::query(DEMO_PATCH)
                    .bind(true)
                    .bind(datetime(p.completed_at))
                    .bind(&batch.user_id)
                    .bind(p.id.hyphenated())
                    .execute(&mut *tx)
                    .await
            }
            Entry::Delete(id) => {
                sqlx::query(DEMO_DELETE)
                    .bind(id.hyphenated())
                    .execute(&mut *tx)
                    .await
            }
        }
        .context("naive statement")?;
    }
    tx.commit().await.context("commit")?;
    Ok(batch.len() as u64)
}

/// The PUTs as one multi-row upsert (the MySQL form of Postgres's
/// `INSERT … SELECT FROM unnest(…) ON CONFLICT`).
async fn upsert(conn: &mut MySqlConnection, user_id: &str, puts: &[&Put]) -> anyhow::Result<()> {
    let sql = format!(
        "INSERT INTO todos (id, created_at, description, completed, created_by, list_id) VALUES {} \
         ON DUPLICATE KEY UPDATE created_at = VALUES(created_at), description = VALUES(description), \
         completed = VALUES(completed), created_by = VALUES(created_by), list_id = VALUES(list_id)",
        repeat("(?, ?, ?, ?, ?, ?)", puts.len())
    );
    let mut query = sqlx::query(&sql);
    for p in puts {
        query = query
            .bind(p.id.hyphenated())
            .bind(datetime(p.created_at))
            .bind(&p.description)
            .bind(false)
            .bind(user_id)
            .bind(p.list_id.hyphenated());
    }
    query.execute(conn).await.context("sql-limit upsert")?;
    Ok(())
}

/// The PATCHed rows in one statement, as Postgres's LIMIT_MIXED changes
/// them: completed, the time per row, and the user.
async fn update(
    conn: &mut MySqlConnection,
    user_id: &str,
    patches: &[&Patch],
) -> anyhow::Result<()> {
    let mut sql = String::from("UPDATE todos SET completed_at = CASE id");
    for _ in patches {
        sql.push_str(" WHEN ? THEN ?");
    }
    let _ = write!(
        sql,
        " END, completed = 1, completed_by = ? WHERE id IN ({})",
        repeat("?", patches.len())
    );
    let mut query = sqlx::query(&sql);
    for p in patches {
        query = query.bind(p.id.hyphenated()).bind(datetime(p.completed_at));
    }
    query = query.bind(user_id);
    for p in patches {
        query = query.bind(p.id.hyphenated());
    }
    query.execute(conn).await.context("sql-limit update")?;
    Ok(())
}

async fn delete(conn: &mut MySqlConnection, ids: &[Uuid]) -> anyhow::Result<()> {
    let sql = format!("DELETE FROM todos WHERE id IN ({})", repeat("?", ids.len()));
    let mut query = sqlx::query(&sql);
    for id in ids {
        query = query.bind(id.hyphenated());
    }
    query.execute(conn).await.context("sql-limit delete")?;
    Ok(())
}

/// uplink's progress table, in the database uplink keeps beside the app's
/// (by default `<app database>_uplink`).
fn progress_table(pool: &MySqlPool) -> String {
    let app = pool
        .connect_options()
        .get_database()
        .unwrap_or_default()
        .to_owned();
    format!("`{app}_uplink`.`client_progress`")
}

/// The exactly-once progress row uplink keeps: never lowered.
fn progress(pool: &MySqlPool) -> String {
    format!(
        "INSERT INTO {} (user_id, client_id, last_op_id, updated_at) \
         VALUES (?, ?, ?, CURRENT_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE \
         last_op_id = GREATEST(last_op_id, VALUES(last_op_id)), updated_at = VALUES(updated_at)",
        progress_table(pool)
    )
}

/// The practical ceiling: a batch of PUTs is one statement; a mixed batch
/// one transaction of a statement per kind of change (MySQL has no
/// writable CTEs to make it one statement, as on Postgres).
pub async fn sql_limit(pool: &MySqlPool, batch: &Batch) -> anyhow::Result<u64> {
    let (mut puts, mut patches, mut deletes) = (Vec::new(), Vec::new(), Vec::new());
    for entry in batch.entries() {
        match entry {
            Entry::Put(p) => puts.push(p),
            Entry::Patch(p) => patches.push(p),
            Entry::Delete(id) => deletes.push(*id),
        }
    }
    let user_id = batch.user_id.as_str();
    match &batch.client_id {
        None if patches.is_empty() && deletes.is_empty() => {
            let mut conn = pool.acquire().await.context("acquire")?;
            if !puts.is_empty() {
                upsert(&mut conn, user_id, &puts).await?;
            }
        }
        client_id => {
            let mut tx = pool.begin().await.context("begin")?;
            sqlx::query(&progress(pool))
                .bind(user_id)
                .bind(client_id.as_deref().unwrap_or("bench"))
                .bind(batch.last_op_id())
                .execute(&mut *tx)
                .await
                .context("sql-limit progress")?;
            if !puts.is_empty() {
                upsert(&mut tx, user_id, &puts).await?;
            }
            if !patches.is_empty() {
                update(&mut tx, user_id, &patches).await?;
            }
            if !deletes.is_empty() {
                delete(&mut tx, &deletes).await?;
            }
            tx.commit().await.context("commit")?;
        }
    }
    Ok(batch.len() as u64)
}

/// Empties the todos and refreshes statistics, so each run starts from an
/// empty, freshly analysed table. (InnoDB has no CHECKPOINT to issue: it
/// flushes dirty pages in the background.)
pub async fn reset_todos(pool: &MySqlPool) -> anyhow::Result<()> {
    // TRUNCATE is DDL (it commits by itself); a table that another table's
    // foreign key references cannot be truncated and is emptied instead.
    if let Err(err) = pool.execute("TRUNCATE TABLE todos").await {
        eprintln!("  TRUNCATE todos failed ({err}); deleting the rows instead");
        pool.execute("DELETE FROM todos")
            .await
            .context("DELETE FROM todos")?;
    }
    pool.execute(
        format!(
            "DELETE FROM {} WHERE client_id LIKE 'bench-%'",
            progress_table(pool)
        )
        .as_str(),
    )
    .await
    .context("clearing the benchmark's client progress")?;
    pool.execute("ANALYZE TABLE todos")
        .await
        .context("ANALYZE TABLE todos")?;
    Ok(())
}

pub async fn fill_todos(
    pool: &MySqlPool,
    rows: u64,
    lists: &[Uuid],
    owner: &str,
) -> anyhow::Result<()> {
    // Six digit tables crossed: up to a million rows without a recursive
    // CTE (MySQL stops those at 1 000 levels by default).
    let digits = "(SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 \
                  UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 \
                  UNION ALL SELECT 8 UNION ALL SELECT 9)";
    let list = lists.first().context("no lists")?.hyphenated().to_string();
    let mut left = rows;
    while left > 0 {
        let chunk = left.min(1_000_000);
        sqlx::query(&format!(
            "INSERT INTO todos (id, created_at, description, completed, created_by, list_id) \
             SELECT UUID(), UTC_TIMESTAMP(6), 'filler', 0, ?, ? \
             FROM {digits} a, {digits} b, {digits} c, {digits} d, {digits} e, {digits} f LIMIT {chunk}"
        ))
        .bind(owner)
        .bind(&list)
        .execute(pool)
        .await
        .context("Failed to fill todos")?;
        left -= chunk;
    }
    pool.execute("ANALYZE TABLE todos")
        .await
        .context("ANALYZE TABLE todos")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mariadb_urls_are_mysql_urls_for_sqlx() {
        assert!(is_mysql_url("mariadb://root@127.0.0.1:3306/db"));
        assert!(is_mysql_url("mysql://root@127.0.0.1/"));
        assert!(!is_mysql_url("postgres://localhost/db"));
        assert_eq!(sqlx_url("mariadb://u@h:1/d?x=1"), "mysql://u@h:1/d?x=1");
        assert_eq!(sqlx_url("mysql://u@h/d"), "mysql://u@h/d");
    }

    #[test]
    fn values_are_in_the_forms_mysql_parses() {
        let t = DateTime::<Utc>::from_timestamp(1_767_225_600, 123_000_000).expect("a time");
        assert_eq!(datetime(t), "2026-01-01 00:00:00.123000");
        assert_eq!(repeat("(?, ?)", 3), "(?, ?),(?, ?),(?, ?)");
        assert_eq!(repeat("?", 1), "?");
    }
}
