//! The source tree's shape, checked on every run: files stay small, no file
//! imports itself back through others, and SQLSTATE codes live in one file.
//! What the layers are and why: docs/architecture.md.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 500;

/// The one file that may name SQLSTATE codes.
const SQLSTATE_FILE: &str = "src/db/failure.rs";

/// The source directories of the workspace's crates: uplink's and the
/// benchmark's (bench/). Imports are followed within each crate.
const CRATE_SOURCES: &[&str] = &["src", "bench/src"];

#[test]
fn no_source_file_is_over_the_line_limit() {
    let long: Vec<String> = CRATE_SOURCES
        .iter()
        .flat_map(|dir| sources(dir))
        .filter(|file| file.text.lines().count() > MAX_LINES)
        .map(|file| format!("{} ({} lines)", file.path, file.text.lines().count()))
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
fn sqlstate_codes_appear_in_one_file() {
    let offenders = sqlstate_lines(&sources("src"));
    assert!(
        offenders.is_empty(),
        "SQLSTATE codes outside {SQLSTATE_FILE}: {offenders:#?}"
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
        ]
    );
}

/// Each line outside SQLSTATE_FILE that names a SQLSTATE code.
fn sqlstate_lines(files: &[Source]) -> Vec<String> {
    files
        .iter()
        .filter(|file| file.path != SQLSTATE_FILE)
        .flat_map(|file| {
            code_lines(&file.text)
                .filter(|line| names_sqlstate(line))
                .map(|line| format!("{}: {}", file.path, line.trim()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A source file given as text, for the detectors' positive controls.
fn sample(path: &str, module: &[&str], text: &str) -> Source {
    Source {
        path: path.to_owned(),
        module: module.iter().map(|part| (*part).to_owned()).collect(),
        text: text.to_owned(),
    }
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

struct Source {
    path: String,
    /// `src/upload/policy/mod.rs` is `["upload", "policy"]`; the crate root is `[]`.
    module: Vec<String>,
    text: String,
}

/// The library's files under `dir` (a crate's source directory).
fn sources(dir: &str) -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    collect(&root.join(dir), &mut files);
    files
        .into_iter()
        .filter(|path| !path.ends_with("main.rs"))
        .map(|path| {
            let relative = path.strip_prefix(root).expect("under the root");
            let mut module: Vec<String> = relative
                .with_extension("")
                .iter()
                .skip(Path::new(dir).iter().count())
                .map(|part| part.to_string_lossy().into_owned())
                .collect();
            if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
                module.pop();
            }
            Source {
                path: relative.to_string_lossy().into_owned(),
                module,
                text: std::fs::read_to_string(&path).expect("readable source"),
            }
        })
        .collect()
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// The file's lines up to its unit tests, without comments.
fn code_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .take_while(|line| line.trim() != "#[cfg(test)]")
        .map(|line| match line.find("//") {
            // A `//` inside a string literal (a URL) is not a comment.
            Some(at) if line[..at].matches('"').count() % 2 == 0 => &line[..at],
            _ => line,
        })
}

/// Every module path the file names: `crate::a::b`, `super::c`, `self::d`
/// and paths through its own child modules (`child::f`), with `use` groups
/// expanded, each made absolute.
fn imported_paths(file: &Source) -> Vec<Vec<String>> {
    let code: String = code_lines(&file.text).collect::<Vec<_>>().join("\n");
    let children: BTreeSet<String> = code
        .lines()
        .filter_map(|line| {
            let line = line
                .trim()
                .trim_start_matches("pub ")
                .trim_start_matches("pub(crate) ");
            line.strip_prefix("mod ")?
                .strip_suffix(';')
                .map(str::to_owned)
        })
        .collect();
    let tokens = tokenize(&code);
    let mut paths = Vec::new();
    for at in 0..tokens.len() {
        if at > 0 && tokens[at - 1] == "::" {
            continue;
        }
        let base = match tokens[at].as_str() {
            "crate" => Vec::new(),
            "super" | "self" => file.module.clone(),
            child if children.contains(child) => file.module.clone(),
            _ => continue,
        };
        if tokens.get(at + 1).map(String::as_str) != Some("::") {
            continue;
        }
        let mut prefix = base;
        let mut next = at;
        if tokens[at] == "super" {
            prefix.pop();
            next += 2;
            while tokens.get(next).map(String::as_str) == Some("super") {
                prefix.pop();
                next += 2;
            }
        } else if tokens[at] != "crate" && tokens[at] != "self" {
            // A child module: its name is the path's first segment.
        } else {
            next += 2;
        }
        tree(&tokens, next, prefix, &mut paths);
    }
    paths
}

/// Expands the path (or `use` tree) starting at `at` below `prefix`.
fn tree(tokens: &[String], mut at: usize, mut prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    loop {
        match tokens.get(at).map(String::as_str) {
            Some("{") => {
                let mut depth = 0;
                let mut start = at + 1;
                for (offset, token) in tokens[at..].iter().enumerate() {
                    let here = at + offset;
                    match token.as_str() {
                        "{" => depth += 1,
                        "}" | "," if depth == 1 => {
                            tree(tokens, start, prefix.clone(), out);
                            start = here + 1;
                            if token == "}" {
                                return;
                            }
                        }
                        "}" => depth -= 1,
                        _ => {}
                    }
                }
                return;
            }
            Some(word) if is_ident(word) => {
                if word != "self" {
                    prefix.push(word.to_owned());
                }
                if tokens.get(at + 1).map(String::as_str) == Some("::") {
                    at += 2;
                } else {
                    break;
                }
            }
            _ => break,
        }
    }
    out.push(prefix);
}

fn is_ident(word: &str) -> bool {
    word.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && word.bytes().next().is_some_and(|b| !b.is_ascii_digit())
}

fn tokenize(code: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut chars = code.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            let mut end = start + c.len_utf8();
            while let Some(&(at, next)) = chars.peek() {
                if next.is_alphanumeric() || next == '_' {
                    end = at + next.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            tokens.push(code[start..end].to_owned());
        } else if c == ':' && chars.peek().is_some_and(|&(_, next)| next == ':') {
            chars.next();
            tokens.push("::".to_owned());
        } else if c == '"' {
            // Skip string literals: their text is not code.
            let mut escaped = false;
            for (_, next) in chars.by_ref() {
                match next {
                    '\\' if !escaped => escaped = true,
                    '"' if !escaped => break,
                    _ => escaped = false,
                }
            }
        } else if !c.is_whitespace() {
            tokens.push(c.to_string());
        }
    }
    tokens
}

/// The file that defines the longest module prefix of `path`.
fn defining_module(modules: &BTreeMap<Vec<String>, usize>, path: &[String]) -> Option<usize> {
    (0..=path.len())
        .rev()
        .find_map(|len| modules.get(&path[..len]).copied())
}

/// Tarjan's algorithm: the strongly connected components of the graph.
fn strongly_connected(edges: &[BTreeSet<usize>]) -> Vec<Vec<usize>> {
    struct State<'e> {
        edges: &'e [BTreeSet<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        components: Vec<Vec<usize>>,
    }
    fn visit(state: &mut State<'_>, node: usize) {
        state.index[node] = Some(state.next);
        state.low[node] = state.next;
        state.next += 1;
        state.stack.push(node);
        state.on_stack[node] = true;
        for &next in &state.edges[node] {
            match state.index[next] {
                None => {
                    visit(state, next);
                    state.low[node] = state.low[node].min(state.low[next]);
                }
                Some(index) if state.on_stack[next] => {
                    state.low[node] = state.low[node].min(index);
                }
                Some(_) => {}
            }
        }
        if Some(state.low[node]) == state.index[node] {
            let mut component = Vec::new();
            while let Some(top) = state.stack.pop() {
                state.on_stack[top] = false;
                component.push(top);
                if top == node {
                    break;
                }
            }
            state.components.push(component);
        }
    }
    let count = edges.len();
    let mut state = State {
        edges,
        index: vec![None; count],
        low: vec![0; count],
        on_stack: vec![false; count],
        stack: Vec::new(),
        next: 0,
        components: Vec::new(),
    };
    for node in 0..count {
        if state.index[node].is_none() {
            visit(&mut state, node);
        }
    }
    state.components
}
