//! The backend seam (see docs/architecture.md, "The backend interface"):
//! which database a deployment uses is decided in the backend folders and
//! the factory that builds the pool, and the write path's shared control
//! flow never names the database driver.

use crate::source::{Source, code_lines, sample, sources};

/// Where the kind of database may be matched on: the backends, their
/// factory (`db`: pool, migrations, capabilities), the records that pick
/// their twin (`store/either.rs`, `store/attachment_records.rs`) and the
/// kind's own definition.
const MAY_MATCH_KIND: &[&str] = &[
    "src/db/",
    "src/upload/backend/factory.rs",
    "src/upload/postgres/",
    "src/upload/mysql/",
    "src/store/either.rs",
    // The attachment records' sessions: a Postgres or MySQL transaction or
    // pooled connection, so `attachments/` is written once.
    "src/store/attachment_records.rs",
    "src/config/sections.rs",
];

const KIND_VARIANTS: &[&str] = &[
    "Database::Postgres",
    "Database::MySql",
    "DatabaseKind::Postgres",
    "DatabaseKind::MySql",
];

/// The write path's files that may name the driver: the backends and the
/// one conversion of its errors (`failure.rs`).
const MAY_NAME_DRIVER: &[&str] = &[
    "src/upload/postgres/",
    "src/upload/mysql/",
    "src/upload/failure.rs",
];

#[test]
fn the_kind_of_database_is_matched_only_in_the_backends() {
    let offenders = kind_matches(&sources("src"));
    assert!(
        offenders.is_empty(),
        "the kind of database matched outside {MAY_MATCH_KIND:?}: {offenders:#?}"
    );
}

#[test]
fn the_kind_detector_finds_a_match_outside_the_backends() {
    let files = [
        sample(
            "src/admin/x.rs",
            &["admin", "x"],
            "match db {\n    Database::Postgres(pool, _) => 1,\n    _ => 2,\n}\n\
             // Database::MySql in a comment\n",
        ),
        sample(
            "src/upload/mysql/x.rs",
            &["upload", "mysql", "x"],
            "if let Database::MySql(pool, _) = db {}",
        ),
    ];

    assert_eq!(
        kind_matches(&files),
        ["src/admin/x.rs: Database::Postgres(pool, _) => 1,"]
    );
}

#[test]
fn the_write_path_names_the_driver_only_in_the_backends() {
    let offenders = driver_lines(&sources("src"));
    assert!(
        offenders.is_empty(),
        "the write path names sqlx outside {MAY_NAME_DRIVER:?}: {offenders:#?}"
    );
}

#[test]
fn the_driver_detector_finds_sqlx_in_shared_code() {
    let files = [
        sample(
            "src/upload/run.rs",
            &["upload", "run"],
            "use sqlx::PgConnection;\n// sqlx in a comment\n",
        ),
        sample(
            "src/upload/postgres/x.rs",
            &["upload", "postgres", "x"],
            "use sqlx::PgConnection;",
        ),
        sample("src/store/x.rs", &["store", "x"], "use sqlx::PgPool;"),
    ];

    assert_eq!(
        driver_lines(&files),
        ["src/upload/run.rs: use sqlx::PgConnection;"]
    );
}

fn kind_matches(files: &[Source]) -> Vec<String> {
    offending_lines(files, MAY_MATCH_KIND, |line| {
        KIND_VARIANTS.iter().any(|variant| line.contains(variant))
    })
}

fn driver_lines(files: &[Source]) -> Vec<String> {
    let write_path: Vec<&Source> = files
        .iter()
        .filter(|file| file.path.starts_with("src/upload/"))
        .collect();
    offending_lines(write_path, MAY_NAME_DRIVER, |line| line.contains("sqlx"))
}

/// Each code line outside `allowed` (path prefixes) that `offends`.
fn offending_lines<'f>(
    files: impl IntoIterator<Item = &'f Source>,
    allowed: &[&str],
    offends: impl Fn(&str) -> bool,
) -> Vec<String> {
    files
        .into_iter()
        .filter(|file| !allowed.iter().any(|prefix| file.path.starts_with(prefix)))
        .flat_map(|file| {
            code_lines(&file.text)
                .filter(|line| offends(line))
                .map(|line| format!("{}: {}", file.path, line.trim()))
                .collect::<Vec<_>>()
        })
        .collect()
}
