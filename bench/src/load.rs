//! The load loop: N connections kept busy for a fixed time, latency from
//! each request's intended send time into an HDR histogram.
//!
//! Closed loop (no rate): a connection sends its next request as soon as the
//! previous answer arrives, so the intended send time is that moment.
//! Fixed rate: each connection has a schedule; a request that starts late
//! because the previous one was slow is still timed from its slot, so a
//! stall shows up in the percentiles instead of being left out
//! ("coordinated omission").

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use hdrhistogram::Histogram;

use crate::procfs;
use crate::targets::{Pool, Target};
use crate::virtual_client::VirtualClient;
use crate::workload::Workload;
use crate::{baseline_mysql as mysql, baseline_pg as pg};

pub struct Phase {
    pub workload: Workload,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// Requests per second over all connections; `None` = closed loop.
    pub rate: Option<f64>,
    pub batch_size: usize,
    pub transactions: usize,
}

/// The processes whose CPU time and memory are reported.
#[derive(Clone, Copy, Default)]
pub struct Watch {
    pub server_pid: Option<u32>,
    /// The database server's main process (the postmaster, mysqld).
    pub database_pid: Option<u32>,
}

#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct CpuSplit {
    pub uplink_s: Option<f64>,
    /// The whole database server: Postgres or MySQL/MariaDB.
    pub database_s: Option<f64>,
    pub client_s: Option<f64>,
}

struct Snapshot {
    at: Instant,
    uplink: Option<f64>,
    database: Option<f64>,
    client: Option<f64>,
}

impl Snapshot {
    fn take(watch: Watch) -> Self {
        Self {
            at: Instant::now(),
            uplink: watch.server_pid.and_then(|p| procfs::cpu_seconds(p, false)),
            database: watch.database_pid.and_then(procfs::server_cpu_seconds),
            client: procfs::self_cpu_seconds(),
        }
    }

    fn since(&self, start: &Snapshot) -> CpuSplit {
        let d = |a: Option<f64>, b: Option<f64>| Some(a? - b?);
        CpuSplit {
            uplink_s: d(self.uplink, start.uplink),
            database_s: d(self.database, start.database),
            client_s: d(self.client, start.client),
        }
    }
}

pub struct Outcome {
    pub requests: u64,
    pub ops: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub latency_us: Histogram<u64>,
    /// From the end of the warm-up to the last measured answer.
    pub elapsed: Duration,
    pub cpu: CpuSplit,
    /// Highest resident memory of the server sampled during the phase.
    pub server_rss_peak_kb: Option<u64>,
}

struct Tally {
    requests: u64,
    ops: u64,
    errors: u64,
    first_error: Option<String>,
    last_done: Option<Instant>,
    latency_us: Histogram<u64>,
}

/// What one connection sends next.
enum Source {
    Writes {
        client: Box<VirtualClient>,
        mixed: bool,
    },
    Tokens {
        user_id: String,
    },
    Presign {
        n: u64,
    },
}

pub struct Setup<'a> {
    pub target: &'a Target,
    pub user_id: &'a str,
    /// One list per connection (todos reference a list).
    pub list_ids: &'a [uuid::Uuid],
    pub seed: u64,
    pub id_salt: u64,
}

pub async fn run(phase: &Phase, setup: &Setup<'_>, watch: Watch) -> anyhow::Result<Outcome> {
    let histogram = || Histogram::<u64>::new_with_bounds(1, 600_000_000, 3);
    let tally = RefCell::new(Tally {
        requests: 0,
        ops: 0,
        errors: 0,
        first_error: None,
        last_done: None,
        latency_us: histogram()?,
    });
    let start = Instant::now();
    let measure_from = start + phase.warmup;
    let stop_at = measure_from + phase.duration;
    let running = Cell::new(true);
    let rss_peak = Cell::new(None::<u64>);
    let cpu_start: RefCell<Option<Snapshot>> = RefCell::new(None);
    let cpu_end: RefCell<Option<Snapshot>> = RefCell::new(None);

    let connections = (0..phase.connections).map(|i| {
        let mut source = match phase.workload {
            Workload::Put100
            | Workload::Mixed
            | Workload::Put100Owner
            | Workload::MixedPolicies => {
                let client = VirtualClient::new(
                    setup.user_id,
                    i,
                    setup.list_ids.get(i).copied().unwrap_or_default(),
                    setup.seed,
                    setup.id_salt,
                );
                Source::Writes {
                    client: Box::new(if phase.workload == Workload::MixedPolicies {
                        client.with_statuses()
                    } else {
                        client
                    }),
                    mixed: phase.workload.mixed(),
                }
            }
            Workload::Tokens => Source::Tokens {
                user_id: format!("{}-{i}", setup.user_id),
            },
            Workload::Presign => Source::Presign { n: 0 },
        };
        let tally = &tally;
        let interval = phase
            .rate
            .map(|rate| Duration::from_secs_f64(phase.connections as f64 / rate.max(0.001)));
        async move {
            // Stagger the schedules so connections do not fire in lockstep.
            let mut slot =
                interval.map(|every| start + every.mul_f64(i as f64 / phase.connections as f64));
            loop {
                let intended = match (slot, interval) {
                    (Some(at), Some(every)) => {
                        slot = Some(at + every);
                        tokio::time::sleep_until(at.into()).await;
                        at
                    }
                    _ => Instant::now(),
                };
                if intended >= stop_at {
                    break;
                }
                let result = send(setup.target, &mut source, phase).await;
                let done = Instant::now();
                if intended < measure_from {
                    continue;
                }
                let mut t = tally.borrow_mut();
                t.requests += 1;
                t.last_done = Some(t.last_done.map_or(done, |d| d.max(done)));
                match result {
                    Ok(ops) => t.ops += ops,
                    Err(err) => {
                        t.errors += 1;
                        if t.first_error.is_none() {
                            t.first_error = Some(format!("{err:#}"));
                        }
                    }
                }
                let micros = done.duration_since(intended).as_micros() as u64;
                t.latency_us.saturating_record(micros.max(1));
            }
        }
    });

    let sampler = async {
        tokio::time::sleep_until(measure_from.into()).await;
        *cpu_start.borrow_mut() = Some(Snapshot::take(watch));
        while running.get() {
            if let Some(kb) = watch.server_pid.and_then(procfs::rss_kb) {
                rss_peak.set(Some(rss_peak.get().map_or(kb, |p| p.max(kb))));
            }
            if Instant::now() >= stop_at && cpu_end.borrow().is_none() {
                *cpu_end.borrow_mut() = Some(Snapshot::take(watch));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let load = async {
        join_all(connections).await;
        running.set(false);
    };
    tokio::join!(load, sampler);

    let end = cpu_end.take().unwrap_or_else(|| Snapshot::take(watch));
    let cpu = match cpu_start.take() {
        Some(begin) => end.since(&begin),
        None => CpuSplit::default(),
    };
    let _ = end.at;
    let t = tally.into_inner();
    Ok(Outcome {
        requests: t.requests,
        ops: t.ops,
        errors: t.errors,
        first_error: t.first_error,
        latency_us: t.latency_us,
        elapsed: t.last_done.map_or(Duration::ZERO, |d| {
            d.saturating_duration_since(measure_from)
        }),
        cpu,
        server_rss_peak_kb: rss_peak.get(),
    })
}

async fn send(target: &Target, source: &mut Source, phase: &Phase) -> anyhow::Result<u64> {
    match source {
        Source::Writes { client, mixed } => {
            let batch = if *mixed {
                client.mixed_batch(phase.batch_size, phase.transactions)
            } else {
                client.put_batch(phase.batch_size)
            };
            match target {
                Target::Uplink(http) => http.upload(batch.to_json(), batch.len()).await,
                Target::Naive(Pool::Postgres(pool)) => pg::naive(pool, &batch).await,
                Target::Naive(Pool::MySql(pool)) => mysql::naive(pool, &batch).await,
                Target::NaiveTyped(pool) => pg::naive_typed(pool, &batch).await,
                Target::SqlLimit(Pool::Postgres(pool)) => pg::sql_limit(pool, &batch).await,
                Target::SqlLimit(Pool::MySql(pool)) => mysql::sql_limit(pool, &batch).await,
            }
        }
        Source::Tokens { user_id } => match target {
            Target::Uplink(http) => http.token(user_id).await.map(|_| 1),
            _ => anyhow::bail!("the tokens workload runs against uplink only"),
        },
        Source::Presign { n } => match target {
            Target::Uplink(http) => {
                *n += 1;
                http.presign(*n).await.map(|()| 1)
            }
            _ => anyhow::bail!("the presign workload runs against uplink only"),
        },
    }
}
