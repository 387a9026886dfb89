//! Stripping a whole tree: which files are scanned for regions, and the copy to the out dir.
//!
//! Every `.rs` file of the workspace is scanned for markers and stripped, except under the
//! directories copied whole ([`WHOLE`]: the suites and grader, the protos) and build output.
//! So a new lab crate is covered without being listed here. The framework code students do
//! not write but that runs the reference solution ([`FRAMEWORK`]: the harness, whose tests
//! run clusters; the mutant catalog, whose entries quote reference code) is scanned too, for
//! `lab:needs` regions only: a solution region there is an error. Every marker error of the tree is collected
//! before anything is written.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::markers::{MarkerError, MarkerErrorKind, Region};
use super::strip::strip_source;
use super::HandoutError;
use crate::mutants::scratch::sync_tree;
use crate::stages::Selection;

/// Top-level directories copied whole, never scanned for markers.
pub const WHOLE: &[&str] = &["labs", "proto"];

/// Framework directories and files scanned for `lab:needs` regions only (inside [`WHOLE`] or
/// not). The stage check's end-to-end test strips the instructor's tree, so it needs every
/// stage's reference.
pub const FRAMEWORK: &[&str] = &[
    "harness",
    "labs/src/mutants/catalog",
    "labs/src/handout/stage_check.rs",
];

/// Directories skipped at every depth.
const SKIPPED: &[&str] = &["target", ".git"];

/// One region found in the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundRegion {
    /// The file, relative to the workspace root.
    pub file: PathBuf,
    /// The region.
    pub region: Region,
    /// Whether the selection strips it.
    pub stripped: bool,
}

/// What stripping the tree will write.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The new content of every file that changes, by path relative to the workspace root.
    pub files: BTreeMap<PathBuf, String>,
    /// Every region of the tree, in file order.
    pub regions: Vec<FoundRegion>,
}

impl Plan {
    /// Scans `workspace` and strips the regions of `selection` in memory; fails with every
    /// marker error of the tree.
    pub fn new(workspace: &Path, selection: &Selection) -> Result<Plan, HandoutError> {
        let mut sources = Vec::new();
        collect_sources(workspace, Path::new(""), &mut sources)?;
        for dir in FRAMEWORK {
            let inside_whole = WHOLE.iter().any(|w| Path::new(dir).starts_with(w));
            if !inside_whole {
                continue;
            }
            if workspace.join(dir).is_dir() {
                collect_sources(workspace, Path::new(dir), &mut sources)?;
            } else if workspace.join(dir).is_file() {
                sources.push(PathBuf::from(dir));
            }
        }
        let mut plan = Plan::default();
        let mut errors: Vec<MarkerError> = Vec::new();
        for rel in sources {
            let path = workspace.join(&rel);
            let source = fs::read_to_string(&path).map_err(|e| HandoutError::io(&path, e))?;
            match strip_source(&rel, &source, selection) {
                Ok(s)
                    if in_framework(&rel) && s.all_regions.iter().any(|r| r.stage().is_some()) =>
                {
                    errors.extend(
                        s.all_regions
                            .iter()
                            .filter(|r| r.stage().is_some())
                            .map(|r| MarkerError {
                                path: rel.clone(),
                                line: r.begin,
                                kind: MarkerErrorKind::SolutionInFramework,
                            }),
                    );
                }
                Ok(s) => {
                    plan.regions
                        .extend(s.all_regions.into_iter().map(|region| FoundRegion {
                            file: rel.clone(),
                            stripped: region.stripped_by(selection),
                            region,
                        }));
                    if s.source != source {
                        plan.files.insert(rel, s.source);
                    }
                }
                Err(e) => errors.extend(e),
            }
        }
        if errors.is_empty() {
            Ok(plan)
        } else {
            Err(HandoutError::Markers(errors))
        }
    }

    /// Writes the stripped copy of `workspace` to `out`; returns how many files were written.
    pub fn write(&self, workspace: &Path, out: &Path) -> Result<usize, HandoutError> {
        let replace = |rel: &Path| self.files.get(rel).map(|s| s.clone().into_bytes());
        sync_tree(workspace, out, &replace).map_err(|e| HandoutError::io(out, e))
    }
}

/// Whether `rel` lies in a framework crate.
fn in_framework(rel: &Path) -> bool {
    FRAMEWORK.iter().any(|f| rel.starts_with(f))
}

/// The `.rs` files under `dir` (relative path `rel` from the workspace root) to scan.
fn collect_sources(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<(), HandoutError> {
    let dir = root.join(rel);
    let mut entries: Vec<_> = fs::read_dir(&dir)
        .map_err(|e| HandoutError::io(&dir, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| HandoutError::io(&dir, e))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let name_str = name.to_string_lossy();
        let top = rel.as_os_str().is_empty();
        if SKIPPED.contains(&name_str.as_ref()) || (top && WHOLE.contains(&name_str.as_ref())) {
            continue;
        }
        let child = rel.join(&name);
        let kind = entry
            .file_type()
            .map_err(|e| HandoutError::io(&entry.path(), e))?;
        if kind.is_dir() {
            collect_sources(root, &child, out)?;
        } else if kind.is_file() && name_str.ends_with(".rs") {
            out.push(child);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_files::write;

    const MARKED: &str =
        "fn f() {\n    // lab:begin 2b\n    // lab:stub todo!()\n    1\n    // lab:end 2b\n}\n";

    #[test]
    fn strips_lab_crates_and_copies_the_rest_whole() {
        let src = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        write(src.path(), "Cargo.toml", "[workspace]");
        write(src.path(), "raftstore/src/peer.rs", MARKED);
        write(
            src.path(),
            "raft/src/lib.rs",
            MARKED.replace("2b", "2aa").as_str(),
        );
        write(src.path(), "labs/tests/suite/x.rs", MARKED);
        write(
            src.path(),
            "labs/src/mutants/catalog/raft.rs",
            "const E: &[u8] = &[\n    // lab:needs 2b\n    1,\n    // lab:end-needs\n];\n",
        );
        write(
            src.path(),
            "harness/src/lib.rs",
            "// lab:needs 2aa..2b\n#[test]\nfn t() {}\n// lab:end-needs\nfn keep() {}\n",
        );
        write(src.path(), "raftstore/target/debug/y.rs", "// lab:oops\n");
        let plan = Plan::new(src.path(), &"2b".parse().unwrap()).unwrap();
        assert_eq!(plan.files.len(), 3);
        assert_eq!(plan.regions.len(), 4);
        assert_eq!(
            plan.regions.iter().filter(|r| r.stripped).count(),
            3,
            "the 2aa region stays"
        );
        plan.write(src.path(), out.path()).unwrap();
        let peer = fs::read_to_string(out.path().join("raftstore/src/peer.rs")).unwrap();
        assert_eq!(
            peer,
            "fn f() {\n    // lab:begin 2b\n    todo!()\n    // lab:end 2b\n}\n"
        );
        for whole in ["labs/tests/suite/x.rs", "raft/src/lib.rs"] {
            let text = fs::read_to_string(out.path().join(whole)).unwrap();
            assert!(text.contains("    1\n"), "{whole} copied as it is");
        }
        assert_eq!(
            fs::read_to_string(out.path().join("harness/src/lib.rs")).unwrap(),
            "fn keep() {}\n",
            "the harness test that needs 2b is gone"
        );
        assert_eq!(
            fs::read_to_string(out.path().join("labs/src/mutants/catalog/raft.rs")).unwrap(),
            "const E: &[u8] = &[\n];\n",
            "so are the 2b mutants"
        );
        assert!(!out.path().join("raftstore/target").exists());
    }

    #[test]
    fn collects_every_marker_error_of_the_tree() {
        let src = tempfile::tempdir().unwrap();
        write(src.path(), "raft/src/a.rs", "// lab:begin 2aa\n");
        write(src.path(), "scheduler/src/b.rs", "x\n// lab:end 3c\n");
        write(
            src.path(),
            "harness/src/c.rs",
            "// lab:begin 2b\n// lab:end 2b\n",
        );
        let Err(HandoutError::Markers(errors)) = Plan::new(src.path(), &Selection::all()) else {
            panic!("expected marker errors");
        };
        let shown: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(shown.len(), 3);
        assert!(shown[0].starts_with("harness/src/c.rs:1: "), "{shown:?}");
        assert!(shown[1].starts_with("raft/src/a.rs:1: "), "{shown:?}");
        assert!(shown[2].starts_with("scheduler/src/b.rs:2: "), "{shown:?}");
    }
}
