//! Files of the repository the tests read (configuration, examples, fixtures).

use std::path::Path;

/// The repository root.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}
