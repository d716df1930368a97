//! `uplink keys generate` and `uplink token`.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use super::alg::KeyAlg;
use super::dev_key;
use super::issue::{self, TokenRequest};
use super::keys::PrivateKey;
use super::keyset::KeySet;
use super::settings::AuthSettings;
use super::verify;
use crate::config::environment::Environment;

/// The PowerSync Service refuses tokens living longer than a day.

#[derive(Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Print a new signing key: private PEM, private JWK and public JWK.
    Generate {
        /// ed25519 (EdDSA), es256 or rs256 (2048-bit).
        #[arg(long, default_value = "ed25519", value_parser = parse_alg)]
        alg: KeyAlg,
        /// Print one JSON object instead of annotated text.
        #[arg(long)]
        json: bool,
    },
    /// Measure signing and verifying throughput per algorithm on this machine
    /// (one thread, fresh keys; build with --release for real figures).
    Bench {
        /// Time spent per algorithm and operation.
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
        duration: Duration,
    },
}

#[derive(Args)]
pub struct TokenArgs {
    /// The user id (`sub`).
    #[arg(long)]
    pub sub: String,
    /// Lifetime, e.g. 2m (default and most: auth.token_ttl).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub ttl: Option<Duration>,
    /// A token parameter, `key=value` (repeatable); a value that parses as
    /// JSON (number, true, {"a":1}) is kept as JSON, otherwise it is a string.
    #[arg(long = "param", value_parser = parse_param)]
    pub params: Vec<(String, Value)>,
}

fn parse_alg(text: &str) -> Result<KeyAlg, String> {
    match KeyAlg::parse(text) {
        Some(KeyAlg::Hs256) | None => Err("use ed25519, es256 or rs256".to_owned()),
        Some(alg) => Ok(alg),
    }
}

fn parse_param(text: &str) -> Result<(String, Value), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| "expected key=value".to_owned())?;
    if key.is_empty() {
        return Err("the parameter name is empty".to_owned());
    }
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
    Ok((key.to_owned(), value))
}

/// Runs `uplink keys …` and returns what to print.
pub fn keys(args: KeysArgs) -> anyhow::Result<String> {
    match args.command {
        KeysCommand::Generate { alg, json } => generate(alg, json),
        KeysCommand::Bench { duration } => bench(duration),
    }
}

fn generate(alg: KeyAlg, as_json: bool) -> anyhow::Result<String> {
    let key = PrivateKey::generate(alg)?;
    let kid = key.thumbprint();
    let pem = key.to_pem()?.context("this algorithm has no PEM form")?;
    let private_jwk = key.private_jwk(&kid)?;
    let public_jwk = key
        .public_jwk(&kid)
        .context("this key cannot be published")?;
    if as_json {
        return Ok(serde_json::to_string_pretty(&json!({
            "alg": alg.as_str(),
            "kid": kid,
            "private_key_pem": pem,
            "private_jwk": private_jwk,
            "public_jwk": public_jwk,
        }))? + "\n");
    }
    Ok(format!(
        "# A new {alg} signing key, kid {kid} (the RFC 7638 thumbprint).\n\
         # Keep the private parts in a secret store; never commit them.\n\
         #\n\
         # Private key, PKCS#8 PEM (auth.keys[].private_key_pem, or a file for auth.keys[].file):\n\
         {pem}\
         #\n\
         # Private JWK (auth.keys[].private_key_jwk):\n\
         {private}\n\
         #\n\
         # Public JWK (what /.well-known/jwks.json publishes):\n\
         {public}\n\
         #\n\
         # Config entry:\n\
         #   auth:\n\
         #     keys:\n\
         #       - {{ alg: {alg}, file: /run/secrets/uplink-signing-key.pem, active: true }}\n",
        private = serde_json::to_string(&private_jwk)?,
        public = serde_json::to_string(&public_jwk)?,
    ))
}

fn bench(duration: Duration) -> anyhow::Result<String> {
    let mut out = String::from("alg     sign tokens/s   verify tokens/s\n");
    let audience = vec!["powersync".to_owned()];
    for alg in [KeyAlg::EdDsa, KeyAlg::Es256, KeyAlg::Rs256, KeyAlg::Hs256] {
        let keys = KeySet::new(vec![(PrivateKey::generate(alg)?, None, true)])?;
        let key = keys.active();
        let request = TokenRequest {
            user_id: "bench-user",
            parameters: None,
            ttl: Duration::from_secs(300),
        };
        let rate = |mut op: Box<dyn FnMut() -> anyhow::Result<()>>| -> anyhow::Result<f64> {
            let start = std::time::Instant::now();
            let mut n = 0u64;
            while start.elapsed() < duration {
                op()?;
                n += 1;
            }
            Ok(n as f64 / start.elapsed().as_secs_f64())
        };
        let sign = rate(Box::new(|| {
            issue::sign(key, "uplink", &audience, &request).map(drop)
        }))?;
        let token = issue::sign(key, "uplink", &audience, &request)?.token;
        let header = verify::header(&token)?;
        let verify = rate(Box::new(|| {
            let rules = verify::OwnTokenRules {
                issuer: "uplink",
                audience: &audience,
                max_lifetime: request.ttl,
            };
            verify::verify_own(&keys, &rules, &token, &header)
                .map(drop)
                .map_err(|e| anyhow::anyhow!("{e}"))
        }))?;
        out.push_str(&format!(
            "{:<7} {sign:>14.0} {verify:>17.0}\n",
            alg.as_str()
        ));
    }
    Ok(out)
}

/// Runs `uplink token …`: a token signed with the configured active key.
pub fn token(
    auth: &AuthSettings,
    environment: Environment,
    data_dir: &Path,
    args: TokenArgs,
) -> anyhow::Result<String> {
    if args.sub.is_empty() || args.sub.chars().any(char::is_control) {
        bail!("--sub must be a non-empty user id without control characters");
    }
    let ttl = args.ttl.unwrap_or(auth.token_ttl);
    if ttl.is_zero() || ttl > auth.token_ttl {
        bail!(
            "--ttl must be between 1s and auth.token_ttl ({}): uplink refuses its own tokens living longer",
            humantime::format_duration(auth.token_ttl)
        );
    }
    // The server's key or none: never one made up for this token.
    let keys = if auth.keys.is_empty() && !environment.is_production() {
        let key = dev_key::load_existing(data_dir)?;
        KeySet::new(vec![(key, None, true)])?
    } else {
        KeySet::from_settings(auth, environment, data_dir)?
    };
    let parameters: Map<String, Value> = args.params.into_iter().collect();
    let issued = issue::sign(
        keys.active(),
        &auth.issuer,
        &auth.audience,
        &TokenRequest {
            user_id: &args.sub,
            parameters: Some(&parameters),
            ttl,
        },
    )?;
    Ok(issued.token)
}
