//! An S3-compatible server for the Node client suites (scripts/test builds
//! it as the `s3-test-server` example): s3s-fs with SigV4 checks and the
//! multipart behaviour of tests/api/support/s3_parts.rs, on 127.0.0.1.
//!
//! Usage: `s3-test-server ROOT BUCKET ACCESS_KEY SECRET_KEY`; prints
//! `listening http://127.0.0.1:PORT` once it accepts connections.

#[path = "../../tests/api/support/s3_parts.rs"]
mod s3_parts;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [root, bucket, access, secret] = args.as_slice() else {
        anyhow::bail!("usage: s3-test-server ROOT BUCKET ACCESS_KEY SECRET_KEY");
    };
    let root = std::path::PathBuf::from(root);
    std::fs::create_dir_all(root.join(bucket))?;
    let mut builder = S3ServiceBuilder::new(s3_parts::MultipartFs::new(&root));
    builder.set_auth(SimpleAuth::from_single(access.as_str(), secret.as_str()));
    let service = builder.build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    #[allow(clippy::print_stdout)] // the caller reads the address here
    {
        println!("listening http://127.0.0.1:{port}");
    }
    let http = ConnBuilder::new(TokioExecutor::new());
    loop {
        let (socket, _) = listener.accept().await?;
        let conn = http
            .serve_connection(TokioIo::new(socket), service.clone())
            .into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}
