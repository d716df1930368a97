//! The layer order of docs/architecture.md, checked on the imports.

use std::collections::{BTreeMap, BTreeSet};

use crate::source::{Source, defining_module, imported_paths, sample, sources};

/// docs/architecture.md's layers, top to bottom: a module imports its own
/// layer's and those below, never one above.
const LAYERS: &[(&str, &[&str])] = &[
    ("process", &["startup", "settings"]),
    ("HTTP edge", &["body", "health", "openapi"]),
    ("features", &["upload", "auth", "attachments", "admin"]),
    ("records", &["store"]),
    (
        "foundation",
        &[
            "db",
            "error",
            "config",
            "limits",
            "metrics",
            "telemetry",
            "sweep",
        ],
    ),
];

#[test]
fn imports_follow_the_layers() {
    let upward = upward_imports(&sources("src"), LAYERS);
    assert!(upward.is_empty(), "imports up the layers: {upward:#?}");
}

/// A module of a lower layer importing one of a higher layer is found.
#[test]
fn the_layer_check_finds_an_upward_import() {
    let files = [
        sample("src/lib.rs", &[], "pub mod low;\npub mod high;"),
        sample("src/low.rs", &["low"], "use crate::high::Thing;"),
        sample("src/high.rs", &["high"], "use crate::low::Base;"),
    ];
    let layers: &[(&str, &[&str])] = &[("top", &["high"]), ("bottom", &["low"])];
    assert_eq!(
        upward_imports(&files, layers),
        ["src/low.rs (bottom) -> src/high.rs (top)"]
    );
}

/// Each import of a file in a module of a lower layer than the file it
/// names, as `a.rs (layer) -> b.rs (layer)`.
fn upward_imports(files: &[Source], layers: &[(&str, &[&str])]) -> Vec<String> {
    let layer_of = |file: &Source| {
        let top = file.module.first()?;
        layers
            .iter()
            .position(|(_, modules)| modules.contains(&top.as_str()))
    };
    let modules: BTreeMap<Vec<String>, usize> = files
        .iter()
        .enumerate()
        .map(|(at, file)| (file.module.clone(), at))
        .collect();
    let mut upward = BTreeSet::new();
    for file in files {
        let Some(from) = layer_of(file) else { continue };
        for path in imported_paths(file) {
            let Some(target) = defining_module(&modules, &path) else {
                continue;
            };
            if let Some(to) = layer_of(&files[target])
                && to < from
            {
                upward.insert(format!(
                    "{} ({}) -> {} ({})",
                    file.path, layers[from].0, files[target].path, layers[to].0
                ));
            }
        }
    }
    upward.into_iter().collect()
}
