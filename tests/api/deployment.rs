//! The deployment files agree with uplink and with each other: Dockerfile,
//! docker-compose.yml and the PowerSync Service's config. No Docker engine
//! runs in CI, so these checks are what stops them drifting from the code.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value as Json;
use serde_norway::Value as Yaml;

use crate::support::app::{TestApp, spawn_app};
use crate::support::fixtures::todo_example;
use crate::support::repo::repo_root;

const UPLINK_SERVICE: &str = "uplink";
const POWERSYNC_SERVICE: &str = "powersync";
const JWKS_PATH: &str = "/.well-known/jwks.json";

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path))
        .unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

fn yaml(path: &str) -> Yaml {
    serde_norway::from_str(&read(path)).unwrap_or_else(|e| panic!("{path} is not YAML: {e}"))
}

/// `value[a][b]…`, looking through `!tags`.
fn at<'a>(value: &'a Yaml, path: &[&str]) -> Option<&'a Yaml> {
    path.iter()
        .try_fold(value, |v, key| untag(v).get(*key))
        .map(untag)
}

fn untag(value: &Yaml) -> &Yaml {
    match value {
        Yaml::Tagged(tagged) => untag(&tagged.value),
        other => other,
    }
}

fn text(value: &Yaml) -> String {
    match untag(value) {
        Yaml::String(s) => s.clone(),
        Yaml::Number(n) => n.to_string(),
        Yaml::Bool(b) => b.to_string(),
        other => panic!("expected a scalar, got {other:?}"),
    }
}

fn strings(value: Option<&Yaml>) -> Vec<String> {
    match value.map(untag) {
        Some(Yaml::Sequence(items)) => items.iter().map(text).collect(),
        Some(Yaml::String(s)) => vec![s.clone()],
        None => vec![],
        Some(other) => panic!("expected a list, got {other:?}"),
    }
}

// ---------------------------------------------------------------- compose

struct Compose(Yaml);

/// The variables compose reads from `.env` next to the compose file.
fn dot_env() -> BTreeMap<String, String> {
    read(".env")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (k, v) = line
                .split_once('=')
                .unwrap_or_else(|| panic!(".env: `{line}` is not NAME=value"));
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect()
}

/// Compose's interpolation of `${NAME}` and `${NAME:-default}` with `vars`
/// (what `docker compose` does with `.env` when the shell sets nothing).
fn interpolate(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .unwrap_or_else(|| panic!("unclosed ${{ in `{rest}`"))
            + start;
        let expr = &rest[start + 2..end];
        let (name, default) = match expr.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (expr, None),
        };
        let value = vars
            .get(name)
            .map(String::as_str)
            .or(default)
            .unwrap_or_else(|| panic!("docker-compose.yml uses ${{{name}}} without a value"));
        out.push_str(value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

impl Compose {
    fn load() -> Self {
        let text = interpolate(&read("docker-compose.yml"), &dot_env());
        Self(serde_norway::from_str(&text).expect("docker-compose.yml is YAML"))
    }

    fn service(&self, name: &str) -> &Yaml {
        at(&self.0, &["services", name])
            .unwrap_or_else(|| panic!("docker-compose.yml has no service `{name}`"))
    }

    fn service_names(&self) -> Vec<String> {
        match at(&self.0, &["services"]) {
            Some(Yaml::Mapping(services)) => services.keys().map(text).collect(),
            _ => panic!("docker-compose.yml has no services"),
        }
    }

    /// A service's environment, in either of compose's two spellings.
    fn env(&self, name: &str) -> BTreeMap<String, String> {
        match at(self.service(name), &["environment"]) {
            None => BTreeMap::new(),
            Some(Yaml::Mapping(map)) => map.iter().map(|(k, v)| (text(k), text(v))).collect(),
            Some(Yaml::Sequence(items)) => items
                .iter()
                .map(|item| {
                    let item = text(item);
                    let (k, v) = item.split_once('=').unwrap_or((&item, ""));
                    (k.to_owned(), v.to_owned())
                })
                .collect(),
            Some(other) => panic!("service `{name}`: unexpected environment {other:?}"),
        }
    }

    /// Bind mounts as (host path relative to the repo, container path).
    fn bind_mounts(&self, name: &str) -> Vec<(String, String)> {
        strings(at(self.service(name), &["volumes"]))
            .into_iter()
            .filter(|v| v.starts_with("./"))
            .map(|v| {
                let mut parts = v.split(':');
                let host = parts.next().unwrap_or_default();
                let container = parts.next().unwrap_or_default();
                (
                    host.trim_start_matches("./").to_owned(),
                    container.to_owned(),
                )
            })
            .collect()
    }

    /// Container ports published by a service (`host:container` or `ip:host:container`).
    fn container_ports(&self, name: &str) -> Vec<u16> {
        strings(at(self.service(name), &["ports"]))
            .iter()
            .map(|p| {
                p.rsplit(':')
                    .next()
                    .and_then(|c| c.split('/').next())
                    .and_then(|c| c.parse().ok())
                    .unwrap_or_else(|| panic!("service `{name}`: cannot read port `{p}`"))
            })
            .collect()
    }

    /// Host ports a service publishes (`ip:host:container`).
    fn host_ports(&self, name: &str) -> Vec<u16> {
        strings(at(self.service(name), &["ports"]))
            .iter()
            .map(|p| {
                let parts: Vec<&str> = p.split(':').collect();
                parts[parts.len().saturating_sub(2)]
                    .parse()
                    .unwrap_or_else(|_| panic!("service `{name}`: cannot read host port `{p}`"))
            })
            .collect()
    }

    fn image(&self, name: &str) -> Option<String> {
        at(self.service(name), &["image"]).map(text)
    }

    fn depends_on_healthy(&self, name: &str, dependency: &str) -> bool {
        at(self.service(name), &["depends_on", dependency, "condition"])
            .map(text)
            .is_some_and(|c| c == "service_healthy")
    }
}

/// `postgres://user:pass@host:port/db?x` → (host, port, db).
fn pg_target(url: &str) -> (String, u16, String) {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let rest = rest.rsplit_once('@').map(|(_, r)| r).unwrap_or(rest);
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (host, port) = authority.split_once(':').unwrap_or((authority, "5432"));
    let db = path.split('?').next().unwrap_or_default();
    (
        host.to_owned(),
        port.parse().expect("numeric port"),
        db.to_owned(),
    )
}

/// `http://host:port/path` → (host, port, path).
fn http_target(url: &str) -> (String, u16, String) {
    let rest = url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("`{url}` is not an http:// URL"));
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (host, port) = authority.split_once(':').unwrap_or((authority, "80"));
    (
        host.to_owned(),
        port.parse().expect("numeric port"),
        format!("/{path}"),
    )
}

// ---------------------------------------------------------------- Dockerfile

struct Instruction {
    stage: usize,
    keyword: String,
    args: String,
}

struct Dockerfile {
    args: BTreeMap<String, String>,
    instructions: Vec<Instruction>,
    stage_names: BTreeSet<String>,
}

impl Dockerfile {
    fn load() -> Self {
        let source = read("Dockerfile");
        // Join continuation lines; drop comments and blank lines.
        let mut logical = Vec::new();
        let mut current = String::new();
        for line in source.lines() {
            let trimmed = line.trim();
            if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
                continue;
            }
            match trimmed.strip_suffix('\\') {
                Some(head) => {
                    current.push_str(head);
                    current.push(' ');
                }
                None => {
                    current.push_str(trimmed);
                    logical.push(std::mem::take(&mut current));
                }
            }
        }
        let mut args = BTreeMap::new();
        let mut instructions = Vec::new();
        let mut stage_names = BTreeSet::new();
        let mut stage = 0;
        for line in logical {
            let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
            let keyword = keyword.to_ascii_uppercase();
            let rest = rest.trim().to_owned();
            if keyword == "FROM" {
                stage += 1;
                let words: Vec<&str> = rest.split_whitespace().collect();
                if let [_, as_kw, name] = words.as_slice()
                    && as_kw.eq_ignore_ascii_case("as")
                {
                    stage_names.insert((*name).to_owned());
                }
            }
            if keyword == "ARG"
                && stage == 0
                && let Some((name, default)) = rest.split_once('=')
            {
                args.insert(name.to_owned(), default.trim_matches('"').to_owned());
            }
            instructions.push(Instruction {
                stage,
                keyword,
                args: rest,
            });
        }
        Self {
            args,
            instructions,
            stage_names,
        }
    }

    fn last_stage(&self) -> usize {
        self.instructions.iter().map(|i| i.stage).max().unwrap_or(0)
    }

    fn all(&self, keyword: &str) -> impl Iterator<Item = &Instruction> {
        self.instructions
            .iter()
            .filter(move |i| i.keyword == keyword)
    }

    fn runtime(&self, keyword: &str) -> Vec<&str> {
        let last = self.last_stage();
        self.all(keyword)
            .filter(|i| i.stage == last)
            .map(|i| i.args.as_str())
            .collect()
    }

    /// `${NAME}` / `$NAME` from the global ARG defaults.
    fn expand(&self, value: &str) -> String {
        let mut out = value.to_owned();
        for (name, default) in &self.args {
            out = out
                .replace(&format!("${{{name}}}"), default)
                .replace(&format!("${name}"), default);
        }
        out
    }

    /// The runtime stage's `ENV` as a map (both `K=V` and `K V` spellings).
    fn runtime_env(&self) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        for args in self.runtime("ENV") {
            if args.contains('=') {
                for pair in args.split_whitespace() {
                    if let Some((k, v)) = pair.split_once('=') {
                        env.insert(k.to_owned(), v.trim_matches('"').to_owned());
                    }
                }
            } else if let Some((k, v)) = args.split_once(' ') {
                env.insert(k.to_owned(), v.trim().to_owned());
            }
        }
        env
    }
}

/// An image reference is pinned when it names a tag other than `latest`
/// (or a digest).
fn assert_pinned(image: &str, whose: &str) {
    if image.contains("@sha256:") {
        return;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    let tag = last.split_once(':').map(|(_, t)| t);
    match tag {
        Some(tag) if !tag.is_empty() && tag != "latest" => {}
        _ => panic!("{whose}: image `{image}` must be pinned to a tag (not `latest`)"),
    }
}

// ---------------------------------------------------------------- uplink's own view

/// uplink's effective configuration (`uplink check-config`) with the
/// environment the container gets: the Dockerfile's ENV, then compose's,
/// with container paths mapped back to the files they are mounted from.
fn effective_config_in_compose() -> Json {
    let compose = Compose::load();
    let dockerfile = Dockerfile::load();
    let mut mounts: Vec<(PathBuf, String)> = compose
        .bind_mounts(UPLINK_SERVICE)
        .into_iter()
        .map(|(host, container)| (repo_root().join(host), container))
        .collect();
    // COPY config/ /app/config/ in the runtime stage.
    for copy in dockerfile.runtime("COPY") {
        let words: Vec<&str> = copy.split_whitespace().collect();
        if let [src, dst] = words.as_slice() {
            mounts.push((repo_root().join(src), dst.trim_end_matches('/').to_owned()));
        }
    }
    let map_path = |value: &str| -> String {
        for (host, container) in &mounts {
            if value == container || value.trim_end_matches('/') == container {
                return host.display().to_string();
            }
        }
        value.to_owned()
    };
    let data_dir = std::env::temp_dir().join(format!("uplink-deploy-{}", std::process::id()));
    let mut env: BTreeMap<String, String> = dockerfile.runtime_env();
    env.extend(compose.env(UPLINK_SERVICE));
    let mut command = Command::new(env!("CARGO_BIN_EXE_uplink"));
    command.env_clear().current_dir(std::env::temp_dir());
    for (k, v) in &env {
        command.env(k, map_path(v));
    }
    // A writable stand-in for the container's data volume.
    command.env("UPLINK__SERVER__DATA_DIR", &data_dir);
    let output = command
        .arg("check-config")
        .output()
        .expect("run uplink check-config");
    assert!(
        output.status.success(),
        "uplink refuses the configuration docker-compose.yml gives it:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("check-config prints JSON")
}

fn json_at<'a>(value: &'a Json, dotted: &str) -> Option<&'a Json> {
    dotted.split('.').try_fold(value, |v, key| v.get(key))
}

/// Every dotted key path of a YAML mapping (`server`, `server.port`, …).
fn yaml_keys(value: &Yaml, prefix: &str, out: &mut BTreeSet<String>) {
    if let Yaml::Mapping(map) = untag(value) {
        for (k, v) in map {
            let key = if prefix.is_empty() {
                text(k)
            } else {
                format!("{prefix}.{}", text(k))
            };
            out.insert(key.clone());
            yaml_keys(v, &key, out);
        }
    }
}

/// The variable names of every `!env NAME` in a PowerSync config.
fn env_tags(value: &Yaml, out: &mut Vec<String>) {
    match value {
        Yaml::Tagged(tagged) if tagged.tag == "env" => out.push(text(&tagged.value)),
        Yaml::Tagged(tagged) => env_tags(&tagged.value, out),
        Yaml::Mapping(map) => map.values().for_each(|v| env_tags(v, out)),
        Yaml::Sequence(items) => items.iter().for_each(|v| env_tags(v, out)),
        _ => {}
    }
}

fn env_var_to_key(var: &str) -> Option<String> {
    var.strip_prefix("UPLINK__").map(|rest| {
        rest.split("__")
            .collect::<Vec<_>>()
            .join(".")
            .to_lowercase()
    })
}

// ---------------------------------------------------------------- tests

#[test]
fn compose_gives_uplink_a_configuration_it_accepts() {
    let compose = Compose::load();
    let env = compose.env(UPLINK_SERVICE);
    let effective = effective_config_in_compose();

    let mut base_keys = BTreeSet::new();
    yaml_keys(&yaml("config/base.yaml"), "", &mut base_keys);
    let vars: Vec<&String> = env.keys().filter(|k| k.starts_with("UPLINK__")).collect();
    assert!(
        !vars.is_empty(),
        "the uplink service sets no UPLINK__ variables"
    );
    for var in vars {
        let key = env_var_to_key(var).unwrap_or_default();
        assert!(
            json_at(&effective, &key).is_some(),
            "docker-compose.yml sets {var}, but uplink has no key `{key}`"
        );
        assert!(
            base_keys.contains(&key),
            "docker-compose.yml sets {var}, but config/base.yaml does not document `{key}`"
        );
    }
    // The values arrived as meant (a typo in a nested name would be dropped).
    for (var, value) in &env {
        let Some(key) = env_var_to_key(var) else {
            continue;
        };
        let seen = json_at(&effective, &key).expect("checked above");
        let shown = match seen {
            Json::String(s) => s.clone(),
            // Lists arrive comma separated.
            Json::Array(items) => items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(","),
            other => other.to_string(),
        };
        assert!(
            shown == *value || shown == "[redacted]",
            "{var}={value}, but uplink's effective `{key}` is {seen}"
        );
    }
    assert_eq!(
        json_at(&effective, "environment").and_then(Json::as_str),
        Some("development"),
        "compose runs uplink in development (generated key, dev identity mode)"
    );
    assert_eq!(
        json_at(&effective, "auth.identity.mode").and_then(Json::as_str),
        Some("dev"),
        "the local stack hands tokens out in dev identity mode, as its comments say"
    );
}

#[test]
fn the_container_listens_on_every_interface() {
    // Development binds 127.0.0.1 by default, which a published port cannot reach.
    let effective = effective_config_in_compose();
    assert_eq!(
        json_at(&effective, "server.host").and_then(Json::as_str),
        Some("0.0.0.0")
    );
    assert_eq!(
        Dockerfile::load()
            .runtime_env()
            .get("UPLINK__SERVER__HOST")
            .map(String::as_str),
        Some("0.0.0.0"),
        "the image listens on every interface whatever UPLINK_ENVIRONMENT says"
    );
}

#[test]
fn uplink_ports_are_the_same_in_config_dockerfile_and_compose() {
    let effective = effective_config_in_compose();
    let port_of = |key: &str| {
        json_at(&effective, key)
            .and_then(Json::as_u64)
            .unwrap_or_else(|| panic!("{key}")) as u16
    };
    let (port, metrics) = (port_of("server.port"), port_of("metrics.port"));
    let compose = Compose::load();
    for (what, port) in [("server.port", port), ("metrics.port", metrics)] {
        assert!(
            compose.container_ports(UPLINK_SERVICE).contains(&port),
            "compose must publish uplink's {what} {port}"
        );
    }
    assert_eq!(
        json_at(&effective, "metrics.host").and_then(Json::as_str),
        Some("0.0.0.0"),
        "in its container the metrics listener must be reachable where published"
    );
    let exposed: Vec<u16> = Dockerfile::load()
        .runtime("EXPOSE")
        .iter()
        .flat_map(|e| e.split_whitespace())
        .filter_map(|p| p.split('/').next()?.parse().ok())
        .collect();
    assert_eq!(
        exposed,
        vec![port, metrics],
        "Dockerfile EXPOSE must be server.port and metrics.port"
    );
}

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

#[test]
fn attachments_go_to_the_seaweedfs_bucket_that_compose_creates() {
    let compose = Compose::load();
    let env = compose.env(UPLINK_SERVICE);
    assert_eq!(env["UPLINK__ATTACHMENTS__STORAGE"], "s3");
    let (host, port, _) = http_target(&env["UPLINK__ATTACHMENTS__S3__ENDPOINT"]);
    assert!(
        compose.service_names().contains(&host),
        "S3 endpoint host `{host}` is a compose service"
    );
    assert!(
        compose.container_ports(&host).contains(&port),
        "{host} publishes {port}, so the public endpoint reaches it too"
    );
    let (public_host, public_port, _) =
        http_target(&env["UPLINK__ATTACHMENTS__S3__PUBLIC_ENDPOINT"]);
    assert_eq!(public_host, "localhost");
    assert_eq!(
        compose.host_ports(&host),
        vec![public_port],
        "devices reach {host} on the port the public endpoint names"
    );
    let command = strings(at(compose.service(&host), &["command"])).join(" ");
    assert!(
        command.contains("-s3 ") && command.contains(&format!("-s3.port={port}")),
        "`{host}` runs the S3 gateway on {port}: {command}"
    );

    // uplink's key pair is an identity of the S3 gateway's config, allowed
    // to read and write.
    let config_path = command
        .split_whitespace()
        .find_map(|arg| arg.strip_prefix("-s3.config="))
        .expect("the S3 gateway is started with -s3.config (no anonymous access)");
    let (config_file, _) = compose
        .bind_mounts(&host)
        .into_iter()
        .find(|(_, container)| container == config_path)
        .unwrap_or_else(|| panic!("{config_path} is mounted from the repository"));
    let config: Json = serde_json::from_str(&read(&config_file)).expect("the S3 config is JSON");
    let identity = config["identities"]
        .as_array()
        .expect("identities")
        .iter()
        .find(|identity| {
            identity["credentials"].as_array().is_some_and(|c| {
                c.iter().any(|c| {
                    c["accessKey"] == env["UPLINK__ATTACHMENTS__S3__ACCESS_KEY_ID"].as_str()
                        && c["secretKey"]
                            == env["UPLINK__ATTACHMENTS__S3__SECRET_ACCESS_KEY"].as_str()
                })
            })
        })
        .expect("uplink's access key is an identity of the S3 config");
    for action in ["Read", "Write"] {
        assert!(
            identity["actions"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == action)),
            "uplink's identity may {action}"
        );
    }

    let bucket = &env["UPLINK__ATTACHMENTS__S3__BUCKET"];
    let init = strings(at(compose.service("seaweedfs-init"), &["command"])).join(" ");
    assert!(
        init.contains(&format!("s3.bucket.create -name {bucket}"))
            && init.contains(&format!("-master={host}:")),
        "seaweedfs-init must create the bucket `{bucket}` on `{host}`"
    );
    assert_eq!(
        at(
            compose.service(UPLINK_SERVICE),
            &["depends_on", "seaweedfs-init", "condition"]
        )
        .map(text)
        .as_deref(),
        Some("service_completed_successfully")
    );
    for name in compose.service_names() {
        let image = compose.image(&name).unwrap_or_default();
        assert!(
            !image.starts_with("minio/"),
            "`{name}`: MinIO no longer publishes images ({image})"
        );
    }
}

#[test]
fn the_local_stack_listens_on_localhost_only_and_restarts() {
    let compose = Compose::load();
    for name in compose.service_names() {
        for port in strings(at(compose.service(&name), &["ports"])) {
            assert!(
                port.starts_with("127.0.0.1:"),
                "`{name}` publishes `{port}` on every interface; bind it to 127.0.0.1"
            );
        }
        let restart = at(compose.service(&name), &["restart"]).map(text);
        let one_shot = name.ends_with("-init");
        match restart.as_deref() {
            Some("no") if one_shot => {}
            Some("unless-stopped" | "always" | "on-failure") if !one_shot => {}
            other => panic!("`{name}` has restart policy {other:?}"),
        }
    }
    // Inside its container uplink must listen on every interface, whatever
    // its own default host is.
    assert_eq!(
        compose
            .env(UPLINK_SERVICE)
            .get("UPLINK__SERVER__HOST")
            .map(String::as_str),
        Some("0.0.0.0")
    );
    // Every port variable in .env is one the compose file uses.
    let raw = read("docker-compose.yml");
    for name in dot_env().keys() {
        assert!(
            raw.contains(&format!("${{{name}")),
            ".env sets {name}, which docker-compose.yml does not use"
        );
    }
}

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

// ---------------------------------------------------------------- the example app

/// Sends `batch` as `user`'s device; returns the report.
async fn upload(app: &TestApp, user: &str, batch: Json) -> Json {
    let token = app.token_for(user).await;
    let (status, report) = app
        .post_batch(
            &token,
            &serde_json::json!({"client_id": format!("{user}-device"), "batch": batch}),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    report
}

#[tokio::test]
async fn the_example_app_keeps_each_users_lists_and_todos_their_own() {
    use serde_json::json;
    let app = todo_example().spawn().await;
    let (list, todo, bobs_list) = (
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
    );
    // As the demo apps do, Alice's device names itself in `created_by`; it
    // leaves `owner_id` out, which uplink fills in.
    let created = upload(
        &app,
        "alice",
        json!([
            {"op_id": 1, "tx_id": 1, "op": "PUT", "type": "lists", "id": list, "data": {"name": "Groceries"}},
            {"op_id": 2, "tx_id": 1, "op": "PUT", "type": "todos", "id": todo,
             "data": {"list_id": list, "description": "Milk", "created_by": "alice"}},
        ]),
    )
    .await;
    assert_eq!(created["applied"], 2, "{created}");
    let bob_created = upload(
        &app,
        "bob",
        json!([{"op_id": 1, "tx_id": 1, "op": "PUT", "type": "lists", "id": bobs_list, "data": {"name": "Bob's"}}]),
    )
    .await;
    assert_eq!(bob_created["applied"], 1, "{bob_created}");
    let rows = || async {
        sqlx::query_as::<_, (String, String, String, String, String, bool)>(
            "SELECT l.name, l.owner_id, t.description, t.created_by, t.list_id::text, t.completed
               FROM lists l JOIN todos t ON t.list_id = l.id WHERE l.owner_id = 'alice'",
        )
        .fetch_all(&app.db_pool)
        .await
        .unwrap()
    };
    let before = rows().await;
    assert_eq!(
        before,
        vec![(
            "Groceries".into(),
            "alice".into(),
            "Milk".into(),
            "alice".into(),
            list.to_string(),
            false
        )]
    );

    // Bob edits, reassigns, replaces and deletes Alice's todo and list.
    let attacks = [
        json!({"op": "PATCH", "type": "todos", "id": todo, "data": {"completed": 1, "completed_by": "bob"}}),
        json!({"op": "PATCH", "type": "todos", "id": todo, "data": {"list_id": bobs_list}}),
        json!({"op": "PATCH", "type": "todos", "id": todo, "data": {"created_by": "bob"}}),
        json!({"op": "PUT", "type": "todos", "id": todo, "data": {"list_id": bobs_list, "description": "mine"}}),
        json!({"op": "DELETE", "type": "todos", "id": todo}),
        json!({"op": "PATCH", "type": "lists", "id": list, "data": {"name": "Bob's now"}}),
        json!({"op": "PATCH", "type": "lists", "id": list, "data": {"owner_id": "bob"}}),
        json!({"op": "PUT", "type": "lists", "id": list, "data": {"name": "replaced"}}),
        json!({"op": "DELETE", "type": "lists", "id": list}),
    ];
    for (i, attack) in attacks.iter().enumerate() {
        let mut entry = attack.clone();
        entry["op_id"] = json!(i + 2);
        entry["tx_id"] = json!(i + 2);
        let report = upload(&app, "bob", json!([entry])).await;
        assert_eq!(report["applied"], 0, "{attack} → {report}");
        assert_eq!(
            report["results"][0]["code"], "forbidden",
            "{attack} → {report}"
        );
    }

    // Nor does he put todos of his own into her list.
    let (own_todo, intruder) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let own = upload(
        &app,
        "bob",
        json!([{"op_id": 20, "tx_id": 20, "op": "PUT", "type": "todos", "id": own_todo,
                "data": {"list_id": bobs_list, "description": "Bob's"}}]),
    )
    .await;
    assert_eq!(own["applied"], 1, "{own}");
    let intrusions = [
        json!({"op": "PUT", "type": "todos", "id": intruder, "data": {"list_id": list, "description": "spam"}}),
        json!({"op": "PATCH", "type": "todos", "id": own_todo, "data": {"list_id": list}}),
    ];
    for (i, intrusion) in intrusions.iter().enumerate() {
        let mut entry = intrusion.clone();
        entry["op_id"] = json!(i + 21);
        entry["tx_id"] = json!(i + 21);
        let report = upload(&app, "bob", json!([entry])).await;
        assert_eq!(report["applied"], 0, "{intrusion} → {report}");
        assert_eq!(
            report["results"][0]["code"], "check_violation",
            "{intrusion} → {report}"
        );
    }

    assert_eq!(rows().await, before, "Alice's list and todo are unchanged");
    let dead: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM uplink.dead_letters WHERE user_id = 'bob' AND code = 'forbidden'",
    )
    .fetch_one(&app.db_pool)
    .await
    .unwrap();
    assert_eq!(
        dead,
        attacks.len() as i64,
        "each refused entry is dead-lettered"
    );
}
