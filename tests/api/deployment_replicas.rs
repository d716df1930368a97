//! The deployment files for replicas: the compose `replicas` profile (two
//! uplinks behind HAProxy) and deploy/kubernetes. scripts/check-deploy
//! validates them against their schemas; these checks keep them in step with
//! uplink and with each other.

use crate::support::compose::{Compose, UPLINK_SERVICE, at, read, strings, text, yaml};

#[test]
fn the_replicas_profile_puts_two_identical_uplinks_behind_haproxy() {
    let compose = Compose::load();
    // The second replica runs as the first: same settings, same data volume
    // (so the same development signing key), same configuration file.
    assert_eq!(compose.env("uplink-2"), compose.env(UPLINK_SERVICE));
    assert_eq!(
        compose.bind_mounts("uplink-2"),
        compose.bind_mounts(UPLINK_SERVICE)
    );
    let volumes = |name| strings(at(compose.service(name), &["volumes"]));
    assert!(volumes("uplink-2").contains(&"uplink-data:/var/lib/uplink".to_owned()));
    assert!(
        compose.host_ports("uplink-2").is_empty(),
        "reached through haproxy only"
    );
    for name in ["uplink-2", "haproxy"] {
        let profiles = strings(at(compose.service(name), &["profiles"]));
        assert_eq!(profiles, vec!["replicas".to_owned()], "{name}");
    }
    assert!(compose.depends_on_healthy("haproxy", UPLINK_SERVICE));
    assert!(compose.depends_on_healthy("haproxy", "uplink-2"));

    // HAProxy balances over exactly those two services, on uplink's port,
    // and takes a replica out while /health/ready is not 200.
    let config = read("deploy/haproxy/haproxy.cfg");
    let servers: Vec<&str> = config
        .lines()
        .filter_map(|l| l.trim().strip_prefix("server "))
        .collect();
    let port = compose.container_ports(UPLINK_SERVICE)[0];
    assert_eq!(
        servers,
        vec![
            format!("uplink uplink:{port} check").as_str(),
            format!("uplink-2 uplink-2:{port} check").as_str()
        ]
    );
    assert!(config.contains("option httpchk GET /health/ready"));
    assert!(config.contains("http-check expect status 200"));
    assert!(config.contains(&format!("bind :{port}")));
    let mounts = compose.bind_mounts("haproxy");
    assert!(
        mounts
            .iter()
            .any(|(host, _)| host.ends_with("deploy/haproxy/haproxy.cfg")),
        "{mounts:?}"
    );
}

#[test]
fn the_kubernetes_deployment_probes_drains_and_spreads_as_uplink_expects() {
    let deployment = yaml("deploy/kubernetes/deployment.yaml");
    let pod = at(&deployment, &["spec", "template", "spec"]).expect("a pod template");
    let container = match at(pod, &["containers"]) {
        Some(serde_norway::Value::Sequence(containers)) => containers[0].clone(),
        other => panic!("containers: {other:?}"),
    };
    let probe = |name: &str| at(&container, &[name, "httpGet", "path"]).map(text);
    assert_eq!(probe("livenessProbe").as_deref(), Some("/health/live"));
    assert_eq!(probe("readinessProbe").as_deref(), Some("/health/ready"));

    // The grace period covers the preStop pause and uplink's drain.
    let base = yaml("config/base.yaml");
    let drain = at(&base, &["server", "shutdown_timeout"])
        .map(text)
        .unwrap_or_default();
    let drain: u64 = drain
        .trim_end_matches('s')
        .parse()
        .expect("shutdown_timeout in seconds");
    let pause: u64 = at(&container, &["lifecycle", "preStop", "sleep", "seconds"])
        .map(text)
        .and_then(|s| s.parse().ok())
        .expect("a preStop pause");
    let grace: u64 = at(pod, &["terminationGracePeriodSeconds"])
        .map(text)
        .and_then(|s| s.parse().ok())
        .expect("terminationGracePeriodSeconds");
    assert!(grace > drain + pause, "{grace} <= {drain} + {pause}");

    // The Service, the budget and the autoscaler select and scale these pods.
    let labels = at(&deployment, &["spec", "template", "metadata", "labels"]).cloned();
    let service = yaml("deploy/kubernetes/service.yaml");
    assert_eq!(at(&service, &["spec", "selector"]).cloned(), labels);
    let budget = yaml("deploy/kubernetes/poddisruptionbudget.yaml");
    assert_eq!(
        at(&budget, &["spec", "selector", "matchLabels"]).cloned(),
        labels
    );
    let hpa = yaml("deploy/kubernetes/horizontalpodautoscaler.yaml");
    assert_eq!(
        at(&hpa, &["spec", "scaleTargetRef", "name"]).map(text),
        at(&deployment, &["metadata", "name"]).map(text)
    );
    // The keys every replica lists are the files the Secret volume mounts.
    let config = yaml("deploy/kubernetes/configmap.yaml");
    let uplink_yaml = at(&config, &["data", "uplink.yaml"])
        .map(text)
        .unwrap_or_default();
    let mount = at(&container, &["volumeMounts"])
        .and_then(|m| match m {
            serde_norway::Value::Sequence(mounts) => mounts
                .iter()
                .find(|m| at(m, &["name"]).map(text).as_deref() == Some("keys"))
                .and_then(|m| at(m, &["mountPath"]).map(text)),
            _ => None,
        })
        .expect("the keys volume is mounted");
    assert!(
        uplink_yaml.contains(&format!("file: {mount}/")),
        "{uplink_yaml}"
    );
}
