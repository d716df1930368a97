//! jwt identity mode: provider tokens verified against a real JWKS server
//! started by the test (RS256 and ES256 provider keys).

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use uplink::auth::IdentityMode;
use uplink::auth::keys::{KeyAlg, PrivateKey};

use crate::support::app::TestApp;
use crate::support::responses::error_code;

const ISSUER: &str = "https://id.example.test/";
const AUDIENCE: &str = "my-app";

/// A provider key: signs tokens, publishes its public JWK.
struct ProviderKey {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    public_jwk: Value,
}

impl ProviderKey {
    fn new(alg: KeyAlg, kid: &str) -> Self {
        let key = PrivateKey::generate(alg).unwrap();
        Self {
            kid: kid.to_owned(),
            alg: alg.jwt(),
            encoding: key.encoding_key().unwrap(),
            public_jwk: key.public_jwk(kid).unwrap(),
        }
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

/// The provider's JWKS endpoint, counting fetches.
struct JwksServer {
    uri: String,
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
    handle: actix_web::dev::ServerHandle,
}

impl JwksServer {
    async fn start(keys: &[&ProviderKey]) -> Self {
        let published = Arc::new(Mutex::new(
            keys.iter()
                .map(|k| k.public_jwk.clone())
                .collect::<Vec<_>>(),
        ));
        let fetches = Arc::new(AtomicUsize::new(0));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (state_keys, state_fetches) = (published.clone(), fetches.clone());
        let server = HttpServer::new(move || {
            let keys = state_keys.clone();
            let fetches = state_fetches.clone();
            App::new().route(
                "/.well-known/jwks.json",
                web::get().to(move || {
                    let keys = keys.clone();
                    let fetches = fetches.clone();
                    async move {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        let keys = keys.lock().unwrap().clone();
                        HttpResponse::Ok().json(json!({ "keys": keys }))
                    }
                }),
            )
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            uri: format!("http://127.0.0.1:{port}/.well-known/jwks.json"),
            keys: published,
            fetches,
            handle,
        }
    }

    fn publish(&self, key: &ProviderKey) {
        self.keys.lock().unwrap().push(key.public_jwk.clone());
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn provider_claims(user: &str) -> Value {
    json!({
        "sub": format!("auth0|{user}"),
        "uid": user,
        "iss": ISSUER,
        "aud": [AUDIENCE, "other"],
        "iat": now(),
        "exp": now() + 600,
        "org_id": "acme",
        "https://example.test/roles": ["admin"],
    })
}

async fn spawn_with_provider(
    jwks: &JwksServer,
    min_refresh: Duration,
    accept_upstream: bool,
) -> TestApp {
    let uri = jwks.uri.clone();
    TestApp::builder()
        .config(move |s| {
            let jwt = &mut s.auth.identity.jwt;
            s.auth.identity.mode = IdentityMode::Jwt;
            jwt.jwks_uri = Some(uri);
            jwt.issuer = Some(ISSUER.to_owned());
            jwt.audience = vec![AUDIENCE.to_owned()];
            jwt.user_claim = "uid".to_owned();
            jwt.parameters = [
                ("org".to_owned(), "org_id".to_owned()),
                ("roles".to_owned(), "https://example.test/roles".to_owned()),
            ]
            .into();
            jwt.min_refresh_interval = min_refresh;
            jwt.cache_ttl = Duration::from_secs(7200);
            s.auth.accept_upstream_tokens = accept_upstream;
        })
        .spawn()
        .await
}

async fn exchange(app: &TestApp, provider_token: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/auth/token"))
        .bearer_auth(provider_token)
        .send()
        .await
        .unwrap()
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&B64.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn a_valid_provider_token_gets_a_powersync_token_for_the_mapped_user() {
    let rsa = ProviderKey::new(KeyAlg::Rs256, "rsa-1");
    let ec = ProviderKey::new(KeyAlg::Es256, "ec-1");
    let jwks = JwksServer::start(&[&rsa, &ec]).await;
    let app = spawn_with_provider(&jwks, Duration::from_secs(30), false).await;

    for (key, user) in [(&rsa, "alice"), (&ec, "bob")] {
        let response = exchange(&app, &key.sign(&provider_claims(user))).await;

        assert_eq!(response.status(), 200, "{:?} token", key.alg);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["user_id"], user);
        let claims = claims_of(body["token"].as_str().unwrap());
        assert_eq!(
            claims["sub"], user,
            "the user comes from the configured claim"
        );
        assert_eq!(
            claims["iss"], "uplink",
            "uplink's own token, not the provider's"
        );
        assert_eq!(claims["aud"], "powersync");
        assert_eq!(
            claims["parameters"],
            json!({"org": "acme", "roles": ["admin"]})
        );
        // The issued token is accepted by uplink's own routes.
        let me = app
            .client
            .get(app.url("/api/auth/me"))
            .bearer_auth(body["token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), 200);
    }
    jwks.handle.stop(false).await;
}

#[tokio::test]
async fn bad_provider_tokens_are_refused_with_the_right_code() {
    let rsa = ProviderKey::new(KeyAlg::Rs256, "rsa-1");
    let ec = ProviderKey::new(KeyAlg::Es256, "ec-1");
    let stranger = ProviderKey::new(KeyAlg::Rs256, "not-published");
    let jwks = JwksServer::start(&[&rsa, &ec]).await;
    let app = spawn_with_provider(&jwks, Duration::from_secs(3600), true).await;

    let with = |changes: Value| {
        let mut claims = provider_claims("alice");
        for (k, v) in changes.as_object().unwrap() {
            claims[k] = v.clone();
        }
        claims
    };
    let valid = rsa.sign(&provider_claims("alice"));
    let (head, rest) = valid.split_once('.').unwrap();
    let signature = rest.split_once('.').unwrap().1;
    let tampered = format!(
        "{head}.{}.{signature}",
        B64.encode(with(json!({"uid": "mallory"})).to_string())
    );
    let alg_none = format!(
        "{}.{}.",
        B64.encode(json!({"alg": "none", "typ": "JWT", "kid": "rsa-1"}).to_string()),
        B64.encode(provider_claims("alice").to_string())
    );
    // The classic confusion attack: HS256 keyed with the provider's public key.
    let hs256_with_public_key = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("rsa-1".to_owned());
        let secret = EncodingKey::from_secret(rsa.public_jwk.to_string().as_bytes());
        jsonwebtoken::encode(&header, &provider_claims("alice"), &secret).unwrap()
    };
    let cases = [
        (
            rsa.sign(&with(json!({"iat": now() - 7200, "exp": now() - 3600}))),
            "expired_token",
            "expired",
        ),
        (
            ec.sign(&with(json!({"aud": "someone-else"}))),
            "wrong_audience",
            "wrong audience",
        ),
        (
            rsa.sign(&with(json!({"iss": "https://evil.example/"}))),
            "invalid_token",
            "wrong issuer",
        ),
        (
            stranger.sign(&provider_claims("alice")),
            "unknown_key",
            "unknown kid",
        ),
        (alg_none, "invalid_token", "alg none"),
        (
            hs256_with_public_key,
            "invalid_token",
            "HS256 with the public key",
        ),
        (tampered, "invalid_token", "tampered payload"),
        (
            rsa.sign(&with(json!({"uid": null}))),
            "invalid_token",
            "no user claim",
        ),
    ];
    for (token, code, why) in &cases {
        for path in ["/api/auth/token", "/api/auth/me"] {
            let response = app
                .client
                .get(app.url(path))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 401, "{why} on {path}");
            assert!(response.headers().contains_key("www-authenticate"), "{why}");
            assert_eq!(error_code(response).await, *code, "{why} on {path}");
        }
    }
    let response = app
        .client
        .get(app.url("/api/auth/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(response).await, "missing_token");
    jwks.handle.stop(false).await;
}

#[tokio::test]
async fn the_jwks_is_fetched_once_for_many_requests_and_again_after_a_rotation() {
    let rsa = ProviderKey::new(KeyAlg::Rs256, "rsa-1");
    let ec = ProviderKey::new(KeyAlg::Es256, "ec-1");
    let jwks = JwksServer::start(&[&rsa, &ec]).await;
    let app = spawn_with_provider(&jwks, Duration::ZERO, false).await;

    for i in 0..20 {
        let key = if i % 2 == 0 { &rsa } else { &ec };
        let response = exchange(&app, &key.sign(&provider_claims(&format!("u{i}")))).await;
        assert_eq!(response.status(), 200);
    }
    assert_eq!(jwks.fetches(), 1, "one fetch serves every request");

    // The provider rotates: a new key appears in its JWKS.
    let rotated = ProviderKey::new(KeyAlg::Es256, "ec-2");
    jwks.publish(&rotated);
    for i in 0..5 {
        let response = exchange(&app, &rotated.sign(&provider_claims(&format!("r{i}")))).await;
        assert_eq!(response.status(), 200, "the rotated key is picked up");
    }
    assert_eq!(jwks.fetches(), 2, "one refetch for the new kid");
    jwks.handle.stop(false).await;
}

#[tokio::test]
async fn a_flood_of_unknown_kids_does_not_hammer_the_provider() {
    let rsa = ProviderKey::new(KeyAlg::Rs256, "rsa-1");
    let jwks = JwksServer::start(&[&rsa]).await;
    let app = spawn_with_provider(&jwks, Duration::from_secs(3600), false).await;
    assert_eq!(
        exchange(&app, &rsa.sign(&provider_claims("a")))
            .await
            .status(),
        200
    );

    for i in 0..30 {
        let forged = ProviderKey::new(KeyAlg::Es256, &format!("forged-{i}"));
        let response = exchange(&app, &forged.sign(&provider_claims("a"))).await;
        assert_eq!(error_code(response).await, "unknown_key");
    }

    assert_eq!(
        jwks.fetches(),
        1,
        "unknown kids within the refresh interval do not refetch"
    );
    jwks.handle.stop(false).await;
}

#[tokio::test]
async fn upstream_tokens_on_own_routes_only_when_enabled() {
    let rsa = ProviderKey::new(KeyAlg::Rs256, "rsa-1");
    let jwks = JwksServer::start(&[&rsa]).await;
    let token = rsa.sign(&provider_claims("zoe"));

    let accepting = spawn_with_provider(&jwks, Duration::from_secs(30), true).await;
    let response = accepting
        .client
        .get(accepting.url("/api/auth/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user_id"], "zoe");
    assert_eq!(body["claims"]["iss"], ISSUER, "the provider's own claims");

    let strict = spawn_with_provider(&jwks, Duration::from_secs(30), false).await;
    let response = strict
        .client
        .get(strict.url("/api/auth/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(error_code(response).await, "unknown_key");
    jwks.handle.stop(false).await;
}

#[tokio::test]
async fn an_unreachable_provider_is_503_not_401() {
    let rsa = ProviderKey::new(KeyAlg::Rs256, "rsa-1");
    let closed_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = TestApp::builder()
        .config(move |s| {
            s.auth.identity.mode = IdentityMode::Jwt;
            s.auth.identity.jwt.jwks_uri =
                Some(format!("http://127.0.0.1:{closed_port}/jwks.json"));
            s.auth.identity.jwt.issuer = Some(ISSUER.to_owned());
        })
        .spawn()
        .await;

    let response = exchange(&app, &rsa.sign(&provider_claims("a"))).await;

    assert_eq!(
        response.status(),
        503,
        "the device should retry, not sign out"
    );
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(error_code(response).await, "unavailable");
}

#[tokio::test]
async fn provider_tokens_on_the_write_path_meet_the_token_endpoints_user_id_rule() {
    let rsa = ProviderKey::new(KeyAlg::Rs256, "rsa-1");
    let jwks = JwksServer::start(&[&rsa]).await;
    let app = spawn_with_provider(&jwks, Duration::from_secs(30), true).await;
    let batch = json!({"client_id": "phone", "batch": []});

    for bad in ["ali\0ce", "new\nline", &"u".repeat(256)] {
        let token = rsa.sign(&provider_claims(bad));
        let exchanged = exchange(&app, &token).await;
        let direct = app.send_batch(&token, &batch).await;

        assert_eq!(exchanged.status(), 400, "token endpoint, {bad:?}");
        assert_eq!(error_code(exchanged).await, "invalid_user_id");
        assert_eq!(direct.status(), 400, "write path, {bad:?}");
        assert_eq!(error_code(direct).await, "invalid_user_id");
    }
    let fine = app
        .send_batch(&rsa.sign(&provider_claims(&"u".repeat(255))), &batch)
        .await;
    assert_eq!(fine.status(), 200, "255 bytes is the longest user id");
    jwks.handle.stop(false).await;
}
