//! Delta columns: concurrent changes to a quantity add up instead of
//! overwriting each other.

use serde_json::json;
use uuid::Uuid;

use crate::support::backend::{Backend, on_both_databases};
use crate::support::policies::{Client, code_of, spawn, text};

async fn two_offline_clerks_selling_the_same_item_both_count<P: Backend>() {
    let app = spawn::<P>().await;
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
    assert_eq!(text(&app, "SELECT quantity FROM inventory").await, "7");
    // Without `old`, the PATCH value itself is the change.
    clerk_a
        .send(&[json!({"op": "PATCH", "type": "inventory", "id": item, "data": {"quantity": -2}})])
        .await;
    assert_eq!(text(&app, "SELECT quantity FROM inventory").await, "5");
}

async fn overselling_is_a_check_violation_that_blocks_nothing_else<P: Backend>() {
    let app = spawn::<P>().await;
    let item = Uuid::new_v4().to_string();
    let other = Uuid::new_v4().to_string();
    let mut clerk = Client::new(&app, "clerk").await;
    clerk
        .send(&[json!({"op": "PUT", "type": "inventory", "id": item, "data": {"product": "bike", "quantity": 1}})])
        .await;
    let oversold = clerk
        .send(&[json!({"op": "PATCH", "type": "inventory", "id": item, "data": {"quantity": -3}})])
        .await;
    let next = clerk
        .send(&[json!({"op": "PUT", "type": "inventory", "id": other, "data": {"product": "helmet", "quantity": 4}})])
        .await;

    assert_eq!(code_of(&oversold), Some("check_violation"), "{oversold}");
    assert_eq!(next["applied"], 1);
    assert_eq!(app.number("SELECT sum(quantity) FROM inventory").await, 5);
}

async fn a_delta_without_a_client_id_is_refused<P: Backend>() {
    let app = spawn::<P>().await;
    let token = app.token_for("clerk").await;
    let item = Uuid::new_v4().to_string();
    app.db_pool
        .execute(&format!(
            "INSERT INTO inventory (id, quantity) VALUES ('{item}', 5)"
        ))
        .await;
    let (_, report) = app
        .post_batch(&token, &json!({"batch": [{"op_id": 1, "op": "PATCH", "type": "inventory", "id": item, "data": {"quantity": -1}}]}))
        .await;
    assert_eq!(code_of(&report), Some("client_id_required"), "{report}");
    assert_eq!(text(&app, "SELECT quantity FROM inventory").await, "5");
}

async fn sixteen_concurrent_clerks_sum_exactly<P: Backend>() {
    let app = spawn::<P>().await;
    let item = Uuid::new_v4().to_string();
    app.db_pool
        .execute(&format!(
            "INSERT INTO inventory (id, quantity) VALUES ('{item}', 100)"
        ))
        .await;
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
    assert_eq!(text(&app, "SELECT quantity FROM inventory").await, "84");
}

on_both_databases!(
    two_offline_clerks_selling_the_same_item_both_count,
    overselling_is_a_check_violation_that_blocks_nothing_else,
    a_delta_without_a_client_id_is_refused,
    sixteen_concurrent_clerks_sum_exactly,
);
