//! The Dockerfile as instructions per build stage, for the deployment tests.

use std::collections::{BTreeMap, BTreeSet};

use crate::support::compose::read;

pub struct Instruction {
    pub stage: usize,
    pub keyword: String,
    pub args: String,
}

pub struct Dockerfile {
    pub args: BTreeMap<String, String>,
    pub instructions: Vec<Instruction>,
    pub stage_names: BTreeSet<String>,
}

impl Dockerfile {
    pub fn load() -> Self {
        let source = read("Dockerfile");
        // Join continuation lines; drop comments and blank lines.
        let mut logical = Vec::new();
        let mut current = String::new();
        for line in source.lines() {
            let trimmed = line.trim();
            if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
                continue;
            }
            match trimmed.strip_suffix('\\') {
                Some(head) => {
                    current.push_str(head);
                    current.push(' ');
                }
                None => {
                    current.push_str(trimmed);
                    logical.push(std::mem::take(&mut current));
                }
            }
        }
        let mut args = BTreeMap::new();
        let mut instructions = Vec::new();
        let mut stage_names = BTreeSet::new();
        let mut stage = 0;
        for line in logical {
            let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
            let keyword = keyword.to_ascii_uppercase();
            let rest = rest.trim().to_owned();
            if keyword == "FROM" {
                stage += 1;
                let words: Vec<&str> = rest.split_whitespace().collect();
                if let [_, as_kw, name] = words.as_slice()
                    && as_kw.eq_ignore_ascii_case("as")
                {
                    stage_names.insert((*name).to_owned());
                }
            }
            if keyword == "ARG"
                && stage == 0
                && let Some((name, default)) = rest.split_once('=')
            {
                args.insert(name.to_owned(), default.trim_matches('"').to_owned());
            }
            instructions.push(Instruction {
                stage,
                keyword,
                args: rest,
            });
        }
        Self {
            args,
            instructions,
            stage_names,
        }
    }

    pub fn last_stage(&self) -> usize {
        self.instructions.iter().map(|i| i.stage).max().unwrap_or(0)
    }

    pub fn all(&self, keyword: &str) -> impl Iterator<Item = &Instruction> {
        self.instructions
            .iter()
            .filter(move |i| i.keyword == keyword)
    }

    pub fn runtime(&self, keyword: &str) -> Vec<&str> {
        let last = self.last_stage();
        self.all(keyword)
            .filter(|i| i.stage == last)
            .map(|i| i.args.as_str())
            .collect()
    }

    /// `${NAME}` / `$NAME` from the global ARG defaults.
    pub fn expand(&self, value: &str) -> String {
        let mut out = value.to_owned();
        for (name, default) in &self.args {
            out = out
                .replace(&format!("${{{name}}}"), default)
                .replace(&format!("${name}"), default);
        }
        out
    }

    /// The runtime stage's `ENV` as a map (both `K=V` and `K V` spellings).
    pub fn runtime_env(&self) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        for args in self.runtime("ENV") {
            if args.contains('=') {
                for pair in args.split_whitespace() {
                    if let Some((k, v)) = pair.split_once('=') {
                        env.insert(k.to_owned(), v.trim_matches('"').to_owned());
                    }
                }
            } else if let Some((k, v)) = args.split_once(' ') {
                env.insert(k.to_owned(), v.trim().to_owned());
            }
        }
        env
    }
}

/// An image reference is pinned when it names a tag other than `latest`
/// (or a digest).
pub fn assert_pinned(image: &str, whose: &str) {
    if image.contains("@sha256:") {
        return;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    let tag = last.split_once(':').map(|(_, t)| t);
    match tag {
        Some(tag) if !tag.is_empty() && tag != "latest" => {}
        _ => panic!("{whose}: image `{image}` must be pinned to a tag (not `latest`)"),
    }
}
