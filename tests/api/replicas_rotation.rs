//! Signing keys rotate across three replicas behind HAProxy while tokens are
//! issued and verified through it, by the documented procedure
//! (docs/deployment.md, "Rotating signing keys across replicas"): publish
//! the new key on every replica (SIGHUP re-reads the key files), wait one
//! JWKS cache period, switch the signer, wait one token lifetime, retire the
//! old key. Every token is verified twice: by uplink (`/api/auth/me`, on
//! whichever replica the load balancer picks) and by a verifier that, like
//! the PowerSync Service, checks signatures against a cached copy of the
//! JWKS. `scripts/replicas` runs it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};
use tokio::sync::{Mutex, RwLock};

use crate::support::reliability_checker::replicas::{Backend, Cluster, key_config};

const WORKERS: usize = 6;
/// How often the verifier refetches the JWKS: the cache period the
/// procedure waits out (the PowerSync Service's is minutes).
const JWKS_CACHE_PERIOD: Duration = Duration::from_millis(300);

/// The verifier's cached JWKS and how many times it was fetched.
#[derive(Default)]
struct JwksCache {
    fetches: u64,
    keys: BTreeMap<String, Value>,
}

#[derive(Default)]
struct Tally {
    /// Tokens verified by both uplink and the JWKS verifier, by kid.
    verified: Mutex<BTreeMap<String, u64>>,
    failures: Mutex<Vec<String>>,
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .expect("a JWT header")
        .kid
        .expect("a kid")
}

/// The Ed25519 signature of `token` checked against the cached JWK of its kid.
fn verifies_against(cache: &JwksCache, token: &str) -> Result<(), String> {
    let kid = kid_of(token);
    let jwk = cache
        .keys
        .get(&kid)
        .ok_or_else(|| format!("kid {kid} is not in the cached JWKS"))?;
    let x = B64
        .decode(jwk["x"].as_str().unwrap_or_default())
        .map_err(|e| e.to_string())?;
    let key = ed25519_dalek::VerifyingKey::try_from(x.as_slice()).map_err(|e| e.to_string())?;
    let (message, signature) = token.rsplit_once('.').ok_or("not a JWS")?;
    let signature = B64.decode(signature).map_err(|e| e.to_string())?;
    let signature = ed25519_dalek::Signature::from_slice(&signature).map_err(|e| e.to_string())?;
    key.verify_strict(message.as_bytes(), &signature)
        .map_err(|e| format!("signature of kid {kid}: {e}"))
}

async fn jwks_kids(http: &reqwest::Client, url: &str) -> Option<BTreeMap<String, Value>> {
    let jwks: Value = http.get(url).send().await.ok()?.json().await.ok()?;
    Some(
        jwks["keys"]
            .as_array()?
            .iter()
            .filter_map(|k| Some((k["kid"].as_str()?.to_owned(), k.clone())))
            .collect(),
    )
}

async fn issue(http: &reqwest::Client, url: &str, user: &str) -> Result<String, String> {
    let response = http
        .post(url)
        .json(&json!({ "user_id": user }))
        .send()
        .await
        .map_err(|e| format!("token request: {e}"))?;
    let status = response.status();
    let body: Value = response.json().await.map_err(|e| e.to_string())?;
    match body["token"].as_str() {
        Some(token) if status == 200 => Ok(token.to_owned()),
        _ => Err(format!("token request answered {status}: {body}")),
    }
}

/// One worker: a fresh token each round, verified by uplink and the verifier.
async fn worker(
    i: usize,
    base: String,
    cache: Arc<RwLock<JwksCache>>,
    tally: Arc<Tally>,
    rounds: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) {
    let http = reqwest::Client::new();
    let user = format!("w{i}");
    while !stop.load(Ordering::SeqCst) {
        let outcome = async {
            let token = issue(&http, &format!("{base}/api/auth/token"), &user).await?;
            let response = http
                .get(format!("{base}/api/auth/me"))
                .bearer_auth(&token)
                .send()
                .await
                .map_err(|e| format!("/api/auth/me: {e}"))?;
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if status != 200 || body["user_id"] != user.as_str() {
                return Err(format!(
                    "uplink refused a token of kid {}: {status} {body}",
                    kid_of(&token)
                ));
            }
            verifies_against(&*cache.read().await, &token)?;
            Ok(kid_of(&token))
        };
        match outcome.await {
            Ok(kid) => *tally.verified.lock().await.entry(kid).or_default() += 1,
            Err(failure) => tally.failures.lock().await.push(failure),
        }
        rounds.fetch_add(1, Ordering::SeqCst);
    }
}

/// Waits until every worker has finished `more` rounds from now.
async fn rounds_pass(rounds: &[Arc<AtomicU64>], more: u64) {
    let start: Vec<u64> = rounds.iter().map(|r| r.load(Ordering::SeqCst)).collect();
    while rounds
        .iter()
        .zip(&start)
        .any(|(r, s)| r.load(Ordering::SeqCst) < s + more)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `check` holds for what every replica answers at `path`.
async fn every_replica(cluster: &Cluster, path: &str, check: impl Fn(&str) -> bool) {
    let http = reqwest::Client::new();
    for replica in cluster.replicas.iter() {
        let url = replica.lock().await.url(path);
        // A hang guard (10 minutes), not a time limit: a reload takes milliseconds.
        for attempt in 0.. {
            assert!(attempt < 30_000, "{url} never showed the reloaded keys");
            let answer = match path {
                "/api/auth/token" => issue(&http, &url, "probe").await.map(|t| kid_of(&t)).ok(),
                _ => jwks_kids(&http, &url)
                    .await
                    .map(|kids| kids.keys().cloned().collect::<Vec<_>>().join(",")),
            };
            if answer.as_deref().is_some_and(&check) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs HAProxy; run by scripts/replicas"]
async fn keys_rotate_across_replicas_under_load_without_a_failed_verification() {
    // Each worker asks for a token every round: far above the per-user and
    // per-address rates a device needs, which are not what this checks.
    let limits = "limits:\n  token_per_user: { per_second: 10000, burst: 10000 }\n  \
                  token_per_ip: { per_second: 10000, burst: 10000 }\n";
    let cluster = Cluster::start(Backend::Postgres, 3, 4, 0, limits).await;
    let base = cluster.haproxy.url("");
    let http = reqwest::Client::new();
    let old_token = issue(&http, &format!("{base}/api/auth/token"), "before")
        .await
        .unwrap();
    let old_kid = kid_of(&old_token);

    // The verifier's cache, refetched through the load balancer every period.
    let cache = Arc::new(RwLock::new(JwksCache::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let refresher = {
        let (cache, stop, url) = (
            cache.clone(),
            stop.clone(),
            cluster.haproxy.url("/.well-known/jwks.json"),
        );
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            while !stop.load(Ordering::SeqCst) {
                if let Some(keys) = jwks_kids(&http, &url).await {
                    let mut cache = cache.write().await;
                    cache.keys = keys;
                    cache.fetches += 1;
                }
                tokio::time::sleep(JWKS_CACHE_PERIOD).await;
            }
        })
    };
    while cache.read().await.fetches == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let tally = Arc::new(Tally::default());
    let rounds: Vec<Arc<AtomicU64>> = (0..WORKERS).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let workers: Vec<_> = (0..WORKERS)
        .map(|i| {
            tokio::spawn(worker(
                i,
                base.clone(),
                cache.clone(),
                tally.clone(),
                rounds[i].clone(),
                stop.clone(),
            ))
        })
        .collect();
    rounds_pass(&rounds, 10).await;

    // 1. Publish the new key on every replica; the old one still signs.
    let (k1, k2) = (cluster.key_dir.path("k1"), cluster.key_dir.write_key("k2"));
    cluster
        .reconfigure_and_hangup(&key_config(&[(&k1, true), (&k2, false)]))
        .await;
    every_replica(&cluster, "/.well-known/jwks.json", |kids| {
        kids.split(',').count() == 2
    })
    .await;
    let new_kid = jwks_kids(&http, &cluster.haproxy.url("/.well-known/jwks.json"))
        .await
        .unwrap()
        .into_keys()
        .find(|kid| *kid != old_kid)
        .expect("the new kid is published");
    // 2. Wait one JWKS cache period: the verifier has refetched since.
    let fetched = cache.read().await.fetches;
    while cache.read().await.fetches < fetched + 2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    rounds_pass(&rounds, 5).await;
    // 3. Switch the signer on every replica.
    cluster
        .reconfigure_and_hangup(&key_config(&[(&k1, false), (&k2, true)]))
        .await;
    every_replica(&cluster, "/api/auth/token", |kid| kid == new_kid).await;
    // 4. Wait one token lifetime: a worker uses each token once, so after
    //    two more rounds no token of the old key is in use.
    rounds_pass(&rounds, 2).await;
    // 5. Retire the old key.
    cluster
        .reconfigure_and_hangup(&key_config(&[(&k2, true)]))
        .await;
    every_replica(&cluster, "/.well-known/jwks.json", |kids| kids == new_kid).await;
    rounds_pass(&rounds, 10).await;

    stop.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.await.unwrap();
    }
    refresher.await.unwrap();
    let verified = tally.verified.lock().await.clone();
    let failures = tally.failures.lock().await.clone();
    // The figures, on the test's output for whoever runs it.
    #[allow(clippy::print_stdout)]
    {
        println!(
            "rotation under load: verified by kid {verified:?}; failed verifications: {}",
            failures.len()
        );
    }
    assert!(
        failures.is_empty(),
        "{} failed, first: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(
        verified.get(&old_kid).copied().unwrap_or(0) > 0,
        "{verified:?}"
    );
    assert!(
        verified.get(&new_kid).copied().unwrap_or(0) > 0,
        "{verified:?}"
    );
    // The old key is gone everywhere: its tokens are refused on every replica.
    for replica in cluster.replicas.iter() {
        let url = replica.lock().await.url("/api/auth/me");
        let response = http.get(url).bearer_auth(&old_token).send().await.unwrap();
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unknown_key", "{body}");
    }
}
