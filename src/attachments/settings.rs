//! `attachments:` configuration and its validation.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::environment::Environment;
use crate::config::error::ConfigError;
use crate::config::secret::Secret;
use crate::db::capabilities::ParameterStyle;

/// The longest lifetime S3 accepts for a SigV4 presigned URL.
pub const MAX_URL_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    Local,
    S3,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadPolicy {
    /// Only the user who uploaded it.
    Owner,
    /// Any authenticated user.
    Authenticated,
    /// The owner, or whoever `read_sql` returns true for.
    Sql,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttachmentSettings {
    /// Serve the attachment routes. Off, they are not registered (404) and
    /// no storage is set up; required off with a MySQL database.
    pub enabled: bool,
    pub storage: StorageKind,
    /// First segment of every object key; `/`-separated safe segments.
    pub key_prefix: String,
    pub read_policy: ReadPolicy,
    /// For `read_policy: sql`: a query returning one boolean, with `$1` the
    /// requesting user id, `$2` the attachment id and `$3` its owner.
    pub read_sql: Option<String>,
    /// Largest accepted object, in bytes.
    pub max_size: u64,
    /// Allowed content types; `*` or `type/*` wildcards.
    pub allowed_content_types: Vec<String>,
    #[serde(with = "humantime_serde")]
    pub url_ttl: Duration,
    pub cleanup: CleanupSettings,
    pub local: LocalSettings,
    pub s3: S3Settings,
}

impl Default for AttachmentSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            storage: StorageKind::Local,
            key_prefix: "attachments".to_owned(),
            read_policy: ReadPolicy::Owner,
            read_sql: None,
            max_size: 50 * 1024 * 1024,
            allowed_content_types: vec!["*".to_owned()],
            url_ttl: Duration::from_secs(15 * 60),
            cleanup: CleanupSettings::default(),
            local: LocalSettings::default(),
            s3: S3Settings::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CleanupSettings {
    /// How often the stale-upload sweep runs; `0s` turns it off.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// A `pending` upload untouched for longer than this is removed.
    #[serde(with = "humantime_serde")]
    pub pending_max_age: Duration,
}

impl Default for CleanupSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(10 * 60),
            pending_max_age: Duration::from_secs(24 * 3600),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LocalSettings {
    /// Defaults to `{server.data_dir}/attachments`.
    pub dir: Option<PathBuf>,
    /// Base URL devices reach uplink at (e.g. `https://api.example.com`);
    /// defaults to the scheme and host of the request asking for the URL.
    pub public_url: Option<String>,
    /// Key for the URL signatures. Generated and kept under
    /// `server.data_dir` in development; required in production.
    pub hmac_secret: Option<Secret>,
    /// How long a whole upload body may take to arrive: a slower sender is
    /// cut off (408) and its temporary file removed.
    #[serde(with = "humantime_serde")]
    pub upload_timeout: Duration,
}

impl Default for LocalSettings {
    fn default() -> Self {
        Self {
            dir: None,
            public_url: None,
            hmac_secret: None,
            upload_timeout: Duration::from_secs(10 * 60),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Settings {
    pub bucket: String,
    pub region: String,
    /// Custom endpoint for S3-compatible stores (MinIO, SeaweedFS, R2…).
    pub endpoint: Option<String>,
    /// Endpoint used in presigned URLs when devices reach storage by
    /// another host name than uplink does; defaults to `endpoint`.
    pub public_endpoint: Option<String>,
    /// `http://host/bucket/key` instead of `http://bucket.host/key`.
    pub force_path_style: bool,
    /// Both or neither; when unset the standard AWS credential chain is used.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
}

impl Default for S3Settings {
    fn default() -> Self {
        Self {
            bucket: String::new(),
            region: "us-east-1".to_owned(),
            endpoint: None,
            public_endpoint: None,
            force_path_style: false,
            access_key_id: None,
            secret_access_key: None,
        }
    }
}

impl AttachmentSettings {
    /// `parameters` is how the configured database writes a query's
    /// parameters (for `read_sql`).
    pub fn validate(
        &self,
        environment: Environment,
        parameters: ParameterStyle,
    ) -> Result<(), ConfigError> {
        if !is_safe_prefix(&self.key_prefix) {
            return Err(ConfigError::invalid(
                "attachments.key_prefix",
                "must be one or more `/`-separated segments of letters, digits, `_` and `-`",
            ));
        }
        if self.max_size == 0 {
            return Err(ConfigError::invalid(
                "attachments.max_size",
                "must be at least 1 byte",
            ));
        }
        if self.url_ttl < Duration::from_secs(1) || self.url_ttl > MAX_URL_TTL {
            return Err(ConfigError::invalid(
                "attachments.url_ttl",
                "must be between 1s and 7 days (the longest S3 accepts)",
            ));
        }
        if self.allowed_content_types.is_empty() {
            return Err(ConfigError::invalid(
                "attachments.allowed_content_types",
                "must list at least one type (use `*` to allow any)",
            ));
        }
        for pattern in &self.allowed_content_types {
            if !is_valid_type_pattern(pattern) {
                return Err(ConfigError::invalid(
                    "attachments.allowed_content_types",
                    format!("`{pattern}` is not `*`, `type/*` or `type/subtype`"),
                ));
            }
        }
        match (&self.read_policy, &self.read_sql) {
            (ReadPolicy::Sql, None) => {
                return Err(ConfigError::invalid(
                    "attachments.read_sql",
                    "is required when attachments.read_policy is `sql`",
                ));
            }
            (ReadPolicy::Sql, Some(sql)) => check_read_sql(sql, parameters)?,
            _ => {}
        }
        if !self.cleanup.interval.is_zero() && self.cleanup.pending_max_age <= self.url_ttl {
            return Err(ConfigError::invalid(
                "attachments.cleanup.pending_max_age",
                "must be longer than attachments.url_ttl, or an upload URL could outlive its record",
            ));
        }
        match self.storage {
            StorageKind::Local => self.validate_local(environment),
            StorageKind::S3 => self.validate_s3(),
        }
    }

    fn validate_local(&self, environment: Environment) -> Result<(), ConfigError> {
        match &self.local.hmac_secret {
            None if environment.is_production() => {
                return Err(ConfigError::invalid(
                    "attachments.local.hmac_secret",
                    "is required in production (at least 32 characters)",
                ));
            }
            Some(secret) if secret.expose().len() < 32 => {
                return Err(ConfigError::invalid(
                    "attachments.local.hmac_secret",
                    "must be at least 32 characters",
                ));
            }
            _ => {}
        }
        if let Some(url) = &self.local.public_url {
            check_http_url("attachments.local.public_url", url)?;
        }
        if self.local.upload_timeout.is_zero() {
            return Err(ConfigError::invalid(
                "attachments.local.upload_timeout",
                "must be greater than zero",
            ));
        }
        Ok(())
    }

    fn validate_s3(&self) -> Result<(), ConfigError> {
        let s3 = &self.s3;
        if s3.bucket.is_empty() {
            return Err(ConfigError::invalid(
                "attachments.s3.bucket",
                "is required when attachments.storage is `s3`",
            ));
        }
        if s3.region.is_empty() {
            return Err(ConfigError::invalid(
                "attachments.s3.region",
                "must not be empty",
            ));
        }
        if let Some(url) = &s3.endpoint {
            check_http_url("attachments.s3.endpoint", url)?;
        }
        if let Some(url) = &s3.public_endpoint {
            check_http_url("attachments.s3.public_endpoint", url)?;
        }
        match (&s3.access_key_id, &s3.secret_access_key) {
            (Some(_), None) => Err(ConfigError::invalid(
                "attachments.s3.secret_access_key",
                "is required when attachments.s3.access_key_id is set",
            )),
            (None, Some(_)) => Err(ConfigError::invalid(
                "attachments.s3.access_key_id",
                "is required when attachments.s3.secret_access_key is set",
            )),
            _ => Ok(()),
        }
    }

    /// Whether `content_type` (already lower-cased, without parameters) is allowed.
    pub fn allows_content_type(&self, content_type: &str) -> bool {
        let Some((top, _)) = content_type.split_once('/') else {
            return false;
        };
        self.allowed_content_types.iter().any(|pattern| {
            let pattern = pattern.to_ascii_lowercase();
            pattern == "*"
                || pattern == content_type
                || pattern
                    .strip_suffix("/*")
                    .is_some_and(|pattern_top| pattern_top == top)
        })
    }
}

fn is_safe_prefix(prefix: &str) -> bool {
    !prefix.is_empty()
        && prefix.split('/').all(|segment| {
            !segment.is_empty()
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
}

fn is_valid_type_pattern(pattern: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    match pattern.split_once('/') {
        Some((top, "*")) => token(top),
        Some((top, sub)) => token(top) && token(sub),
        None => false,
    }
}

fn check_http_url(key: &str, url: &str) -> Result<(), ConfigError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') => Ok(()),
        _ => Err(ConfigError::invalid(
            key,
            format!("`{url}` is not an http:// or https:// URL"),
        )),
    }
}

/// Checks `read_sql`'s parameters. Ids are scoped per owner: a query that
/// does not bind the owner would let a user who claims an id a readable row
/// names have others download their file as that row's. On Postgres `$1`,
/// `$2`, `$3` are the requesting user, the attachment id and its owner; on
/// MySQL the query's three `?` are bound to them in that order.
fn check_read_sql(sql: &str, parameters: ParameterStyle) -> Result<(), ConfigError> {
    let numbered = sql
        .as_bytes()
        .windows(2)
        .any(|pair| pair[0] == b'$' && pair[1].is_ascii_digit());
    let why = match parameters {
        ParameterStyle::Numbered if !sql.contains("$3") => {
            "must use $3 (the attachment's owner) to bind the attachment to the row that \
             names it, e.g. `... AND t.photo_id = $2 AND t.created_by = $3`; $1 is the \
             requesting user, $2 the attachment id"
        }
        ParameterStyle::Positional if numbered => {
            "is a MySQL query here, whose parameters are `?`, not `$1`-style: write its three \
             `?` for the requesting user, the attachment id and the attachment's owner, in \
             that order, e.g. `... WHERE m.user_id = ? AND t.photo_id = ? AND t.created_by = ?`"
        }
        ParameterStyle::Positional if sql.matches('?').count() != 3 => {
            "must have exactly three `?`, bound in order to the requesting user, the \
             attachment id and the attachment's owner (which binds the attachment to the row \
             that names it), e.g. `... WHERE m.user_id = ? AND t.photo_id = ? AND \
             t.created_by = ?`; write no other `?` (not even in a string)"
        }
        _ => return Ok(()),
    };
    Err(ConfigError::invalid("attachments.read_sql", why))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_types(types: &[&str]) -> AttachmentSettings {
        AttachmentSettings {
            allowed_content_types: types.iter().map(|t| (*t).to_owned()).collect(),
            ..AttachmentSettings::default()
        }
    }

    #[test]
    fn content_type_wildcards() {
        let s = with_types(&["image/*", "application/pdf"]);
        assert!(s.allows_content_type("image/png"));
        assert!(s.allows_content_type("application/pdf"));
        assert!(!s.allows_content_type("application/json"));
        assert!(!s.allows_content_type("imagex/png"));
        assert!(!s.allows_content_type("image"));
        assert!(with_types(&["*"]).allows_content_type("text/plain"));
    }

    #[test]
    fn invalid_settings_name_their_key() {
        type Breaker = Box<dyn Fn(&mut AttachmentSettings)>;
        let cases: Vec<(&str, Breaker)> = vec![
            (
                "attachments.key_prefix",
                Box::new(|s| s.key_prefix = "../x".into()),
            ),
            (
                "attachments.url_ttl",
                Box::new(|s| s.url_ttl = MAX_URL_TTL + Duration::from_secs(1)),
            ),
            (
                "attachments.allowed_content_types",
                Box::new(|s| s.allowed_content_types = vec!["image".into()]),
            ),
            (
                "attachments.read_sql",
                Box::new(|s| s.read_policy = ReadPolicy::Sql),
            ),
            (
                "attachments.s3.bucket",
                Box::new(|s| s.storage = StorageKind::S3),
            ),
            (
                "attachments.local.hmac_secret",
                Box::new(|s| s.local.hmac_secret = Some(Secret::new("short"))),
            ),
            (
                "attachments.cleanup.pending_max_age",
                Box::new(|s| s.cleanup.pending_max_age = Duration::from_secs(60)),
            ),
        ];
        for (key, break_it) in cases {
            let mut settings = AttachmentSettings::default();
            break_it(&mut settings);
            let err = settings
                .validate(Environment::Development, ParameterStyle::Numbered)
                .expect_err(key)
                .to_string();
            assert!(err.contains(key), "{key}: got {err}");
        }
    }

    #[test]
    fn production_local_storage_needs_a_secret() {
        let err = AttachmentSettings::default()
            .validate(Environment::Production, ParameterStyle::Numbered)
            .expect_err("no secret in production")
            .to_string();
        assert!(err.contains("attachments.local.hmac_secret"), "{err}");
        assert!(
            AttachmentSettings::default()
                .validate(Environment::Development, ParameterStyle::Numbered)
                .is_ok()
        );
    }

    #[test]
    fn read_sql_uses_the_databases_parameters() {
        let on = |sql: &str, parameters| {
            let settings = AttachmentSettings {
                read_policy: ReadPolicy::Sql,
                read_sql: Some(sql.to_owned()),
                ..AttachmentSettings::default()
            };
            settings
                .validate(Environment::Development, parameters)
                .map_err(|e| e.to_string())
        };
        let numbered = "SELECT EXISTS (SELECT 1 FROM t WHERE u = $1 AND p = $2 AND o = $3)";
        let positional = "SELECT EXISTS (SELECT 1 FROM t WHERE u = ? AND p = ? AND o = ?)";
        assert!(on(numbered, ParameterStyle::Numbered).is_ok());
        assert!(on(positional, ParameterStyle::Positional).is_ok());
        let refusals = [
            (numbered, ParameterStyle::Positional, "not `$1`-style"),
            (positional, ParameterStyle::Numbered, "must use $3"),
            (
                "SELECT EXISTS (SELECT 1 FROM t WHERE u = ? AND p = ?)",
                ParameterStyle::Positional,
                "exactly three `?`",
            ),
            (
                "SELECT EXISTS (SELECT 1 FROM t WHERE u = ? AND p = ? AND o = ? AND n = '?')",
                ParameterStyle::Positional,
                "exactly three `?`",
            ),
        ];
        for (sql, parameters, why) in refusals {
            let err = on(sql, parameters).expect_err(sql);
            assert!(
                err.contains("attachments.read_sql") && err.contains(why),
                "{sql}: {err}"
            );
        }
    }
}
