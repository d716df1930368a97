//! The documentation keeps up with the code: every configuration key of
//! config/base.yaml is in docs/configuration.md, and relative links resolve.

use std::collections::BTreeSet;

use serde_norway::Value;

use crate::support::repo::repo_root;

/// Every key path of a YAML mapping: sections and leaves (`server`,
/// `server.port`, …). Lists and empty maps are leaves.
fn key_paths(value: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    if let Value::Mapping(map) = value {
        for (key, child) in map {
            let Some(key) = key.as_str() else { continue };
            let path = if prefix.is_empty() {
                key.to_owned()
            } else {
                format!("{prefix}.{key}")
            };
            out.insert(path.clone());
            key_paths(child, &path, out);
        }
    }
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo_root().join(relative))
        .unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}

#[test]
fn every_configuration_key_is_in_the_reference() {
    let base: Value = serde_norway::from_str(&read("config/base.yaml")).unwrap();
    let mut keys = BTreeSet::new();
    key_paths(&base, "", &mut keys);
    let reference = read("docs/configuration.md");
    assert!(keys.contains("server.port") && keys.len() > 50, "{keys:?}");

    let missing: Vec<_> = keys
        .iter()
        .filter(|key| key.contains('.'))
        .filter(|key| !reference.contains(&format!("`{key}`")))
        .collect();

    assert!(
        missing.is_empty(),
        "config/base.yaml keys missing from docs/configuration.md: {missing:?}"
    );
}

#[test]
fn the_reference_names_no_key_that_does_not_exist() {
    let base: Value = serde_norway::from_str(&read("config/base.yaml")).unwrap();
    let mut keys = BTreeSet::new();
    key_paths(&base, "", &mut keys);
    let sections: BTreeSet<&str> = keys
        .iter()
        .filter(|k| !k.contains('.'))
        .map(String::as_str)
        .collect();
    let reference = read("docs/configuration.md");

    // First-column entries of the reference tables: "| `a.b` |".
    let documented: Vec<&str> = reference
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once("` |").map(|(key, _)| key))
        .collect();
    assert!(documented.len() > 50);
    let unknown: Vec<_> = documented
        .iter()
        .filter(|key| !keys.contains(**key))
        // Keys nested under a documented optional section (`database.rls.role`).
        .filter(|key| {
            let section = key.split('.').next().unwrap_or_default();
            !(sections.contains(section) && key.starts_with("database.rls."))
        })
        .collect();

    assert!(
        unknown.is_empty(),
        "documented keys not in config/base.yaml: {unknown:?}"
    );
}

#[test]
fn relative_links_in_the_docs_resolve() {
    let mut files = vec![repo_root().join("README.md")];
    for entry in std::fs::read_dir(repo_root().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    let mut broken = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let dir = file.parent().unwrap();
        for (i, _) in text.match_indices("](") {
            let rest = &text[i + 2..];
            let Some(end) = rest.find(')') else { continue };
            let target = &rest[..end];
            if target.starts_with("http")
                || target.starts_with('#')
                || target.starts_with("mailto:")
            {
                continue;
            }
            let path = target.split('#').next().unwrap_or_default();
            if !path.is_empty() && !dir.join(path).exists() {
                broken.push(format!("{}: {target}", file.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links: {broken:?}");
}
