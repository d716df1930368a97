//! Configuration of the uplinks that `--spawn` starts: the todo demo's
//! tables plain or with policies, and a fresh signing key per algorithm.

use std::path::{Path, PathBuf};

use anyhow::Context;
use uplink::auth::keys::{KeyAlg, PrivateKey};

/// The spawned uplink's configuration file for the write cases:
/// `server_config` with the todos' policies removed (the plain cases, which
/// the policy cases are compared with) or set to the policy cases' own: an
/// owner (`created_by`), a timestamp conflict column (`completed_at`, which
/// every PATCH sends) and a state machine on `status` (`open` → `done`; the
/// table needs a text `status` column). Written as JSON, which is YAML too.
pub fn todo_config(server_config: &Path, policies: bool) -> anyhow::Result<PathBuf> {
    let mut config: serde_json::Value = if server_config.exists() {
        ::config::Config::builder()
            .add_source(::config::File::from(server_config))
            .build()
            .and_then(|c| c.try_deserialize())
            .with_context(|| format!("Failed to read {}", server_config.display()))?
    } else {
        serde_json::json!({})
    };
    let todos = &mut config["write"]["tables"]["todos"];
    let columns = todos.get("columns").cloned();
    *todos = serde_json::json!({});
    if let Some(columns) = columns {
        todos["columns"] = columns;
    }
    if policies {
        todos["owner_column"] = "created_by".into();
        todos["conflict"] = serde_json::json!({"strategy": "timestamp", "column": "completed_at"});
        todos["transitions"] =
            serde_json::json!({"column": "status", "allowed": {"open": ["done"]}});
        if let Some(columns) = todos["columns"].as_array_mut() {
            columns.push("status".into());
        }
    }
    let path = std::env::temp_dir().join(format!(
        "uplink-bench-{}-{}.yaml",
        uuid::Uuid::new_v4().simple(),
        if policies { "policies" } else { "plain" }
    ));
    std::fs::write(&path, serde_json::to_string_pretty(&config)?)
        .with_context(|| format!("Failed to write {}", path.display()))?;
    Ok(path)
}

/// `UPLINK__AUTH__KEYS` with one fresh key of `alg`.
pub fn key_env(alg: KeyAlg) -> anyhow::Result<String> {
    let key = PrivateKey::generate(alg)?;
    let entry = match key.to_pem()? {
        Some(pem) => serde_json::json!([{ "alg": alg.as_str(), "private_key_pem": pem }]),
        None => {
            let mut secret = [0u8; 32];
            getrandom::getrandom(&mut secret).context("Failed to draw a secret")?;
            serde_json::json!([{ "alg": alg.as_str(), "secret": hex::encode(secret) }])
        }
    };
    Ok(entry.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn todos_of(path: &Path) -> serde_json::Value {
        let text = std::fs::read_to_string(path).expect("the config is written");
        let _ = std::fs::remove_file(path);
        let config: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        config["write"]["tables"]["todos"].clone()
    }

    #[test]
    fn the_write_cases_run_with_the_todos_plain_or_with_an_owner_a_timestamp_and_states() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/todo/uplink.yaml");
        let plain = todos_of(&todo_config(&example, false).expect("plain config"));
        assert!(plain.get("owner_column").is_none(), "{plain}");
        assert!(plain["columns"].as_array().is_some_and(|c| !c.is_empty()));
        let secure = todos_of(&todo_config(&example, true).expect("policy config"));
        assert_eq!(secure["owner_column"], "created_by");
        assert_eq!(secure["conflict"]["strategy"], "timestamp");
        assert_eq!(secure["transitions"]["column"], "status");
        let mut columns = plain["columns"].as_array().cloned().unwrap_or_default();
        columns.push("status".into());
        assert_eq!(secure["columns"], serde_json::Value::Array(columns));
    }
}
