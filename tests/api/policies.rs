//! Conflict policies and write authorization, each replayed as the PowerSync
//! docs' scenario with two clients over real HTTP.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::app::{TestApp, test_settings};
use crate::support::database::fresh_database;
use crate::support::fixtures::tables_from_yaml;

const SCHEMA: &str = r#"
CREATE TABLE lists (id uuid PRIMARY KEY, name text NOT NULL, owner_id text);
CREATE TABLE inventory (id uuid PRIMARY KEY, product text, quantity integer NOT NULL DEFAULT 0 CHECK (quantity >= 0));
CREATE TABLE documents (id uuid PRIMARY KEY, content text, version bigint NOT NULL DEFAULT 1);
CREATE TABLE tasks (id uuid PRIMARY KEY, title text, modified_at timestamptz);
CREATE TABLE notes (id uuid PRIMARY KEY, title text, body text, field_timestamps jsonb);
CREATE TABLE orders (id uuid PRIMARY KEY, status text NOT NULL DEFAULT 'pending', note text, approved_by text);
CREATE TABLE events (id uuid PRIMARY KEY, kind text NOT NULL);
"#;

const POLICIES: &str = r#"
write:
  tables:
    lists: { owner_column: owner_id }
    inventory: { delta_columns: [quantity] }
    documents: { conflict: { strategy: version, column: version, on_conflict: record } }
    tasks: { conflict: { strategy: timestamp, column: modified_at, on_conflict: record } }
    notes: { columns: [title, body], conflict: { strategy: field_timestamps } }
    orders:
      transitions: { column: status, allowed: { pending: [processing, cancelled], processing: [shipped, cancelled], shipped: [completed] } }
      locked_when: { column: status, values: [shipped, completed, cancelled] }
      read_only_columns: [approved_by]
    events: { insert_only: true }
"#;

async fn spawn() -> TestApp {
    TestApp::builder()
        .schema(SCHEMA)
        .config(|s| s.write.tables = tables_from_yaml(POLICIES))
        .spawn()
        .await
}

struct Client<'a> {
    app: &'a TestApp,
    token: String,
    client_id: String,
    op_id: i64,
}

impl<'a> Client<'a> {
    async fn new(app: &'a TestApp, user: &str) -> Self {
        Self {
            app,
            token: app.token_for(user).await,
            client_id: Uuid::new_v4().to_string(),
            op_id: 0,
        }
    }

    /// Sends entries as one client transaction; returns the report.
    async fn send(&mut self, entries: &[Value]) -> Value {
        let batch: Vec<Value> = entries
            .iter()
            .map(|e| {
                self.op_id += 1;
                let mut e = e.clone();
                e["op_id"] = json!(self.op_id);
                e["tx_id"] = json!(self.op_id);
                e
            })
            .collect();
        let (status, report) = self
            .app
            .post_batch(
                &self.token,
                &json!({"client_id": self.client_id, "batch": batch}),
            )
            .await;
        assert_eq!(status, 200, "{report}");
        report
    }
}

fn code_of(report: &Value) -> Option<&str> {
    report["results"][0]["code"].as_str()
}

async fn scalar<T>(app: &TestApp, sql: &str) -> T
where
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Unpin,
{
    sqlx::query_scalar(sql)
        .fetch_one(&app.db_pool)
        .await
        .unwrap()
}

mod deltas {
    use super::*;

    #[tokio::test]
    async fn two_offline_clerks_selling_the_same_item_both_count() {
        let app = spawn().await;
        let item = Uuid::new_v4().to_string();
        let mut setup = Client::new(&app, "manager").await;
        setup
            .send(&[json!({"op": "PUT", "type": "inventory", "id": item, "data": {"product": "bike", "quantity": 10}})])
            .await;
        let mut clerk_a = Client::new(&app, "clerk-a").await;
        let mut clerk_b = Client::new(&app, "clerk-b").await;

        // Both saw 10 offline; A sold one, B sold two (trackPrevious sends `old`).
        let a = clerk_a
            .send(&[json!({"op": "PATCH", "type": "inventory", "id": item, "data": {"quantity": 9}, "old": {"quantity": 10}})])
            .await;
        let b = clerk_b
            .send(&[json!({"op": "PATCH", "type": "inventory", "id": item, "data": {"quantity": 8}, "old": {"quantity": 10}})])
            .await;

        assert_eq!(a["applied"], 1);
        assert_eq!(b["applied"], 1);
        assert_eq!(
            scalar::<i32>(&app, "SELECT quantity FROM inventory").await,
            7
        );
        // Without `old`, the PATCH value itself is the change.
        clerk_a
            .send(&[
                json!({"op": "PATCH", "type": "inventory", "id": item, "data": {"quantity": -2}}),
            ])
            .await;
        assert_eq!(
            scalar::<i32>(&app, "SELECT quantity FROM inventory").await,
            5
        );
    }

    #[tokio::test]
    async fn overselling_is_a_check_violation_that_blocks_nothing_else() {
        let app = spawn().await;
        let item = Uuid::new_v4().to_string();
        let other = Uuid::new_v4().to_string();
        let mut clerk = Client::new(&app, "clerk").await;
        clerk
            .send(&[json!({"op": "PUT", "type": "inventory", "id": item, "data": {"product": "bike", "quantity": 1}})])
            .await;
        let oversold = clerk
            .send(&[
                json!({"op": "PATCH", "type": "inventory", "id": item, "data": {"quantity": -3}}),
            ])
            .await;
        let next = clerk
            .send(&[json!({"op": "PUT", "type": "inventory", "id": other, "data": {"product": "helmet", "quantity": 4}})])
            .await;

        assert_eq!(code_of(&oversold), Some("check_violation"), "{oversold}");
        assert_eq!(next["applied"], 1);
        assert_eq!(
            scalar::<i64>(&app, "SELECT sum(quantity) FROM inventory").await,
            5
        );
    }

    #[tokio::test]
    async fn a_delta_without_a_client_id_is_refused() {
        let app = spawn().await;
        let token = app.token_for("clerk").await;
        let item = Uuid::new_v4().to_string();
        sqlx::query("INSERT INTO inventory (id, quantity) VALUES ($1::uuid, 5)")
            .bind(&item)
            .execute(&app.db_pool)
            .await
            .unwrap();
        let (_, report) = app
            .post_batch(&token, &json!({"batch": [{"op_id": 1, "op": "PATCH", "type": "inventory", "id": item, "data": {"quantity": -1}}]}))
            .await;
        assert_eq!(code_of(&report), Some("client_id_required"), "{report}");
        assert_eq!(
            scalar::<i32>(&app, "SELECT quantity FROM inventory").await,
            5
        );
    }

    #[tokio::test]
    async fn sixteen_concurrent_clerks_sum_exactly() {
        let app = spawn().await;
        let item = Uuid::new_v4().to_string();
        sqlx::query("INSERT INTO inventory (id, quantity) VALUES ($1::uuid, 100)")
            .bind(&item)
            .execute(&app.db_pool)
            .await
            .unwrap();
        let mut clerks = Vec::new();
        for i in 0..16 {
            clerks.push(Client::new(&app, &format!("clerk-{i}")).await);
        }
        let sales = clerks.iter_mut().map(|clerk| {
            let item = item.clone();
            async move {
                clerk
                    .send(&[json!({"op": "PATCH", "type": "inventory", "id": item, "data": {"quantity": 99}, "old": {"quantity": 100}})])
                    .await
            }
        });
        let reports = futures_util::future::join_all(sales).await;
        assert!(reports.iter().all(|r| r["applied"] == 1), "{reports:?}");
        assert_eq!(
            scalar::<i32>(&app, "SELECT quantity FROM inventory").await,
            84
        );
    }
}

mod versions {
    use super::*;

    #[tokio::test]
    async fn a_stale_document_edit_is_recorded_with_both_versions() {
        let app = spawn().await;
        let doc = Uuid::new_v4().to_string();
        let mut alice = Client::new(&app, "alice").await;
        let mut bob = Client::new(&app, "bob").await;
        alice
            .send(&[
                json!({"op": "PUT", "type": "documents", "id": doc, "data": {"content": "draft"}}),
            ])
            .await;

        // Both edit version 1 offline; Alice syncs first.
        let first = alice
            .send(&[json!({"op": "PATCH", "type": "documents", "id": doc, "data": {"content": "alice's", "version": 1}})])
            .await;
        let second = bob
            .send(&[json!({"op": "PATCH", "type": "documents", "id": doc, "data": {"content": "bob's", "version": 1}})])
            .await;

        assert_eq!(first["applied"], 1, "{first}");
        assert_eq!(second["conflicts"], 1, "{second}");
        assert_eq!(second["results"][0]["status"], "conflict");
        assert_eq!(code_of(&second), Some("stale_version"));
        let (content, version): (String, i64) =
            sqlx::query_as("SELECT content, version FROM documents")
                .fetch_one(&app.db_pool)
                .await
                .unwrap();
        assert_eq!((content.as_str(), version), ("alice's", 2));
        let (kind, client, server, user): (String, Value, Value, String) = sqlx::query_as(
            "SELECT conflict_type, client_data, server_data, user_id FROM uplink.write_conflicts",
        )
        .fetch_one(&app.db_pool)
        .await
        .unwrap();
        assert_eq!(kind, "stale_version");
        assert_eq!(client["content"], "bob's");
        assert_eq!(server["content"], "alice's");
        assert_eq!(server["version"], 2);
        assert_eq!(user, "bob");
    }

    #[tokio::test]
    async fn racing_edits_of_one_version_let_exactly_one_win() {
        let app = spawn().await;
        let doc = Uuid::new_v4().to_string();
        sqlx::query("INSERT INTO documents (id, content) VALUES ($1::uuid, 'v1')")
            .bind(&doc)
            .execute(&app.db_pool)
            .await
            .unwrap();
        let mut editors = Vec::new();
        for i in 0..8 {
            editors.push(Client::new(&app, &format!("editor-{i}")).await);
        }
        let edits = editors.iter_mut().enumerate().map(|(i, editor)| {
            let doc = doc.clone();
            async move {
                editor
                    .send(&[json!({"op": "PATCH", "type": "documents", "id": doc, "data": {"content": format!("edit {i}"), "version": 1}})])
                    .await
            }
        });
        let reports = futures_util::future::join_all(edits).await;
        let applied = reports.iter().filter(|r| r["applied"] == 1).count();
        let conflicts = reports.iter().filter(|r| r["conflicts"] == 1).count();
        assert_eq!((applied, conflicts), (1, 7), "{reports:?}");
        assert_eq!(
            scalar::<i64>(&app, "SELECT version FROM documents").await,
            2
        );
        assert_eq!(
            scalar::<i64>(&app, "SELECT count(*) FROM uplink.write_conflicts").await,
            7
        );
    }
}

mod versions_required {
    use super::*;

    /// An update that does not say which version it saw could undo any
    /// change since: it loses like a stale one. Creating a row needs none,
    /// and deletes win.
    #[tokio::test]
    async fn an_update_without_the_version_it_saw_loses() {
        let app = spawn().await;
        let doc = Uuid::new_v4().to_string();
        let mut alice = Client::new(&app, "alice").await;
        let created = alice
            .send(&[
                json!({"op": "PUT", "type": "documents", "id": doc, "data": {"content": "draft"}}),
            ])
            .await;
        assert_eq!(created["applied"], 1, "{created}");

        let patch = alice
            .send(&[json!({"op": "PATCH", "type": "documents", "id": doc, "data": {"content": "blind edit"}})])
            .await;
        let put = alice
            .send(&[json!({"op": "PUT", "type": "documents", "id": doc, "data": {"content": "blind replace"}})])
            .await;
        let null = alice
            .send(&[json!({"op": "PATCH", "type": "documents", "id": doc, "data": {"content": "null version", "version": null}})])
            .await;

        for report in [&patch, &put, &null] {
            assert_eq!(report["conflicts"], 1, "{report}");
            assert_eq!(report["results"][0]["status"], "conflict");
            assert_eq!(code_of(report), Some("version_required"), "{report}");
        }
        let (content, version): (String, i64) =
            sqlx::query_as("SELECT content, version FROM documents")
                .fetch_one(&app.db_pool)
                .await
                .unwrap();
        assert_eq!((content.as_str(), version), ("draft", 1));
        // `on_conflict: record`: each one is there for the app to resolve.
        assert_eq!(
            scalar::<i64>(
                &app,
                "SELECT count(*) FROM uplink.write_conflicts WHERE conflict_type = 'version_required'"
            )
            .await,
            3
        );

        let edit = alice
            .send(&[json!({"op": "PATCH", "type": "documents", "id": doc, "data": {"content": "edit", "version": 1}})])
            .await;
        let delete = alice
            .send(&[json!({"op": "DELETE", "type": "documents", "id": doc})])
            .await;
        assert_eq!(edit["applied"], 1, "{edit}");
        assert_eq!(delete["applied"], 1, "{delete}");
        assert_eq!(
            scalar::<i64>(&app, "SELECT count(*) FROM documents").await,
            0
        );
    }

    #[tokio::test]
    async fn with_on_conflict_reject_an_update_without_a_version_is_dead_lettered() {
        let app = TestApp::builder()
            .schema(SCHEMA)
            .config(|s| {
                s.write.tables = tables_from_yaml(
                    "write:\n  tables:\n    documents: { conflict: { strategy: version, column: version, on_conflict: reject } }\n",
                )
            })
            .spawn()
            .await;
        let doc = Uuid::new_v4().to_string();
        sqlx::query("INSERT INTO documents (id, content) VALUES ($1::uuid, 'v1')")
            .bind(&doc)
            .execute(&app.db_pool)
            .await
            .unwrap();
        let mut alice = Client::new(&app, "alice").await;
        let report = alice
            .send(&[json!({"op": "PATCH", "type": "documents", "id": doc, "data": {"content": "blind"}})])
            .await;
        assert_eq!(report["rejected"], 1, "{report}");
        assert_eq!(code_of(&report), Some("version_required"));
        assert_eq!(
            scalar::<String>(&app, "SELECT content FROM documents").await,
            "v1"
        );
        assert_eq!(
            scalar::<i64>(
                &app,
                "SELECT count(*) FROM uplink.dead_letters WHERE code = 'version_required'"
            )
            .await,
            1
        );
    }
}

mod timestamps {
    use super::*;

    #[tokio::test]
    async fn an_older_update_loses_to_a_newer_one() {
        let app = spawn().await;
        let task = Uuid::new_v4().to_string();
        let mut phone = Client::new(&app, "sam").await;
        let mut laptop = Client::new(&app, "sam").await;
        phone
            .send(&[json!({"op": "PUT", "type": "tasks", "id": task, "data": {"title": "start", "modified_at": "2024-05-01T10:00:00Z"}})])
            .await;
        laptop
            .send(&[json!({"op": "PATCH", "type": "tasks", "id": task, "data": {"title": "newer", "modified_at": "2024-05-01 10:05:00"}})])
            .await;
        let stale = phone
            .send(&[json!({"op": "PATCH", "type": "tasks", "id": task, "data": {"title": "older", "modified_at": "2024-05-01T12:01:00+02:00"}})])
            .await;

        assert_eq!(code_of(&stale), Some("stale_update"), "{stale}");
        assert_eq!(
            scalar::<String>(&app, "SELECT title FROM tasks").await,
            "newer"
        );
        assert_eq!(
            scalar::<i64>(
                &app,
                "SELECT count(*) FROM uplink.write_conflicts WHERE conflict_type = 'stale_update'"
            )
            .await,
            1
        );
    }
}

mod field_timestamps {
    use super::*;

    #[tokio::test]
    async fn each_client_changing_a_different_field_merges() {
        let app = spawn().await;
        let note = Uuid::new_v4().to_string();
        let mut a = Client::new(&app, "ann").await;
        let mut b = Client::new(&app, "ben").await;
        a.send(&[json!({"op": "PUT", "type": "notes", "id": note, "data": {"title": "t0", "body": "b0"},
                        "metadata": "{\"title\":\"2024-05-01T10:00:00Z\",\"body\":\"2024-05-01T10:00:00Z\"}"})])
            .await;

        let ra = a
            .send(&[
                json!({"op": "PATCH", "type": "notes", "id": note, "data": {"title": "ann's title"},
                           "metadata": "{\"title\":\"2024-05-01T10:05:00Z\"}"}),
            ])
            .await;
        let rb = b
            .send(&[
                json!({"op": "PATCH", "type": "notes", "id": note, "data": {"body": "ben's body"},
                           "metadata": "{\"body\":\"2024-05-01T10:03:00Z\"}"}),
            ])
            .await;
        // A third write of the title, made earlier than Ann's, loses.
        let stale = b
            .send(&[
                json!({"op": "PATCH", "type": "notes", "id": note, "data": {"title": "old title"},
                           "metadata": "{\"title\":\"2024-05-01T10:01:00Z\"}"}),
            ])
            .await;

        assert_eq!(
            (ra["applied"].clone(), rb["applied"].clone()),
            (json!(1), json!(1))
        );
        assert_eq!(code_of(&stale), Some("stale_field"), "{stale}");
        let (title, body): (String, String) = sqlx::query_as("SELECT title, body FROM notes")
            .fetch_one(&app.db_pool)
            .await
            .unwrap();
        assert_eq!(
            (title.as_str(), body.as_str()),
            ("ann's title", "ben's body")
        );
    }
}

mod orders {
    use super::*;

    async fn order_in(app: &TestApp, status: &str) -> String {
        let id = Uuid::new_v4().to_string();
        sqlx::query("INSERT INTO orders (id, status) VALUES ($1::uuid, $2)")
            .bind(&id)
            .bind(status)
            .execute(&app.db_pool)
            .await
            .unwrap();
        id
    }

    #[tokio::test]
    async fn a_shipped_order_refuses_edits() {
        let app = spawn().await;
        let order = order_in(&app, "shipped").await;
        let mut clerk = Client::new(&app, "clerk").await;
        let edit = clerk
            .send(&[json!({"op": "PATCH", "type": "orders", "id": order, "data": {"note": "gift wrap"}})])
            .await;
        let delete = clerk
            .send(&[json!({"op": "DELETE", "type": "orders", "id": order})])
            .await;
        assert_eq!(code_of(&edit), Some("row_locked"), "{edit}");
        assert_eq!(code_of(&delete), Some("row_locked"));
        assert_eq!(
            scalar::<Option<String>>(&app, "SELECT note FROM orders").await,
            None
        );
        assert_eq!(
            scalar::<i64>(
                &app,
                "SELECT count(*) FROM uplink.dead_letters WHERE code = 'row_locked'"
            )
            .await,
            2
        );
    }

    #[tokio::test]
    async fn status_changes_follow_the_allowed_transitions() {
        let app = spawn().await;
        let order = order_in(&app, "pending").await;
        let mut clerk = Client::new(&app, "clerk").await;
        let jump = clerk
            .send(&[json!({"op": "PATCH", "type": "orders", "id": order, "data": {"status": "completed"}})])
            .await;
        let step = clerk
            .send(&[json!({"op": "PATCH", "type": "orders", "id": order, "data": {"status": "processing"}})])
            .await;
        assert_eq!(code_of(&jump), Some("invalid_transition"), "{jump}");
        assert_eq!(step["applied"], 1);
        assert_eq!(
            scalar::<String>(&app, "SELECT status FROM orders").await,
            "processing"
        );
    }

    #[tokio::test]
    async fn a_new_order_is_created_only_in_an_initial_state() {
        let app = spawn().await;
        let mut clerk = Client::new(&app, "clerk").await;
        let put = |status: Option<&str>| {
            let mut data = json!({"note": "new"});
            if let Some(status) = status {
                data["status"] = json!(status);
            }
            json!({"op": "PUT", "type": "orders", "id": Uuid::new_v4().to_string(), "data": data})
        };
        // `pending` is the one state no transition leads to.
        for state in ["shipped", "processing", "completed", "unknown"] {
            let report = clerk.send(&[put(Some(state))]).await;
            assert_eq!(report["rejected"], 1, "{state}: {report}");
            assert_eq!(code_of(&report), Some("invalid_transition"), "{report}");
        }
        assert_eq!(scalar::<i64>(&app, "SELECT count(*) FROM orders").await, 0);

        let pending = clerk.send(&[put(Some("pending"))]).await;
        let default = clerk.send(&[put(None)]).await;
        assert_eq!(pending["applied"], 1, "{pending}");
        assert_eq!(default["applied"], 1, "the column's DEFAULT: {default}");
        assert_eq!(
            scalar::<Vec<String>>(&app, "SELECT array_agg(status) FROM orders").await,
            ["pending", "pending"]
        );
        assert_eq!(
            scalar::<i64>(
                &app,
                "SELECT count(*) FROM uplink.dead_letters WHERE code = 'invalid_transition'"
            )
            .await,
            4
        );
    }

    #[tokio::test]
    async fn configured_initial_states_replace_the_inferred_ones() {
        let app = TestApp::builder()
            .schema(SCHEMA)
            .config(|s| {
                s.write.tables = tables_from_yaml(
                    "write:\n  tables:\n    orders: { transitions: { column: status, initial: [draft, pending], allowed: { draft: [pending], pending: [draft, shipped] } } }\n",
                )
            })
            .spawn()
            .await;
        let mut clerk = Client::new(&app, "clerk").await;
        let put = |status: &str| json!({"op": "PUT", "type": "orders", "id": Uuid::new_v4().to_string(), "data": {"status": status}});
        let draft = clerk.send(&[put("draft")]).await;
        let pending = clerk.send(&[put("pending")]).await;
        let shipped = clerk.send(&[put("shipped")]).await;
        assert_eq!(draft["applied"], 1, "{draft}");
        assert_eq!(pending["applied"], 1, "{pending}");
        assert_eq!(code_of(&shipped), Some("invalid_transition"), "{shipped}");
        assert_eq!(scalar::<i64>(&app, "SELECT count(*) FROM orders").await, 2);
    }

    #[tokio::test]
    async fn read_only_columns_are_skipped_and_the_rest_applies() {
        let app = spawn().await;
        let order = order_in(&app, "pending").await;
        let mut clerk = Client::new(&app, "clerk").await;
        let report = clerk
            .send(&[json!({"op": "PATCH", "type": "orders", "id": order, "data": {"note": "ring twice", "approved_by": "me"}})])
            .await;
        assert_eq!(report["conflicts"], 1, "{report}");
        assert_eq!(code_of(&report), Some("read_only_column"));
        assert_eq!(report["results"][0]["column"], "approved_by");
        let (note, approved): (Option<String>, Option<String>) =
            sqlx::query_as("SELECT note, approved_by FROM orders")
                .fetch_one(&app.db_pool)
                .await
                .unwrap();
        assert_eq!((note.as_deref(), approved), (Some("ring twice"), None));
    }
}

mod insert_only {
    use super::*;

    #[tokio::test]
    async fn events_accept_new_rows_only() {
        let app = spawn().await;
        let event = Uuid::new_v4().to_string();
        let mut device = Client::new(&app, "dev").await;
        let put = device
            .send(&[json!({"op": "PUT", "type": "events", "id": event, "data": {"kind": "login"}})])
            .await;
        let again = device
            .send(&[
                json!({"op": "PUT", "type": "events", "id": event, "data": {"kind": "rewritten"}}),
            ])
            .await;
        let patch = device
            .send(&[json!({"op": "PATCH", "type": "events", "id": event, "data": {"kind": "x"}})])
            .await;
        let delete = device
            .send(&[json!({"op": "DELETE", "type": "events", "id": event})])
            .await;

        assert_eq!(put["applied"], 1);
        // Re-sending an event is harmless, and reported as not written.
        assert_eq!(again["conflicts"], 1, "{again}");
        assert_eq!(again["results"][0]["status"], "conflict");
        assert_eq!(code_of(&again), Some("already_exists"));
        assert_eq!(
            scalar::<i64>(&app, "SELECT count(*) FROM uplink.dead_letters").await,
            2,
            "only the PATCH and the DELETE are dead letters"
        );
        assert_eq!(code_of(&patch), Some("insert_only"));
        assert_eq!(code_of(&delete), Some("insert_only"));
        assert_eq!(
            scalar::<String>(&app, "SELECT kind FROM events").await,
            "login"
        );
    }
}

mod ownership {
    use super::*;

    #[tokio::test]
    async fn another_user_cannot_update_delete_or_steal_a_row() {
        let app = spawn().await;
        let list = Uuid::new_v4().to_string();
        let mut alice = Client::new(&app, "alice").await;
        let mut bob = Client::new(&app, "bob").await;
        let created = alice
            .send(&[json!({"op": "PUT", "type": "lists", "id": list, "data": {"name": "alice's"}})])
            .await;
        assert_eq!(created["applied"], 1);
        assert_eq!(
            scalar::<String>(&app, "SELECT owner_id FROM lists").await,
            "alice"
        );

        let attempts = [
            json!({"op": "PATCH", "type": "lists", "id": list, "data": {"name": "mine now"}}),
            json!({"op": "DELETE", "type": "lists", "id": list}),
            json!({"op": "PUT", "type": "lists", "id": list, "data": {"name": "replaced"}}),
            json!({"op": "PUT", "type": "lists", "id": list, "data": {"name": "stolen", "owner_id": "bob"}}),
            json!({"op": "PUT", "type": "lists", "id": Uuid::new_v4().to_string(), "data": {"name": "framed", "owner_id": "alice"}}),
        ];
        for attempt in &attempts {
            let report = bob.send(std::slice::from_ref(attempt)).await;
            assert_eq!(code_of(&report), Some("forbidden"), "{attempt} → {report}");
        }
        // A missing row is not someone else's: a PATCH of it is a no-op.
        let missing = bob
            .send(&[json!({"op": "PATCH", "type": "lists", "id": Uuid::new_v4().to_string(), "data": {"name": "x"}})])
            .await;
        assert_eq!(missing["applied"], 1);

        let (name, owner): (String, String) = sqlx::query_as("SELECT name, owner_id FROM lists")
            .fetch_one(&app.db_pool)
            .await
            .unwrap();
        assert_eq!((name.as_str(), owner.as_str()), ("alice's", "alice"));
        assert_eq!(scalar::<i64>(&app, "SELECT count(*) FROM lists").await, 1);
    }

    /// Two users creating the same new id at once: the first insert owns
    /// the row and the other PUT is checked against it, never overwrites it.
    #[tokio::test]
    async fn two_users_creating_one_id_at_once_cannot_both_own_it() {
        const TRIALS: usize = 80;
        let app = spawn().await;
        let mut alice = Client::new(&app, "alice").await;
        let mut bob = Client::new(&app, "bob").await;
        for trial in 0..TRIALS {
            let list = Uuid::new_v4().to_string();
            let put = |name: &str| json!({"op": "PUT", "type": "lists", "id": list, "data": {"name": name}});
            let (by_alice, by_bob) = ([put("alice's")], [put("bob's")]);
            let (a, b) = tokio::join!(alice.send(&by_alice), bob.send(&by_bob));

            let status = |r: &Value| match (r["applied"].as_u64(), code_of(r)) {
                (Some(1), None) => "applied",
                (_, Some("forbidden")) => "forbidden",
                _ => panic!("trial {trial}: unexpected report {r}"),
            };
            let winner = match (status(&a), status(&b)) {
                ("applied", "forbidden") => "alice",
                ("forbidden", "applied") => "bob",
                other => panic!("trial {trial}: {other:?}: {a} / {b}"),
            };
            let (name, owner): (String, String) =
                sqlx::query_as("SELECT name, owner_id FROM lists WHERE id = $1::uuid")
                    .bind(&list)
                    .fetch_one(&app.db_pool)
                    .await
                    .unwrap();
            assert_eq!(owner, winner, "trial {trial}");
            assert_eq!(name, format!("{winner}'s"), "trial {trial}");
        }
        // Each losing PUT was rejected as usual: one dead letter per trial.
        assert_eq!(
            scalar::<i64>(
                &app,
                "SELECT count(*) FROM uplink.dead_letters WHERE code = 'forbidden'"
            )
            .await,
            TRIALS as i64
        );
    }

    /// The same race with several new ids in one client transaction,
    /// checked and written a set at a time: one user gets every row, the
    /// other's transaction is refused at its first entry and writes nothing.
    #[tokio::test]
    async fn two_users_creating_the_same_ids_in_one_batch_cannot_share_them() {
        const TRIALS: usize = 30;
        let app = spawn().await;
        let (alice, bob) = (app.token_for("alice").await, app.token_for("bob").await);
        for trial in 0..TRIALS {
            let ids: Vec<String> = (0..5).map(|_| Uuid::new_v4().to_string()).collect();
            let batch = |name: &str| -> Value {
                let entries: Vec<Value> = ids
                    .iter()
                    .map(|id| json!({"op": "PUT", "type": "lists", "id": id, "tx_id": 1, "data": {"name": name}}))
                    .collect();
                json!({"batch": entries})
            };
            let (by_alice, by_bob) = (batch("alice's"), batch("bob's"));
            let ((_, a), (_, b)) = tokio::join!(
                app.post_batch(&alice, &by_alice),
                app.post_batch(&bob, &by_bob)
            );

            let status =
                |r: &Value| match (r["applied"].as_u64(), r["rejected"].as_u64(), code_of(r)) {
                    (Some(5), Some(0), None) => "applied",
                    (Some(0), Some(5), Some("forbidden")) => "forbidden",
                    _ => panic!("trial {trial}: unexpected report {r}"),
                };
            let winner = match (status(&a), status(&b)) {
                ("applied", "forbidden") => "alice",
                ("forbidden", "applied") => "bob",
                other => panic!("trial {trial}: {other:?}: {a} / {b}"),
            };
            let rows: Vec<(String, String)> = sqlx::query_as(
                "SELECT name, owner_id FROM lists WHERE id = ANY($1::text[]::uuid[])",
            )
            .bind(&ids)
            .fetch_all(&app.db_pool)
            .await
            .unwrap();
            assert_eq!(rows.len(), 5, "trial {trial}");
            for (name, owner) in rows {
                assert_eq!(
                    (name, owner),
                    (format!("{winner}'s"), winner.to_owned()),
                    "trial {trial}"
                );
            }
        }
        assert_eq!(
            scalar::<i64>(
                &app,
                "SELECT count(*) FROM uplink.dead_letters WHERE code = 'forbidden'"
            )
            .await,
            TRIALS as i64
        );
    }

    const RLS_SCHEMA: &str = r#"
        DO $$ BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'uplink_test_authenticated') THEN
                CREATE ROLE uplink_test_authenticated NOLOGIN;
            END IF;
        END $$;
        CREATE TABLE notes (id uuid PRIMARY KEY, body text,
            owner text NOT NULL DEFAULT current_setting('request.jwt.claim.sub', true));
        ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
        CREATE POLICY own_notes ON notes
            USING (owner = current_setting('request.jwt.claim.sub', true))
            WITH CHECK (owner = current_setting('request.jwt.claim.sub', true));
        GRANT SELECT, INSERT, UPDATE, DELETE ON notes TO uplink_test_authenticated;
    "#;

    #[tokio::test]
    async fn row_level_security_policies_hold_and_refusals_are_forbidden() {
        let app = TestApp::builder()
            .schema(RLS_SCHEMA)
            .config(|s| {
                s.write.tables =
                    tables_from_yaml("write:\n  tables:\n    notes: { columns: [body] }\n");
                s.database.rls = Some(uplink::config::RlsSettings {
                    role: "uplink_test_authenticated".to_owned(),
                });
            })
            .spawn()
            .await;
        let note = Uuid::new_v4().to_string();
        let mut alice = Client::new(&app, "alice").await;
        let mut bob = Client::new(&app, "bob").await;
        let created = alice
            .send(&[json!({"op": "PUT", "type": "notes", "id": note, "data": {"body": "alice's secret"}})])
            .await;
        assert_eq!(created["applied"], 1, "{created}");
        assert_eq!(
            scalar::<String>(&app, "SELECT owner FROM notes").await,
            "alice"
        );

        for attempt in [
            json!({"op": "PATCH", "type": "notes", "id": note, "data": {"body": "bob was here"}}),
            json!({"op": "DELETE", "type": "notes", "id": note}),
            json!({"op": "PUT", "type": "notes", "id": note, "data": {"body": "stolen"}}),
        ] {
            let report = bob.send(std::slice::from_ref(&attempt)).await;
            assert_eq!(code_of(&report), Some("forbidden"), "{attempt} → {report}");
        }
        assert_eq!(
            scalar::<String>(&app, "SELECT body FROM notes").await,
            "alice's secret"
        );
        // uplink's own bookkeeping still worked under the role.
        assert_eq!(
            scalar::<i64>(
                &app,
                "SELECT count(*) FROM uplink.dead_letters WHERE user_id = 'bob'"
            )
            .await,
            3
        );
    }
}

mod misconfiguration {
    use super::*;
    use uplink::config::Secret;
    use uplink::startup::Application;

    async fn build_error(yaml: &str) -> String {
        let database = fresh_database(&[SCHEMA]).await;
        let mut settings = test_settings(&database.url);
        settings.database.url = Some(Secret::new(database.url));
        settings.write.tables = tables_from_yaml(yaml);
        match Application::build(settings).await {
            Ok(_) => panic!("start-up must fail for {yaml}"),
            Err(err) => format!("{err:#}"),
        }
    }

    #[tokio::test]
    async fn policies_naming_missing_or_unfit_columns_stop_start_up() {
        let cases = [
            (
                "write:\n  tables:\n    lists: { owner_column: owner }\n",
                "lists.owner",
            ),
            (
                "write:\n  tables:\n    inventory: { delta_columns: [product] }\n",
                "inventory.product",
            ),
            (
                "write:\n  tables:\n    documents: { conflict: { strategy: version, column: content } }\n",
                "documents.content",
            ),
            (
                "write:\n  tables:\n    orders: { locked_when: { column: state, values: [x] } }\n",
                "orders.state",
            ),
            ("write:\n  tables:\n    nowhere: {}\n", "nowhere"),
            (
                "write:\n  tables:\n    orders: { transitions: { column: status, allowed: { open: [closed], closed: [open] } } }\n",
                "orders.transitions.initial",
            ),
        ];
        for (yaml, named) in cases {
            let message = build_error(yaml).await;
            assert!(
                message.contains(named),
                "{yaml}: message should name `{named}`: {message}"
            );
            assert!(
                message.contains("write.tables."),
                "{yaml}: message should name the key: {message}"
            );
        }
    }
}
