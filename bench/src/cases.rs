//! The measured cases: each workload against uplink, then against the
//! baselines on the same entries, and the tokens workload per algorithm.

use anyhow::{Context, bail};
use base64::Engine;
use uplink::auth::keys::KeyAlg;

use crate::load::{self, Phase, Setup};
use crate::procfs;
use crate::report::{self, Case};
use crate::rng;
use crate::run::Run;
use crate::server::Server;
use crate::spawn_config::key_env;
use crate::targets::{Http, Target};
use crate::workload::Workload;

impl Run {
    /// One list per virtual client (todos need one), created through
    /// uplink as an app would, or in the database when uplink is not
    /// measured.
    pub async fn create_lists(&mut self, http: Option<&Http>) -> anyhow::Result<()> {
        let mut rng = rng::Rng::new(self.args.seed ^ 0x4C15_7500);
        self.list_ids = (0..self.args.connections).map(|_| rng.uuid()).collect();
        let Some(http) = http else {
            let Some(db) = &self.db else {
                bail!("without uplink the benchmark needs --database-url");
            };
            return db.create_lists(&self.list_ids, &self.args.user).await;
        };
        let entries: Vec<serde_json::Value> = self
            .list_ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                serde_json::json!({
                    "op": "PUT", "type": "lists", "id": id,
                    "data": {"name": format!("bench list {i}"), "owner_id": self.args.user},
                })
            })
            .collect();
        let body = serde_json::json!({ "batch": entries }).to_string();
        http.upload(body, entries.len())
            .await
            .context("Failed to create the benchmark's lists through uplink")?;
        Ok(())
    }

    pub async fn case(
        &mut self,
        phase: &Phase,
        target: &Target,
        server: Option<&Server>,
        salt: u64,
    ) -> anyhow::Result<Case> {
        let reset = phase.workload.writes() && self.args.reset_tables;
        if reset && let Some(db) = &self.db {
            db.reset_todos().await?;
        }
        let label = format!("{} {}", phase.workload.name(), target.name());
        eprintln!("running {label} …");
        let setup = Setup {
            target,
            user_id: &self.args.user,
            list_ids: &self.list_ids,
            seed: self.args.seed,
            id_salt: salt,
        };
        let outcome = load::run(phase, &setup, self.watch(server)).await?;
        let mut case = Case::new(
            phase.workload.name(),
            target.name(),
            phase.batch_size,
            phase.connections,
            &outcome,
        );
        case.rate_rps = phase.rate;
        case.uplink_peak_rss_mb = match target {
            Target::Uplink(_) => report::mb(
                server
                    .and_then(Server::peak_rss_kb)
                    .or_else(|| self.args.server_pid.and_then(procfs::peak_rss_kb)),
            ),
            _ => None,
        };
        if reset {
            case.table_at_start = Some("empty, freshly analysed");
        }
        if let Some(error) = &case.first_error {
            eprintln!("  {} errors; first: {error}", case.errors);
        }
        self.cases.push(case.clone());
        Ok(case)
    }

    /// The cases of `workloads` against the spawned `server`, else the
    /// uplink at `url`, and the selected baselines.
    pub async fn main_cases(
        &mut self,
        server: Option<&Server>,
        url: &str,
        workloads: &[Workload],
    ) -> anyhow::Result<()> {
        let http = if self.measures_uplink() {
            let token = self.token(server, url).await?;
            Some(self.http_at(server, url, token)?)
        } else {
            None
        };
        if workloads.iter().any(|w| w.writes()) {
            self.create_lists(http.as_ref()).await?;
        }
        let mut salt = rng::Rng::new(self.args.seed ^ chrono::Utc::now().timestamp_micros() as u64);
        for &workload in workloads {
            let uplink = http.clone().map(Target::Uplink);
            let phase = self.phase(workload, None);
            let measured = match &uplink {
                Some(uplink) => Some(self.case(&phase, uplink, server, salt.next_u64()).await?),
                None => None,
            };
            // Policy cases are compared with their plain case, not with
            // the baselines.
            if !workload.writes() || workload.plain().is_some() {
                continue;
            }
            if let (Some(db), false) = (self.db.clone(), self.args.no_baselines) {
                for baseline in db.baselines(workload) {
                    if self.args.targets.contains(&baseline.kind()) {
                        self.case(&phase, &baseline, server, salt.next_u64())
                            .await?;
                    }
                }
            }
            if let (Some(uplink), Some(measured), Some(fraction), None) =
                (&uplink, measured, self.args.latency_at, self.args.rate)
            {
                let rate = (measured.requests_per_s * fraction).max(1.0);
                let phase = self.phase(workload, Some((rate * 10.0).round() / 10.0));
                self.case(&phase, uplink, server, salt.next_u64()).await?;
            }
        }
        Ok(())
    }

    pub async fn token_cases(&mut self) -> anyhow::Result<()> {
        let phase = self.phase(Workload::Tokens, None);
        if !self.args.spawn {
            let http = self.http(None, String::new())?;
            let alg = alg_of(&http.token(&self.args.user).await?);
            let mut case = self.case(&phase, &Target::Uplink(http), None, 0).await?;
            case.alg = alg.clone();
            if let Some(last) = self.cases.last_mut() {
                last.alg = alg;
            }
            return Ok(());
        }
        for name in self.args.algs.clone() {
            let alg = KeyAlg::parse(&name).with_context(|| {
                format!("--algs: unknown algorithm {name} (EdDSA, ES256, RS256, HS256)")
            })?;
            let env = [("UPLINK__AUTH__KEYS", key_env(alg)?)];
            let Some(server) = self.start_server(None, &env).await? else {
                bail!("--spawn is required to run the tokens workload per algorithm");
            };
            let result = async {
                let http = self.http(Some(&server), String::new())?;
                let issued = alg_of(&http.token(&self.args.user).await?);
                if issued.as_deref() != Some(alg.as_str()) {
                    bail!("uplink signed with {issued:?}, expected {alg}: is UPLINK__AUTH__KEYS honoured?");
                }
                self.case(&phase, &Target::Uplink(http), Some(&server), 0).await?;
                if let Some(last) = self.cases.last_mut() {
                    last.alg = issued;
                }
                Ok(())
            }
            .await;
            server.stop().await;
            result?;
        }
        Ok(())
    }
}

/// The `alg` in a token's header: which kind of key signed it.
fn alg_of(token: &str) -> Option<String> {
    let header = token.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get("alg")?.as_str().map(str::to_owned)
}
