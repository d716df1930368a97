//! The images the deployment runs: every one pinned, the Dockerfile following
//! the house rules, and its HEALTHCHECK command telling a serving uplink from
//! a stopped one.

use std::collections::BTreeSet;
use std::process::Command;

use crate::support::app::spawn_app;
use crate::support::compose::{Compose, UPLINK_SERVICE, at, read, text};
use crate::support::dockerfile::{Dockerfile, assert_pinned};
use crate::support::repo::repo_root;

#[test]
fn every_compose_image_is_pinned() {
    let compose = Compose::load();
    for name in compose.service_names() {
        match compose.image(&name) {
            Some(image) if at(compose.service(&name), &["build"]).is_none() => {
                assert_pinned(&image, &format!("compose service `{name}`"));
            }
            Some(_) | None => assert!(
                at(compose.service(&name), &["build"]).is_some(),
                "service `{name}` has neither image nor build"
            ),
        }
    }
    assert_eq!(
        at(compose.service(UPLINK_SERVICE), &["build", "context"])
            .map(text)
            .as_deref(),
        Some("."),
        "compose builds uplink from this Dockerfile"
    );
}

#[test]
fn dockerfile_follows_the_house_rules() {
    let dockerfile = Dockerfile::load();

    for from in dockerfile.all("FROM") {
        let image = dockerfile.expand(from.args.split_whitespace().next().unwrap_or_default());
        if !dockerfile.stage_names.contains(&image) {
            assert_pinned(&image, "Dockerfile FROM");
        }
    }
    let runs: Vec<&str> = dockerfile.all("RUN").map(|i| i.args.as_str()).collect();
    assert!(
        runs.iter()
            .any(|r| r.contains("cargo build --release --locked --bin uplink")),
        "the release build uses --locked"
    );
    assert!(
        runs.iter().any(|r| r.contains("cargo chef cook")),
        "dependencies are cooked in their own layer (cargo-chef)"
    );

    let users = dockerfile.runtime("USER");
    let user = users.last().expect("the runtime stage sets USER");
    let name = user.split(':').next().unwrap_or_default();
    assert!(
        !matches!(name, "root" | "0" | ""),
        "runtime USER `{user}` must not be root"
    );
    assert_eq!(
        dockerfile
            .runtime("HEALTHCHECK")
            .last()
            .map(|h| h.rsplit_once("CMD").map(|(_, cmd)| cmd.trim().to_owned())),
        Some(Some(r#"["uplink", "healthcheck"]"#.to_owned())),
        "HEALTHCHECK runs `uplink healthcheck` (slim images have no curl)"
    );
    assert_eq!(dockerfile.runtime("ENTRYPOINT"), vec![r#"["uplink"]"#]);
    assert_eq!(dockerfile.runtime("CMD"), vec![r#"["serve"]"#]);
    assert_eq!(
        dockerfile
            .runtime_env()
            .get("UPLINK_ENVIRONMENT")
            .map(String::as_str),
        Some("production"),
        "the image defaults to production"
    );
    let copies = dockerfile.runtime("COPY").join("\n");
    for needed in ["target/release/uplink", "config/", "migrations/"] {
        assert!(copies.contains(needed), "the runtime stage copies {needed}");
    }

    let ignored: BTreeSet<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    for needed in ["target", ".data", ".git", "**/node_modules"] {
        assert!(
            ignored.contains(needed),
            ".dockerignore must exclude {needed}"
        );
    }
    // bench: a workspace member, whose manifest cargo reads to build uplink.
    for kept in [
        "src",
        "config",
        "migrations",
        "Cargo.toml",
        "Cargo.lock",
        ".sqlx",
        "bench",
    ] {
        assert!(
            !ignored.contains(kept),
            ".dockerignore must keep {kept} (the build needs it)"
        );
    }
}

// ---------------------------------------------------------------- the container's health check

/// `uplink healthcheck` as the image's HEALTHCHECK runs it: no arguments, the
/// port taken from the configuration.
fn healthcheck(port: u16) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_uplink"))
        .env_clear()
        .current_dir(repo_root())
        .env("UPLINK__SERVER__PORT", port.to_string())
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/unused")
        .arg("healthcheck")
        .output()
        .expect("run uplink healthcheck")
}

#[tokio::test]
async fn healthcheck_passes_while_uplink_serves_and_fails_once_it_stopped() {
    let app = spawn_app().await;
    let port = app.port;

    let output = tokio::task::spawn_blocking(move || healthcheck(port))
        .await
        .expect("healthcheck ran");
    assert!(
        output.status.success(),
        "healthcheck against a serving uplink failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "live");

    app.stop().await;
    let output = tokio::task::spawn_blocking(move || healthcheck(port))
        .await
        .expect("healthcheck ran");
    assert!(
        !output.status.success(),
        "healthcheck must fail when nothing serves on port {port}"
    );
}
