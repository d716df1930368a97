//! The `local` backend: objects in a directory, uploaded and downloaded
//! through uplink itself on HMAC-signed, expiring URLs.
//!
//! An upload is `PUT {base}/api/attachments/files/{key}?expires=…&max=…&headers=…`
//! with the signature in the `X-Uplink-Signature` header (among the headers
//! the device must send anyway), so request logs, which record the URL,
//! never hold a usable upload credential. A download is
//! `GET …/files/{key}?expires=…&ct=…&signature=…`: it must work as a plain
//! URL. The signature covers the method, the key, the expiry, the size cap
//! and the values of the listed headers as the request carries them (as
//! SigV4 does), so changing any of them invalidates it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::storage::{ObjectInfo, PresignedRequest, PutConstraints, Storage, UrlContext, expiry};
use crate::config::secret::Secret;

type HmacSha256 = Hmac<Sha256>;

/// Path under which uplink serves local objects.
pub const FILES_PATH: &str = "/api/attachments/files";
/// Path under which uplink takes the parts of local multipart uploads:
/// `{PARTS_PATH}/{upload id}/{part number}`.
pub const PARTS_PATH: &str = "/api/attachments/parts";
/// Carries an upload's signature.
pub const SIGNATURE_HEADER: &str = "x-uplink-signature";

pub struct LocalStorage {
    root: PathBuf,
    secret: Secret,
    public_url: Option<String>,
}

/// The signed parts of a local URL's query string.
#[derive(Debug, serde::Deserialize)]
pub struct SignedQuery {
    pub expires: i64,
    /// Largest body accepted (uploads only).
    pub max: Option<u64>,
    /// `;`-separated lower-case names of the signed headers.
    #[serde(default)]
    pub headers: String,
    /// Content type to serve a download as.
    pub ct: Option<String>,
    /// Downloads only; uploads send it in `X-Uplink-Signature`.
    pub signature: Option<String>,
}

/// Why a local URL was refused; all of them are 403 for the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    Expired,
    BadSignature,
}

impl LocalStorage {
    pub fn new(root: PathBuf, secret: Secret, public_url: Option<String>) -> Self {
        Self {
            root,
            secret,
            public_url: public_url.map(|u| u.trim_end_matches('/').to_owned()),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the object for `key` lives; `key` must be an object key
    /// (checked by the caller), so it stays under the root.
    pub fn path_of(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    /// A fresh temporary path on the same file system as the objects, so the
    /// final rename is atomic.
    pub fn temp_path(&self) -> PathBuf {
        self.root
            .join(".tmp")
            .join(uuid::Uuid::new_v4().simple().to_string())
    }

    /// Removes temporary upload files older than `max_age`: only a crash
    /// mid-upload leaves one behind (a failed upload removes its own).
    pub async fn remove_stale_temp_files(&self, max_age: Duration) -> anyhow::Result<u64> {
        let dir = self.root.join(".tmp");
        let mut entries = match tokio::fs::read_dir(&dir).await {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(err) => return Err(err).context("Failed to list temporary uploads"),
        };
        let mut removed = 0;
        while let Some(entry) = entries
            .next_entry()
            .await
            .context("Failed to list temporary uploads")?
        {
            let old = entry
                .metadata()
                .await
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > max_age);
            if old && tokio::fs::remove_file(entry.path()).await.is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length; this cannot fail.
        HmacSha256::new_from_slice(self.secret.expose().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"))
    }

    fn feed(
        mac: &mut HmacSha256,
        method: &str,
        key: &str,
        query: (&i64, Option<u64>, &str, Option<&str>),
        header_values: &[(&str, &str)],
    ) {
        let (expires, max, names, ct) = query;
        let max = max.map(|m| m.to_string()).unwrap_or_default();
        for part in [
            "UPLINK-HMAC-SHA256",
            method,
            key,
            &expires.to_string(),
            &max,
            names,
            ct.unwrap_or(""),
        ] {
            mac.update(part.as_bytes());
            mac.update(b"\n");
        }
        for (name, value) in header_values {
            mac.update(name.as_bytes());
            mac.update(b":");
            mac.update(value.trim().as_bytes());
            mac.update(b"\n");
        }
    }

    fn sign(
        &self,
        method: &str,
        key: &str,
        query: (&i64, Option<u64>, &str, Option<&str>),
        headers: &BTreeMap<String, String>,
    ) -> String {
        let values: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let mut mac = self.mac();
        Self::feed(&mut mac, method, key, query, &values);
        hex::encode(mac.finalize().into_bytes())
    }

    /// Checks expiry and signature of a request for `key`; `header` looks up
    /// a request header by lower-case name.
    pub fn verify<'a>(
        &self,
        method: &str,
        key: &str,
        query: &SignedQuery,
        header: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<(), Refusal> {
        if chrono::Utc::now().timestamp() > query.expires {
            return Err(Refusal::Expired);
        }
        let names: Vec<&str> = query.headers.split(';').filter(|n| !n.is_empty()).collect();
        let values: Vec<(&str, &str)> = names
            .iter()
            .map(|name| (*name, header(name).unwrap_or("")))
            .collect();
        let signature = match method {
            "PUT" => header(SIGNATURE_HEADER),
            _ => query.signature.as_deref(),
        };
        let Some(Ok(expected)) = signature.map(hex::decode) else {
            return Err(Refusal::BadSignature);
        };
        let mut mac = self.mac();
        Self::feed(
            &mut mac,
            method,
            key,
            (
                &query.expires,
                query.max,
                &query.headers,
                query.ct.as_deref(),
            ),
            &values,
        );
        // Constant-time comparison.
        mac.verify_slice(&expected)
            .map_err(|_| Refusal::BadSignature)
    }

    /// A signed `PUT` to `path` (under the base URL) for what `signed_key`
    /// names, taking at most `max` bytes and exactly these `headers`.
    pub(crate) fn presign_upload(
        &self,
        path: &str,
        signed_key: &str,
        mut headers: BTreeMap<String, String>,
        max: u64,
        ttl: Duration,
        ctx: &UrlContext,
    ) -> anyhow::Result<PresignedRequest> {
        let expires_at = expiry(ttl);
        let expires = expires_at.timestamp();
        let names = headers.keys().cloned().collect::<Vec<_>>().join(";");
        let signature = self.sign(
            "PUT",
            signed_key,
            (&expires, Some(max), &names, None),
            &headers,
        );
        let url = format!(
            "{}{path}?expires={expires}&max={max}&headers={}",
            self.base(ctx)?,
            encode_query_value(&names),
        );
        headers.insert(SIGNATURE_HEADER.to_owned(), signature);
        Ok(PresignedRequest {
            url,
            // Lower-case names, as the S3 backend returns them.
            headers,
            expires_at,
        })
    }

    fn base<'a>(&'a self, ctx: &'a UrlContext) -> anyhow::Result<&'a str> {
        self.public_url
            .as_deref()
            .or(ctx.request_base.as_deref())
            .context("Failed to build a local attachment URL: set attachments.local.public_url")
    }
}

fn encode_query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[async_trait::async_trait]
impl Storage for LocalStorage {
    fn name(&self) -> &'static str {
        "local"
    }

    fn verifies_checksum_before_storing(&self) -> bool {
        // The PUT handler hashes into a temporary file and renames only on a match.
        true
    }

    async fn presign_put(
        &self,
        key: &str,
        constraints: &PutConstraints,
        ttl: Duration,
        ctx: &UrlContext,
    ) -> anyhow::Result<PresignedRequest> {
        let mut headers = BTreeMap::new();
        headers.insert("content-type".to_owned(), constraints.content_type.clone());
        if let Some(length) = constraints.content_length {
            headers.insert("content-length".to_owned(), length.to_string());
        }
        if let Some(sum) = &constraints.checksum_sha256 {
            headers.insert("x-amz-checksum-sha256".to_owned(), sum.clone());
        }
        let max = constraints.content_length.unwrap_or(constraints.max_size);
        self.presign_upload(&format!("{FILES_PATH}/{key}"), key, headers, max, ttl, ctx)
    }

    async fn presign_get(
        &self,
        key: &str,
        content_type: &str,
        ttl: Duration,
        ctx: &UrlContext,
    ) -> anyhow::Result<PresignedRequest> {
        let expires_at = expiry(ttl);
        let expires = expires_at.timestamp();
        let signature = self.sign(
            "GET",
            key,
            (&expires, None, "", Some(content_type)),
            &BTreeMap::new(),
        );
        let url = format!(
            "{}{FILES_PATH}/{key}?expires={expires}&ct={}&signature={signature}",
            self.base(ctx)?,
            encode_query_value(content_type),
        );
        Ok(PresignedRequest {
            url,
            headers: BTreeMap::new(),
            expires_at,
        })
    }

    async fn head(&self, key: &str) -> anyhow::Result<Option<ObjectInfo>> {
        match tokio::fs::metadata(self.path_of(key)).await {
            Ok(meta) if meta.is_file() => Ok(Some(ObjectInfo {
                size: meta.len(),
                content_type: None,
                checksum_sha256: None,
            })),
            Ok(_) => Ok(None),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err).context("Failed to stat a local attachment"),
        }
    }

    async fn delete(&self, key: &str) -> anyhow::Result<()> {
        match tokio::fs::remove_file(self.path_of(key)).await {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(err).context("Failed to delete a local attachment"),
        }
    }

    async fn check(&self) -> anyhow::Result<()> {
        let meta = tokio::fs::metadata(&self.root)
            .await
            .context("attachments directory is missing")?;
        anyhow::ensure!(meta.is_dir(), "attachments directory is not a directory");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage() -> LocalStorage {
        LocalStorage::new(
            PathBuf::from("/nonexistent"),
            Secret::new("0123456789abcdef0123456789abcdef"),
            Some("http://files.test".to_owned()),
        )
    }

    fn query_of(url: &str) -> SignedQuery {
        let query = url.split_once('?').expect("query").1;
        let mut q = SignedQuery {
            expires: 0,
            max: None,
            headers: String::new(),
            ct: None,
            signature: None,
        };
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').expect("pair");
            let v = v.replace("%3B", ";").replace("%2F", "/");
            match k {
                "expires" => q.expires = v.parse().expect("expires"),
                "max" => q.max = Some(v.parse().expect("max")),
                "headers" => q.headers = v,
                "ct" => q.ct = Some(v),
                "signature" => q.signature = Some(v),
                _ => panic!("unexpected {k}"),
            }
        }
        q
    }

    #[tokio::test]
    async fn signed_headers_must_match() {
        let s = storage();
        let constraints = PutConstraints {
            content_type: "image/png".into(),
            content_length: Some(5),
            checksum_sha256: None,
            max_size: 100,
        };
        let url = s
            .presign_put(
                "a/u/i.png",
                &constraints,
                Duration::from_secs(60),
                &UrlContext::default(),
            )
            .await
            .expect("presign");
        let q = query_of(&url.url);
        let signature = url
            .headers
            .get(SIGNATURE_HEADER)
            .expect("signature header")
            .clone();
        assert!(!url.url.contains(&signature), "no credential in the URL");
        let ok = |name: &str| match name {
            "content-type" => Some("image/png"),
            "content-length" => Some("5"),
            SIGNATURE_HEADER => Some(signature.as_str()),
            _ => None,
        };
        assert_eq!(s.verify("PUT", "a/u/i.png", &q, ok), Ok(()));
        assert_eq!(
            s.verify("PUT", "a/u/i.png", &q, |n| if n == "content-type" {
                Some("text/html")
            } else {
                ok(n)
            }),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            s.verify("PUT", "a/u/other.png", &q, ok),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            s.verify("GET", "a/u/i.png", &q, ok),
            Err(Refusal::BadSignature)
        );
        let mut bigger = query_of(&url.url);
        bigger.max = Some(1_000_000);
        assert_eq!(
            s.verify("PUT", "a/u/i.png", &bigger, ok),
            Err(Refusal::BadSignature)
        );
        let mut expired = query_of(&url.url);
        expired.expires = chrono::Utc::now().timestamp() - 1;
        assert_eq!(
            s.verify("PUT", "a/u/i.png", &expired, ok),
            Err(Refusal::Expired)
        );
        assert_eq!(
            url.headers.get("content-type").map(String::as_str),
            Some("image/png")
        );
        assert_eq!(
            url.headers.get("content-length").map(String::as_str),
            Some("5")
        );
    }
}
