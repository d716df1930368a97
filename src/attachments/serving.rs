//! How downloads are presented to a browser. A download URL is a plain,
//! bearer-less link; served from uplink's own origin (local storage), an
//! HTML or SVG object would run its scripts there. Only types a browser
//! shows without running anything are served inline; everything else is
//! a file to save.

/// Sent with every local download: no sniffing a type other than the
/// signed one, and no scripts, styles or requests even if one renders.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; sandbox";

/// Raster images, audio and video. SVG (scriptable), HTML, PDF (has its own
/// scripting and no viewer under a `sandbox` policy) and the rest download.
pub fn is_inline(content_type: &str) -> bool {
    matches!(
        content_type,
        "image/png"
            | "image/jpeg"
            | "image/gif"
            | "image/webp"
            | "image/avif"
            | "image/heic"
            | "image/heif"
    ) || content_type
        .split_once('/')
        .is_some_and(|(top, sub)| matches!(top, "audio" | "video") && !sub.is_empty())
}

/// The `Content-Disposition` a download of `content_type` is served with.
pub fn content_disposition(content_type: &str) -> &'static str {
    if is_inline(content_type) {
        "inline"
    } else {
        "attachment"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_passive_media_is_inline() {
        for inline in [
            "image/png",
            "image/jpeg",
            "image/webp",
            "audio/mpeg",
            "video/mp4",
        ] {
            assert_eq!(content_disposition(inline), "inline", "{inline}");
        }
        for download in [
            "text/html",
            "image/svg+xml",
            "application/xhtml+xml",
            "text/javascript",
            "application/pdf",
            "text/plain",
            "application/octet-stream",
            "image/x-icon",
            "audio",
            "video/",
        ] {
            assert_eq!(content_disposition(download), "attachment", "{download}");
        }
    }
}
