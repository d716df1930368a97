//! Token attacks on the write path: every forged, stale or misdirected token
//! is a 401 with the right code, and nothing reaches the database.

use std::net::TcpListener;

use actix_web::{App, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};
use uplink::auth::keys::{KeyAlg, PrivateKey};
use uplink::auth::{IdentityMode, KeySettings};
use uplink::config::Secret;
use uuid::Uuid;

use crate::support::app::TestApp;
use crate::support::fixtures::{fixture_schema, fixture_write_settings};
use crate::support::responses::error_code;

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn claims() -> Value {
    json!({"sub": "mallory", "iss": "uplink", "aud": "powersync", "iat": now(), "exp": now() + 300})
}

fn with(changes: Value) -> Value {
    let mut claims = claims();
    for (k, v) in changes.as_object().expect("an object") {
        if v.is_null() {
            claims.as_object_mut().expect("an object").remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    claims
}

fn sign(key: &PrivateKey, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(key.alg().jwt());
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &key.encoding_key().unwrap()).unwrap()
}

fn unsigned(header: Value, claims: &Value) -> String {
    format!(
        "{}.{}.",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    )
}

/// POSTs a one-row batch; returns the status and error code.
async fn attempt(app: &TestApp, token: &str) -> (u16, String, bool) {
    let response = app
        .client
        .post(app.url("/api/data"))
        .bearer_auth(token)
        .json(&json!({"client_id": "attacker", "batch": [
            {"op_id": 1, "op": "PUT", "type": "lists", "id": Uuid::new_v4().to_string(), "tx_id": 1, "data": {"name": "forged"}}
        ]}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let challenge = response.headers().contains_key("www-authenticate");
    let code = if status == 200 {
        String::new()
    } else {
        error_code(response).await
    };
    (status, code, challenge)
}

async fn assert_all_refused(app: &TestApp, cases: &[(String, &str, &str)]) {
    let mut failures = Vec::new();
    for (token, code, why) in cases {
        let (status, got, challenge) = attempt(app, token).await;
        if status != 401 || got != *code || !challenge {
            failures.push(format!(
                "{why}: got {status} {got} (want 401 {code}, WWW-Authenticate: {challenge})"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "tokens not refused as they must be:\n{}",
        failures.join("\n")
    );
    assert_eq!(
        app.count("SELECT count(*) FROM lists WHERE name = 'forged'")
            .await,
        0,
        "a refused token wrote to the database"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM uplink.client_progress WHERE client_id = 'attacker'")
            .await,
        0
    );
}

#[tokio::test]
async fn forged_and_stale_uplink_tokens_are_refused_on_the_write_path() {
    let key = PrivateKey::generate(KeyAlg::Rs256).unwrap();
    let removed = PrivateKey::generate(KeyAlg::Rs256).unwrap();
    let pem = key.to_pem().unwrap().expect("an RSA key has a PEM");
    let app = TestApp::builder()
        .schema(fixture_schema())
        .config(move |s| {
            fixture_write_settings(s);
            s.auth.keys = vec![KeySettings {
                alg: KeyAlg::Rs256,
                kid: None,
                private_key_pem: Some(Secret::new(pem)),
                private_key_jwk: None,
                secret: None,
                file: None,
                active: Some(true),
            }];
        })
        .spawn()
        .await;
    let kid = key.thumbprint();
    let public_jwk = key.public_jwk(&kid).unwrap();
    // The harness works: a genuine token writes.
    let (status, _, _) = attempt(&app, &sign(&key, &kid, &claims())).await;
    assert_eq!(status, 200, "a genuine token must be accepted");
    sqlx::query("DELETE FROM lists")
        .execute(&app.db_pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM uplink.client_progress")
        .execute(&app.db_pool)
        .await
        .unwrap();

    let valid = sign(&key, &kid, &claims());
    let (head, rest) = valid.split_once('.').unwrap();
    let signature = rest.split_once('.').unwrap().1;
    let tampered = format!(
        "{head}.{}.{signature}",
        B64.encode(with(json!({"sub": "alice"})).to_string())
    );
    let hs256_with_public_key = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid.clone());
        let secret = EncodingKey::from_secret(public_jwk.to_string().as_bytes());
        jsonwebtoken::encode(&header, &claims(), &secret).unwrap()
    };
    let oversized = sign(&key, &kid, &with(json!({"pad": "p".repeat(17 * 1024)})));
    let cases = vec![
        (
            unsigned(json!({"alg": "none", "typ": "JWT", "kid": kid}), &claims()),
            "invalid_token",
            "alg none",
        ),
        (
            unsigned(json!({"alg": "none", "typ": "JWT"}), &claims()),
            "invalid_token",
            "alg none without kid",
        ),
        (
            hs256_with_public_key,
            "invalid_token",
            "HS256 keyed with the published public key",
        ),
        (
            sign(&key, "no-such-key", &claims()),
            "unknown_key",
            "kid pointing at nothing",
        ),
        (
            sign(&key, "../../../../etc/passwd", &claims()),
            "unknown_key",
            "kid with a path",
        ),
        (
            sign(&key, "' OR '1'='1'; DROP TABLE lists; --", &claims()),
            "unknown_key",
            "kid with SQL",
        ),
        (
            sign(
                &key,
                &kid,
                &with(json!({"iat": now() - 7200, "exp": now() - 3600})),
            ),
            "expired_token",
            "exp in the past",
        ),
        (
            sign(&key, &kid, &with(json!({"nbf": now() + 3600}))),
            "invalid_token",
            "nbf in the future",
        ),
        (
            sign(
                &key,
                &kid,
                &with(
                    json!({"iat": now() + 10 * 365 * 86_400, "exp": now() + 10 * 365 * 86_400 + 300}),
                ),
            ),
            "invalid_token",
            "iat far in the future",
        ),
        (
            sign(&key, &kid, &with(json!({"exp": null}))),
            "invalid_token",
            "no exp",
        ),
        (
            sign(&key, &kid, &with(json!({"aud": "someone-else"}))),
            "wrong_audience",
            "wrong aud",
        ),
        (
            sign(&key, &kid, &with(json!({"iss": "https://evil.example/"}))),
            "invalid_token",
            "wrong iss",
        ),
        (
            sign(&removed, &removed.thumbprint(), &claims()),
            "unknown_key",
            "signed by a key that is no longer configured",
        ),
        (
            sign(&removed, &kid, &claims()),
            "invalid_token",
            "another key's signature under the trusted kid",
        ),
        (tampered, "invalid_token", "tampered payload"),
        (
            sign(&key, &kid, &with(json!({"sub": ""}))),
            "invalid_token",
            "empty sub",
        ),
        (oversized, "invalid_token", "a token over 16 KB"),
        (
            sign(
                &key,
                &kid,
                &with(json!({"exp": now() + 100 * 365 * 86_400})),
            ),
            "invalid_token",
            "exp 100 years away (uplink issues auth.token_ttl at most)",
        ),
        (
            sign(&key, &kid, &with(json!({"exp": now() + 300 + 120}))),
            "invalid_token",
            "lifetime two minutes over auth.token_ttl",
        ),
        (
            sign(
                &key,
                &kid,
                &with(json!({"iat": null, "exp": now() + 100 * 365 * 86_400})),
            ),
            "invalid_token",
            "no iat to bound the lifetime",
        ),
    ];

    assert_all_refused(&app, &cases).await;
}

/// A JWKS endpoint publishing `keys` as-is.
async fn jwks_server(keys: Value) -> (String, actix_web::dev::ServerHandle) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        let keys = keys.clone();
        App::new().route(
            "/jwks.json",
            web::get().to(move || {
                let keys = keys.clone();
                async move { HttpResponse::Ok().json(json!({ "keys": keys })) }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    (format!("http://127.0.0.1:{port}/jwks.json"), handle)
}

#[tokio::test]
async fn upstream_tokens_from_weak_or_unknown_keys_are_refused_on_the_write_path() {
    const ISSUER: &str = "https://id.example.test/";
    let strong = PrivateKey::generate(KeyAlg::Rs256).unwrap();
    let weak = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 1024).unwrap();
    let weak_jwk = json!({
        "kty": "RSA", "kid": "weak", "use": "sig", "alg": "RS256",
        "n": B64.encode(weak.n().to_bytes_be()),
        "e": B64.encode(weak.e().to_bytes_be()),
    });
    let (uri, jwks) = jwks_server(json!([strong.public_jwk("strong").unwrap(), weak_jwk])).await;
    let app = TestApp::builder()
        .schema(fixture_schema())
        .config(move |s| {
            fixture_write_settings(s);
            s.auth.identity.mode = IdentityMode::Jwt;
            s.auth.identity.jwt.jwks_uri = Some(uri);
            s.auth.identity.jwt.issuer = Some(ISSUER.to_owned());
            s.auth.identity.jwt.audience = vec!["my-app".to_owned()];
            s.auth.accept_upstream_tokens = true;
        })
        .spawn()
        .await;
    let upstream = with(json!({"iss": ISSUER, "aud": "my-app"}));
    let (status, _, _) = attempt(&app, &sign(&strong, "strong", &upstream)).await;
    assert_eq!(status, 200, "a genuine provider token must be accepted");
    sqlx::raw_sql("DELETE FROM lists; DELETE FROM uplink.client_progress")
        .execute(&app.db_pool)
        .await
        .unwrap();

    // aws-lc (jsonwebtoken's backend) refuses to sign with a key this weak.
    let weak_token = {
        use rsa::signature::{SignatureEncoding, Signer};
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": "weak"});
        let message = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(upstream.to_string())
        );
        let signature =
            rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(weak).sign(message.as_bytes());
        format!("{message}.{}", B64.encode(signature.to_bytes()))
    };
    let cases = vec![
        (weak_token, "unknown_key", "a 1024-bit RSA provider key"),
        (
            sign(&strong, "../../../../etc/passwd", &upstream),
            "unknown_key",
            "provider kid with a path",
        ),
        (
            sign(&strong, "'; DROP TABLE lists; --", &upstream),
            "unknown_key",
            "provider kid with SQL",
        ),
        (
            sign(
                &strong,
                "strong",
                &with(json!({"iss": ISSUER, "aud": "other-app"})),
            ),
            "wrong_audience",
            "provider token for another audience",
        ),
        (
            sign(
                &strong,
                "strong",
                &with(json!({
                    "iss": ISSUER,
                    "aud": "my-app",
                    "iat": now() + 10 * 365 * 86_400,
                    "exp": now() + 10 * 365 * 86_400 + 300,
                })),
            ),
            "invalid_token",
            "provider token issued far in the future",
        ),
    ];

    assert_all_refused(&app, &cases).await;
    jwks.stop(false).await;
}
