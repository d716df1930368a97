//! Attachment ids and the object keys the server derives from them.
//!
//! A key is `{prefix}/{owner}/{id}.{ext}`. Every part is reduced to a safe
//! alphabet, so nothing a client sends can add a path segment or leave the
//! prefix.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

const MAX_ID_LEN: usize = 128;
const MAX_OWNER_LEN: usize = 128;
const MAX_EXT_LEN: usize = 16;
/// Used when the filename has no usable extension.
const DEFAULT_EXT: &str = "bin";

/// An attachment id: 1–128 of `[A-Za-z0-9_-]` (UUIDs, as the SDK generates).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentId(String);

impl AttachmentId {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() || raw.len() > MAX_ID_LEN {
            return Err(format!("id must be 1 to {MAX_ID_LEN} characters"));
        }
        if !raw.bytes().all(is_id_byte) {
            return Err("id may contain only letters, digits, `-` and `_`".to_owned());
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// The key segment for a user id: the id itself when it is short and made of
/// `[A-Za-z0-9_@.-]` (not starting with `.`), otherwise `~` and a hash, so
/// that ids such as `../x` or `a/b` cannot form path segments. `~` never
/// appears in an id kept as is, so the two forms cannot collide.
pub fn owner_segment(owner: &str) -> String {
    let plain = !owner.is_empty()
        && owner.len() <= MAX_OWNER_LEN
        && !owner.starts_with('.')
        && owner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_@.-".contains(&b));
    if plain {
        owner.to_owned()
    } else {
        format!(
            "~{}",
            URL_SAFE_NO_PAD.encode(Sha256::digest(owner.as_bytes()))
        )
    }
}

/// The lower-cased alphanumeric extension of the last path component of
/// `filename`, or `bin`.
pub fn extension(filename: &str) -> String {
    let base = filename.rsplit(['/', '\\']).next().unwrap_or("");
    let ext = match base.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() || !ext.is_empty() => ext,
        _ => "",
    };
    let clean: String = ext
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .take(MAX_EXT_LEN)
        .collect();
    if clean.is_empty() {
        DEFAULT_EXT.to_owned()
    } else {
        clean
    }
}

pub fn object_key(prefix: &str, owner: &str, id: &AttachmentId, filename: &str) -> String {
    format!(
        "{prefix}/{}/{}.{}",
        owner_segment(owner),
        id.as_str(),
        extension(filename)
    )
}

/// Whether `key` has the shape `object_key` produces under `prefix`; the
/// local backend checks this before it touches the file system.
pub fn is_object_key(prefix: &str, key: &str) -> bool {
    let Some(rest) = key
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('/'))
    else {
        return false;
    };
    let mut parts = rest.split('/');
    let (Some(owner), Some(file), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let owner_ok = owner_segment(owner) == owner
        || (owner.len() == 44 && owner.starts_with('~') && owner[1..].bytes().all(is_id_byte));
    let file_ok = match file.split_once('.') {
        Some((id, ext)) => {
            AttachmentId::parse(id).is_ok()
                && !ext.is_empty()
                && ext.len() <= MAX_EXT_LEN
                && ext
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        }
        None => false,
    };
    owner_ok && file_ok
}

/// A filename as recorded: control characters removed, at most 255 characters.
pub fn clean_filename(filename: &str) -> String {
    filename
        .chars()
        .filter(|c| !c.is_control())
        .take(255)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> AttachmentId {
        AttachmentId::parse(s).expect("valid id")
    }

    #[test]
    fn ids_are_restricted() {
        for bad in ["", "../x", "a/b", "a.b", "a b", "a\0b", &"x".repeat(129)] {
            assert!(AttachmentId::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(AttachmentId::parse("3f2a0c1e-9b7d-4c1a-8e55-1f0c2d3e4f5a").is_ok());
    }

    #[test]
    fn hostile_filenames_only_change_the_extension() {
        let cases = [
            ("photo.JPG", "jpg"),
            ("../../etc/passwd", "bin"),
            ("a/b/c.png", "png"),
            ("..\\..\\x.exe", "exe"),
            ("x.p/ng", "bin"),
            (".bashrc", "bashrc"),
            ("name.ta\0r\n", "tar"),
            ("noext", "bin"),
            ("a.", "bin"),
            ("a.verylongextensionindeed1234", "verylongextensio"),
        ];
        for (filename, ext) in cases {
            let key = object_key("attachments", "user-1", &id("abc"), filename);
            assert_eq!(key, format!("attachments/user-1/abc.{ext}"), "{filename:?}");
            assert!(is_object_key("attachments", &key), "{key}");
        }
    }

    #[test]
    fn hostile_owners_become_one_hashed_segment() {
        for owner in ["../..", "a/b", "", ".hidden", "auth0|123", "x\ny", "~abc"] {
            let segment = owner_segment(owner);
            assert!(segment.starts_with('~'), "{owner:?} -> {segment}");
            assert!(!segment.contains('/') && !segment.contains(".."));
            let key = object_key("p", owner, &id("i"), "f.png");
            assert!(is_object_key("p", &key), "{key}");
        }
        assert_eq!(owner_segment("user@example.com"), "user@example.com");
        assert_ne!(owner_segment("a/b"), owner_segment("a/c"));
    }

    #[test]
    fn foreign_keys_are_not_object_keys() {
        for key in [
            "attachments/../x/i.png",
            "attachments/u/../i.png",
            "attachments/u/i.png/x",
            "other/u/i.png",
            "attachments/u/i",
            "attachments/u/i.PNG",
            "attachments//i.png",
            "attachments/.u/i.png",
        ] {
            assert!(!is_object_key("attachments", key), "{key} accepted");
        }
    }
}
