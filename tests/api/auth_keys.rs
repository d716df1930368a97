//! Configured signing keys: rotation without a failed request, the api_key
//! identity mode, and the start-up refusals.

use std::process::Command;

use serde_json::Value;
use uplink::auth::keys::{KeyAlg, PrivateKey};
use uplink::auth::{ApiKeySettings, IdentityMode, KeySettings};
use uplink::config::Secret;

use crate::support::app::TestApp;
use crate::support::process::uplink_command;
use crate::support::responses::error_code;

fn key_settings(pem: &str, alg: KeyAlg, active: bool) -> KeySettings {
    KeySettings {
        alg,
        kid: None,
        private_key_pem: Some(Secret::new(pem)),
        private_key_jwk: None,
        secret: None,
        file: None,
        active: Some(active),
    }
}

async fn spawn_with_keys(keys: Vec<KeySettings>) -> TestApp {
    TestApp::builder()
        .config(move |s| s.auth.keys = keys)
        .spawn()
        .await
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

async fn status_of(app: &TestApp, token: &str) -> (u16, Option<String>) {
    let response = app
        .client
        .get(app.url("/api/auth/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    if status == 200 {
        (status, None)
    } else {
        (status, Some(error_code(response).await))
    }
}

async fn published_kids(app: &TestApp) -> Vec<String> {
    let jwks: Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    let mut kids: Vec<String> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    kids.sort();
    kids
}

#[tokio::test]
async fn a_key_rotates_without_a_failed_request() {
    let a = PrivateKey::generate(KeyAlg::Es256).unwrap();
    let b = PrivateKey::generate(KeyAlg::EdDsa).unwrap();
    let (pem_a, pem_b) = (a.to_pem().unwrap().unwrap(), b.to_pem().unwrap().unwrap());
    let (kid_a, kid_b) = (a.thumbprint(), b.thumbprint());

    // 1. A alone.
    let app = spawn_with_keys(vec![key_settings(&pem_a, KeyAlg::Es256, true)]).await;
    let token_a = app.token_for("u").await;
    assert_eq!(kid_of(&token_a), kid_a);
    app.stop().await;

    // 2. B added, published but not signing.
    let app = spawn_with_keys(vec![
        key_settings(&pem_a, KeyAlg::Es256, true),
        key_settings(&pem_b, KeyAlg::EdDsa, false),
    ])
    .await;
    let mut both = vec![kid_a.clone(), kid_b.clone()];
    both.sort();
    assert_eq!(published_kids(&app).await, both);
    assert_eq!(kid_of(&app.token_for("u").await), kid_a, "A still signs");
    assert_eq!(status_of(&app, &token_a).await, (200, None));
    app.stop().await;

    // 3. B promoted: new tokens carry B's kid, A's tokens still verify.
    let app = spawn_with_keys(vec![
        key_settings(&pem_a, KeyAlg::Es256, false),
        key_settings(&pem_b, KeyAlg::EdDsa, true),
    ])
    .await;
    let token_b = app.token_for("u").await;
    assert_eq!(kid_of(&token_b), kid_b);
    assert_eq!(published_kids(&app).await, both);
    assert_eq!(status_of(&app, &token_a).await, (200, None));
    assert_eq!(status_of(&app, &token_b).await, (200, None));
    app.stop().await;

    // 4. A removed: its tokens are refused, B's verify.
    let app = spawn_with_keys(vec![key_settings(&pem_b, KeyAlg::EdDsa, true)]).await;
    assert_eq!(published_kids(&app).await, vec![kid_b.clone()]);
    assert_eq!(
        status_of(&app, &token_a).await,
        (401, Some("unknown_key".to_owned()))
    );
    assert_eq!(status_of(&app, &token_b).await, (200, None));
}

#[tokio::test]
async fn keys_load_from_jwk_and_file_with_explicit_kids() {
    let rsa = PrivateKey::generate(KeyAlg::Rs256).unwrap();
    let ec = PrivateKey::generate(KeyAlg::Es256).unwrap();
    let dir = std::env::temp_dir().join(format!("uplink-keys-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let rsa_file = dir.join("rsa.pem");
    std::fs::write(&rsa_file, rsa.to_pem().unwrap().unwrap()).unwrap();
    let ec_jwk = ec.private_jwk("ignored").unwrap().to_string();
    let keys = vec![
        KeySettings {
            file: Some(rsa_file),
            private_key_pem: None,
            ..key_settings("", KeyAlg::Rs256, true)
        },
        KeySettings {
            kid: Some("ec-2026".to_owned()),
            private_key_jwk: Some(Secret::new(ec_jwk)),
            private_key_pem: None,
            ..key_settings("", KeyAlg::Es256, false)
        },
    ];

    let app = spawn_with_keys(keys).await;

    let token = app.token_for("u").await;
    assert_eq!(
        jsonwebtoken::decode_header(&token).unwrap().alg,
        jsonwebtoken::Algorithm::RS256
    );
    assert_eq!(kid_of(&token), rsa.thumbprint());
    let mut expected = vec![rsa.thumbprint(), "ec-2026".to_owned()];
    expected.sort();
    assert_eq!(published_kids(&app).await, expected);
    let jwks: Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    for key in jwks["keys"].as_array().unwrap() {
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(
                key.get(private).is_none(),
                "private member {private} in {key}"
            );
        }
    }
    assert_eq!(status_of(&app, &token).await, (200, None));
}

#[tokio::test]
async fn api_key_mode_issues_tokens_for_the_mapped_user_only() {
    use sha2::Digest;
    let key = "svc-key-0123456789";
    let hash = hex::encode(sha2::Sha256::digest(key.as_bytes()));
    let app = TestApp::builder()
        .config(move |s| {
            s.auth.identity.mode = IdentityMode::ApiKey;
            s.auth.identity.api_key.keys = vec![ApiKeySettings {
                sha256: hash,
                user_id: "service-account".to_owned(),
                parameters: serde_json::json!({"tier": "batch"})
                    .as_object()
                    .unwrap()
                    .clone(),
            }];
        })
        .spawn()
        .await;

    for (header, value) in [
        ("Authorization", format!("Bearer {key}")),
        ("X-API-Key", key.to_owned()),
    ] {
        let response = app
            .client
            .get(app.url("/api/auth/token?user_id=someone-else"))
            .header(header, value)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{header}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["user_id"], "service-account",
            "the query cannot pick the user"
        );
    }
    let response = app
        .client
        .get(app.url("/api/auth/token"))
        .bearer_auth("wrong-key")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(error_code(response).await, "invalid_token");
    let response = app.get("/api/auth/token").await;
    assert_eq!(error_code(response).await, "missing_token");
}

fn uplink_production() -> Command {
    let key = PrivateKey::generate(KeyAlg::EdDsa)
        .unwrap()
        .to_pem()
        .unwrap()
        .unwrap();
    let keys = serde_json::json!([{ "alg": "EdDSA", "private_key_pem": key }]).to_string();
    let api_keys = serde_json::json!([{ "sha256": "b".repeat(64), "user_id": "svc" }]).to_string();
    let mut command = uplink_command();
    command
        .env("UPLINK_ENVIRONMENT", "production")
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/db")
        .env("UPLINK__AUTH__KEYS", keys)
        .env("UPLINK__AUTH__IDENTITY__MODE", "api_key")
        .env("UPLINK__AUTH__IDENTITY__API_KEY__KEYS", api_keys)
        .env(
            "UPLINK__ATTACHMENTS__LOCAL__HMAC_SECRET",
            "0123456789abcdef0123456789abcdef",
        );
    command
}

#[test]
fn production_refuses_unsafe_credentials_naming_the_key() {
    let hs256 = serde_json::json!([{ "alg": "HS256", "secret": "x".repeat(40) }]).to_string();
    let cases: [(&str, &str, &str); 4] = [
        ("UPLINK__AUTH__IDENTITY__MODE", "dev", "auth.identity.mode"),
        ("UPLINK__AUTH__KEYS", "", "auth.keys"),
        ("UPLINK__AUTH__KEYS", &hs256, "auth.keys[0].alg"),
        ("UPLINK__AUTH__TOKEN_TTL", "2h", "auth.token_ttl"),
    ];
    // The baseline is accepted, so each refusal is due to its one change.
    let baseline = uplink_production().arg("check-config").output().unwrap();
    assert!(
        baseline.status.success(),
        "{}",
        String::from_utf8_lossy(&baseline.stderr)
    );
    for (var, value, key) in cases {
        for subcommand in ["check-config", "serve"] {
            let output = uplink_production()
                .arg(subcommand)
                .env(var, value)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                !output.status.success(),
                "{subcommand} with {var}={value:.20}"
            );
            assert!(
                stderr.contains(key),
                "{subcommand} with {var}: should name `{key}`, got: {stderr}"
            );
        }
    }
}

#[test]
fn development_also_refuses_a_lifetime_over_an_hour_and_bad_key_material() {
    let bad_key = serde_json::json!([{ "alg": "ES256", "private_key_pem": "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----" }]).to_string();
    let short_rsa =
        serde_json::json!([{ "alg": "RS256", "private_key_jwk": "{\"kty\":\"RSA\"}" }]).to_string();
    let cases = [
        ("UPLINK__AUTH__TOKEN_TTL", "61m", "auth.token_ttl"),
        ("UPLINK__AUTH__KEYS", bad_key.as_str(), "auth.keys[0]"),
        ("UPLINK__AUTH__KEYS", short_rsa.as_str(), "auth.keys[0]"),
        ("UPLINK__AUTH__AUDIENCE", "", "auth.audience"),
    ];
    for (var, value, key) in cases {
        let output = uplink_command()
            .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/db")
            .env(var, value)
            .arg("check-config")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{var}={value:.30}");
        assert!(
            stderr.contains(key),
            "{var}: should name `{key}`, got: {stderr}"
        );
        assert!(
            !stderr.contains("BEGIN PRIVATE"),
            "key material leaked: {stderr}"
        );
    }
}

/// Checks a compact JWS with the RustCrypto crates, an implementation
/// independent of the aws-lc signer: against the public JWK, or for HS256
/// against the shared secret.
fn verifies_independently(token: &str, jwk: &Value, secret: &[u8]) -> bool {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use hmac::Mac;
    use rsa::signature::Verifier;

    let (message, signature) = token.rsplit_once('.').unwrap();
    let signature = B64.decode(signature).unwrap();
    let member = |name: &str| B64.decode(jwk[name].as_str().unwrap()).unwrap();
    let message = message.as_bytes();
    match jwk["kty"].as_str() {
        Some("OKP") => {
            let key = ed25519_dalek::VerifyingKey::try_from(member("x").as_slice()).unwrap();
            ed25519_dalek::Signature::from_slice(&signature)
                .is_ok_and(|s| key.verify_strict(message, &s).is_ok())
        }
        Some("EC") => {
            let point = [vec![4], member("x"), member("y")].concat();
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).unwrap();
            p256::ecdsa::Signature::from_slice(&signature)
                .is_ok_and(|s| key.verify(message, &s).is_ok())
        }
        Some("RSA") => {
            let n = rsa::BigUint::from_bytes_be(&member("n"));
            let e = rsa::BigUint::from_bytes_be(&member("e"));
            let key = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(
                rsa::RsaPublicKey::new(n, e).unwrap(),
            );
            rsa::pkcs1v15::Signature::try_from(signature.as_slice())
                .is_ok_and(|s| key.verify(message, &s).is_ok())
        }
        _ => {
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
            mac.update(message);
            mac.verify_slice(&signature).is_ok()
        }
    }
}

#[tokio::test]
async fn tokens_of_every_algorithm_verify_independently_against_the_jwks() {
    const SECRET: &str = "an-hs256-secret-of-at-least-32-bytes";
    for alg in [KeyAlg::EdDsa, KeyAlg::Es256, KeyAlg::Rs256, KeyAlg::Hs256] {
        let key = match alg {
            KeyAlg::Hs256 => KeySettings {
                private_key_pem: None,
                secret: Some(Secret::new(SECRET)),
                ..key_settings("", alg, true)
            },
            _ => {
                let pem = PrivateKey::generate(alg)
                    .unwrap()
                    .to_pem()
                    .unwrap()
                    .unwrap();
                key_settings(&pem, alg, true)
            }
        };
        let app = spawn_with_keys(vec![key]).await;

        let token = app.token_for("alice").await;

        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, alg.jwt(), "{alg}");
        let jwks: Value = app
            .get("/.well-known/jwks.json")
            .await
            .json()
            .await
            .unwrap();
        let jwk = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == header.kid.clone().unwrap())
            .cloned()
            .unwrap_or(Value::Null);
        assert_eq!(jwk.is_null(), alg == KeyAlg::Hs256, "{alg}: published?");
        assert!(
            verifies_independently(&token, &jwk, SECRET.as_bytes()),
            "{alg}: the signature does not verify"
        );
        // Another message under the same signature must not verify.
        let (_, signature) = token.rsplit_once('.').unwrap();
        let other = app.token_for("bob").await;
        let (other_message, _) = other.rsplit_once('.').unwrap();
        assert!(
            !verifies_independently(
                &format!("{other_message}.{signature}"),
                &jwk,
                SECRET.as_bytes()
            ),
            "{alg}: a signature verifies for another token"
        );
        assert_eq!(status_of(&app, &token).await, (200, None), "{alg}");
    }
}
