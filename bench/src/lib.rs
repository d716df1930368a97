//! `uplink-bench`: a load generator for uplink and its baselines.
//!
//! Point it at any deployment (`--url`, `--token` or a dev-identity
//! `--user`), or let it start a local release uplink on a database
//! (`--spawn --database-url …`, which `scripts/bench` does). With a database
//! URL, Postgres or MySQL/MariaDB, it also runs the baselines on the same
//! entries: `naive` (one statement per entry, one transaction per batch: the
//! reference demos' statements), `naive-typed` (the same with typed prepared
//! statements; Postgres only) and `sql-limit` (the fewest set-based
//! statements per batch over a plain connection).
//!
//! The load loop runs on one thread (a current-thread runtime), so on a
//! small machine the generator takes as little CPU from uplink and the database
//! as possible; the report shows the CPU split of all three.

mod args;
mod baseline_db;
mod baseline_mysql;
mod baseline_pg;
mod batch;
mod cases;
mod curve;
mod instructions;
mod load;
mod plot;
pub mod procfs;
mod report;
mod rng;
mod run;
mod server;
mod spawn_config;
mod suite;
mod summary;
mod targets;
mod virtual_client;
mod workload;

pub use args::BenchArgs;
pub use suite::run;
pub use workload::Workload;
