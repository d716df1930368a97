//! `kill -HUP` re-reads the signing keys of a running `uplink serve`: keys
//! rotate without a restart, and a configuration that does not load leaves
//! the keys in force.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::database::fresh_database;
use crate::support::reliability_checker::replicas::{KeyDir, key_config};
use crate::support::reliability_checker::{UplinkProcess, checker_schema};

async fn published(http: &reqwest::Client, uplink: &UplinkProcess) -> Vec<String> {
    let jwks: Value = http
        .get(uplink.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut kids: Vec<String> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    kids.sort();
    kids
}

async fn signing_kid(http: &reqwest::Client, uplink: &UplinkProcess) -> String {
    let body: Value = http
        .post(uplink.url("/api/auth/token"))
        .json(&json!({"user_id": "u"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = body["token"].as_str().unwrap();
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

/// Sends SIGHUP and waits until `/.well-known/jwks.json` lists `count` keys
/// (a hang guard of a minute: a reload takes milliseconds).
async fn hangup_until_published(
    http: &reqwest::Client,
    uplink: &UplinkProcess,
    count: usize,
) -> Vec<String> {
    uplink.signal("HUP");
    for _ in 0..3000 {
        let kids = published(http, uplink).await;
        if kids.len() == count {
            return kids;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the keys were not reloaded; see {}", uplink.log.display());
}

#[tokio::test]
async fn sighup_rotates_the_signing_keys_without_a_restart() {
    let db = fresh_database(&[checker_schema(0)]).await;
    let keys = KeyDir::new();
    let (k1, k2) = (keys.write_key("k1"), keys.write_key("k2"));
    let mut uplink = UplinkProcess::start_with(&db.url, 2, &key_config(&[(&k1, true)])).await;
    let http = reqwest::Client::new();
    let [old_kid] = <[String; 1]>::try_from(published(&http, &uplink).await).unwrap();
    let old_token: Value = http
        .post(uplink.url("/api/auth/token"))
        .json(&json!({"user_id": "u"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let old_token = old_token["token"].as_str().unwrap().to_owned();

    // Published, not signing.
    uplink.rewrite_config(&key_config(&[(&k1, true), (&k2, false)]));
    let both = hangup_until_published(&http, &uplink, 2).await;
    let new_kid = both.iter().find(|k| **k != old_kid).unwrap().clone();
    assert_eq!(signing_kid(&http, &uplink).await, old_kid);

    // Signing: the old key's tokens still verify.
    uplink.rewrite_config(&key_config(&[(&k1, false), (&k2, true)]));
    uplink.signal("HUP");
    for _ in 0..3000 {
        if signing_kid(&http, &uplink).await == new_kid {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(signing_kid(&http, &uplink).await, new_kid);
    let me = |token: String| {
        let http = http.clone();
        let url = uplink.url("/api/auth/me");
        async move {
            http.get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(me(old_token.clone()).await, 200);

    // A key file that does not load: the reload is refused, the keys stay.
    let missing = keys.path("missing");
    uplink.rewrite_config(&key_config(&[(&k2, true), (&missing, false)]));
    uplink.signal("HUP");
    let mut log = String::new();
    for _ in 0..3000 {
        log = std::fs::read_to_string(&uplink.log).unwrap_or_default();
        if log.contains("signing key reload failed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        log.contains("signing key reload failed") && log.contains("missing.pem"),
        "the refusal is logged, naming the file: {log}"
    );
    assert_eq!(published(&http, &uplink).await, both);
    assert_eq!(signing_kid(&http, &uplink).await, new_kid);

    // Retired: the old key's tokens are refused.
    uplink.rewrite_config(&key_config(&[(&k2, true)]));
    assert_eq!(
        hangup_until_published(&http, &uplink, 1).await,
        vec![new_kid.clone()]
    );
    assert_eq!(me(old_token).await, 401);
    let running = uplink.child.as_mut().unwrap().try_wait().unwrap();
    assert!(running.is_none(), "uplink never restarted: {running:?}");
}
