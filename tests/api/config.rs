//! Configuration: invalid values stop the process with the key's name; secrets never print.

use std::process::Command;

use crate::support::process::uplink_command;

fn uplink() -> Command {
    let mut command = uplink_command();
    command.env(
        "DATABASE_URL",
        "postgres://postgres:hunter2-secret@127.0.0.1:1/db",
    );
    command
}

#[test]
fn an_invalid_value_is_refused_naming_the_key() {
    let cases = [
        ("UPLINK__SERVER__PORT", "not-a-port", "server.port"),
        (
            "UPLINK__SERVER__MAX_BODY_BYTES",
            "10",
            "server.max_body_bytes",
        ),
        (
            "UPLINK__DATABASE__MAX_CONNECTIONS",
            "0",
            "database.max_connections",
        ),
        ("UPLINK__DATABASE__URL", "mongodb://nope", "database.url"),
        (
            "UPLINK__ADMIN__API_KEY_SHA256",
            "abc",
            "admin.api_key_sha256",
        ),
        (
            "UPLINK__DATABASE__ACQUIRE_TIMEOUT",
            "soon",
            "database.acquire_timeout",
        ),
        // Development hands a token to anyone: no web page may ask.
        ("UPLINK__SERVER__CORS_ORIGINS", "*", "server.cors_origins"),
    ];
    for (var, value, key) in cases {
        for subcommand in ["check-config", "serve"] {
            let output = uplink().arg(subcommand).env(var, value).output().unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                !output.status.success(),
                "{subcommand} with {var}={value} must fail"
            );
            assert!(
                stderr.contains(key),
                "{subcommand} with {var}={value}: message should name `{key}`, got: {stderr}"
            );
        }
    }
}

#[test]
fn an_unknown_key_is_refused() {
    let output = uplink()
        .arg("check-config")
        .env("UPLINK__SERVER__PROT", "8080")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("prot"));
}

#[test]
fn check_config_prints_effective_settings_with_secrets_redacted() {
    let output = uplink()
        .arg("check-config")
        .env("UPLINK__SERVER__PORT", "7070")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let effective: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(effective["server"]["port"], 7070);
    assert_eq!(effective["environment"], "development");
    assert!(
        !stdout.contains("hunter2-secret"),
        "database password leaked: {stdout}"
    );
    assert_eq!(effective["database"]["url"], "[redacted]");
}

#[test]
fn production_environment_layers_its_file() {
    // Production needs a signing key and a real identity mode.
    let key = uplink::auth::keys::PrivateKey::generate(uplink::auth::keys::KeyAlg::EdDsa)
        .unwrap()
        .to_pem()
        .unwrap()
        .unwrap();
    let keys = serde_json::json!([{ "alg": "EdDSA", "private_key_pem": key }]).to_string();
    let api_keys =
        serde_json::json!([{ "sha256": "a".repeat(64), "user_id": "service" }]).to_string();
    let output = uplink()
        .arg("check-config")
        .env("UPLINK_ENVIRONMENT", "production")
        .env("UPLINK__AUTH__KEYS", keys)
        .env("UPLINK__AUTH__IDENTITY__MODE", "api_key")
        .env("UPLINK__AUTH__IDENTITY__API_KEY__KEYS", api_keys)
        .env(
            "UPLINK__ATTACHMENTS__LOCAL__HMAC_SECRET",
            "0123456789abcdef0123456789abcdef",
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let effective: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(effective["environment"], "production");
    assert_eq!(effective["server"]["host"], "0.0.0.0");
    assert_eq!(effective["log"]["format"], "json");
    assert_eq!(effective["database"]["migrate_on_start"], false);
    assert_eq!(
        effective["auth"]["keys"][0]["private_key_pem"],
        "[redacted]"
    );
    assert!(
        !stdout.contains("PRIVATE KEY"),
        "signing key leaked: {stdout}"
    );
}

#[test]
fn development_listens_on_this_machine_only_by_default() {
    let output = uplink().arg("check-config").output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let effective: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(effective["environment"], "development");
    assert_eq!(effective["auth"]["identity"]["mode"], "dev");
    assert_eq!(
        effective["server"]["host"], "127.0.0.1",
        "dev identity hands out tokens to anyone: not on every interface by default"
    );
}

/// `check-config` in production with a signing key and api_key identity,
/// plus `env`; returns (success, stderr).
fn production_check(env: &[(&str, &str)]) -> (bool, String) {
    let key = uplink::auth::keys::PrivateKey::generate(uplink::auth::keys::KeyAlg::EdDsa)
        .unwrap()
        .to_pem()
        .unwrap()
        .unwrap();
    let keys = serde_json::json!([{ "alg": "EdDSA", "private_key_pem": key }]).to_string();
    let api_keys =
        serde_json::json!([{ "sha256": "a".repeat(64), "user_id": "service" }]).to_string();
    let mut command = uplink();
    command
        .arg("check-config")
        .env("UPLINK_ENVIRONMENT", "production")
        .env("UPLINK__AUTH__KEYS", keys)
        .env("UPLINK__AUTH__IDENTITY__MODE", "api_key")
        .env("UPLINK__AUTH__IDENTITY__API_KEY__KEYS", api_keys)
        .env(
            "UPLINK__ATTACHMENTS__LOCAL__HMAC_SECRET",
            "0123456789abcdef0123456789abcdef",
        );
    for (k, v) in env {
        command.env(k, v);
    }
    let output = command.output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn jwt_identity(jwks_uri: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("UPLINK__AUTH__IDENTITY__MODE", "jwt"),
        (
            "UPLINK__AUTH__IDENTITY__JWT__ISSUER",
            "https://idp.example.com/",
        ),
        ("UPLINK__AUTH__IDENTITY__JWT__AUDIENCE", "my-app"),
        ("UPLINK__AUTH__IDENTITY__JWT__JWKS_URI", jwks_uri),
    ]
}

#[test]
fn production_refuses_a_jwks_uri_over_plain_http_except_to_localhost() {
    let (ok, stderr) = production_check(&jwt_identity("http://idp.example.com/jwks.json"));
    assert!(!ok, "plain http JWKS accepted in production");
    assert!(stderr.contains("auth.identity.jwt.jwks_uri"), "{stderr}");

    for uri in [
        "https://idp.example.com/jwks.json",
        "http://localhost:9999/jwks.json",
        "http://127.0.0.1:9999/jwks.json",
        "http://[::1]:9999/jwks.json",
    ] {
        let (ok, stderr) = production_check(&jwt_identity(uri));
        assert!(ok, "{uri} refused: {stderr}");
        assert!(!stderr.contains("jwks_uri"), "{uri}: {stderr}");
    }
}

#[test]
fn production_warns_about_an_empty_jwt_audience() {
    let mut env = jwt_identity("https://idp.example.com/jwks.json");
    env.retain(|(k, _)| *k != "UPLINK__AUTH__IDENTITY__JWT__AUDIENCE");
    let (ok, stderr) = production_check(&env);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("warning: auth.identity.jwt.audience"),
        "no warning for an empty audience: {stderr}"
    );

    let (ok, stderr) = production_check(&jwt_identity("https://idp.example.com/jwks.json"));
    assert!(ok, "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
}

#[test]
fn a_signing_key_file_others_can_read_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let key = uplink::auth::keys::PrivateKey::generate(uplink::auth::keys::KeyAlg::EdDsa)
        .unwrap()
        .to_pem()
        .unwrap()
        .unwrap();
    let path = std::env::temp_dir().join(format!("uplink-key-{}.pem", uuid::Uuid::new_v4()));
    std::fs::write(&path, key).unwrap();
    let keys = serde_json::json!([{ "alg": "EdDSA", "file": path }]).to_string();
    let check = || {
        let output = uplink()
            .arg("check-config")
            .env("UPLINK__AUTH__KEYS", &keys)
            .output()
            .unwrap();
        assert!(output.status.success());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let open = check();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let private = check();
    std::fs::remove_file(&path).unwrap();

    assert!(
        open.contains("warning: auth.keys[0].file") && open.contains("0644"),
        "a 0644 key file is not warned about: {open}"
    );
    assert!(!private.contains("warning"), "{private}");
}
