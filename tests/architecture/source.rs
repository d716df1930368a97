//! Reading the workspace's sources: files, their module paths and the
//! module paths each imports.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A source file given as text, for the detectors' positive controls.
pub fn sample(path: &str, module: &[&str], text: &str) -> Source {
    Source {
        path: path.to_owned(),
        module: module.iter().map(|part| (*part).to_owned()).collect(),
        text: text.to_owned(),
    }
}

pub struct Source {
    pub path: String,
    /// `src/upload/policy/mod.rs` is `["upload", "policy"]`; the crate root is `[]`.
    pub module: Vec<String>,
    pub text: String,
}

/// The library's files under `dir` (a crate's source directory).
pub fn sources(dir: &str) -> Vec<Source> {
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

/// Every `.rs` file under `dir`, at any depth.
pub fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
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
pub fn code_lines(text: &str) -> impl Iterator<Item = &str> {
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
pub fn imported_paths(file: &Source) -> Vec<Vec<String>> {
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
pub fn defining_module(modules: &BTreeMap<Vec<String>, usize>, path: &[String]) -> Option<usize> {
    (0..=path.len())
        .rev()
        .find_map(|len| modules.get(&path[..len]).copied())
}

/// Tarjan's algorithm: the strongly connected components of the graph.
pub fn strongly_connected(edges: &[BTreeSet<usize>]) -> Vec<Vec<usize>> {
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
