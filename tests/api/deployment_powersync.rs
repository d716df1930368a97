//! The PowerSync Service's config agrees with uplink and with
//! docker-compose.yml: it verifies uplink's tokens, replicates the database
//! uplink writes to and mounts the sync config.

use std::path::Path;

use serde_json::Value as Json;
use serde_norway::Value as Yaml;

use crate::support::compose::{
    Compose, JWKS_PATH, POWERSYNC_SERVICE, UPLINK_SERVICE, at, effective_config_in_compose,
    env_tags, http_target, json_at, pg_target, strings, text, yaml,
};

#[test]
fn powersync_verifies_uplink_tokens_with_uplink_jwks() {
    let compose = Compose::load();
    let service = yaml("deploy/powersync/service.yaml");
    let effective = effective_config_in_compose();
    let port = json_at(&effective, "server.port").and_then(Json::as_u64);

    let jwks = strings(at(&service, &["client_auth", "jwks_uri"]));
    assert_eq!(jwks.len(), 1, "one JWKS URI: uplink's");
    let (host, jwks_port, path) = http_target(&jwks[0]);
    assert_eq!(
        host, UPLINK_SERVICE,
        "jwks_uri must name the uplink service"
    );
    assert_eq!(
        Some(u64::from(jwks_port)),
        port,
        "jwks_uri port must be uplink's server.port"
    );
    assert_eq!(path, JWKS_PATH, "jwks_uri must be uplink's JWKS route");
    assert!(
        compose.service_names().contains(&UPLINK_SERVICE.to_owned()),
        "jwks_uri host must be a compose service"
    );

    // uplink's tokens carry every configured audience; the service accepts a
    // token when one of them is in its list.
    let accepted = strings(at(&service, &["client_auth", "audience"]));
    assert!(!accepted.is_empty(), "client_auth.audience must be set");
    let issued: Vec<String> = json_at(&effective, "auth.audience")
        .and_then(Json::as_array)
        .expect("uplink's configuration has auth.audience")
        .iter()
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect();
    assert!(
        accepted.iter().any(|a| issued.contains(a)),
        "PowerSync accepts audiences {accepted:?}, uplink issues {issued:?} (PSYNC_S2105)"
    );

    // The URL uplink hands to devices reaches the PowerSync Service.
    let powersync_url = json_at(&effective, "auth.powersync_url")
        .and_then(Json::as_str)
        .expect("auth.powersync_url");
    let (_, url_port, _) = http_target(powersync_url);
    let service_port: u16 = at(&service, &["port"])
        .map(text)
        .and_then(|p| p.parse().ok())
        .expect("service.yaml port");
    assert_eq!(
        url_port, service_port,
        "auth.powersync_url must use the service port"
    );
    assert!(
        compose
            .container_ports(POWERSYNC_SERVICE)
            .contains(&service_port),
        "compose must publish the PowerSync port {service_port}"
    );
}

#[test]
fn powersync_replicates_the_database_uplink_writes_to() {
    let compose = Compose::load();
    let service = yaml("deploy/powersync/service.yaml");
    let env = compose.env(POWERSYNC_SERVICE);

    // Every `!env` the config uses is provided (only PS_ names are allowed).
    let mut names = Vec::new();
    env_tags(&service, &mut names);
    assert!(!names.is_empty(), "connection strings come from !env");
    for name in &names {
        assert!(
            name.starts_with("PS_"),
            "`!env {name}`: only PS_ names work"
        );
        assert!(
            env.contains_key(name.as_str()),
            "service.yaml uses !env {name}; compose must set it"
        );
    }

    let connections = match at(&service, &["replication", "connections"]) {
        Some(Yaml::Sequence(c)) => c,
        _ => panic!("service.yaml has no replication.connections"),
    };
    assert_eq!(connections.len(), 1);
    let uri = at(&connections[0], &["uri"]).expect("connection uri");
    let uri = match &connections[0].get("uri") {
        Some(Yaml::Tagged(t)) if t.tag == "env" => {
            env.get(&text(&t.value)).cloned().expect("checked above")
        }
        _ => text(uri),
    };
    let replicated = pg_target(&uri);
    let written = pg_target(&compose.env(UPLINK_SERVICE)["DATABASE_URL"]);
    assert_eq!(
        replicated, written,
        "PowerSync must replicate the database uplink writes to"
    );

    let postgres = compose.service(&written.0);
    let command = strings(at(postgres, &["command"])).join(" ");
    assert!(
        command.contains("wal_level=logical"),
        "`{}` needs wal_level=logical for PowerSync",
        written.0
    );
    let test = strings(at(postgres, &["healthcheck", "test"])).join(" ");
    assert!(
        test.contains("pg_isready"),
        "postgres healthcheck uses pg_isready"
    );
    assert!(
        compose
            .bind_mounts(&written.0)
            .iter()
            .any(|(host, container)| host == "examples/todo/schema.sql"
                && container.starts_with("/docker-entrypoint-initdb.d/")),
        "postgres initialises from examples/todo/schema.sql"
    );
    for dependency in [written.0.as_str(), UPLINK_SERVICE] {
        assert!(
            compose.depends_on_healthy(POWERSYNC_SERVICE, dependency),
            "powersync waits for {dependency} to be healthy"
        );
    }
    assert!(
        compose.depends_on_healthy(UPLINK_SERVICE, &written.0),
        "uplink waits for postgres to be healthy"
    );

    // Storage is a Postgres of its own, and it is a compose service.
    assert_eq!(
        at(&service, &["storage", "type"]).map(text).as_deref(),
        Some("postgresql")
    );
    let storage_uri = match at(&service, &["storage"]).and_then(|s| s.get("uri")) {
        Some(Yaml::Tagged(t)) => env[&text(&t.value)].clone(),
        Some(other) => text(other),
        None => panic!("storage.uri"),
    };
    let storage = pg_target(&storage_uri);
    assert!(
        compose.service_names().contains(&storage.0),
        "storage host `{}` must be a compose service",
        storage.0
    );
    assert_ne!(storage, written, "bucket storage is not the app database");
}

#[test]
fn powersync_mounts_its_config_and_the_sync_config() {
    let compose = Compose::load();
    let service = yaml("deploy/powersync/service.yaml");
    let env = compose.env(POWERSYNC_SERVICE);
    let mounts = compose.bind_mounts(POWERSYNC_SERVICE);
    let config_path = env
        .get("POWERSYNC_CONFIG_PATH")
        .expect("POWERSYNC_CONFIG_PATH");
    assert!(
        mounts
            .iter()
            .any(|(h, c)| h == "deploy/powersync/service.yaml" && c == config_path),
        "deploy/powersync/service.yaml must be mounted at {config_path}"
    );
    let sync_path = at(&service, &["sync_config", "path"])
        .map(text)
        .expect("sync_config.path");
    let config_dir = Path::new(config_path).parent().expect("a directory");
    let expected = config_dir.join(&sync_path).display().to_string();
    assert!(
        mounts
            .iter()
            .any(|(h, c)| h == "examples/todo/sync-config.yaml" && *c == expected),
        "examples/todo/sync-config.yaml must be mounted at {expected}"
    );
}
