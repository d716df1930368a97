//! The source tree's shape, checked on every run: files stay small, no file
//! imports itself back through others, SQLSTATE codes and MySQL error numbers
//! live in one file, and the database is chosen behind the backend seam
//! (`backends`).
//! What the layers are and why: docs/architecture.md.

mod backends;
mod layers;
mod source;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use source::{
    Source, code_lines, collect, defining_module, imported_paths, sample, sources,
    strongly_connected,
};

const MAX_LINES: usize = 500;

/// The one file that may name SQLSTATE codes or read MySQL's error numbers.
const SQLSTATE_FILE: &str = "src/db/failure.rs";

/// The source directories of the workspace's crates: uplink's and the
/// benchmark's (bench/). Imports are followed within each crate.
const CRATE_SOURCES: &[&str] = &["src", "bench/src"];

/// Where the line limit holds: the crates' sources and the tests.
const LIMITED_DIRS: &[&str] = &["src", "bench/src", "tests"];

#[test]
fn no_source_file_is_over_the_line_limit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in LIMITED_DIRS {
        collect(&root.join(dir), &mut files);
    }
    let long: Vec<String> = files
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).expect("readable source");
            let relative = path.strip_prefix(root).expect("under the root");
            (relative.display().to_string(), text.lines().count())
        })
        .filter(|(_, lines)| *lines > MAX_LINES)
        .map(|(path, lines)| format!("{path} ({lines} lines)"))
        .collect();
    assert!(long.is_empty(), "over {MAX_LINES} lines: {long:#?}");
}

#[test]
fn no_import_circles() {
    let circles: Vec<Vec<String>> = CRATE_SOURCES
        .iter()
        .flat_map(|dir| import_circles(&sources(dir)))
        .collect();
    assert!(circles.is_empty(), "import circles: {circles:#?}");
}

/// Each circle among `files` (one crate) as its imports, `a.rs -> b.rs`,
/// to show where to cut it.
fn import_circles(files: &[Source]) -> Vec<Vec<String>> {
    let modules: BTreeMap<Vec<String>, usize> = files
        .iter()
        .enumerate()
        .map(|(at, file)| (file.module.clone(), at))
        .collect();
    let edges: Vec<BTreeSet<usize>> = files
        .iter()
        .map(|file| {
            imported_paths(file)
                .into_iter()
                .filter_map(|path| defining_module(&modules, &path))
                .filter(|&target| files[target].module != file.module)
                .collect()
        })
        .collect();
    strongly_connected(&edges)
        .into_iter()
        .filter(|component| component.len() > 1)
        .map(|component| {
            let mut imports = Vec::new();
            for &from in &component {
                for to in edges[from].iter().filter(|to| component.contains(to)) {
                    imports.push(format!("{} -> {}", files[from].path, files[*to].path));
                }
            }
            imports
        })
        .collect()
}

/// A known circle (`a` and `b` import each other, one of them through a
/// `use` group) is found, and nothing else is: the detector can fail.
#[test]
fn the_circle_detector_finds_a_known_circle() {
    let files = [
        sample(
            "src/lib.rs",
            &[],
            "pub mod a;\npub mod b;\npub mod c;\npub mod d;",
        ),
        sample("src/a.rs", &["a"], "use crate::b::Thing;"),
        sample(
            "src/b.rs",
            &["b"],
            "use crate::{a::{self, Other}, c::Free};",
        ),
        sample("src/c.rs", &["c"], "pub struct Free;"),
        sample("src/d.rs", &["d"], "use super::a::Other;\nuse crate::c;"),
    ];

    let mut circles = import_circles(&files);

    assert_eq!(circles.len(), 1, "{circles:#?}");
    circles[0].sort();
    assert_eq!(circles[0], ["src/a.rs -> src/b.rs", "src/b.rs -> src/a.rs"]);
}

#[test]
fn sqlstate_codes_and_mysql_error_numbers_appear_in_one_file() {
    let offenders = sqlstate_lines(&sources("src"));
    assert!(
        offenders.is_empty(),
        "SQLSTATE codes or MySQL error numbers outside {SQLSTATE_FILE}: {offenders:#?}"
    );
}

/// Known codes in code are found; the same codes in comments, in unit
/// tests, in SQLSTATE_FILE, and other five-character literals are not.
#[test]
fn the_sqlstate_detector_finds_known_codes() {
    let files = [
        sample(
            "src/store/x.rs",
            &["store", "x"],
            "fn f(code: &str) -> bool {\n    code == \"23505\" // unique\n}\n\
             const DEADLOCK: &str = \"40P01\";\n\
             // \"23503\" in a comment\n\
             const WORD: &str = \"HELLO\";\nconst VERSION: &str = \"1.2.3\";\n\
             #[cfg(test)]\nmod tests { const C: &str = \"23502\"; }",
        ),
        sample(
            "src/upload/mysql/x.rs",
            &["upload", "mysql", "x"],
            "let duplicate = err.try_downcast_ref::<MySqlDatabaseError>().is_some_and(|e| e.number() == 1062);",
        ),
        sample(
            SQLSTATE_FILE,
            &["db", "failure"],
            "const UNIQUE: &str = \"23505\";",
        ),
    ];

    let found = sqlstate_lines(&files);

    assert_eq!(
        found,
        [
            "src/store/x.rs: code == \"23505\"",
            "src/store/x.rs: const DEADLOCK: &str = \"40P01\";",
            "src/upload/mysql/x.rs: let duplicate = err.try_downcast_ref::<MySqlDatabaseError>().is_some_and(|e| e.number() == 1062);",
        ]
    );
}

/// Each line outside SQLSTATE_FILE that names a SQLSTATE code or reads a
/// MySQL error (whose number is the only thing to read in it).
fn sqlstate_lines(files: &[Source]) -> Vec<String> {
    files
        .iter()
        .filter(|file| file.path != SQLSTATE_FILE)
        .flat_map(|file| {
            code_lines(&file.text)
                .filter(|line| names_sqlstate(line) || line.contains("MySqlDatabaseError"))
                .map(|line| format!("{}: {}", file.path, line.trim()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Whether a line has a string literal of five characters shaped like a
/// SQLSTATE: two class characters then three, with at least one digit in
/// the class (`"23505"`, `"40P01"`, `"08"`-class prefixes written in full).
fn names_sqlstate(line: &str) -> bool {
    line.split('"').skip(1).step_by(2).any(|literal| {
        literal.len() == 5
            && literal
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
            && literal[..2].bytes().any(|b| b.is_ascii_digit())
            && literal.bytes().filter(u8::is_ascii_digit).count() >= 3
    })
}
