//! The manifest of a handout: SHA-256 hashes of every file students must not change.
//!
//! Written to `.labs/manifest.json` in the student tree (format [`FORMAT`]):
//!
//! ```json
//! {
//!   "format": 1,
//!   "stripped": ["2ab"],
//!   "lab_crates": ["raft", "raftstore", "scheduler", "server"],
//!   "files": { "Cargo.toml": "<sha256 hex>", "labs/src/main.rs": "<sha256 hex>", ... }
//! }
//! ```
//!
//! What is protected is the grader's rule ([`crate::grade::pristine::is_protected`]), so that
//! `labs grade --pristine` and the manifest agree: every file except the `src/` of the lab
//! crates (the crates with `lab:` markers, listed in `lab_crates`) and top-level Markdown
//! files. So the suites, harness, grader, protos, `.ci/`, every `Cargo.toml` (a lab crate's
//! too), `Cargo.lock` and `bench/` are protected; build output and `.git` are not looked at.
//! `files` hashes every protected file of the handout (paths relative to the tree root,
//! `/`-separated). [`verify`] compares a tree with a manifest: a protected file changed or
//! missing, or a protected file the manifest does not know (a new `.cargo/config.toml`, a new
//! test), is a [`Difference`].
//!
//! The manifest does not hash itself: a grader must read the instructor's copy, never the
//! one in a student's tree.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::HandoutError;
pub use crate::grade::pristine::Difference;
use crate::grade::pristine::{is_protected, lab_crates};

/// The manifest's format version.
pub const FORMAT: u32 = 1;

/// Where the manifest lives in a handout, relative to its root.
pub const MANIFEST_PATH: &str = ".labs/manifest.json";

/// Directories never hashed (build output, version control) at any depth.
const SKIPPED: &[&str] = &["target", ".git"];

/// The hashes of a tree's protected files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: u32,
    /// The stages stripped from the handout.
    pub stripped: Vec<String>,
    /// The lab crates, whose `src/` is the students'.
    pub lab_crates: Vec<String>,
    /// SHA-256 (lowercase hex) of every protected file, by `/`-separated relative path.
    pub files: BTreeMap<String, String>,
}

impl Manifest {
    /// The manifest of `tree`: hashes of its protected files, its lab crates being those
    /// with `lab:` markers.
    pub fn of_tree(tree: &Path, stripped: Vec<String>) -> Result<Manifest, HandoutError> {
        let lab_crates = lab_crates(tree).map_err(|e| HandoutError::io(tree, e))?;
        let files = hash_protected(tree, &lab_crates)?;
        Ok(Manifest {
            format: FORMAT,
            stripped,
            lab_crates,
            files,
        })
    }

    /// Reads a manifest written by [`Manifest::write`].
    pub fn read(path: &Path) -> Result<Manifest, HandoutError> {
        let text = fs::read_to_string(path).map_err(|e| HandoutError::io(path, e))?;
        let manifest: Manifest =
            serde_json::from_str(&text).map_err(|e| HandoutError::Manifest {
                path: path.to_owned(),
                why: e.to_string(),
            })?;
        if manifest.format != FORMAT {
            return Err(HandoutError::Manifest {
                path: path.to_owned(),
                why: format!("format {} (this labs reads {FORMAT})", manifest.format),
            });
        }
        Ok(manifest)
    }

    /// Writes the manifest as pretty JSON, creating its directory.
    pub fn write(&self, path: &Path) -> Result<(), HandoutError> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| HandoutError::io(dir, e))?;
        }
        let text = serde_json::to_string_pretty(self).map_err(|e| HandoutError::Manifest {
            path: path.to_owned(),
            why: e.to_string(),
        })?;
        fs::write(path, text + "\n").map_err(|e| HandoutError::io(path, e))
    }
}

/// How `tree`'s protected files differ from `manifest` (sorted; empty: untouched). The lab
/// crates are the manifest's, not the tree's: deleting a crate's markers does not unprotect
/// anything.
pub fn verify(tree: &Path, manifest: &Manifest) -> Result<Vec<Difference>, HandoutError> {
    let now = hash_protected(tree, &manifest.lab_crates)?;
    let mut diffs = Vec::new();
    for (path, hash) in &manifest.files {
        match now.get(path) {
            None => diffs.push(Difference::Missing(PathBuf::from(path))),
            Some(h) if h != hash => diffs.push(Difference::Changed(PathBuf::from(path))),
            Some(_) => {}
        }
    }
    diffs.extend(
        now.keys()
            .filter(|p| !manifest.files.contains_key(*p))
            .map(|p| Difference::Added(PathBuf::from(p))),
    );
    diffs.sort();
    Ok(diffs)
}

/// Hashes of the protected files of `tree`, by relative path.
fn hash_protected(
    tree: &Path,
    lab_crates: &[String],
) -> Result<BTreeMap<String, String>, HandoutError> {
    let mut files = BTreeMap::new();
    hash_dir(tree, Path::new(""), lab_crates, &mut files)?;
    Ok(files)
}

fn hash_dir(
    tree: &Path,
    rel: &Path,
    lab_crates: &[String],
    files: &mut BTreeMap<String, String>,
) -> Result<(), HandoutError> {
    let dir = tree.join(rel);
    let entries = fs::read_dir(&dir).map_err(|e| HandoutError::io(&dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| HandoutError::io(&dir, e))?;
        let name = entry.file_name();
        if SKIPPED.contains(&name.to_string_lossy().as_ref()) {
            continue;
        }
        let child = rel.join(&name);
        let path = tree.join(&child);
        let kind = entry.file_type().map_err(|e| HandoutError::io(&path, e))?;
        if kind.is_dir() {
            hash_dir(tree, &child, lab_crates, files)?;
            continue;
        }
        let key = slash_path(&child);
        if key == MANIFEST_PATH || !is_protected(&child, lab_crates) {
            continue;
        }
        // Symlinks are hashed as what they point at; a dangling one fails loudly.
        files.insert(key, hash_file(&path)?);
    }
    Ok(())
}

fn slash_path(rel: &Path) -> String {
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

fn hash_file(path: &Path) -> Result<String, HandoutError> {
    let bytes = fs::read(path).map_err(|e| HandoutError::io(path, e))?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_files::write;

    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        for (rel, text) in [
            ("Cargo.toml", "[workspace]"),
            ("Cargo.lock", "lock"),
            ("README.md", "read me"),
            ("labs/Cargo.toml", "[package]"),
            ("labs/tests/suite/main.rs", "mod raft_2aa;"),
            ("labs/target/debug/x", "build output"),
            ("harness/src/lib.rs", "pub mod cluster;"),
            (".ci/run", "cargo test"),
            ("raft/Cargo.toml", "[package]"),
            ("raft/src/raft.rs", "// lab:begin 2aa\n// lab:end 2aa\n"),
        ] {
            write(t.path(), rel, text);
        }
        t
    }

    fn p(rel: &str) -> PathBuf {
        PathBuf::from(rel)
    }

    #[test]
    fn hashes_every_file_but_lab_sources_and_top_level_markdown() {
        let t = tree();
        let m = Manifest::of_tree(t.path(), vec!["2aa".into()]).unwrap();
        assert_eq!(m.lab_crates, ["raft"]);
        let paths: Vec<&str> = m.files.keys().map(String::as_str).collect();
        assert_eq!(
            paths,
            [
                ".ci/run",
                "Cargo.lock",
                "Cargo.toml",
                "harness/src/lib.rs",
                "labs/Cargo.toml",
                "labs/tests/suite/main.rs",
                "raft/Cargo.toml"
            ]
        );
        assert_eq!(verify(t.path(), &m).unwrap(), []);
    }

    #[test]
    fn hashes_are_sha256() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "Cargo.toml", "abc");
        let m = Manifest::of_tree(t.path(), vec![]).unwrap();
        assert_eq!(
            m.files["Cargo.toml"],
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn finds_changed_missing_and_added_files() {
        let t = tree();
        let m = Manifest::of_tree(t.path(), vec![]).unwrap();
        m.write(&t.path().join(MANIFEST_PATH)).unwrap();
        // Allowed: lab code (even its markers), notes, build output, the manifest itself.
        write(t.path(), "raft/src/raft.rs", "fn tick() { todo!() }");
        write(t.path(), "raft/src/new_module.rs", "");
        write(t.path(), "NOTES.md", "mine");
        write(t.path(), "harness/target/x", "build output");
        assert_eq!(verify(t.path(), &m).unwrap(), []);

        write(t.path(), "labs/tests/suite/main.rs", "");
        fs::remove_file(t.path().join(".ci/run")).unwrap();
        write(t.path(), "harness/src/cheat.rs", "");
        write(t.path(), ".cargo/config.toml", "[patch]");
        write(t.path(), "raft/Cargo.toml", "[dependencies]");
        assert_eq!(
            verify(t.path(), &m).unwrap(),
            [
                Difference::Changed(p("labs/tests/suite/main.rs")),
                Difference::Changed(p("raft/Cargo.toml")),
                Difference::Added(p(".cargo/config.toml")),
                Difference::Added(p("harness/src/cheat.rs")),
                Difference::Missing(p(".ci/run")),
            ]
        );
    }

    #[test]
    fn round_trips_through_json() {
        let t = tree();
        let m = Manifest::of_tree(t.path(), vec!["2b".into()]).unwrap();
        let path = t.path().join(MANIFEST_PATH);
        m.write(&path).unwrap();
        assert_eq!(Manifest::read(&path).unwrap(), m);
        fs::write(&path, "{\"format\": 9}").unwrap();
        assert!(Manifest::read(&path).is_err());
    }
}
