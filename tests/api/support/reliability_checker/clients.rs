//! The virtual clients: each sends its transactions, retries what it could
//! not learn the fate of, and records what it was told.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::Plan;

/// One client transaction: a write of a last-write-wins row plus its entry row.
#[derive(Debug, Clone)]
pub struct Write {
    pub client: usize,
    /// op_id of the row write; the entry row is `op + 1`.
    pub op: i64,
    pub batch: usize,
    pub row: String,
    pub value: String,
    pub first_send: Instant,
    pub ack: Option<Ack>,
    /// Some attempt may have been applied without us learning of it.
    pub indeterminate: bool,
}

#[derive(Debug, Clone)]
pub struct Ack {
    pub at: Instant,
    pub row_status: String,
    pub entry_status: String,
}

/// A tiny deterministic generator (no dependency, reproducible by seed).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[derive(Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub transport_errors: AtomicU64,
    pub timeout_retries: AtomicU64,
    /// Entries acknowledged so far, across clients (`Plan::target_entries`).
    pub acknowledged: AtomicU64,
    pub statuses: Mutex<BTreeMap<u16, u64>>,
    /// Answers of the load balancer itself (not JSON): 503 no replica
    /// available (nothing was forwarded), 502/504 a replica cut or too slow.
    pub gateway_statuses: Mutex<BTreeMap<u16, u64>>,
}

pub enum Outcome {
    /// 200: per-entry statuses by op_id (absent: applied).
    Acknowledged(HashMap<i64, String>),
    /// Definitely not applied: 503.
    NotApplied,
    /// Definitely not applied: the connection was refused (uplink restarting).
    Refused,
    /// Unknown: timeout, reset, unexpected status.
    Unknown,
    Unauthorized,
}

pub async fn send(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    body: &Value,
    counters: &Counters,
) -> Outcome {
    counters.requests.fetch_add(1, Ordering::SeqCst);
    let response = http
        .post(format!("{base}/api/data"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await;
    let response = match response {
        Ok(response) => response,
        Err(err) => {
            counters.transport_errors.fetch_add(1, Ordering::SeqCst);
            return if err.is_connect() {
                Outcome::Refused
            } else {
                Outcome::Unknown
            };
        }
    };
    let status = response.status().as_u16();
    let from_uplink = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let tally = match from_uplink || status < 500 {
        true => &counters.statuses,
        false => &counters.gateway_statuses,
    };
    *tally.lock().await.entry(status).or_default() += 1;
    match status {
        200 => match response.json::<Value>().await {
            Ok(report) => {
                let statuses = report["results"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|r| Some((r["op_id"].as_i64()?, r["status"].as_str()?.to_owned())))
                    .collect();
                Outcome::Acknowledged(statuses)
            }
            // The body was cut: the batch may or may not have committed.
            Err(_) => Outcome::Unknown,
        },
        503 => Outcome::NotApplied,
        401 => Outcome::Unauthorized,
        _ => Outcome::Unknown,
    }
}

pub async fn token(http: &reqwest::Client, base: &str, user: &str) -> String {
    loop {
        let response = http
            .post(format!("{base}/api/auth/token"))
            .json(&json!({ "user_id": user }))
            .send()
            .await;
        if let Ok(response) = response
            && response.status() == 200
            && let Ok(body) = response.json::<Value>().await
            && let Some(token) = body["token"].as_str()
        {
            return token.to_owned();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn run_client(
    client: usize,
    plan: Plan,
    base: String,
    http: reqwest::Client,
    counters: Arc<Counters>,
    deadline: Option<Instant>,
    injected: Arc<AtomicU64>,
) -> Vec<Write> {
    let mut rng =
        Rng((plan.seed.wrapping_add(client as u64 + 1)).wrapping_mul(0x2545_f491_4f6c_dd1d) | 1);
    let user = format!("u{}", client % plan.users.max(1));
    let client_id = format!("c{client}");
    let mut token = token(&http, &base, &user).await;
    let mut writes: Vec<Write> = Vec::new();
    let mut created = vec![false; plan.own_rows];
    let mut op: i64 = 0;
    let mut batch_no = 0;
    loop {
        let more = match deadline {
            Some(deadline) => Instant::now() < deadline,
            None => batch_no < plan.batches_per_client,
        } || injected.load(Ordering::SeqCst) < plan.faults.at_least
            || counters.acknowledged.load(Ordering::SeqCst) < plan.target_entries;
        if !more {
            break;
        }
        let first = writes.len();
        let mut entries = Vec::new();
        for _ in 0..=rng.below(plan.max_txs_per_batch as u64) {
            op += 1;
            let tx = op;
            let own = plan.shared_rows == 0 || (plan.own_rows > 0 && rng.below(2) == 0);
            let (row, verb) = if own {
                let j = rng.below(plan.own_rows as u64) as usize;
                let verb = if !created[j] || rng.below(2) == 0 {
                    "PUT"
                } else {
                    "PATCH"
                };
                created[j] = true;
                (format!("c{client}-r{j}"), verb)
            } else {
                let j = rng.below(plan.shared_rows as u64);
                (
                    format!("s{j}"),
                    if rng.below(2) == 0 { "PUT" } else { "PATCH" },
                )
            };
            let value = format!("c{client}:{op}");
            entries.push(json!({"op_id": op, "op": verb, "type": "chaos_rows", "id": row, "tx_id": tx, "data": {"value": value}}));
            op += 1;
            entries.push(json!({"op_id": op, "op": "PUT", "type": "chaos_entries", "id": format!("c{client}-e{}", op - 1), "tx_id": tx, "data": {"value": value}}));
            writes.push(Write {
                client,
                op: op - 1,
                batch: batch_no,
                row,
                value,
                first_send: Instant::now(),
                ack: None,
                indeterminate: false,
            });
        }
        let body = json!({"client_id": client_id, "batch": entries});
        let mut attempts = 0;
        let statuses = loop {
            attempts += 1;
            if attempts > 2000 {
                // uplink never recovered: leave these unacknowledged (a violation).
                break None;
            }
            let outcome = if rng.below(100) < plan.timeout_retry_percent {
                // Abandon the first attempt after a short client timeout while it
                // still runs, then retry: both may reach the database.
                let first_attempt = {
                    let (http, base, token, body, counters) = (
                        http.clone(),
                        base.clone(),
                        token.clone(),
                        body.clone(),
                        counters.clone(),
                    );
                    tokio::spawn(async move { send(&http, &base, &token, &body, &counters).await })
                };
                tokio::time::sleep(Duration::from_millis(1 + rng.below(15))).await;
                if first_attempt.is_finished() {
                    first_attempt.await.unwrap_or(Outcome::Unknown)
                } else {
                    counters.timeout_retries.fetch_add(1, Ordering::SeqCst);
                    for write in &mut writes[first..] {
                        write.indeterminate = true;
                    }
                    send(&http, &base, &token, &body, &counters).await
                }
            } else {
                send(&http, &base, &token, &body, &counters).await
            };
            match outcome {
                Outcome::Acknowledged(statuses) => break Some(statuses),
                Outcome::NotApplied => {}
                // uplink is restarting: give it a moment rather than a flood.
                Outcome::Refused => tokio::time::sleep(Duration::from_millis(200)).await,
                Outcome::Unknown => {
                    for write in &mut writes[first..] {
                        write.indeterminate = true;
                    }
                }
                Outcome::Unauthorized => token = self::token(&http, &base, &user).await,
            }
            tokio::time::sleep(Duration::from_millis(20 + rng.below(80))).await;
        };
        if let Some(statuses) = statuses {
            let acknowledged = 2 * (writes.len() - first) as u64;
            counters
                .acknowledged
                .fetch_add(acknowledged, Ordering::SeqCst);
            let at = Instant::now();
            let status = |op: i64| {
                statuses
                    .get(&op)
                    .cloned()
                    .unwrap_or_else(|| "applied".to_owned())
            };
            for write in &mut writes[first..] {
                write.ack = Some(Ack {
                    at,
                    row_status: status(write.op),
                    entry_status: status(write.op + 1),
                });
            }
        }
        batch_no += 1;
    }
    writes
}
