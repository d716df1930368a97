//! The token verifier: arbitrary bytes as a bearer token, arbitrary claims
//! signed with a trusted key (so claim validation itself is reached), and
//! arbitrary JSON as an upstream provider's JWK.
#![no_main]

use std::sync::OnceLock;

use jsonwebtoken::Header;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use uplink::auth::KeySet;
use uplink::auth::jwk::decoding_key_from_public_jwk;
use uplink::auth::keys::{KeyAlg, PrivateKey};
use uplink::auth::verify;

struct Trusted {
    keys: KeySet,
    signer: jsonwebtoken::EncodingKey,
    kid: String,
}

fn trusted() -> &'static Trusted {
    static TRUSTED: OnceLock<Trusted> = OnceLock::new();
    TRUSTED.get_or_init(|| {
        let key = PrivateKey::generate(KeyAlg::EdDsa).expect("generate a key");
        let other = PrivateKey::generate(KeyAlg::Es256).expect("generate a key");
        let signer = key.encoding_key().expect("encoding key");
        let kid = key.thumbprint();
        let keys = KeySet::new(vec![(key, Some(kid.clone()), true), (other, None, false)])
            .expect("a key set");
        Trusted { keys, signer, kid }
    })
}

fn check(token: &str) {
    let t = trusted();
    if let Ok(header) = verify::header(token) {
        let audience = ["powersync".to_owned()];
        let rules = verify::OwnTokenRules {
            issuer: "uplink",
            audience: &audience,
            max_lifetime: std::time::Duration::from_secs(300),
        };
        let _ = verify::verify_own(&t.keys, &rules, token, &header);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            if let Ok(token) = std::str::from_utf8(rest) {
                check(token);
            }
        }
        1 => {
            if let Ok(claims) = serde_json::from_slice::<Value>(rest) {
                let t = trusted();
                let mut header = Header::new(jsonwebtoken::Algorithm::EdDSA);
                header.kid = Some(t.kid.clone());
                if let Ok(token) = jsonwebtoken::encode(&header, &claims, &t.signer) {
                    check(&token);
                }
            }
        }
        _ => {
            if let Ok(jwk) = serde_json::from_slice::<Value>(rest) {
                let _ = decoding_key_from_public_jwk(&jwk);
            }
        }
    }
});
