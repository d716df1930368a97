//! The baselines on Postgres: the same entries written straight to the
//! database, with uplink's session settings (UTC, and the plan mode it uses
//! for the statements at hand).

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::batch::{Batch, Entry};
use crate::procfs;

/// A plain pool for the baselines: as many connections as the load has.
pub async fn pool(url: &str, connections: usize, plan_cache_mode: &str) -> anyhow::Result<PgPool> {
    let options = PgConnectOptions::from_str(url)
        .context("Failed to parse --database-url")?
        .application_name("uplink-bench")
        .options([("TimeZone", "UTC"), ("plan_cache_mode", plan_cache_mode)]);
    PgPoolOptions::new()
        .max_connections(connections as u32)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options)
        .await
        .context("Failed to connect to --database-url")
}

/// The local postmaster behind the database, if the database is local.
pub async fn find_postmaster(db: &PgPool) -> Option<u32> {
    let backend: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(db)
        .await
        .ok()?;
    let is_postgres = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.contains("postgres"))
    };
    let backend = u32::try_from(backend).ok()?;
    if !is_postgres(backend) {
        return None;
    }
    procfs::parent_pid(backend).filter(|p| is_postgres(*p))
}

/// The lists the todos go into, for runs without uplink (which otherwise
/// creates them, as an app would).
pub async fn create_lists(db: &PgPool, ids: &[Uuid], owner: &str) -> anyhow::Result<()> {
    let names: Vec<String> = (0..ids.len()).map(|i| format!("bench list {i}")).collect();
    sqlx::query(
        "INSERT INTO lists (id, name, owner_id) \
         SELECT id, name, $3 FROM unnest($1::uuid[], $2::text[]) AS l(id, name) \
         ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, owner_id = EXCLUDED.owner_id",
    )
    .bind(ids)
    .bind(names)
    .bind(owner)
    .execute(db)
    .await
    .context("Failed to create the benchmark's lists")?;
    Ok(())
}

const TYPED_PUT: &str = "INSERT INTO todos (id, created_at, description, completed, created_by, list_id) \
     VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (id) DO UPDATE SET created_at = EXCLUDED.created_at, description = EXCLUDED.description, \
     completed = EXCLUDED.completed, created_by = EXCLUDED.created_by, list_id = EXCLUDED.list_id";
const TYPED_PATCH: &str =
    "UPDATE todos SET completed = $2, completed_at = $3, completed_by = $4 WHERE id = $1";
const TYPED_DELETE: &str = "DELETE FROM todos WHERE id = $1";

/// The statements the reference demos run per entry (the Node.js demo's
/// Postgres persister, which the other demos resemble): text built from the
/// entry's keys, every value in one JSON parameter that
/// `json_populate_record` converts. The demo sends each as an unnamed
/// statement, parsed again every time; here each text is prepared once, so
/// this baseline is, if anything, faster than the demo.
const DEMO_PUT: &str = "WITH data_row AS (SELECT (json_populate_record(null::\"todos\", $1::json)).*) \
     INSERT INTO \"todos\" (\"created_at\", \"description\", \"completed\", \"created_by\", \"list_id\", \"id\") \
     SELECT \"created_at\", \"description\", \"completed\", \"created_by\", \"list_id\", \"id\" FROM data_row \
     ON CONFLICT(id) DO UPDATE SET \"created_at\" = EXCLUDED.\"created_at\", \"description\" = EXCLUDED.\"description\", \
     \"completed\" = EXCLUDED.\"completed\", \"created_by\" = EXCLUDED.\"created_by\", \"list_id\" = EXCLUDED.\"list_id\"";
const DEMO_PATCH: &str = "WITH data_row AS (SELECT (json_populate_record(null::\"todos\", $1::json)).*) \
     UPDATE \"todos\" SET \"completed\" = data_row.\"completed\", \"completed_at\" = data_row.\"completed_at\", \
     \"completed_by\" = data_row.\"completed_by\" FROM data_row WHERE \"todos\".id = data_row.id";
const DEMO_DELETE: &str = "WITH data_row AS (SELECT (json_populate_record(null::\"todos\", $1::json)).*) \
     DELETE FROM \"todos\" USING data_row WHERE \"todos\".id = data_row.id";

/// The reference demos' way: each entry its own statement, in order.
pub async fn naive(pool: &PgPool, batch: &Batch) -> anyhow::Result<u64> {
    let mut tx = pool.begin().await.context("begin")?;
    for entry in batch.entries() {
        // `{ ...data, id }`, as the demo builds it.
        let row = match entry.data(&batch.user_id) {
            Some(data) => format!("{},\"id\":\"{}\"}}", &data[..data.len() - 1], entry.id()),
            None => format!("{{\"id\":\"{}\"}}", entry.id()),
        };
        let statement = match entry {
            Entry::Put(_) => DEMO_PUT,
            Entry::Patch(_) => DEMO_PATCH,
            Entry::Delete(_) => DEMO_DELETE,
        };
        sqlx::query(statement)
            .bind(row)
            .execute(&mut *tx)
            .await
            .context("naive statement")?;
    }
    tx.commit().await.context("commit")?;
    Ok(batch.len() as u64)
}

/// Each entry its own typed prepared statement, in order.
pub async fn naive_typed(pool: &PgPool, batch: &Batch) -> anyhow::Result<u64> {
    let mut tx = pool.begin().await.context("begin")?;
    for entry in batch.entries() {
        match entry {
            Entry::Put(p) => {
                sqlx::query(TYPED_PUT)
                    .bind(p.id)
                    .bind(p.created_at)
                    .bind(&p.description)
                    .bind(false)
                    .bind(&batch.user_id)
                    .bind(p.list_id)
                    .execute(&mut *tx)
                    .await
            }
            Entry::Patch(p) => {
                sqlx::query(TYPED_PATCH)
                    .bind(p.id)
                    .bind(true)
                    .bind(p.completed_at)
                    .bind(&batch.user_id)
                    .execute(&mut *tx)
                    .await
            }
            Entry::Delete(id) => sqlx::query(TYPED_DELETE).bind(id).execute(&mut *tx).await,
        }
        .context("naive statement")?;
    }
    tx.commit().await.context("commit")?;
    Ok(batch.len() as u64)
}

/// PUTs as one upsert over typed arrays (the fastest common form).
const LIMIT_PUT: &str = "INSERT INTO todos AS t (id, created_at, description, completed, created_by, list_id) \
     SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::bool[], $5::text[], $6::uuid[]) \
     ON CONFLICT (id) DO UPDATE SET created_at = EXCLUDED.created_at, description = EXCLUDED.description, \
     completed = EXCLUDED.completed, created_by = EXCLUDED.created_by, list_id = EXCLUDED.list_id";

/// A mixed batch as one statement: upsert, update and delete of disjoint
/// rows, plus the exactly-once progress row that uplink keeps as well.
const LIMIT_MIXED: &str = "WITH p AS (\
       INSERT INTO todos AS t (id, created_at, description, completed, created_by, list_id) \
       SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::bool[], $5::text[], $6::uuid[]) \
       ON CONFLICT (id) DO UPDATE SET created_at = EXCLUDED.created_at, description = EXCLUDED.description, \
       completed = EXCLUDED.completed, created_by = EXCLUDED.created_by, list_id = EXCLUDED.list_id RETURNING 1), \
     u AS (UPDATE todos AS t SET completed = true, completed_at = v.at, completed_by = $9 \
       FROM unnest($7::uuid[], $8::timestamptz[]) AS v(id, at) WHERE t.id = v.id RETURNING 1), \
     d AS (DELETE FROM todos WHERE id = ANY($10::uuid[]) RETURNING 1), \
     g AS (INSERT INTO uplink.client_progress (user_id, client_id, last_op_id) VALUES ($9, $11, $12) \
       ON CONFLICT (user_id, client_id) DO UPDATE SET last_op_id = EXCLUDED.last_op_id, updated_at = now() RETURNING 1) \
     SELECT (SELECT count(*) FROM p) + (SELECT count(*) FROM u) + (SELECT count(*) FROM d) + (SELECT count(*) FROM g)";

#[derive(Default)]
struct Columns {
    ids: Vec<Uuid>,
    created_at: Vec<DateTime<Utc>>,
    descriptions: Vec<String>,
    completed: Vec<bool>,
    created_by: Vec<String>,
    list_ids: Vec<Uuid>,
    patch_ids: Vec<Uuid>,
    patch_at: Vec<DateTime<Utc>>,
    deletes: Vec<Uuid>,
}

fn columns(batch: &Batch) -> Columns {
    let mut c = Columns::default();
    for entry in batch.entries() {
        match entry {
            Entry::Put(p) => {
                c.ids.push(p.id);
                c.created_at.push(p.created_at);
                c.descriptions.push(p.description.clone());
                c.completed.push(false);
                c.created_by.push(batch.user_id.clone());
                c.list_ids.push(p.list_id);
            }
            Entry::Patch(p) => {
                c.patch_ids.push(p.id);
                c.patch_at.push(p.completed_at);
            }
            Entry::Delete(id) => c.deletes.push(*id),
        }
    }
    c
}

/// The practical ceiling: one statement per batch over a plain connection.
pub async fn sql_limit(pool: &PgPool, batch: &Batch) -> anyhow::Result<u64> {
    let c = columns(batch);
    let mut conn = pool.acquire().await.context("acquire")?;
    match &batch.client_id {
        None if c.patch_ids.is_empty() && c.deletes.is_empty() => {
            sqlx::query(LIMIT_PUT)
                .bind(c.ids)
                .bind(c.created_at)
                .bind(c.descriptions)
                .bind(c.completed)
                .bind(c.created_by)
                .bind(c.list_ids)
                .execute(&mut *conn)
                .await
                .context("sql-limit upsert")?;
        }
        client_id => {
            sqlx::query(LIMIT_MIXED)
                .bind(c.ids)
                .bind(c.created_at)
                .bind(c.descriptions)
                .bind(c.completed)
                .bind(c.created_by)
                .bind(c.list_ids)
                .bind(c.patch_ids)
                .bind(c.patch_at)
                .bind(&batch.user_id)
                .bind(c.deletes)
                .bind(client_id.as_deref().unwrap_or("bench"))
                .bind(batch.last_op_id())
                .execute(&mut *conn)
                .await
                .context("sql-limit statement")?;
        }
    }
    Ok(batch.len() as u64)
}

/// Empties the todos and refreshes statistics, so each run starts from an
/// empty, freshly analysed table (the generic-plan trap, docs/architecture.md), and
/// right after a checkpoint: a case that ran into one would write full
/// pages for every index page it touched first, and the cases would not
/// compare.
pub async fn reset_todos(pool: &PgPool) -> anyhow::Result<()> {
    let mut tx: Transaction<'_, Postgres> = pool.begin().await.context("begin")?;
    sqlx::query("TRUNCATE todos")
        .execute(&mut *tx)
        .await
        .context("TRUNCATE todos")?;
    sqlx::query("DELETE FROM uplink.client_progress WHERE client_id LIKE 'bench-%'")
        .execute(&mut *tx)
        .await
        .context("clearing the benchmark's client progress")?;
    tx.commit().await.context("commit")?;
    sqlx::query("ANALYZE todos")
        .execute(pool)
        .await
        .context("ANALYZE todos")?;
    // Superusers and pg_checkpoint members only; elsewhere cases just compare less well.
    if let Err(err) = sqlx::query("CHECKPOINT").execute(pool).await {
        eprintln!("  no CHECKPOINT before the case: {err}");
    }
    Ok(())
}

pub async fn fill_todos(
    pool: &PgPool,
    rows: u64,
    lists: &[Uuid],
    owner: &str,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO todos (id, description, created_by, list_id) \
         SELECT gen_random_uuid(), 'filler ' || i, $3, ($1::uuid[])[1 + i % cardinality($1::uuid[])] \
         FROM generate_series(1, $2) AS i",
    )
    .bind(lists)
    .bind(i64::try_from(rows)?)
    .bind(owner)
    .execute(pool)
    .await
    .context("Failed to fill todos")?;
    sqlx::query("ANALYZE todos")
        .execute(pool)
        .await
        .context("ANALYZE todos")?;
    Ok(())
}
