//! The course guide's rot check: what `docs/src` (an mdBook) points at must exist.
//!
//! A guide that names a file, an item, a test or a code snippet the tree no longer has
//! misleads the student who trusts it, so [`check`] finds, in every Markdown file of the book:
//!
//! - relative links (`[text](../../raft/src/raft.rs)`) whose target does not exist (web links
//!   and in-page anchors are not checked; an empty link is an mdBook draft chapter);
//! - `{{#include path}}` and `{{#rustdoc_include path}}` directives whose file, `:anchor` or
//!   line range does not exist, or that take lines of a `lab:` region: those lines leave the
//!   handouts, so the book would show students the reference solution, or nothing;
//! - tests cited in backticks (`` `leader_election_2aa` ``: a name ending in a stage suffix,
//!   or `` `store_3b::name` `` qualified by its suite file) that no suite defines;
//! - items named in backticks (`` `PeerStorage::append` ``, `` `conf_ver` ``,
//!   `` `MsgTransferLeader` ``) that a student's tree does not define: every segment of the
//!   path must be defined outside the `lab:` regions ([`names`]);
//! - files named in backticks (`` `raft_log.rs` ``, `` `raft/src/raft.rs` ``) that do not
//!   exist;
//! - `rust` code blocks written inline: a block of Rust in the book must be included from a
//!   real file (which the workspace compiles and tests), so it cannot stop compiling unseen;
//! - translations (`docs/src/zh/faq.md` of `docs/src/faq.md`) out of step with their
//!   original: another number of sections, or a section whose code spans or link targets
//!   differ from the original's;
//! - a stage's chapter (`docs/src/stage-<chapter>.md`, [`Stage::chapter`]) that is missing or
//!   does not link every file holding a `lab:` region of the stage, so a region that moves to
//!   a new file cannot leave students without a pointer to it;
//! - an FAQ answer (a `## ` section of `docs/src/faq.md`) without a link to the code that
//!   makes the choice or without a cited test that shows it.
//!
//! `labs doc` runs the check and then `mdbook build docs`; a unit test runs it on this tree.

pub mod names;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::handout::markers;
use crate::handout::tree::Plan;
use crate::stages::{Selection, Stage};
use names::Names;

/// Where the book's sources are, relative to the workspace root.
pub const BOOK_SRC: &str = "docs/src";

/// Where the suites are, relative to the workspace root.
const SUITES: &str = "labs/tests/suite";

/// The extensions of the file names the book may write in backticks.
const FILE_EXTENSIONS: &[&str] = &[".rs", ".toml", ".md", ".proto", ".json", ".sh", ".yml"];

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
    let names = Names::of_tree(root)?;
    let mut pages = Vec::new();
    markdown_files(&root.join(BOOK_SRC), &mut pages)?;
    pages.sort();
    let mut problems = Vec::new();
    for page in pages {
        let text = fs::read_to_string(&page)?;
        let rel = page.strip_prefix(root).unwrap_or(&page).to_owned();
        let mut page = Page {
            root,
            dir: page.parent().unwrap_or(Path::new(".")),
            rel: &rel,
            names: &names,
            problems: &mut problems,
        };
        page.check(&text);
    }
    check_translations(root, &mut problems)?;
    check_chapters(root, &mut problems)?;
    check_faq(root, &names, &mut problems)?;
    Ok(problems)
}

/// Every stage with `lab:` regions has a chapter, and the chapter links each file that holds
/// one of them.
fn check_chapters(root: &Path, problems: &mut Vec<Problem>) -> io::Result<()> {
    let plan = match Plan::new(root, &Selection::all()) {
        Ok(plan) => plan,
        Err(e) => {
            problems.push(Problem {
                file: PathBuf::from(BOOK_SRC),
                line: 1,
                what: format!("the tree's lab: regions cannot be read, so the chapters cannot be checked: {e}"),
            });
            return Ok(());
        }
    };
    // Stage -> file -> the first line of a region of the stage in it.
    let mut regions: BTreeMap<Stage, BTreeMap<String, usize>> = BTreeMap::new();
    for found in &plan.regions {
        if let Some(stage) = found.region.stage() {
            regions
                .entry(stage)
                .or_default()
                .entry(normalize(&found.file))
                .or_insert(found.region.begin);
        }
    }
    for (stage, files) in regions {
        let rel = Path::new(BOOK_SRC).join(format!("stage-{}.md", stage.chapter()));
        let Ok(text) = fs::read_to_string(root.join(&rel)) else {
            let files: Vec<&str> = files.keys().map(String::as_str).collect();
            problems.push(Problem {
                file: rel,
                line: 1,
                what: format!(
                    "no chapter for stage {stage}, whose lab: regions are in {}",
                    files.join(", ")
                ),
            });
            continue;
        };
        let dir = rel.parent().unwrap_or(Path::new(""));
        let linked: BTreeSet<String> = text
            .lines()
            .flat_map(links)
            .filter(|t| !t.contains("://"))
            .map(|t| normalize(&dir.join(t.split('#').next().unwrap_or(""))))
            .collect();
        for (file, line) in files.iter().filter(|(f, _)| !linked.contains(*f)) {
            problems.push(Problem {
                file: rel.clone(),
                line: 1,
                what: format!(
                    "does not link {file}, which holds a lab: region of stage {stage} (line \
                     {line}): link every file the stage's students write in"
                ),
            });
        }
    }
    Ok(())
}

/// Every answer of the FAQ links the code that makes its choice and cites a test that shows
/// it. (Translations follow through [`check_translations`]: their sections hold the same.)
fn check_faq(root: &Path, names: &Names, problems: &mut Vec<Problem>) -> io::Result<()> {
    let rel = Path::new(BOOK_SRC).join("faq.md");
    let Ok(text) = fs::read_to_string(root.join(&rel)) else {
        return Ok(());
    };
    let dir = rel.parent().unwrap_or(Path::new(""));
    // (line, question, links code, cites a test) of each section.
    let mut answers: Vec<(usize, &str, bool, bool)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if let Some(question) = line.strip_prefix("## ") {
            answers.push((i + 1, question.trim(), false, false));
            continue;
        }
        let Some((_, _, code, test)) = answers.last_mut() else {
            continue;
        };
        for target in links(line) {
            let path = target.split('#').next().unwrap_or("");
            let path = normalize(&dir.join(path));
            if !target.contains("://") && !path.ends_with(".md") && !path.starts_with(SUITES) {
                *code = true;
            }
        }
        for span in code_spans(line) {
            // `leader_election_2aa`, or `store_3b::name` qualified by its suite file.
            let path = span.trim().trim_end_matches("()");
            let segments: Vec<&str> = path.split("::").collect();
            let qualified = segments.len() > 1 && names.suite(segments[0]).is_some();
            if qualified || segments.last().is_some_and(|s| is_test_name(s)) {
                *test = true;
            }
        }
    }
    for (line, question, code, test) in answers {
        let missing = match (code, test) {
            (true, true) => continue,
            (false, true) => "a link to the code that makes the choice",
            (true, false) => "a cited test that shows it",
            (false, false) => "a link to the code that makes the choice and a cited test",
        };
        problems.push(Problem {
            file: rel.clone(),
            line,
            what: format!("the answer to \"{question}\" lacks {missing}"),
        });
    }
    Ok(())
}

/// Where a page's translations live: `docs/src/<lang>/<page>` mirrors `docs/src/<page>`.
const TRANSLATIONS: &[&str] = &["zh"];

/// A translated page must stay in step with its original: the same number of sections, and
/// in each section the same code spans and the same link targets (the prose is free).
fn check_translations(root: &Path, problems: &mut Vec<Problem>) -> io::Result<()> {
    let src = root.join(BOOK_SRC);
    for lang in TRANSLATIONS {
        let mut pages = Vec::new();
        markdown_files(&src.join(lang), &mut pages)?;
        pages.sort();
        for page in pages {
            let rel = page.strip_prefix(root).unwrap_or(&page).to_owned();
            let Ok(inner) = page.strip_prefix(src.join(lang)) else {
                continue;
            };
            let original = src.join(inner);
            let Ok(original_text) = fs::read_to_string(&original) else {
                problems.push(Problem {
                    file: rel,
                    line: 1,
                    what: format!("a translation of {}, which does not exist", inner.display()),
                });
                continue;
            };
            let ours = sections(&fs::read_to_string(&page)?, page.parent());
            let theirs = sections(&original_text, original.parent());
            if ours.len() != theirs.len() {
                problems.push(Problem {
                    file: rel,
                    line: 1,
                    what: format!(
                        "{} sections, but {} has {}: translate every section",
                        ours.len(),
                        original.strip_prefix(root).unwrap_or(&original).display(),
                        theirs.len()
                    ),
                });
                continue;
            }
            for (mine, orig) in ours.iter().zip(&theirs) {
                if mine.refs != orig.refs {
                    let missing: Vec<_> = orig.refs.difference(&mine.refs).cloned().collect();
                    let extra: Vec<_> = mine.refs.difference(&orig.refs).cloned().collect();
                    problems.push(Problem {
                        file: rel.clone(),
                        line: mine.line,
                        what: format!(
                            "out of step with the original's section at line {}: \
                             missing {missing:?}, not in the original {extra:?}",
                            orig.line
                        ),
                    });
                }
            }
        }
    }
    Ok(())
}

/// One `## ` section of a page: where it starts, and the code spans and link targets (as
/// paths from the workspace, so pages at different depths compare) it holds.
struct Section {
    line: usize,
    refs: BTreeSet<String>,
}

fn sections(text: &str, dir: Option<&Path>) -> Vec<Section> {
    let dir = dir.unwrap_or(Path::new("."));
    let mut out: Vec<Section> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.starts_with("## ") {
            out.push(Section {
                line: i + 1,
                refs: Default::default(),
            });
        }
        let Some(section) = out.last_mut() else {
            continue;
        };
        for span in code_spans(line) {
            section.refs.insert(format!("`{span}`"));
        }
        for target in links(line) {
            if target.contains("://") || target.is_empty() {
                continue;
            }
            section.refs.insert(normalize(&dir.join(target)));
        }
    }
    out
}

/// `path` with its `..` and `.` components resolved, as text.
fn normalize(path: &Path) -> String {
    let mut parts: Vec<std::path::Component<'_>> = Vec::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir if !parts.is_empty() => {
                parts.pop();
            }
            std::path::Component::CurDir => {}
            other => parts.push(other),
        }
    }
    parts.iter().collect::<PathBuf>().display().to_string()
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

/// Whether `span` is a Rust path: identifiers joined by `::`.
fn is_path(span: &str) -> bool {
    !span.is_empty()
        && span.split("::").all(|seg| {
            seg.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// One page being checked.
struct Page<'a> {
    root: &'a Path,
    /// The page's directory, which its relative links start from.
    dir: &'a Path,
    rel: &'a Path,
    names: &'a Names,
    problems: &'a mut Vec<Problem>,
}

impl Page<'_> {
    fn problem(&mut self, line: usize, what: String) {
        self.problems.push(Problem {
            file: self.rel.to_owned(),
            line,
            what,
        });
    }

    fn check(&mut self, text: &str) {
        // The fence of the code block we are in, whether it is an inline rust block, and
        // the line it opened on.
        let mut fence: Option<(String, bool, usize)> = None;
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let trimmed = line.trim_start();
            if let Some((marker, rust, _)) = &fence {
                if trimmed.starts_with(marker.as_str()) && trimmed.trim_end() == marker.as_str() {
                    fence = None;
                    continue;
                }
                let found = includes(line);
                let inline_rust = *rust && !trimmed.is_empty() && found.is_empty();
                for include in found {
                    self.check_include(&include, n);
                }
                if inline_rust {
                    self.problem(
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
                self.check_include(&include, n);
            }
            for target in links(line) {
                let path = target.split('#').next().unwrap_or("");
                if path.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                if !self.dir.join(path).exists() {
                    self.problem(n, format!("link to {target}: no such file"));
                }
            }
            for span in code_spans(line) {
                if let Some(what) = self.span_problem(span.trim()) {
                    self.problem(n, what);
                }
            }
        }
        if let Some((_, _, line)) = fence {
            self.problem(line, "a code block that never ends".to_owned());
        }
    }

    /// What is wrong with a code span of the prose: a test, item or file it names that does
    /// not exist.
    fn span_problem(&self, span: &str) -> Option<String> {
        if !span.contains(' ') && FILE_EXTENSIONS.iter().any(|e| span.ends_with(e)) {
            let found = if span.contains('/') {
                self.root.join(span).exists() || self.dir.join(span).exists()
            } else {
                self.names.has_file_named(span)
            };
            return (!found).then(|| format!("file `{span}`: not in the tree"));
        }
        // `basic_2b()`, `raft_2aa::leader_election_2aa`, `PeerStorage::append`.
        let path = span.trim_end_matches("()");
        // A one-letter span is a variable of the prose (`entry i + 1`), not an item.
        if !is_path(path) || path.len() == 1 {
            return None;
        }
        let segments: Vec<&str> = path.split("::").collect();
        let last = segments[segments.len() - 1];
        if let (true, Some(fns)) = (segments.len() > 1, self.names.suite(segments[0])) {
            return (!fns.contains(last))
                .then(|| format!("test `{path}`: {}.rs does not define it", segments[0]));
        }
        if is_test_name(last) {
            return (!self.names.is_suite_fn(last))
                .then(|| format!("test `{last}`: no suite defines it"));
        }
        let unknown: Vec<&str> = segments
            .iter()
            .copied()
            .filter(|s| !self.names.knows(s))
            .collect();
        (!unknown.is_empty()).then(|| {
            format!(
                "`{path}`: nothing in a student's tree (outside the lab: regions) defines `{}`",
                unknown.join("`, `")
            )
        })
    }

    /// Checks `{{#include path[:anchor | :from:to]}}`: the file, the anchor or lines, and
    /// that none of them is inside a `lab:` region.
    fn check_include(&mut self, include: &str, line: usize) {
        let mut parts = include.splitn(2, ':');
        let path = parts.next().unwrap_or("").trim();
        let selector = parts.next().map(str::trim).unwrap_or("");
        let file = self.dir.join(path);
        let Ok(source) = fs::read_to_string(&file) else {
            self.problem(line, format!("include of {include}: no such file"));
            return;
        };
        let count = source.lines().count();
        let lines = match included_lines(&source, selector) {
            Ok(lines) => lines,
            Err(what) => {
                self.problem(line, format!("include of {include}: {what}"));
                return;
            }
        };
        let (from, to) = (*lines.start(), (*lines.end()).min(count));
        let regions = markers::parse(&file, &source).unwrap_or_default();
        if let Some(r) = regions.iter().find(|r| r.begin <= to && from <= r.end) {
            self.problem(
                line,
                format!(
                    "include of {include}: takes lines of the lab: region at line {} \
                     (they leave the handouts; include code outside the regions)",
                    r.begin
                ),
            );
        }
    }
}

/// The 1-based lines of `source` that an include selects: all, `anchor`, `from:to`, `from:`,
/// `:to` or `line`.
fn included_lines(source: &str, selector: &str) -> Result<std::ops::RangeInclusive<usize>, String> {
    let count = source.lines().count();
    if selector.is_empty() {
        return Ok(1..=count);
    }
    let number = |s: &str| s.trim().parse::<usize>().ok();
    let is_range = selector
        .chars()
        .all(|c| c.is_ascii_digit() || c == ':' || c == ' ');
    if is_range {
        let (from, to) = match selector.split_once(':') {
            Some((a, b)) => (number(a).unwrap_or(1), number(b).unwrap_or(count)),
            None => {
                let one = number(selector).unwrap_or(1);
                (one, one)
            }
        };
        if from == 0 || from > to || from > count {
            return Err(format!(
                "lines {selector} are not in the file ({count} lines)"
            ));
        }
        return Ok(from..=to);
    }
    let anchor = selector;
    let begins = |l: &str, tag: &str| {
        l.split_once(tag)
            .is_some_and(|(_, rest)| rest.split_whitespace().next() == Some(anchor))
    };
    let start = source.lines().position(|l| begins(l, "ANCHOR:"));
    let end = source.lines().position(|l| begins(l, "ANCHOR_END:"));
    match (start, end) {
        (Some(s), Some(e)) if s < e => Ok(s + 1..=e + 1),
        (Some(_), Some(_)) => Err(format!("anchor {anchor} ends before it begins")),
        _ => Err(format!(
            "no ANCHOR: {anchor} … ANCHOR_END: {anchor} in the file"
        )),
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
    use crate::test_files::write;

    fn problems_of(page: &str) -> Vec<String> {
        let root = tempfile::tempdir().unwrap();
        write(root.path(), "Cargo.lock", "[[package]]\nname = \"raft\"\n");
        write(
            root.path(),
            "raft/src/raft.rs",
            "// ANCHOR: tick\npub struct Raft;\nfn tick() {}\n// ANCHOR_END: tick\n\
             fn step() {\n    // lab:begin 2aa\n    // lab:stub todo!()\n    fn reference_helper() {}\n    \
             // lab:end 2aa\n}\n// ANCHOR: step\n// ANCHOR_END: step\n",
        );
        write(
            root.path(),
            "labs/tests/suite/raft_2aa.rs",
            "#[test]\nfn leader_election_2aa() {}\n",
        );
        write(
            root.path(),
            "labs/tests/suite/store_3b.rs",
            "#[test]\nfn a_tombstone_keeps_it_dead() {}\n",
        );
        write(
            root.path(),
            "docs/src/SUMMARY.md",
            "- [Page](page.md)\n- [Draft]()\n",
        );
        write(
            root.path(),
            "docs/src/stage-2a.md",
            "# 2a\nYou write [`raft.rs`](../../raft/src/raft.rs#L5).\n",
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
                    `leader_election_2aa` and `raft_2aa::leader_election_2aa()` show it, and \
                    `store_3b::a_tombstone_keeps_it_dead`; [`raft_2aa.rs`](../../labs/tests/suite/raft_2aa.rs), \
                    `raft::Raft`, `tick()`, `Some`, `RUST_LOG`, `raft/src/raft.rs`, `raft.rs`, \
                    `cargo test -p labs` and `lab:begin 2aa` are sound.\n\
                    ```rust\n{{#include ../../raft/src/raft.rs:tick}}\n```\n\
                    ```text\nfn not_rust() {}\n```\n";
        assert_eq!(problems_of(page), Vec::<String>::new());
    }

    #[test]
    fn finds_broken_links_includes_and_tests() {
        let page = "A [gone file](../../raft/src/gone.rs).\n\
                    {{#include ../../raft/src/nope.rs:tick}}\n\
                    `leader_gone_2aa` is cited.\n\
                    `store_3b::leader_election_2aa` is in another file.\n";
        let found = problems_of(page);
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(found[0].starts_with("docs/src/page.md:1: link to ../../raft/src/gone.rs"));
        assert!(found[1].starts_with("docs/src/page.md:2: include of ../../raft/src/nope.rs"));
        assert!(found[2].starts_with("docs/src/page.md:3: test `leader_gone_2aa`"));
        assert!(found[3].contains(":4: test `store_3b::leader_election_2aa`: store_3b.rs"));
    }

    /// An item the reference defines inside a lab region is gone from a student's tree.
    #[test]
    fn finds_items_and_files_a_students_tree_lacks() {
        let page = "`Raft::tock` and `reference_helper` and `gone.rs` and `raft/src/gone.rs`\n";
        let found = problems_of(page);
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(found[0].contains(":1: `Raft::tock`: nothing in a student's tree"));
        assert!(found[0].ends_with("defines `tock`"), "{}", found[0]);
        assert!(
            found[1].contains("defines `reference_helper`"),
            "{}",
            found[1]
        );
        assert!(found[2].contains("file `gone.rs`: not in the tree"));
        assert!(found[3].contains("file `raft/src/gone.rs`: not in the tree"));
    }

    /// An include must not reach into a lab region (the handouts lose it) nor past the file.
    #[test]
    fn includes_need_their_anchor_and_stay_out_of_lab_regions() {
        let page = "{{#include ../../raft/src/raft.rs:gone}}\n\
                    {{#include ../../raft/src/raft.rs:5:7}}\n\
                    {{#include ../../raft/src/raft.rs}}\n\
                    {{#include ../../raft/src/raft.rs:step}}\n\
                    {{#include ../../raft/src/raft.rs:1:3}}\n\
                    {{#include ../../raft/src/raft.rs:40:}}\n";
        let found = problems_of(page);
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(found[0].contains(":1: include of ../../raft/src/raft.rs:gone: no ANCHOR: gone"));
        assert!(found[1].contains(":2: include of ../../raft/src/raft.rs:5:7: takes lines"));
        assert!(found[2].contains(":3: include of ../../raft/src/raft.rs: takes lines"));
        assert!(found[3].contains(":6: include of ../../raft/src/raft.rs:40:: lines 40:"));
    }

    /// A translation keeps the original's sections, and in each its code and links.
    #[test]
    fn translations_stay_in_step_with_the_original() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        write(
            root,
            "labs/tests/suite/raft_2aa.rs",
            "fn leader_election_2aa() {}\n",
        );
        write(root, "raft/src/raft.rs", "fn tick() {}\n");
        write(
            root,
            "docs/src/faq.md",
            "# FAQ\n## One\n`tick` [r](../../raft/src/raft.rs) `leader_election_2aa`\n\
             ## Two\n`leader_election_2aa` [r](../../raft/src/raft.rs)\n",
        );
        write(
            root,
            "docs/src/zh/faq.md",
            "# 问题\n## 一\n`tick` [r](../../../raft/src/raft.rs) `leader_election_2aa`\n\
             ## 二\n`tick` [r](../../../raft/src/raft.rs)\n",
        );
        write(root, "docs/src/zh/gone.md", "# 无\n");
        let found: Vec<String> = check(root).unwrap().iter().map(|p| p.to_string()).collect();
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].starts_with(
                "docs/src/zh/faq.md:4: out of step with the original's section at line 4"
            ) && found[0].contains("missing [\"`leader_election_2aa`\"]")
                && found[0].contains("not in the original [\"`tick`\"]"),
            "{}",
            found[0]
        );
        assert!(found[1].contains("docs/src/zh/gone.md:1: a translation of gone.md"));
        write(root, "docs/src/zh/gone.md", "");
        write(
            root,
            "docs/src/zh/faq.md",
            "# 问题\n## 一\n`tick` [r](../../../raft/src/raft.rs) `leader_election_2aa`\n",
        );
        let found: Vec<String> = check(root).unwrap().iter().map(|p| p.to_string()).collect();
        assert!(
            found
                .iter()
                .any(|f| f.contains("zh/faq.md:1: 1 sections, but docs/src/faq.md has 2")),
            "{found:?}"
        );
    }

    /// A stage's chapter must exist and link every file its students write in.
    #[test]
    fn chapters_link_every_file_with_a_region_of_their_stage() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        let region = |stage: &str| {
            format!("fn f() {{\n    // lab:begin {stage}\n    // lab:stub todo!()\n    // lab:end {stage}\n}}\n")
        };
        write(root, "raft/src/raft.rs", &region("2aa"));
        write(root, "raft/src/raft_log.rs", &region("2ab"));
        write(root, "server/src/raw_api.rs", &region("1"));
        write(
            root,
            "docs/src/stage-2a.md",
            "# 2a\n[`raft.rs`](../../raft/src/raft.rs) and [the web](https://x.org/raft/src/raft_log.rs)\n",
        );
        let found: Vec<String> = check(root).unwrap().iter().map(|p| p.to_string()).collect();
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].starts_with("docs/src/stage-1.md:1: no chapter for stage 1")
                && found[0].ends_with("server/src/raw_api.rs"),
            "{}",
            found[0]
        );
        assert!(
            found[1].starts_with(
                "docs/src/stage-2a.md:1: does not link raft/src/raft_log.rs, which holds a lab: \
                 region of stage 2ab (line 2)"
            ),
            "{}",
            found[1]
        );
    }

    /// An FAQ answer links its code and cites its test; a link to a suite file is not code.
    #[test]
    fn faq_answers_need_code_and_a_test() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        write(root, "raft/src/raft.rs", "fn tick() {}\n");
        write(
            root,
            "labs/tests/suite/raft_2aa.rs",
            "fn leader_election_2aa() {}\n",
        );
        write(
            root,
            "labs/tests/suite/store_3b.rs",
            "fn a_tombstone_keeps_it_dead() {}\n",
        );
        write(
            root,
            "docs/src/faq.md",
            "# FAQ\nIntro [r](../../raft/src/raft.rs)\n\
             ## Sound?\n[`tick`](../../raft/src/raft.rs) `raft_2aa::leader_election_2aa`\n\
             ## Also sound?\n[`tick`](../../raft/src/raft.rs) `store_3b::a_tombstone_keeps_it_dead`\n\
             ## No code?\n`leader_election_2aa` in [it](../../labs/tests/suite/raft_2aa.rs)\n\
             ## Nothing?\nSee [the overview](overview.md) and `tick`.\n",
        );
        write(root, "docs/src/overview.md", "# Overview\n");
        let found: Vec<String> = check(root).unwrap().iter().map(|p| p.to_string()).collect();
        assert_eq!(
            found,
            [
                "docs/src/faq.md:7: the answer to \"No code?\" lacks a link to the code that \
                 makes the choice",
                "docs/src/faq.md:9: the answer to \"Nothing?\" lacks a link to the code that \
                 makes the choice and a cited test",
            ]
        );
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
