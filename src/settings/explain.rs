//! What the config crate and serde report, said in the settings' own terms:
//! `enum IdentityMode does not have variant constructor jwks` becomes
//! "`jwks` is not one of dev | jwt | api_key"; `expected a duration` gains
//! examples.

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::attachments::settings::{ReadPolicy, StorageKind};
use crate::auth::alg::KeyAlg;
use crate::auth::settings::IdentityMode;
use crate::config::environment::Environment;
use crate::config::error::ConfigError;
use crate::config::sections::LogFormat;
use crate::upload::settings::{ConflictStrategy, OnConflict};

/// The same error with a message a user can act on, naming the key when the
/// config crate knows it.
pub fn explain(err: config::ConfigError) -> ConfigError {
    match err {
        config::ConfigError::At { error, origin, key } => {
            let mut message = reword(&error.to_string());
            if let Some(origin) = origin {
                message.push_str(&format!(" (in {origin})"));
            }
            match key {
                Some(key) => ConfigError::invalid(key, message),
                None => ConfigError::Load(config::ConfigError::Message(message)),
            }
        }
        config::ConfigError::Message(message) => {
            ConfigError::Load(config::ConfigError::Message(reword(&message)))
        }
        other => ConfigError::Load(other),
    }
}

fn reword(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("enum ")
        && let Some((name, value)) = rest.split_once(" does not have variant constructor ")
    {
        return match variants(name) {
            Some(valid) => format!("`{value}` is not one of {}", valid.join(" | ")),
            None => format!("`{value}` is not a valid value"),
        };
    }
    if message.contains("expected a duration") {
        let given = message
            .split_once('"')
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(value, _)| format!("`{value}` is not a duration: "))
            .unwrap_or_default();
        return format!("{given}write a number and a unit, e.g. `30s`, `5m`, `1h` or `7d`");
    }
    message.to_owned()
}

/// The spellings the settings' enums accept, by the Rust name the config
/// crate reports.
fn variants(name: &str) -> Option<&'static [&'static str]> {
    [
        variants_of::<IdentityMode>(),
        variants_of::<LogFormat>(),
        variants_of::<Environment>(),
        variants_of::<StorageKind>(),
        variants_of::<ReadPolicy>(),
        variants_of::<ConflictStrategy>(),
        variants_of::<OnConflict>(),
        variants_of::<KeyAlg>(),
    ]
    .into_iter()
    .find(|(enum_name, _)| *enum_name == name)
    .map(|(_, variants)| variants)
}

/// An enum's name and variant names, as its derived `Deserialize` hands
/// them to the deserializer (so renames and `rename_all` are honoured).
fn variants_of<'de, T: Deserialize<'de>>() -> (&'static str, &'static [&'static str]) {
    match T::deserialize(Capture) {
        Err(Captured(Some(found))) => found,
        _ => ("", &[]),
    }
}

struct Capture;

#[derive(Debug)]
struct Captured(Option<(&'static str, &'static [&'static str])>);

impl std::fmt::Display for Captured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not an enum")
    }
}

impl std::error::Error for Captured {}

impl de::Error for Captured {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Self(None)
    }
}

impl<'de> Deserializer<'de> for Capture {
    type Error = Captured;

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Captured> {
        Err(Captured(Some((name, variants))))
    }

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Captured> {
        Err(Captured(None))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_variant_lists_the_valid_spellings() {
        assert_eq!(
            reword("enum IdentityMode does not have variant constructor jwks"),
            "`jwks` is not one of dev | jwt | api_key"
        );
        assert_eq!(
            reword("enum LogFormat does not have variant constructor text"),
            "`text` is not one of auto | json | pretty"
        );
    }

    #[test]
    fn a_duration_without_a_unit_gets_examples() {
        assert_eq!(
            reword("invalid value: string \"5\", expected a duration"),
            "`5` is not a duration: write a number and a unit, e.g. `30s`, `5m`, `1h` or `7d`"
        );
    }
}
