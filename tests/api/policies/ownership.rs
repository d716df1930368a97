//! Ownership and row-level security (Postgres only: MySQL has none): a
//! user writes only their own rows.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::app::TestApp;
use crate::support::backend::{Backend, on_both_databases};
use crate::support::fixtures::tables_from_yaml;
use crate::support::policies::{Client, code_of, spawn, text};

async fn another_user_cannot_update_delete_or_steal_a_row<P: Backend>() {
    let app = spawn::<P>().await;
    let list = Uuid::new_v4().to_string();
    let mut alice = Client::new(&app, "alice").await;
    let mut bob = Client::new(&app, "bob").await;
    let created = alice
        .send(&[json!({"op": "PUT", "type": "lists", "id": list, "data": {"name": "alice's"}})])
        .await;
    assert_eq!(created["applied"], 1);
    assert_eq!(text(&app, "SELECT owner_id FROM lists").await, "alice");

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

    assert_eq!(text(&app, "SELECT name FROM lists").await, "alice's");
    assert_eq!(text(&app, "SELECT owner_id FROM lists").await, "alice");
    assert_eq!(app.number("SELECT count(*) FROM lists").await, 1);
}

/// Two users creating the same new id at once: the first insert owns
/// the row and the other PUT is checked against it, never overwrites it.
async fn two_users_creating_one_id_at_once_cannot_both_own_it<P: Backend>() {
    const TRIALS: usize = 80;
    let app = spawn::<P>().await;
    let mut alice = Client::new(&app, "alice").await;
    let mut bob = Client::new(&app, "bob").await;
    for trial in 0..TRIALS {
        let list = Uuid::new_v4().to_string();
        let put =
            |name: &str| json!({"op": "PUT", "type": "lists", "id": list, "data": {"name": name}});
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
        let (name, owner) = (
            text(&app, &format!("SELECT name FROM lists WHERE id = '{list}'")).await,
            text(
                &app,
                &format!("SELECT owner_id FROM lists WHERE id = '{list}'"),
            )
            .await,
        );
        assert_eq!(owner, winner, "trial {trial}");
        assert_eq!(name, format!("{winner}'s"), "trial {trial}");
    }
    // Each losing PUT was rejected as usual: one dead letter per trial.
    assert_eq!(
        app.number("SELECT count(*) FROM uplink.dead_letters WHERE code = 'forbidden'")
            .await,
        TRIALS as i64
    );
}

/// The same race with several new ids in one client transaction,
/// checked and written a set at a time: one user gets every row, the
/// other's transaction is refused at its first entry and writes nothing.
async fn two_users_creating_the_same_ids_in_one_batch_cannot_share_them<P: Backend>() {
    const TRIALS: usize = 30;
    let app = spawn::<P>().await;
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

        let status = |r: &Value| match (r["applied"].as_u64(), r["rejected"].as_u64(), code_of(r)) {
            (Some(5), Some(0), None) => "applied",
            (Some(0), Some(5), Some("forbidden")) => "forbidden",
            _ => panic!("trial {trial}: unexpected report {r}"),
        };
        let winner = match (status(&a), status(&b)) {
            ("applied", "forbidden") => "alice",
            ("forbidden", "applied") => "bob",
            other => panic!("trial {trial}: {other:?}: {a} / {b}"),
        };
        let listed = ids
            .iter()
            .map(|id| format!("'{id}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = app
            .db_pool
            .texts(&format!(
                "SELECT CONCAT(name, ' by ', owner_id) FROM lists WHERE id IN ({listed})"
            ))
            .await;
        assert_eq!(rows.len(), 5, "trial {trial}");
        for row in rows {
            assert_eq!(
                row,
                Some(format!("{winner}'s by {winner}")),
                "trial {trial}"
            );
        }
    }
    assert_eq!(
        app.number("SELECT count(*) FROM uplink.dead_letters WHERE code = 'forbidden'")
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
        .send(&[
            json!({"op": "PUT", "type": "notes", "id": note, "data": {"body": "alice's secret"}}),
        ])
        .await;
    assert_eq!(created["applied"], 1, "{created}");
    assert_eq!(text(&app, "SELECT owner FROM notes").await, "alice");

    for attempt in [
        json!({"op": "PATCH", "type": "notes", "id": note, "data": {"body": "bob was here"}}),
        json!({"op": "DELETE", "type": "notes", "id": note}),
        json!({"op": "PUT", "type": "notes", "id": note, "data": {"body": "stolen"}}),
    ] {
        let report = bob.send(std::slice::from_ref(&attempt)).await;
        assert_eq!(code_of(&report), Some("forbidden"), "{attempt} → {report}");
    }
    assert_eq!(text(&app, "SELECT body FROM notes").await, "alice's secret");
    // uplink's own bookkeeping still worked under the role.
    assert_eq!(
        app.number("SELECT count(*) FROM uplink.dead_letters WHERE user_id = 'bob'")
            .await,
        3
    );
}

on_both_databases!(
    another_user_cannot_update_delete_or_steal_a_row,
    two_users_creating_one_id_at_once_cannot_both_own_it,
    two_users_creating_the_same_ids_in_one_batch_cannot_share_them,
);
