//! s3s-fs with what S3 does for multipart uploads and s3s-fs leaves out:
//! `ListParts` reports each part's ETag and answers `NoSuchUpload` for an
//! upload that is gone, and `ListMultipartUploads` lists the uploads in
//! progress. Everything else is s3s-fs as is.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use s3s::dto::{
    AbortMultipartUploadInput, AbortMultipartUploadOutput, CompleteMultipartUploadInput,
    CompleteMultipartUploadOutput, CreateMultipartUploadInput, CreateMultipartUploadOutput,
    DeleteObjectInput, DeleteObjectOutput, GetObjectInput, GetObjectOutput, HeadBucketInput,
    HeadBucketOutput, HeadObjectInput, HeadObjectOutput, ListMultipartUploadsInput,
    ListMultipartUploadsOutput, ListPartsInput, ListPartsOutput, MultipartUpload, PutObjectInput,
    PutObjectOutput, Timestamp, UploadPartInput, UploadPartOutput,
};
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};

/// An upload in progress: its key and when it started.
struct Started {
    key: String,
    initiated: std::time::SystemTime,
}

pub struct MultipartFs {
    inner: s3s_fs::FileSystem,
    root: PathBuf,
    uploads: Arc<Mutex<HashMap<String, Started>>>,
    etags: Arc<Mutex<HashMap<(String, i32), s3s::dto::ETag>>>,
}

impl MultipartFs {
    pub fn new(root: &std::path::Path) -> Self {
        Self {
            inner: s3s_fs::FileSystem::new(root).expect("s3s-fs root"),
            root: root.to_owned(),
            uploads: Arc::default(),
            etags: Arc::default(),
        }
    }

    fn in_progress(&self, upload_id: &str) -> bool {
        self.uploads
            .lock()
            .expect("uploads")
            .contains_key(upload_id)
            && self.root.join(format!(".upload-{upload_id}.json")).exists()
    }
}

#[async_trait::async_trait]
impl S3 for MultipartFs {
    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.inner.head_bucket(req).await
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        self.inner.head_object(req).await
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        self.inner.get_object(req).await
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        self.inner.put_object(req).await
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.inner.delete_object(req).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let key = req.input.key.clone();
        let out = self.inner.create_multipart_upload(req).await?;
        if let Some(id) = &out.output.upload_id {
            self.uploads.lock().expect("uploads").insert(
                id.clone(),
                Started {
                    key,
                    initiated: std::time::SystemTime::now(),
                },
            );
        }
        Ok(out)
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let part = (req.input.upload_id.clone(), req.input.part_number);
        if !self.in_progress(&part.0) {
            return Err(s3_error!(NoSuchUpload));
        }
        let out = self.inner.upload_part(req).await?;
        if let Some(etag) = &out.output.e_tag {
            self.etags.lock().expect("etags").insert(part, etag.clone());
        }
        Ok(out)
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let upload_id = req.input.upload_id.clone();
        if !self.in_progress(&upload_id) {
            return Err(s3_error!(NoSuchUpload));
        }
        let mut out = self.inner.list_parts(req).await?;
        let etags = self.etags.lock().expect("etags");
        for part in out.output.parts.iter_mut().flatten() {
            let number = part.part_number.unwrap_or(0);
            part.e_tag = etags.get(&(upload_id.clone(), number)).cloned();
        }
        if let Some(parts) = out.output.parts.as_mut() {
            parts.sort_by_key(|p| p.part_number);
        }
        Ok(out)
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let upload_id = req.input.upload_id.clone();
        if !self.in_progress(&upload_id) {
            return Err(s3_error!(NoSuchUpload));
        }
        let out = self.inner.complete_multipart_upload(req).await?;
        self.uploads.lock().expect("uploads").remove(&upload_id);
        Ok(out)
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let upload_id = req.input.upload_id.clone();
        if !self.in_progress(&upload_id) {
            return Err(s3_error!(NoSuchUpload));
        }
        let out = self.inner.abort_multipart_upload(req).await?;
        self.uploads.lock().expect("uploads").remove(&upload_id);
        Ok(out)
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let prefix = req.input.prefix.clone().unwrap_or_default();
        let uploads = self.uploads.lock().expect("uploads");
        let listed = uploads
            .iter()
            .filter(|(_, u)| u.key.starts_with(&prefix))
            .map(|(id, u)| MultipartUpload {
                key: Some(u.key.clone()),
                upload_id: Some(id.clone()),
                initiated: Some(Timestamp::from(u.initiated)),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(req.input.bucket),
            prefix: Some(prefix),
            uploads: Some(listed),
            ..Default::default()
        }))
    }
}
