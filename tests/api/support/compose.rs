//! docker-compose.yml and the YAML files it mounts, read as the deployment
//! tests check them, and uplink's configuration inside that stack.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value as Json;
use serde_norway::Value as Yaml;

use crate::support::dockerfile::Dockerfile;
use crate::support::repo::repo_root;

pub const UPLINK_SERVICE: &str = "uplink";
/// uplink on the `mysql` profile's MySQL.
pub const UPLINK_MYSQL_SERVICE: &str = "uplink-mysql";
pub const POWERSYNC_SERVICE: &str = "powersync";
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

pub fn read(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path))
        .unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

pub fn yaml(path: &str) -> Yaml {
    serde_norway::from_str(&read(path)).unwrap_or_else(|e| panic!("{path} is not YAML: {e}"))
}

/// `value[a][b]…`, looking through `!tags`.
pub fn at<'a>(value: &'a Yaml, path: &[&str]) -> Option<&'a Yaml> {
    path.iter()
        .try_fold(value, |v, key| untag(v).get(*key))
        .map(untag)
}

pub fn untag(value: &Yaml) -> &Yaml {
    match value {
        Yaml::Tagged(tagged) => untag(&tagged.value),
        other => other,
    }
}

pub fn text(value: &Yaml) -> String {
    match untag(value) {
        Yaml::String(s) => s.clone(),
        Yaml::Number(n) => n.to_string(),
        Yaml::Bool(b) => b.to_string(),
        other => panic!("expected a scalar, got {other:?}"),
    }
}

pub fn strings(value: Option<&Yaml>) -> Vec<String> {
    match value.map(untag) {
        Some(Yaml::Sequence(items)) => items.iter().map(text).collect(),
        Some(Yaml::String(s)) => vec![s.clone()],
        None => vec![],
        Some(other) => panic!("expected a list, got {other:?}"),
    }
}

// ---------------------------------------------------------------- compose

pub struct Compose(Yaml);

/// The variables compose reads from `.env` next to the compose file.
pub fn dot_env() -> BTreeMap<String, String> {
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
pub fn interpolate(text: &str, vars: &BTreeMap<String, String>) -> String {
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
    pub fn load() -> Self {
        let text = interpolate(&read("docker-compose.yml"), &dot_env());
        Self(serde_norway::from_str(&text).expect("docker-compose.yml is YAML"))
    }

    pub fn service(&self, name: &str) -> &Yaml {
        at(&self.0, &["services", name])
            .unwrap_or_else(|| panic!("docker-compose.yml has no service `{name}`"))
    }

    pub fn service_names(&self) -> Vec<String> {
        match at(&self.0, &["services"]) {
            Some(Yaml::Mapping(services)) => services.keys().map(text).collect(),
            _ => panic!("docker-compose.yml has no services"),
        }
    }

    /// A service's environment, in either of compose's two spellings.
    pub fn env(&self, name: &str) -> BTreeMap<String, String> {
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
    pub fn bind_mounts(&self, name: &str) -> Vec<(String, String)> {
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
    pub fn container_ports(&self, name: &str) -> Vec<u16> {
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
    pub fn host_ports(&self, name: &str) -> Vec<u16> {
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

    pub fn image(&self, name: &str) -> Option<String> {
        at(self.service(name), &["image"]).map(text)
    }

    pub fn depends_on_healthy(&self, name: &str, dependency: &str) -> bool {
        at(self.service(name), &["depends_on", dependency, "condition"])
            .map(text)
            .is_some_and(|c| c == "service_healthy")
    }
}

/// `postgres://user:pass@host:port/db?x` → (host, port, db).
pub fn pg_target(url: &str) -> (String, u16, String) {
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
pub fn http_target(url: &str) -> (String, u16, String) {
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

// ---------------------------------------------------------------- uplink's own view

/// uplink's effective configuration (`uplink check-config`) with the
/// environment the container gets: the Dockerfile's ENV, then compose's,
/// with container paths mapped back to the files they are mounted from.
pub fn effective_config_in_compose() -> Json {
    effective_config_of(UPLINK_SERVICE)
}

/// `effective_config_in_compose` of the compose service `service` (one
/// running the uplink image).
pub fn effective_config_of(service: &str) -> Json {
    let compose = Compose::load();
    let dockerfile = Dockerfile::load();
    let mut mounts: Vec<(PathBuf, String)> = compose
        .bind_mounts(service)
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
    env.extend(compose.env(service));
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
        "uplink refuses the configuration docker-compose.yml gives `{service}`:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("check-config prints JSON")
}

pub fn json_at<'a>(value: &'a Json, dotted: &str) -> Option<&'a Json> {
    dotted.split('.').try_fold(value, |v, key| v.get(key))
}

/// Every dotted key path of a YAML mapping (`server`, `server.port`, …).
pub fn yaml_keys(value: &Yaml, prefix: &str, out: &mut BTreeSet<String>) {
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
pub fn env_tags(value: &Yaml, out: &mut Vec<String>) {
    match value {
        Yaml::Tagged(tagged) if tagged.tag == "env" => out.push(text(&tagged.value)),
        Yaml::Tagged(tagged) => env_tags(&tagged.value, out),
        Yaml::Mapping(map) => map.values().for_each(|v| env_tags(v, out)),
        Yaml::Sequence(items) => items.iter().for_each(|v| env_tags(v, out)),
        _ => {}
    }
}

pub fn env_var_to_key(var: &str) -> Option<String> {
    var.strip_prefix("UPLINK__").map(|rest| {
        rest.split("__")
            .collect::<Vec<_>>()
            .join(".")
            .to_lowercase()
    })
}
