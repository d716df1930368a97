//! Request bodies: read once, decoded once, with every limit applied to what
//! the handler will see.
//!
//! The `guard_body` middleware replaces a request's payload with a lazy one:
//! nothing is read until a handler's extractor asks for the body (after
//! authentication, see `AuthUser`). Then the whole body is read within
//! `server.body_timeout`, gzip is decoded while it arrives, reading stops as
//! soon as the decoded size passes `server.max_body_bytes`, and JSON bodies
//! get the nesting-depth check on the decoded bytes. actix-web's own
//! decompression is off (no `compress-*` feature), so nothing decodes twice.

use std::cell::Cell;
use std::io::{self, Write};
use std::rc::Rc;
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use futures_util::StreamExt;

use crate::error::{ApiError, ErrorCode};
use crate::limits::json_depth::json_depth_exceeds;

/// How a body is encoded (`Content-Encoding`): identity or gzip, nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Identity,
    Gzip,
}

/// Why a body was refused; turned into the response by `guard_body`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyError {
    TooLarge {
        max: usize,
    },
    TooDeep {
        max: usize,
    },
    TimedOut {
        after: Duration,
    },
    BadGzip,
    /// The client went away or broke the framing.
    Unreadable,
}

impl BodyError {
    fn into_api(self) -> ApiError {
        match self {
            Self::TooLarge { max } => ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("request body is larger than {max} bytes (after decompression)"),
            ),
            Self::TooDeep { max } => ApiError::new(
                ErrorCode::JsonTooDeep,
                format!("request body is nested deeper than {max} levels"),
            ),
            Self::TimedOut { after } => ApiError::new(
                ErrorCode::RequestTimeout,
                format!(
                    "the request body did not arrive within {}",
                    humantime::format_duration(after)
                ),
            ),
            Self::BadGzip => ApiError::new(
                ErrorCode::InvalidGzip,
                "the request body is not valid gzip (Content-Encoding: gzip)",
            ),
            Self::Unreadable => {
                ApiError::new(ErrorCode::InvalidBody, "request body could not be read")
            }
        }
    }
}

/// What the guard enforces on every body (`server.max_body_bytes`,
/// `limits.max_json_depth`, `server.body_timeout`), in the app's data.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimits {
    pub max_bytes: usize,
    pub max_json_depth: usize,
    pub timeout: Duration,
}

/// What `read_body` enforces.
#[derive(Debug, Clone, Copy)]
struct BodyRules {
    encoding: Encoding,
    max_bytes: usize,
    /// The JSON nesting limit, for JSON bodies.
    max_depth: Option<usize>,
    timeout: Duration,
}

/// Middleware: every request body is read through `read_body`, lazily.
/// Local attachment files are bytes streamed to disk by their own handler
/// (with its own size limit), not request documents, and pass untouched.
pub async fn guard_body(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let rules = match rules_for(&req) {
        Ok(rules) => rules,
        Err(err) => return Ok(req.error_response(err).map_into_right_body()),
    };
    let Some(rules) = rules else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    let refused = Rc::new(Cell::new(None));
    let body = read_or_record(req.take_payload(), rules, refused.clone());
    req.set_payload(Payload::Stream {
        payload: Box::pin(futures_util::stream::once(body)),
    });
    let response = next.call(req).await?;
    match refused.take() {
        // Whatever the extractor made of the failed read, answer with its
        // cause. The body is left unread, so actix closes the connection.
        Some(err) => {
            let (req, _) = response.into_parts();
            let response = actix_web::ResponseError::error_response(&err.into_api());
            Ok(ServiceResponse::new(req, response).map_into_right_body())
        }
        None => Ok(response.map_into_left_body()),
    }
}

/// The rules for this request's body; `None` when it has none to guard.
fn rules_for(req: &ServiceRequest) -> Result<Option<BodyRules>, ApiError> {
    let has_body = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    // Local uploads stream to disk under their own limits (signed size, upload timeout).
    let is_file = req
        .path()
        .starts_with(crate::attachments::local::FILES_PATH)
        || req
            .path()
            .starts_with(crate::attachments::local::PARTS_PATH);
    if !has_body || is_file {
        return Ok(None);
    }
    let Some(limits) = req.app_data::<web::Data<BodyLimits>>() else {
        return Ok(None);
    };
    Ok(Some(BodyRules {
        encoding: encoding(req)?,
        max_bytes: limits.max_bytes,
        max_depth: is_json(req).then_some(limits.max_json_depth),
        timeout: limits.timeout,
    }))
}

fn is_json(req: &ServiceRequest) -> bool {
    req.mime_type().ok().flatten().is_some_and(|m| {
        m.type_() == mime::APPLICATION
            && (m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON))
    })
}

/// Only one coding, and only gzip: stacked codings would multiply what a
/// small body expands to, and nothing uplink talks to sends others.
fn encoding(req: &ServiceRequest) -> Result<Encoding, ApiError> {
    let mut values = req.headers().get_all(header::CONTENT_ENCODING);
    let value = match (values.next(), values.next()) {
        (None, _) => return Ok(Encoding::Identity),
        (Some(value), None) => value.to_str().unwrap_or_default().trim(),
        (Some(_), Some(_)) => return Err(unsupported_encoding()),
    };
    if value.is_empty() || value.eq_ignore_ascii_case("identity") {
        Ok(Encoding::Identity)
    } else if value.eq_ignore_ascii_case("gzip") || value.eq_ignore_ascii_case("x-gzip") {
        Ok(Encoding::Gzip)
    } else {
        Err(unsupported_encoding())
    }
}

fn unsupported_encoding() -> ApiError {
    ApiError::new(
        ErrorCode::UnsupportedMediaType,
        "unsupported Content-Encoding: send the body as is or with `Content-Encoding: gzip`"
            .to_owned(),
    )
}

/// `read_body`, noting a refusal where `guard_body` finds it.
async fn read_or_record(
    payload: Payload,
    rules: BodyRules,
    refused: Rc<Cell<Option<BodyError>>>,
) -> Result<web::Bytes, PayloadError> {
    read_body(payload, rules).await.map_err(|err| {
        refused.set(Some(err));
        match err {
            BodyError::TooLarge { .. } => PayloadError::Overflow,
            _ => PayloadError::Incomplete(None),
        }
    })
}

async fn read_body(mut payload: Payload, rules: BodyRules) -> Result<web::Bytes, BodyError> {
    let collect = async {
        let mut sink = Sink::new(rules.encoding, rules.max_bytes);
        while let Some(chunk) = payload.next().await {
            sink.write(&chunk.map_err(|_| BodyError::Unreadable)?)?;
        }
        sink.finish()
    };
    let body = tokio::time::timeout(rules.timeout, collect)
        .await
        .map_err(|_| BodyError::TimedOut {
            after: rules.timeout,
        })??;
    if let Some(max) = rules.max_depth
        && json_depth_exceeds(&body, max)
    {
        return Err(BodyError::TooDeep { max });
    }
    Ok(web::Bytes::from(body))
}

/// The guard's decoding alone: `chunks` as they arrive, gzip-encoded or
/// not, capped at `max` bytes; the error is the refusal's code. Exposed for
/// the fuzz targets (fuzz/).
#[doc(hidden)]
pub fn decode_chunks<'c>(
    gzip: bool,
    max: usize,
    chunks: impl IntoIterator<Item = &'c [u8]>,
) -> Result<Vec<u8>, ErrorCode> {
    let encoding = if gzip {
        Encoding::Gzip
    } else {
        Encoding::Identity
    };
    let mut sink = Sink::new(encoding, max);
    for chunk in chunks {
        sink.write(chunk).map_err(|err| err.into_api().code())?;
    }
    sink.finish().map_err(|err| err.into_api().code())
}

/// Where the body's bytes go: straight into a capped buffer, or through a
/// gzip decoder into it (decoding as chunks arrive, so a compressed bomb is
/// stopped at the cap, never expanded in full). The buffer grows with what
/// arrives: a declared `Content-Length` reserves nothing, or connections
/// that declare large bodies and send none would hold memory for them.
enum Sink {
    Identity(Capped),
    Gzip(Box<flate2::write::MultiGzDecoder<Capped>>),
}

impl Sink {
    fn new(encoding: Encoding, max: usize) -> Self {
        match encoding {
            Encoding::Identity => Self::Identity(Capped {
                buf: Vec::new(),
                max,
            }),
            Encoding::Gzip => Self::Gzip(Box::new(flate2::write::MultiGzDecoder::new(Capped {
                buf: Vec::new(),
                max,
            }))),
        }
    }

    fn write(&mut self, chunk: &[u8]) -> Result<(), BodyError> {
        match self {
            Self::Identity(capped) => capped.write_all(chunk),
            Self::Gzip(decoder) => decoder.write_all(chunk),
        }
        .map_err(|err| decode_error(&err, self.max()))
    }

    fn finish(self) -> Result<Vec<u8>, BodyError> {
        match self {
            Self::Identity(capped) => Ok(capped.buf),
            Self::Gzip(decoder) => {
                let max = decoder.get_ref().max;
                decoder
                    .finish()
                    .map(|capped| capped.buf)
                    .map_err(|err| decode_error(&err, max))
            }
        }
    }

    fn max(&self) -> usize {
        match self {
            Self::Identity(capped) => capped.max,
            Self::Gzip(decoder) => decoder.get_ref().max,
        }
    }
}

fn decode_error(err: &io::Error, max: usize) -> BodyError {
    if err.get_ref().is_some_and(|inner| inner.is::<OverCap>()) {
        BodyError::TooLarge { max }
    } else {
        BodyError::BadGzip
    }
}

/// A buffer that refuses to grow past `max` bytes.
struct Capped {
    buf: Vec<u8>,
    max: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("over the body limit")]
struct OverCap;

impl Write for Capped {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > self.max {
            return Err(io::Error::other(OverCap));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn decode(encoding: Encoding, max: usize, chunks: &[&[u8]]) -> Result<Vec<u8>, BodyError> {
        let mut sink = Sink::new(encoding, max);
        for chunk in chunks {
            sink.write(chunk)?;
        }
        sink.finish()
    }

    #[test]
    fn gzip_is_decoded_across_chunks() {
        let text = br#"{"batch": []}"#.repeat(100);
        let packed = gzip(&text);
        let (a, b) = packed.split_at(packed.len() / 2);
        assert_eq!(decode(Encoding::Gzip, 10_000, &[a, b]), Ok(text));
    }

    #[test]
    fn the_cap_applies_to_decoded_bytes() {
        let packed = gzip(&vec![b'a'; 100_000]);
        assert!(packed.len() < 1_000);
        assert_eq!(
            decode(Encoding::Gzip, 10_000, &[&packed]),
            Err(BodyError::TooLarge { max: 10_000 })
        );
        assert_eq!(
            decode(Encoding::Identity, 10, &[b"0123456789", b"x"]),
            Err(BodyError::TooLarge { max: 10 })
        );
        assert!(decode(Encoding::Identity, 10, &[b"01234", b"56789"]).is_ok());
    }

    #[test]
    fn truncated_or_garbled_gzip_is_refused() {
        let packed = gzip(b"hello, hello, hello");
        assert_eq!(
            decode(Encoding::Gzip, 1_000, &[&packed[..packed.len() - 4]]),
            Err(BodyError::BadGzip)
        );
        assert_eq!(
            decode(Encoding::Gzip, 1_000, &[b"not gzip at all"]),
            Err(BodyError::BadGzip)
        );
        // Twice compressed decodes once: what remains is not the document.
        let twice = gzip(&packed);
        assert_eq!(decode(Encoding::Gzip, 1_000, &[&twice]), Ok(packed));
    }
}
