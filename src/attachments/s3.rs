//! The `s3` backend: AWS S3 or any S3-compatible store, with SigV4
//! presigned URLs that devices use directly.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use aws_config::BehaviorVersion;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{
    Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::types::ChecksumMode;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

use super::serving;
use super::settings::S3Settings;
use super::storage::{ObjectInfo, PresignedRequest, PutConstraints, Storage, UrlContext, expiry};

pub struct S3Storage {
    pub(super) bucket: String,
    /// Talks to storage from uplink (head, delete, readiness).
    pub(super) client: Client,
    /// Signs URLs for devices; differs from `client` when `public_endpoint` is set.
    pub(super) presigner: Client,
}

impl S3Storage {
    pub async fn build(settings: &S3Settings) -> anyhow::Result<Self> {
        let http_client = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http_client)
            .region(Region::new(settings.region.clone()));
        if let (Some(id), Some(secret)) = (&settings.access_key_id, &settings.secret_access_key) {
            loader = loader.credentials_provider(Credentials::new(
                id.clone(),
                secret.expose().to_owned(),
                None,
                None,
                "uplink-config",
            ));
        }
        let shared = loader.load().await;
        let client_for = |endpoint: Option<&String>| {
            let mut builder = aws_sdk_s3::config::Builder::from(&shared)
                .force_path_style(settings.force_path_style)
                // Presigned URLs must not carry checksums of an empty body;
                // the optional SHA-256 is added explicitly.
                .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
            if let Some(endpoint) = endpoint {
                builder = builder.endpoint_url(endpoint.trim_end_matches('/'));
            }
            Client::from_conf(builder.build())
        };
        let client = client_for(settings.endpoint.as_ref());
        let presigner = client_for(
            settings
                .public_endpoint
                .as_ref()
                .or(settings.endpoint.as_ref()),
        );
        Ok(Self {
            bucket: settings.bucket.clone(),
            client,
            presigner,
        })
    }
}

pub(super) fn presigned(
    request: aws_sdk_s3::presigning::PresignedRequest,
    ttl: Duration,
) -> PresignedRequest {
    PresignedRequest {
        url: request.uri().to_owned(),
        headers: request
            .headers()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect::<BTreeMap<_, _>>(),
        expires_at: expiry(ttl),
    }
}

#[async_trait::async_trait]
impl Storage for S3Storage {
    fn name(&self) -> &'static str {
        "s3"
    }

    async fn presign_put(
        &self,
        key: &str,
        constraints: &PutConstraints,
        ttl: Duration,
        _ctx: &UrlContext,
    ) -> anyhow::Result<PresignedRequest> {
        let mut request = self
            .presigner
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(&constraints.content_type);
        if let Some(length) = constraints.content_length {
            request = request.content_length(i64::try_from(length).context("size out of range")?);
        }
        if let Some(sum) = &constraints.checksum_sha256 {
            request = request.checksum_sha256(sum);
        }
        let config = PresigningConfig::expires_in(ttl).context("Failed to configure presigning")?;
        let signed = request
            .presigned(config)
            .await
            .context("Failed to presign an S3 upload")?;
        Ok(presigned(signed, ttl))
    }

    async fn presign_get(
        &self,
        key: &str,
        content_type: &str,
        ttl: Duration,
        _ctx: &UrlContext,
    ) -> anyhow::Result<PresignedRequest> {
        let config = PresigningConfig::expires_in(ttl).context("Failed to configure presigning")?;
        let mut request = self
            .presigner
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .response_content_type(content_type);
        if !serving::is_inline(content_type) {
            // Signed into the URL: S3 serves the object as a file to save.
            request = request.response_content_disposition("attachment");
        }
        let signed = request
            .presigned(config)
            .await
            .context("Failed to presign an S3 download")?;
        Ok(presigned(signed, ttl))
    }

    async fn head(&self, key: &str) -> anyhow::Result<Option<ObjectInfo>> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
        {
            Ok(out) => Ok(Some(ObjectInfo {
                size: out
                    .content_length()
                    .and_then(|n| u64::try_from(n).ok())
                    .unwrap_or(0),
                content_type: out.content_type().map(str::to_owned),
                checksum_sha256: out.checksum_sha256().map(str::to_owned),
            })),
            Err(err) => {
                let not_found = err.as_service_error().is_some_and(|e| e.is_not_found())
                    || err
                        .raw_response()
                        .is_some_and(|r| r.status().as_u16() == 404);
                if not_found {
                    Ok(None)
                } else {
                    Err(anyhow::Error::new(err).context("Failed to look up an S3 object"))
                }
            }
        }
    }

    async fn delete(&self, key: &str) -> anyhow::Result<()> {
        // S3 answers 204 for a missing key too.
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .context("Failed to delete an S3 object")?;
        Ok(())
    }

    async fn check(&self) -> anyhow::Result<()> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .context("S3 bucket is not reachable")?;
        Ok(())
    }
}
