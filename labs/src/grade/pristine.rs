//! Grading with the instructor's copies (`labs grade --pristine DIR`): the student's work is
//! the `src/` of each lab crate; every other file (suites, harness, grader, protos, manifests,
//! the lab crates' own `Cargo.toml`) is taken from the pristine tree, and every file of those
//! that the submission changed, added or removed is reported. Editing a test or the checker
//! therefore gains nothing, and shows.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::mutants::scratch::sync_tree;

/// A protected file that differs between the submission and the pristine tree.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Difference {
    /// The submission's copy has other content.
    Changed(PathBuf),
    /// The submission has a file the pristine tree does not.
    Added(PathBuf),
    /// The submission lacks a file the pristine tree has.
    Missing(PathBuf),
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::Changed(p) => write!(f, "changed: {}", p.display()),
            Difference::Added(p) => write!(f, "added:   {}", p.display()),
            Difference::Missing(p) => write!(f, "missing: {}", p.display()),
        }
    }
}

/// Builds the tree that is graded: `work` becomes a copy of `pristine` with each lab crate's
/// `src/` replaced by the submission's, written incrementally ([`sync_tree`]: unchanged files
/// keep their times, so builds are reused). Returns the protected files the submission changed, added or removed.
pub fn assemble(submission: &Path, pristine: &Path, work: &Path) -> io::Result<Vec<Difference>> {
    let labs = lab_crates(pristine)?;
    let found = differences(submission, pristine, &labs)?;
    let keep = |_: &Path| None;
    sync_tree(pristine, work, &keep)?;
    for krate in &labs {
        let theirs = submission.join(krate).join("src");
        if theirs.is_dir() {
            sync_tree(&theirs, &work.join(krate).join("src"), &keep)?;
        }
    }
    Ok(found)
}

/// Directories never compared or copied: build output and version control.
const IGNORED_DIRS: &[&str] = &["target", ".git"];

/// The top-level dependency cache of an offline autograder (`labs handout --vendor`): not
/// compared either, as it never comes from a submission (the assembled tree has the
/// instructor's) and a student's tree usually has none.
const VENDOR_DIR: &str = "vendor";

/// Crates that are never lab crates, whatever their sources mention: the suites and the
/// grader, the harness, the protos.
const FRAMEWORK_CRATES: &[&str] = &["labs", "harness", "proto"];

/// The lab crates of `tree`: top-level directories with a `Cargo.toml` whose `src/` holds a
/// `// lab:begin` marker, except the framework's own ([`FRAMEWORK_CRATES`]). Their `src/` is
/// the student's; everything else is protected.
pub fn lab_crates(tree: &Path) -> io::Result<Vec<String>> {
    let mut crates = Vec::new();
    for entry in fs::read_dir(tree)? {
        let entry = entry?;
        let dir = entry.path();
        if !entry.file_type()?.is_dir() || !dir.join("Cargo.toml").is_file() {
            continue;
        }
        if FRAMEWORK_CRATES.iter().any(|f| entry.file_name() == *f) {
            continue;
        }
        if has_marker(&dir.join("src"))? {
            crates.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    crates.sort();
    Ok(crates)
}

fn has_marker(dir: &Path) -> io::Result<bool> {
    if !dir.is_dir() {
        return Ok(false);
    }
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            if has_marker(&path)? {
                return Ok(true);
            }
        } else if path.extension().is_some_and(|e| e == "rs")
            && fs::read_to_string(&path)?
                .lines()
                .any(|l| l.trim_start().starts_with("// lab:begin"))
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether `rel` (relative to a tree's root) is protected: not in a lab crate's `src/`, not
/// a top-level Markdown file (notes and READMEs are the student's to edit).
pub fn is_protected(rel: &Path, lab_crates: &[String]) -> bool {
    let mut parts = rel.components().map(|c| c.as_os_str().to_string_lossy());
    let (Some(first), second) = (parts.next(), parts.next()) else {
        return false;
    };
    match second {
        None => !first.ends_with(".md"),
        Some(second) => !(lab_crates.iter().any(|c| *c == first) && second == "src"),
    }
}

/// Every protected file that differs between `submission` and `pristine`, sorted.
pub fn differences(
    submission: &Path,
    pristine: &Path,
    lab_crates: &[String],
) -> io::Result<Vec<Difference>> {
    let theirs = files(submission)?;
    let ours = files(pristine)?;
    let mut out = Vec::new();
    for rel in ours.union(&theirs) {
        if !is_protected(rel, lab_crates) {
            continue;
        }
        match (ours.contains(rel), theirs.contains(rel)) {
            (true, false) => out.push(Difference::Missing(rel.clone())),
            (false, true) => out.push(Difference::Added(rel.clone())),
            _ => {
                if fs::read(pristine.join(rel))? != fs::read(submission.join(rel))? {
                    out.push(Difference::Changed(rel.clone()));
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Every file of `tree` (relative paths), outside build output and version control.
fn files(tree: &Path) -> io::Result<BTreeSet<PathBuf>> {
    let mut out = BTreeSet::new();
    walk(tree, Path::new(""), &mut out)?;
    Ok(out)
}

fn walk(root: &Path, rel: &Path, out: &mut BTreeSet<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(root.join(rel))? {
        let entry = entry?;
        let name = entry.file_name();
        if IGNORED_DIRS.iter().any(|d| name == *d)
            || rel.as_os_str().is_empty() && name == VENDOR_DIR
        {
            continue;
        }
        let path = rel.join(&name);
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(root, &path, out)?;
        } else if kind.is_file() {
            out.insert(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_files::write;

    fn tree(root: &Path) {
        write(root, "Cargo.toml", "[workspace]");
        write(root, "README.md", "readme");
        write(root, "raft/Cargo.toml", "[package]");
        write(
            root,
            "raft/src/lib.rs",
            "// lab:begin 2aa\n// lab:end 2aa\n",
        );
        write(root, "harness/Cargo.toml", "[package]");
        write(root, "harness/src/lib.rs", "fn oracle() {}");
        write(root, "labs/tests/suite/main.rs", "#[test] fn t_1() {}");
        write(root, "labs/Cargo.toml", "[package]");
        write(
            root,
            "labs/src/x.rs",
            "const S: &str = \"\n// lab:begin 1\";",
        );
        write(root, "target/debug/x", "build output");
    }

    #[test]
    fn lab_crates_are_those_with_markers() {
        let d = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        tree(d.path());
        assert_eq!(lab_crates(d.path()).unwrap_or_default(), vec!["raft"]);
    }

    #[test]
    fn protected_paths() {
        let labs = vec!["raft".to_owned()];
        assert!(!is_protected(Path::new("raft/src/raft.rs"), &labs));
        assert!(!is_protected(Path::new("raft/src/deep/x.rs"), &labs));
        assert!(!is_protected(Path::new("NOTES.md"), &labs));
        assert!(is_protected(Path::new("raft/Cargo.toml"), &labs));
        assert!(is_protected(Path::new("raft/tests/x.rs"), &labs));
        assert!(is_protected(Path::new("harness/src/lib.rs"), &labs));
        assert!(is_protected(Path::new("labs/tests/suite/main.rs"), &labs));
        assert!(is_protected(Path::new("Cargo.toml"), &labs));
        assert!(is_protected(Path::new("docs/guide.md"), &labs));
    }

    /// A submission that edits a suite and the checker, adds a test file and deletes a
    /// manifest has each of those reported; its own lab code, notes and build output are not.
    #[test]
    fn tampering_is_reported_and_lab_code_is_not() {
        let ours = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let theirs = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        tree(ours.path());
        tree(theirs.path());
        let labs = lab_crates(ours.path()).unwrap_or_default();
        assert_eq!(
            differences(theirs.path(), ours.path(), &labs).unwrap_or_default(),
            vec![]
        );
        write(theirs.path(), "raft/src/lib.rs", "// the student's raft");
        write(theirs.path(), "raft/src/log.rs", "// a new module");
        write(theirs.path(), "README.md", "my notes");
        write(theirs.path(), "target/debug/y", "more build output");
        write(
            theirs.path(),
            "labs/tests/suite/main.rs",
            "// always passes",
        );
        write(
            theirs.path(),
            "harness/src/lib.rs",
            "fn oracle() { /* disabled */ }",
        );
        write(theirs.path(), "labs/tests/suite/extra.rs", "");
        fs::remove_file(theirs.path().join("raft/Cargo.toml")).unwrap_or_else(|e| panic!("{e}"));
        let found = differences(theirs.path(), ours.path(), &labs).unwrap_or_default();
        assert_eq!(
            found,
            vec![
                Difference::Changed("harness/src/lib.rs".into()),
                Difference::Changed("labs/tests/suite/main.rs".into()),
                Difference::Added("labs/tests/suite/extra.rs".into()),
                Difference::Missing("raft/Cargo.toml".into()),
            ]
        );
        assert_eq!(found[0].to_string(), "changed: harness/src/lib.rs");

        // The graded tree: the instructor's files with the student's lab sources.
        let work = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let again = assemble(theirs.path(), ours.path(), work.path()).unwrap_or_default();
        assert_eq!(again, found);
        let read = |rel: &str| fs::read_to_string(work.path().join(rel)).unwrap_or_default();
        assert_eq!(read("labs/tests/suite/main.rs"), "#[test] fn t_1() {}");
        assert_eq!(read("harness/src/lib.rs"), "fn oracle() {}");
        assert_eq!(read("raft/Cargo.toml"), "[package]");
        assert_eq!(read("raft/src/lib.rs"), "// the student's raft");
        assert_eq!(read("raft/src/log.rs"), "// a new module");
        assert!(!work.path().join("labs/tests/suite/extra.rs").exists());
    }
}
