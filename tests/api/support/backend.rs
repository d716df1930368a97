//! The two databases behind one test interface: a suite written once runs
//! on Postgres and on MySQL/MariaDB by a type parameter (`PgPool` or
//! `MySqlPool`), each with its own schema text where the dialects differ.

use sqlx::{MySqlPool, PgPool, Row};

use super::app::{TestApp, TestAppBuilder};

pub trait Backend: Sized + Send + Sync + 'static {
    /// The app on a fresh database of this kind.
    fn spawn(builder: TestAppBuilder) -> impl Future<Output = TestApp<Self>>;

    /// Why start-up on a fresh database of this kind fails (it must).
    fn spawn_error(builder: TestAppBuilder) -> impl Future<Output = String>;

    /// The first column of every row `sql` selects, as text (numbers
    /// printed, NULL as `None`).
    fn texts(&self, sql: &str) -> impl Future<Output = Vec<Option<String>>>;

    /// Runs `sql` (statements separated by `;`; uplink's tables written
    /// `uplink.<table>`).
    fn execute(&self, sql: &str) -> impl Future<Output = ()>;

    /// The text written for this database where the dialects differ.
    fn dialect<'s>(postgres: &'s str, mysql: &'s str) -> &'s str;

    /// Ends every other session on the app's database, as a restart or a
    /// failover of the server does (this pool's others included: they
    /// reconnect when next used).
    fn end_other_sessions(&self) -> impl Future<Output = ()>;
}

/// Runs each named scenario `fn<P: Backend>()` once per database, as
/// `postgres::name` and `mysql::name`.
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(#[tokio::test] async fn $name() { super::$name::<sqlx::PgPool>().await })*
        }
        mod mysql {
            $(#[tokio::test] async fn $name() { super::$name::<sqlx::MySqlPool>().await })*
        }
    };
}
pub(crate) use on_both_databases;

impl Backend for PgPool {
    async fn spawn(builder: TestAppBuilder) -> TestApp<Self> {
        builder.spawn().await
    }

    async fn spawn_error(builder: TestAppBuilder) -> String {
        builder.spawn_error().await
    }

    async fn texts(&self, sql: &str) -> Vec<Option<String>> {
        let rows = sqlx::query(&format!("SELECT (s.*)::text FROM ({sql}) AS s"))
            .fetch_all(self)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        // A one-column row prints as `(value)`; read the value itself.
        rows.iter()
            .map(|row| {
                let record: Option<String> = row.get(0);
                record.and_then(|r| single_value(&r))
            })
            .collect()
    }

    async fn execute(&self, sql: &str) {
        sqlx::raw_sql(sql)
            .execute(self)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    fn dialect<'s>(postgres: &'s str, _mysql: &'s str) -> &'s str {
        postgres
    }

    async fn end_other_sessions(&self) {
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .execute(self)
        .await
        .expect("end the other sessions");
    }
}

/// The one value of a Postgres record's text (`(abc)`, `("a b")`, `()`).
fn single_value(record: &str) -> Option<String> {
    let inner = record.strip_prefix('(')?.strip_suffix(')')?;
    if inner.is_empty() {
        return None;
    }
    match inner.strip_prefix('"').and_then(|q| q.strip_suffix('"')) {
        Some(quoted) => Some(quoted.replace("\"\"", "\"").replace("\\\\", "\\")),
        None => Some(inner.to_owned()),
    }
}

impl Backend for MySqlPool {
    async fn spawn(builder: TestAppBuilder) -> TestApp<Self> {
        builder.spawn_mysql().await
    }

    async fn spawn_error(builder: TestAppBuilder) -> String {
        builder.spawn_mysql_error().await
    }

    /// uplink's tables written `uplink.<table>`, as on Postgres.
    async fn texts(&self, sql: &str) -> Vec<Option<String>> {
        let sql = &super::mysql::own_tables_in(self, sql).await;
        let rows = sqlx::query(sql)
            .fetch_all(self)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows.iter()
            .map(|row| {
                row.try_get::<Option<String>, _>(0)
                    .or_else(|_| {
                        row.try_get::<Option<i64>, _>(0)
                            .map(|v| v.map(|v| v.to_string()))
                    })
                    .or_else(|_| {
                        row.try_get::<Option<u64>, _>(0)
                            .map(|v| v.map(|v| v.to_string()))
                    })
                    .or_else(|_| {
                        row.try_get::<Option<f64>, _>(0)
                            .map(|v| v.map(|v| v.to_string()))
                    })
                    .or_else(|_| {
                        row.try_get::<Option<chrono::NaiveDateTime>, _>(0)
                            .map(|v| v.map(|v| v.to_string()))
                    })
                    // DECIMAL (a sum, say) arrives as its text.
                    .or_else(|_| row.try_get_unchecked::<Option<String>, _>(0))
                    .or_else(|_| {
                        row.try_get::<Option<Vec<u8>>, _>(0)
                            .map(|v| v.map(|v| String::from_utf8_lossy(&v).into_owned()))
                    })
                    .unwrap_or_else(|e| panic!("{sql}: column 0 is not text or a number: {e}"))
            })
            .collect()
    }

    async fn execute(&self, sql: &str) {
        let sql = &super::mysql::own_tables_in(self, sql).await;
        sqlx::raw_sql(sql)
            .execute(self)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    fn dialect<'s>(_postgres: &'s str, mysql: &'s str) -> &'s str {
        mysql
    }

    async fn end_other_sessions(&self) {
        // One connection lists the others and kills them one by one.
        let mut conn = self.acquire().await.expect("a connection");
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM information_schema.processlist \
             WHERE db = DATABASE() AND id <> CONNECTION_ID()",
        )
        .fetch_all(&mut *conn)
        .await
        .expect("list the other sessions");
        for id in ids {
            // A session that ended meanwhile is no longer there to kill.
            let _ = sqlx::raw_sql(&format!("KILL CONNECTION {id}"))
                .execute(&mut *conn)
                .await;
        }
    }
}

impl<P: Backend> TestApp<P> {
    /// The one text `sql` selects.
    pub async fn text(&self, sql: &str) -> Option<String> {
        let mut texts = self.db_pool.texts(sql).await;
        assert_eq!(texts.len(), 1, "{sql} selects {} rows", texts.len());
        texts.pop().flatten()
    }

    /// The one number `sql` selects (a count, say).
    pub async fn number(&self, sql: &str) -> i64 {
        let text = self.text(sql).await;
        text.as_deref()
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("{sql} selects {text:?}, not an integer"))
    }
}
