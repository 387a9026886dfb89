//! The scratch copy of the tree that mutants are applied to.
//!
//! A mutant never touches the tree being checked: each job keeps a copy of its sources under
//! `target/labs/mutants/job-N/tree` with its own target dir beside it. The copy is brought up
//! to date file by file, rewriting only files whose content differs, so cargo's fingerprints
//! (which follow modification times) see no change where there is none and the build from the
//! previous run, or the previous mutant, is reused.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Directories never copied: build output, version control, and build output of the
/// excluded `bench` workspace.
const SKIPPED: &[&str] = &["target", ".git"];

/// One job's copy of the tree and its target dir.
#[derive(Debug, Clone)]
pub struct Scratch {
    /// The copied workspace root.
    pub tree: PathBuf,
    /// The `CARGO_TARGET_DIR` of builds in the copy.
    pub target: PathBuf,
}

impl Scratch {
    /// The scratch space of job `job` for `workspace`.
    pub fn for_job(workspace: &Path, job: usize) -> Self {
        let base = workspace
            .join("target")
            .join("labs")
            .join("mutants")
            .join(format!("job-{job}"));
        Scratch {
            tree: base.join("tree"),
            target: base.join("target"),
        }
    }

    /// Makes the copy equal to `workspace`'s sources; returns how many files were written.
    pub fn sync_from(&self, workspace: &Path) -> io::Result<usize> {
        sync_tree(workspace, &self.tree, &|_| None)
    }
}

/// Makes `to` a copy of `from`'s sources (everything but build output and `.git`), writing
/// only files whose content differs and deleting files `from` does not have (`to`'s own
/// `target` and top-level `.git` are kept). `replace` may give, by path relative to `from`,
/// the content a file gets instead of its own. Returns how many files were written or deleted.
pub fn sync_tree(
    from: &Path,
    to: &Path,
    replace: &dyn Fn(&Path) -> Option<Vec<u8>>,
) -> io::Result<usize> {
    fs::create_dir_all(to)?;
    sync_dir(from, to, Path::new(""), replace)
}

fn skipped(name: &std::ffi::OsStr, top: bool) -> bool {
    let name = name.to_string_lossy();
    // `target` is skipped at every level (the excluded `bench` workspace has its own).
    SKIPPED.contains(&name.as_ref()) && (top || name == "target")
}

fn sync_dir(
    from: &Path,
    to: &Path,
    rel: &Path,
    replace: &dyn Fn(&Path) -> Option<Vec<u8>>,
) -> io::Result<usize> {
    let top = rel.as_os_str().is_empty();
    let mut written = 0;
    let mut seen = Vec::new();
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if skipped(&name, top) {
            continue;
        }
        seen.push(name.clone());
        let kind = entry.file_type()?;
        let dest = to.join(&name);
        if kind.is_dir() {
            if dest.is_file() {
                fs::remove_file(&dest)?;
            }
            fs::create_dir_all(&dest)?;
            written += sync_dir(&entry.path(), &dest, &rel.join(&name), replace)?;
        } else if kind.is_file() {
            let content = match replace(&rel.join(&name)) {
                Some(c) => c,
                None => fs::read(entry.path())?,
            };
            if dest.is_dir() {
                fs::remove_dir_all(&dest)?;
            }
            if fs::read(&dest).ok().as_deref() != Some(&content[..]) {
                fs::write(&dest, &content)?;
                written += 1;
            }
            // Keep the mode: build scripts run binaries shipped in crates (protoc).
            let mode = entry.metadata()?.permissions();
            if fs::metadata(&dest)?.permissions() != mode {
                fs::set_permissions(&dest, mode)?;
            }
        }
    }
    // Files deleted from the tree are deleted from the copy (its target dir is kept).
    for entry in fs::read_dir(to)? {
        let entry = entry?;
        let name = entry.file_name();
        if seen.contains(&name) || skipped(&name, top) {
            continue;
        }
        if entry.file_type()?.is_dir() {
            fs::remove_dir_all(entry.path())?;
        } else {
            fs::remove_file(entry.path())?;
        }
        written += 1;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_copies_changes_only_and_skips_build_output() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        let scratch = Scratch {
            tree: dst.path().join("tree"),
            target: dst.path().join("target"),
        };
        fs::create_dir_all(src.path().join("raft/src")).unwrap();
        fs::create_dir_all(src.path().join("target/debug")).unwrap();
        fs::create_dir_all(src.path().join(".git")).unwrap();
        fs::write(src.path().join("Cargo.toml"), "[workspace]").unwrap();
        fs::write(src.path().join("raft/src/lib.rs"), "fn a() {}").unwrap();
        fs::write(src.path().join("target/debug/big"), "x").unwrap();
        assert_eq!(scratch.sync_from(src.path()).unwrap(), 2);
        assert!(scratch.tree.join("raft/src/lib.rs").is_file());
        assert!(!scratch.tree.join("target").exists());
        assert!(!scratch.tree.join(".git").exists());

        // Nothing changed: nothing is written (modification times stay, builds are reused).
        assert_eq!(scratch.sync_from(src.path()).unwrap(), 0);

        // A changed file is rewritten; a deleted one disappears; the copy's target stays.
        fs::write(src.path().join("raft/src/lib.rs"), "fn b() {}").unwrap();
        fs::create_dir_all(scratch.tree.join("target")).unwrap();
        fs::write(scratch.tree.join("stale.rs"), "").unwrap();
        assert_eq!(scratch.sync_from(src.path()).unwrap(), 2);
        assert_eq!(
            fs::read_to_string(scratch.tree.join("raft/src/lib.rs")).unwrap(),
            "fn b() {}"
        );
        assert!(!scratch.tree.join("stale.rs").exists());
        assert!(scratch.tree.join("target").exists());
    }

    #[test]
    fn sync_tree_substitutes_replaced_files() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        fs::create_dir_all(src.path().join("raft/src")).unwrap();
        fs::write(src.path().join("raft/src/lib.rs"), "reference").unwrap();
        fs::write(src.path().join("Cargo.toml"), "[workspace]").unwrap();
        let replace = |rel: &Path| (rel == Path::new("raft/src/lib.rs")).then(|| b"stub".to_vec());
        assert_eq!(sync_tree(src.path(), dst.path(), &replace).unwrap(), 2);
        assert_eq!(
            fs::read_to_string(dst.path().join("raft/src/lib.rs")).unwrap(),
            "stub"
        );
        assert_eq!(sync_tree(src.path(), dst.path(), &replace).unwrap(), 0);
    }

    #[cfg(unix)]
    #[test]
    fn sync_tree_keeps_the_executable_bit() {
        use std::os::unix::fs::PermissionsExt;
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        let tool = src.path().join("protoc");
        fs::write(&tool, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&tool, fs::Permissions::from_mode(0o755)).unwrap();
        sync_tree(src.path(), dst.path(), &|_| None).unwrap();
        let mode = fs::metadata(dst.path().join("protoc"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
    }
}
