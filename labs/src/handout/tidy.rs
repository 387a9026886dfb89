//! Tidying a stripped tree with the compiler's help: the fallout of stripping, fixed where it
//! falls.
//!
//! Stripping a region leaves behind what only the reference code used: imports at the top of
//! the file, helpers and fields the stubs do not touch. Which ones depends on the set of
//! stages stripped, so no marker placed by hand can be right for every set. Instead the
//! handout asks the compiler: one `cargo clippy --message-format=json` over the handout, then
//!
//! - an `unused_imports` warning is fixed by its own machine-applicable suggestion (the import,
//!   or the whole `use` item, removed), as `cargo fix` would; the student adds back what their
//!   code needs;
//! - a `dead_code` warning gets [`DEAD_CODE_ALLOW`] on the line before the item it names:
//!   a helper, field or variant the reference solution uses stays for the student's code,
//!   and the comment says so.
//!
//! Only the sources of lab crates are edited (never a protected file: those the manifest
//! hashes); a warning anywhere else is left for the clippy check to report.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::grade::pristine;

/// The line put before an item only the stripped reference code used.
pub const DEAD_CODE_ALLOW: &str = "#[allow(dead_code)] // used by the lab code you write";

/// One change to a file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Edit {
    /// Replace bytes `start..end` with the text (an unused import's suggestion).
    Replace {
        start: usize,
        end: usize,
        text: String,
    },
    /// Put [`DEAD_CODE_ALLOW`] before the 1-based line, at its indentation.
    AllowDead { line: usize },
    /// Remove the 1-based line if it is one whole `use` item (an unused import the compiler
    /// has no suggestion for, such as `use protobuf::Message as _;`).
    RemoveUseLine { line: usize },
}

/// What tidying changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TidyReport {
    /// Unused imports removed.
    pub imports_removed: usize,
    /// Items that got [`DEAD_CODE_ALLOW`].
    pub dead_items_allowed: usize,
    /// The files changed, relative to the tree.
    pub files: BTreeSet<PathBuf>,
}

/// The edits that `cargo`'s JSON messages (one a line) ask for, by file (as the compiler
/// names it: relative to the workspace root). Duplicates (the same warning from a crate's lib
/// and its test build) count once.
fn edits_of(messages: &str) -> BTreeMap<PathBuf, BTreeSet<Edit>> {
    let mut edits: BTreeMap<PathBuf, BTreeSet<Edit>> = BTreeMap::new();
    for line in messages.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if v["reason"] != "compiler-message" || v["message"]["level"] != "warning" {
            continue;
        }
        let msg = &v["message"];
        match msg["code"]["code"].as_str() {
            Some("unused_imports") => {
                let spans = msg["children"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|c| c["spans"].as_array().into_iter().flatten());
                let mut suggested = false;
                for span in spans {
                    let (Some(file), Some(text), Some(start), Some(end)) = (
                        span["file_name"].as_str(),
                        span["suggested_replacement"].as_str(),
                        span["byte_start"].as_u64(),
                        span["byte_end"].as_u64(),
                    ) else {
                        continue;
                    };
                    if span["suggestion_applicability"] != "MachineApplicable" {
                        continue;
                    }
                    suggested = true;
                    edits
                        .entry(PathBuf::from(file))
                        .or_default()
                        .insert(Edit::Replace {
                            start: start as usize,
                            end: end as usize,
                            text: text.to_owned(),
                        });
                }
                if !suggested {
                    for span in msg["spans"].as_array().into_iter().flatten() {
                        if let (Some(file), Some(line)) =
                            (span["file_name"].as_str(), span["line_start"].as_u64())
                        {
                            edits.entry(PathBuf::from(file)).or_default().insert(
                                Edit::RemoveUseLine {
                                    line: line as usize,
                                },
                            );
                        }
                    }
                }
            }
            Some("dead_code") => {
                for span in msg["spans"].as_array().into_iter().flatten() {
                    let (Some(file), Some(line), true) = (
                        span["file_name"].as_str(),
                        span["line_start"].as_u64(),
                        span["is_primary"] == true,
                    ) else {
                        continue;
                    };
                    edits
                        .entry(PathBuf::from(file))
                        .or_default()
                        .insert(Edit::AllowDead {
                            line: line as usize,
                        });
                }
            }
            _ => {}
        }
    }
    edits
}

/// `source` with `edits` applied: replacements from the end backwards (one overlapping an
/// edit already made is skipped), insertions before their lines. Returns the new text and
/// how many imports and dead items were handled.
fn apply(source: &str, edits: &BTreeSet<Edit>) -> (String, usize, usize) {
    // Every edit as a byte range and its replacement, applied from the end of the file.
    let mut changes: Vec<(usize, usize, String, bool)> = Vec::new();
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(source.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    for edit in edits {
        match edit {
            Edit::Replace { start, end, text } => {
                if start <= end
                    && *end <= source.len()
                    && source.is_char_boundary(*start)
                    && source.is_char_boundary(*end)
                {
                    changes.push((*start, *end, text.clone(), true));
                }
            }
            Edit::AllowDead { line } => {
                let Some(&at) = line_starts.get(line.saturating_sub(1)) else {
                    continue;
                };
                let rest = &source[at..];
                let code = rest.lines().next().unwrap_or("");
                let indent = &code[..code.len() - code.trim_start().len()];
                let prev = source[..at].lines().next_back().unwrap_or("").trim();
                if prev == DEAD_CODE_ALLOW {
                    continue;
                }
                changes.push((at, at, format!("{indent}{DEAD_CODE_ALLOW}\n"), false));
            }
            Edit::RemoveUseLine { line } => {
                let (Some(&at), end) = (
                    line_starts.get(line.saturating_sub(1)),
                    line_starts.get(*line).copied().unwrap_or(source.len()),
                ) else {
                    continue;
                };
                let code = source[at..end].trim();
                let item = code.strip_prefix("pub(crate) ").unwrap_or(code);
                if item.starts_with("use ")
                    && item.ends_with(';')
                    && !item[..item.len() - 1].contains(';')
                {
                    changes.push((at, end, String::new(), true));
                }
            }
        }
    }
    changes.sort_by_key(|c| std::cmp::Reverse((c.0, c.1)));
    let mut out = source.to_owned();
    let (mut imports, mut dead) = (0, 0);
    let mut floor = usize::MAX;
    for (start, end, text, is_import) in changes {
        if end > floor {
            continue;
        }
        out.replace_range(start..end, &text);
        floor = start;
        if is_import {
            imports += 1;
        } else {
            dead += 1;
        }
    }
    (out, imports, dead)
}

/// Runs clippy over `tree` (building into `target_dir`) and applies the edits its warnings
/// ask for to the lab crates' sources. Cargo's progress goes to stderr. Fails only when
/// cargo cannot run; a tree that does not compile is left for the checks to report.
pub fn tidy(tree: &Path, target_dir: &Path) -> io::Result<TidyReport> {
    let mut child = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .current_dir(tree)
        .args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--features",
            "labs/all",
            "--message-format=json",
        ])
        .env("CARGO_TARGET_DIR", target_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut messages = String::new();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            messages.push_str(&line?);
            messages.push('\n');
        }
    }
    child.wait()?;
    let lab_crates = pristine::lab_crates(tree)?;
    let mut report = TidyReport::default();
    for (file, edits) in edits_of(&messages) {
        if file.is_absolute() || pristine::is_protected(&file, &lab_crates) {
            continue;
        }
        let path = tree.join(&file);
        let source = fs::read_to_string(&path)?;
        let (new, imports, dead) = apply(&source, &edits);
        if new != source {
            fs::write(&path, new)?;
            report.imports_removed += imports;
            report.dead_items_allowed += dead;
            report.files.insert(file);
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cargo JSON line with one warning.
    fn warning(code: &str, spans: Value, children: Value) -> String {
        serde_json::json!({
            "reason": "compiler-message",
            "message": {
                "level": "warning",
                "code": { "code": code },
                "spans": spans,
                "children": children,
            }
        })
        .to_string()
    }

    const SOURCE: &str =
        "use a::{B, C};\nuse d::E;\n\nstruct S {\n    used: u8,\n    rng: u8,\n}\n";

    fn messages() -> String {
        let import = warning(
            "unused_imports",
            serde_json::json!([]),
            serde_json::json!([{ "spans": [{
                "file_name": "raft/src/raft.rs",
                "byte_start": 15, "byte_end": 25,
                "suggested_replacement": "",
                "suggestion_applicability": "MachineApplicable",
            }]}]),
        );
        let dead = warning(
            "dead_code",
            serde_json::json!([
                { "file_name": "raft/src/raft.rs", "line_start": 6, "is_primary": true },
                { "file_name": "raft/src/raft.rs", "line_start": 4, "is_primary": false },
            ]),
            serde_json::json!([]),
        );
        // The lib test build repeats both; a non-warning and a non-message are ignored.
        format!("{import}\n{dead}\n{import}\n{dead}\nnot json\n{{\"reason\":\"build-finished\"}}\n")
    }

    #[test]
    fn reads_the_edits_from_cargo_json_once_each() {
        let edits = edits_of(&messages());
        let mine = &edits[Path::new("raft/src/raft.rs")];
        assert_eq!(mine.len(), 2);
        assert!(mine.contains(&Edit::AllowDead { line: 6 }));
    }

    #[test]
    fn removes_imports_and_allows_dead_items() {
        let edits = edits_of(&messages());
        let (out, imports, dead) = apply(SOURCE, &edits[Path::new("raft/src/raft.rs")]);
        assert_eq!((imports, dead), (1, 1));
        assert_eq!(
            out,
            format!(
                "use a::{{B, C}};\n\nstruct S {{\n    used: u8,\n    {DEAD_CODE_ALLOW}\n    rng: u8,\n}}\n"
            )
        );
        // Tidying again changes nothing: the item's line is already allowed.
        let again = BTreeSet::from([Edit::AllowDead { line: 6 }]);
        assert_eq!(apply(&out, &again), (out.clone(), 0, 0));
    }

    #[test]
    fn an_import_without_a_suggestion_goes_with_its_line_if_the_line_is_the_use() {
        let source = "use a::B;\nuse p::Message as _;\nfn f() { use q::R; g() }\n";
        let edits = edits_of(&warning(
            "unused_imports",
            serde_json::json!([
                { "file_name": "x.rs", "line_start": 2, "is_primary": true },
                { "file_name": "x.rs", "line_start": 3, "is_primary": true },
            ]),
            serde_json::json!([{ "message": "on by default", "spans": [] }]),
        ));
        let (out, imports, _) = apply(source, &edits[Path::new("x.rs")]);
        assert_eq!(imports, 1, "line 3 is more than a use item");
        assert_eq!(out, "use a::B;\nfn f() { use q::R; g() }\n");
    }

    #[test]
    fn skips_overlapping_and_out_of_range_edits() {
        let edits = BTreeSet::from([
            Edit::Replace {
                start: 0,
                end: 10,
                text: String::new(),
            },
            Edit::Replace {
                start: 5,
                end: 15,
                text: String::new(),
            },
            Edit::Replace {
                start: 90,
                end: 99,
                text: String::new(),
            },
        ]);
        let (out, imports, _) = apply(SOURCE, &edits);
        assert_eq!(imports, 1);
        assert_eq!(out, SOURCE[..5].to_owned() + &SOURCE[15..]);
    }
}
