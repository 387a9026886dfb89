//! The course guide's rot check: what `docs/src` (an mdBook) points at must exist.
//!
//! A guide that names a file, a test or a code snippet the tree no longer has misleads the
//! student who trusts it, so [`check`] finds, in every Markdown file of the book:
//!
//! - relative links (`[text](../../raft/src/raft.rs)`) whose target does not exist (web links
//!   and in-page anchors are not checked; an empty link is an mdBook draft chapter);
//! - `{{#include path}}` and `{{#rustdoc_include path}}` directives (with an optional
//!   `:anchor` or `:lines` suffix) whose file does not exist;
//! - tests cited in backticks (`` `leader_election_2aa` ``: a name ending in a stage suffix)
//!   that no suite defines;
//! - `rust` code blocks written inline: a block of Rust in the book must be included from a
//!   real file (which the workspace compiles and tests), so it cannot stop compiling unseen.
//!
//! `labs doc` runs the check and then `mdbook build docs`; a unit test runs it on this tree.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::stages::Stage;

/// Where the book's sources are, relative to the workspace root.
pub const BOOK_SRC: &str = "docs/src";

/// Where the suites are, relative to the workspace root.
const SUITES: &str = "labs/tests/suite";

/// One thing in the book that points nowhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The Markdown file, relative to the workspace root.
    pub file: PathBuf,
    /// The 1-based line.
    pub line: usize,
    /// What is wrong.
    pub what: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.what)
    }
}

/// Checks the book of the workspace at `root`; returns every problem found (none: the book
/// is sound).
pub fn check(root: &Path) -> io::Result<Vec<Problem>> {
    let tests = suite_tests(&root.join(SUITES))?;
    let mut pages = Vec::new();
    markdown_files(&root.join(BOOK_SRC), &mut pages)?;
    pages.sort();
    let mut problems = Vec::new();
    for page in pages {
        let text = fs::read_to_string(&page)?;
        let rel = page.strip_prefix(root).unwrap_or(&page).to_owned();
        check_page(&page, &rel, &text, &tests, &mut problems);
    }
    Ok(problems)
}

/// The names of the test functions the suites define (`fn name(`).
fn suite_tests(dir: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    if !dir.is_dir() {
        return Ok(names);
    }
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "rs") {
            for line in fs::read_to_string(&path)?.lines() {
                let line = line.trim_start();
                let rest = line
                    .strip_prefix("fn ")
                    .or_else(|| line.strip_prefix("pub fn "))
                    .or_else(|| line.strip_prefix("async fn "));
                if let Some(rest) = rest {
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    names.push(name);
                }
            }
        }
    }
    names.sort();
    Ok(names)
}

fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            markdown_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
    Ok(())
}

/// Whether `word` names a graded test: snake case ending in a stage suffix (`basic_2b`).
fn is_test_name(word: &str) -> bool {
    word.chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && word.contains('_')
        && Stage::of_test(word).is_some()
}

fn check_page(page: &Path, rel: &Path, text: &str, tests: &[String], problems: &mut Vec<Problem>) {
    let dir = page.parent().unwrap_or(Path::new("."));
    let mut problem = |line: usize, what: String| {
        problems.push(Problem {
            file: rel.to_owned(),
            line,
            what,
        })
    };
    // The fence of the code block we are in, and whether it is an inline rust block.
    let mut fence: Option<(String, bool, usize)> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let trimmed = line.trim_start();
        if let Some((marker, rust, _)) = &fence {
            if trimmed.starts_with(marker.as_str()) && trimmed.trim_end() == marker.as_str() {
                fence = None;
                continue;
            }
            for include in includes(line) {
                check_include(dir, &include, n, &mut problem);
            }
            let is_include = trimmed.is_empty() || !includes(line).is_empty();
            if *rust && !is_include {
                problem(
                    n,
                    "a rust code block written inline: include it from a real file \
                     ({{#include path:anchor}}) so that it is compiled"
                        .to_owned(),
                );
                // One report per block.
                fence = fence.take().map(|(m, _, l)| (m, false, l));
            }
            continue;
        }
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            let marker: String = trimmed
                .chars()
                .take_while(|c| *c == '`' || *c == '~')
                .collect();
            let info = trimmed[marker.len()..].trim();
            let lang = info.split([',', ' ']).next().unwrap_or("");
            fence = Some((marker, lang == "rust", n));
            continue;
        }
        for include in includes(line) {
            check_include(dir, &include, n, &mut problem);
        }
        for target in links(line) {
            let path = target.split('#').next().unwrap_or("");
            if path.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            if !dir.join(path).exists() {
                problem(n, format!("link to {target}: no such file"));
            }
        }
        for span in code_spans(line) {
            // `leader_election_2aa`, `raft_2aa::leader_election_2aa`, `basic_2b()`; not a
            // file such as `raft_2aa.rs`.
            let name = span.trim().trim_end_matches("()");
            let name = name.rsplit("::").next().unwrap_or(name);
            if is_test_name(name) && tests.binary_search(&name.to_owned()).is_err() {
                problem(n, format!("test `{name}`: no suite defines it"));
            }
        }
    }
    if let Some((_, _, line)) = fence {
        problem(line, "a code block that never ends".to_owned());
    }
}

fn check_include(dir: &Path, include: &str, line: usize, problem: &mut impl FnMut(usize, String)) {
    // `path:anchor` or `path:10:20`; a path has no colon of its own here.
    let path = include.split(':').next().unwrap_or("").trim();
    if path.is_empty() || !dir.join(path).is_file() {
        problem(line, format!("include of {include}: no such file"));
    }
}

/// The arguments of the `{{#include ...}}` / `{{#rustdoc_include ...}}` directives on `line`.
fn includes(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("{{#") {
        let after = &rest[at + 3..];
        let Some(end) = after.find("}}") else {
            break;
        };
        let body = after[..end].trim();
        for directive in ["include ", "rustdoc_include "] {
            if let Some(arg) = body.strip_prefix(directive) {
                out.push(arg.trim().to_owned());
            }
        }
        rest = &after[end + 2..];
    }
    out
}

/// The targets of the Markdown links `[text](target)` on `line` (outside inline code).
fn links(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let Some(end) = after.find(')') else {
            break;
        };
        let target = after[..end].trim();
        // `[text](target "title")`
        let target = target.split_whitespace().next().unwrap_or("");
        out.push(target);
        rest = &after[end + 1..];
    }
    out
}

/// The inline code spans on `line`.
fn code_spans(line: &str) -> impl Iterator<Item = &str> {
    line.split('`').skip(1).step_by(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn problems_of(page: &str) -> Vec<String> {
        let root = tempfile::tempdir().unwrap();
        write(
            root.path(),
            "raft/src/raft.rs",
            "// ANCHOR: tick\nfn tick() {}\n",
        );
        write(
            root.path(),
            "labs/tests/suite/raft_2aa.rs",
            "#[test]\nfn leader_election_2aa() {}\n",
        );
        write(
            root.path(),
            "docs/src/SUMMARY.md",
            "- [Page](page.md)\n- [Draft]()\n",
        );
        write(root.path(), "docs/src/page.md", page);
        check(root.path())
            .unwrap()
            .iter()
            .map(|p| p.to_string())
            .collect()
    }

    #[test]
    fn a_sound_page_has_no_problems() {
        let page = "See [the raft](../../raft/src/raft.rs#L1) and [web](https://x.org/a.md).\n\
                    `leader_election_2aa` and `raft_2aa::leader_election_2aa()` show it; \
                    [`raft_2aa.rs`](../../labs/tests/suite/raft_2aa.rs), `raft::Raft` and \
                    `snake_case` are not tests.\n\
                    ```rust\n{{#include ../../raft/src/raft.rs:tick}}\n```\n\
                    ```text\nfn not_rust() {}\n```\n";
        assert_eq!(problems_of(page), Vec::<String>::new());
    }

    #[test]
    fn finds_broken_links_includes_and_tests() {
        let page = "A [gone file](../../raft/src/gone.rs).\n\
                    {{#include ../../raft/src/nope.rs:tick}}\n\
                    `leader_gone_2aa` is cited.\n";
        let found = problems_of(page);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].starts_with("docs/src/page.md:1: link to ../../raft/src/gone.rs"));
        assert!(found[1].starts_with("docs/src/page.md:2: include of ../../raft/src/nope.rs"));
        assert!(found[2].starts_with("docs/src/page.md:3: test `leader_gone_2aa`"));
    }

    #[test]
    fn inline_rust_blocks_and_unclosed_fences_are_problems() {
        let found = problems_of("```rust\nfn f() {}\nfn g() {}\n```\n```text\nx\n");
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains(":2: a rust code block written inline"));
        assert!(found[1].contains(":5: a code block that never ends"));
    }

    /// The book of this tree is sound.
    #[test]
    fn this_book_points_at_what_exists() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("labs sits in the workspace");
        let found = check(root).unwrap();
        assert!(
            found.is_empty(),
            "{}",
            found
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
