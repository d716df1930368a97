//! The deployment files agree with uplink: docker-compose.yml gives uplink a
//! configuration it accepts, on the ports, interfaces and bucket the stack
//! provides. No Docker engine runs in CI, so these checks are what stops them
//! drifting from the code. The PowerSync side: deployment_powersync.rs; the
//! images: deployment_images.rs.

use std::collections::BTreeSet;

use serde_json::Value as Json;

use crate::support::compose::{
    Compose, UPLINK_MYSQL_SERVICE, UPLINK_SERVICE, at, dot_env, effective_config_in_compose,
    effective_config_of, env_var_to_key, http_target, json_at, read, strings, text, yaml,
    yaml_keys,
};
use crate::support::dockerfile::Dockerfile;

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
fn uplink_on_mysql_keeps_its_attachments_in_the_same_bucket_under_its_own_prefix() {
    let compose = Compose::load();
    // uplink accepts the configuration: attachments on, with a mysql:// URL.
    let mysql = effective_config_of(UPLINK_MYSQL_SERVICE);
    let postgres = effective_config_in_compose();
    assert_eq!(
        json_at(&mysql, "database.url").and_then(Json::as_str),
        Some("[redacted]")
    );
    assert!(
        compose.env(UPLINK_MYSQL_SERVICE)["DATABASE_URL"].starts_with("mysql://"),
        "uplink-mysql writes to MySQL"
    );
    assert_eq!(
        json_at(&mysql, "attachments.enabled"),
        Some(&Json::Bool(true))
    );
    for key in [
        "attachments.storage",
        "attachments.s3.bucket",
        "attachments.s3.region",
        "attachments.s3.endpoint",
        "attachments.s3.public_endpoint",
        "attachments.s3.force_path_style",
        "attachments.s3.access_key_id",
    ] {
        assert_eq!(
            json_at(&mysql, key),
            json_at(&postgres, key),
            "uplink-mysql's `{key}` is uplink's"
        );
    }
    assert_ne!(
        json_at(&mysql, "attachments.key_prefix"),
        json_at(&postgres, "attachments.key_prefix"),
        "the two apps' objects never meet"
    );
    assert_eq!(
        at(
            compose.service(UPLINK_MYSQL_SERVICE),
            &["depends_on", "seaweedfs-init", "condition"]
        )
        .map(text)
        .as_deref(),
        Some("service_completed_successfully")
    );
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
