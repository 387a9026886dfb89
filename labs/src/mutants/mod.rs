//! `labs mutants`: the catalog of classic student bugs and the run that checks every one is
//! caught by the suite of its stage.
//!
//! A [`Mutant`] is one minimal change to the reference code inside a `lab:` region, written
//! as a text substitution anchored on the code around it (not a line-numbered patch), so it
//! survives refactors that do not touch the mutated lines; when it no longer applies,
//! [`Mutant::apply`] says why, and the catalog's unit test fails. [`catalog`] holds the
//! entries, [`run`] applies each in a scratch copy of the tree, builds, runs its stage's
//! suite under a time bound and reports caught / missed / does not build.

pub mod catalog;
pub mod run;
pub mod scratch;

use std::fmt;

use crate::stages::Stage;

/// One classic student bug: a substitution in one file of the reference tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mutant {
    /// A short stable name, `<stage>-<what>` (`2aa-vote-twice`).
    pub id: &'static str,
    /// The stage whose suite must catch it.
    pub stage: &'static str,
    /// The bug in a student's words.
    pub bug: &'static str,
    /// The file it changes, relative to the workspace root.
    pub file: &'static str,
    /// Text that occurs exactly once in the file (usually a function's signature); the
    /// search for `find` starts there. Empty: search from the start of the file.
    pub after: &'static str,
    /// The text replaced: its first occurrence after `after`, which must lie inside a `lab:`
    /// region.
    pub find: &'static str,
    /// What replaces it.
    pub replace: &'static str,
}

/// Why a mutant does not apply to a source file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The anchor text is not in the file.
    #[error("anchor {0:?} is not in the file")]
    AnchorMissing(String),
    /// The anchor text occurs more than once.
    #[error("anchor {anchor:?} occurs {count} times; it must be unique")]
    AnchorAmbiguous {
        /// The anchor.
        anchor: String,
        /// How often it occurs.
        count: usize,
    },
    /// The text to replace does not follow the anchor.
    #[error("{0:?} does not occur after the anchor")]
    FindMissing(String),
    /// The text to replace is not inside one `lab:` region.
    #[error("the text at line {0} is not inside a lab: region")]
    OutsideLabRegion(usize),
    /// The replacement is the same text.
    #[error("the replacement changes nothing")]
    NoChange,
}

impl Mutant {
    /// The stage this mutant belongs to.
    pub fn stage(&self) -> Option<Stage> {
        Stage::by_name(self.stage)
    }

    /// The mutated text of `source` (the current content of [`Mutant::file`]).
    pub fn apply(&self, source: &str) -> Result<String, ApplyError> {
        if self.find == self.replace {
            return Err(ApplyError::NoChange);
        }
        let from = if self.after.is_empty() {
            0
        } else {
            let count = source.matches(self.after).count();
            match count {
                0 => return Err(ApplyError::AnchorMissing(self.after.to_owned())),
                1 => source.find(self.after).unwrap_or(0),
                _ => {
                    return Err(ApplyError::AnchorAmbiguous {
                        anchor: self.after.to_owned(),
                        count,
                    })
                }
            }
        };
        let at = source[from..]
            .find(self.find)
            .map(|i| from + i)
            .ok_or_else(|| ApplyError::FindMissing(self.find.to_owned()))?;
        let end = at + self.find.len();
        let line = source[..at].matches('\n').count() + 1;
        if !inside_lab_region(source, at, end) {
            return Err(ApplyError::OutsideLabRegion(line));
        }
        let mut out = String::with_capacity(source.len() + self.replace.len());
        out.push_str(&source[..at]);
        out.push_str(self.replace);
        out.push_str(&source[end..]);
        Ok(out)
    }

    /// The line (1-based) where the change starts, for reports.
    pub fn line(&self, source: &str) -> Option<usize> {
        let from = source.find(self.after)?;
        let at = from + source[from..].find(self.find)?;
        Some(source[..at].matches('\n').count() + 1)
    }
}

impl fmt::Display for Mutant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}] {}", self.id, self.stage, self.bug)
    }
}

/// `n` entries of `entries` picked by `seed` (the same seed picks the same entries from the
/// same catalog), in catalog order.
pub fn sample(entries: &[Mutant], n: usize, seed: u64) -> Vec<Mutant> {
    let mut keyed: Vec<(u64, usize)> = (0..entries.len())
        .map(|i| (splitmix64(seed ^ splitmix64(i as u64)), i))
        .collect();
    keyed.sort_unstable();
    let mut chosen: Vec<usize> = keyed.into_iter().take(n).map(|(_, i)| i).collect();
    chosen.sort_unstable();
    chosen.into_iter().map(|i| entries[i]).collect()
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The files (relative to `workspace`) that differ between git revision `rev` and the
/// working tree.
pub fn touched_files(workspace: &std::path::Path, rev: &str) -> std::io::Result<Vec<String>> {
    let out = std::process::Command::new("git")
        .current_dir(workspace)
        .args(["diff", "--name-only", rev, "--"])
        .output()?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "git diff --name-only {rev}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect())
}

/// Whether bytes `start..end` of `source` lie between one `// lab:begin` line and the next
/// `// lab:end` line.
fn inside_lab_region(source: &str, start: usize, end: usize) -> bool {
    let mut open: Option<usize> = None;
    let mut offset = 0;
    for line in source.split_inclusive('\n') {
        let line_end = offset + line.len();
        let trimmed = line.trim_start();
        if trimmed.starts_with("// lab:begin") {
            open = Some(line_end);
        } else if trimmed.starts_with("// lab:end") {
            if let Some(begin) = open.take() {
                if begin <= start && end <= offset {
                    return true;
                }
            }
        }
        offset = line_end;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = "fn a() {\n    x = 1;\n}\nfn b() {\n    // lab:begin 2aa\n    // lab:stub x = 0;\n    x = 1;\n    // lab:end 2aa\n}\n";

    fn mutant(after: &'static str, find: &'static str, replace: &'static str) -> Mutant {
        Mutant {
            id: "t",
            stage: "2aa",
            bug: "test",
            file: "f.rs",
            after,
            find,
            replace,
        }
    }

    #[test]
    fn applies_after_the_anchor_inside_a_region() {
        let out = mutant("fn b()", "x = 1;", "x = 2;").apply(SOURCE).unwrap();
        assert!(
            out.contains("fn a() {\n    x = 1;"),
            "before the anchor untouched"
        );
        assert!(out.contains("x = 0;\n    x = 2;"));
        assert_eq!(mutant("fn b()", "x = 1;", "x = 2;").line(SOURCE), Some(7));
    }

    #[test]
    fn samples_are_seeded_and_in_catalog_order() {
        let ids = ["a", "b", "c", "d", "e", "f"];
        let entries: Vec<Mutant> = ids
            .iter()
            .map(|&id| Mutant {
                id,
                ..mutant("", "x", "y")
            })
            .collect();
        let pick = |seed| -> Vec<&str> { sample(&entries, 3, seed).iter().map(|m| m.id).collect() };
        assert_eq!(pick(7), pick(7));
        assert_eq!(pick(7).len(), 3);
        let mut sorted = pick(7);
        sorted.sort_unstable();
        assert_eq!(sorted, pick(7), "catalog order");
        assert!((0..20).any(|seed| pick(seed) != pick(7)), "seeds differ");
        assert_eq!(sample(&entries, 10, 1).len(), 6);
    }

    #[test]
    fn refuses_what_does_not_apply() {
        assert_eq!(
            mutant("", "x = 1;", "x = 2;").apply(SOURCE),
            Err(ApplyError::OutsideLabRegion(2)),
            "the first match is outside the region"
        );
        assert_eq!(
            mutant("fn c()", "x", "y").apply(SOURCE),
            Err(ApplyError::AnchorMissing("fn c()".into()))
        );
        assert!(matches!(
            mutant("x = 1;", "x", "y").apply(SOURCE),
            Err(ApplyError::AnchorAmbiguous { count: 2, .. })
        ));
        assert_eq!(
            mutant("fn b()", "z", "y").apply(SOURCE),
            Err(ApplyError::FindMissing("z".into()))
        );
        assert_eq!(
            mutant("fn b()", "x", "x").apply(SOURCE),
            Err(ApplyError::NoChange)
        );
        // A match that spans a region's end is outside it.
        assert_eq!(
            mutant("fn b()", "x = 1;\n    // lab:end 2aa\n}", "}").apply(SOURCE),
            Err(ApplyError::OutsideLabRegion(7))
        );
    }
}
