//! The manifest of a handout: SHA-256 hashes of every file students must not change.
//!
//! Written to `.labs/manifest.json` in the student tree (format [`FORMAT`]):
//!
//! ```json
//! {
//!   "format": 1,
//!   "stripped": ["2ab"],
//!   "protected": ["labs/", "harness/", "proto/", ".ci/", ".cargo/", "Cargo.toml", ...],
//!   "files": { "Cargo.toml": "<sha256 hex>", "labs/src/main.rs": "<sha256 hex>", ... }
//! }
//! ```
//!
//! `protected` lists what students must leave alone: a path ending in `/` is a directory and
//! covers everything below it, any other path is one file. `files` hashes every protected file
//! of the handout (paths relative to the tree root, `/`-separated). [`verify`] compares a tree
//! with a manifest: a protected file changed or missing, or a file added where everything is
//! protected, is a [`Difference`].
//!
//! Not protected, so that students can work: the lab crates' sources and their `Cargo.toml`
//! (a student may add a dependency), `Cargo.lock` (which follows such a dependency), the
//! README and `bench/`. The manifest itself is not hashed: the grader must read the
//! instructor's copy, never the one in a student's tree.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::HandoutError;

/// The manifest's format version.
pub const FORMAT: u32 = 1;

/// Where the manifest lives in a handout, relative to its root.
pub const MANIFEST_PATH: &str = ".labs/manifest.json";

/// What students must not change: directories (ending in `/`) and single files, relative to
/// the tree root. `.cargo/` and the toolchain files are protected though a handout has none,
/// so that adding one (a `[patch]` of the harness, another compiler) shows as a difference.
pub const PROTECTED: &[&str] = &[
    "labs/",
    "harness/",
    "proto/",
    ".ci/",
    ".cargo/",
    "Cargo.toml",
    "rust-toolchain",
    "rust-toolchain.toml",
];

/// Directories never hashed (build output, version control) at any depth.
const SKIPPED: &[&str] = &["target", ".git"];

/// The hashes of a tree's protected files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: u32,
    /// The stages stripped from the handout.
    pub stripped: Vec<String>,
    /// The protected paths ([`PROTECTED`] when written).
    pub protected: Vec<String>,
    /// SHA-256 (lowercase hex) of every protected file, by path.
    pub files: BTreeMap<String, String>,
}

/// One way a tree differs from its manifest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Difference {
    /// A protected file whose content changed.
    Changed(String),
    /// A protected file that is gone.
    Missing(String),
    /// A file under a protected directory (or a protected file name) the manifest does not
    /// know.
    Added(String),
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::Changed(p) => write!(f, "changed: {p}"),
            Difference::Missing(p) => write!(f, "missing: {p}"),
            Difference::Added(p) => write!(f, "added: {p}"),
        }
    }
}

impl Manifest {
    /// The manifest of `tree`: hashes of its files that `protected` covers.
    pub fn of_tree(
        tree: &Path,
        stripped: Vec<String>,
        protected: &[&str],
    ) -> Result<Manifest, HandoutError> {
        let protected: Vec<String> = protected.iter().map(|p| (*p).to_owned()).collect();
        let files = hash_protected(tree, &protected)?;
        Ok(Manifest {
            format: FORMAT,
            stripped,
            protected,
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

/// How `tree`'s protected files differ from `manifest` (sorted; empty: untouched).
pub fn verify(tree: &Path, manifest: &Manifest) -> Result<Vec<Difference>, HandoutError> {
    let now = hash_protected(tree, &manifest.protected)?;
    let mut diffs = Vec::new();
    for (path, hash) in &manifest.files {
        match now.get(path) {
            None => diffs.push(Difference::Missing(path.clone())),
            Some(h) if h != hash => diffs.push(Difference::Changed(path.clone())),
            Some(_) => {}
        }
    }
    diffs.extend(
        now.keys()
            .filter(|p| !manifest.files.contains_key(*p))
            .map(|p| Difference::Added(p.clone())),
    );
    diffs.sort();
    Ok(diffs)
}

/// Hashes of the files of `tree` that `protected` covers, by relative path.
fn hash_protected(
    tree: &Path,
    protected: &[String],
) -> Result<BTreeMap<String, String>, HandoutError> {
    let mut files = BTreeMap::new();
    for p in protected {
        let path = tree.join(p.trim_end_matches('/'));
        if p.ends_with('/') {
            if path.is_dir() {
                hash_dir(tree, &path, &mut files)?;
            } else if path.exists() {
                // A file where a directory is protected: it counts as an addition.
                files.insert(relative(tree, &path), hash_file(&path)?);
            }
        } else if path.is_file() {
            files.insert(p.clone(), hash_file(&path)?);
        }
    }
    Ok(files)
}

fn hash_dir(
    tree: &Path,
    dir: &Path,
    files: &mut BTreeMap<String, String>,
) -> Result<(), HandoutError> {
    let entries = fs::read_dir(dir).map_err(|e| HandoutError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| HandoutError::io(dir, e))?;
        let path = entry.path();
        if SKIPPED.contains(&entry.file_name().to_string_lossy().as_ref()) {
            continue;
        }
        let kind = entry.file_type().map_err(|e| HandoutError::io(&path, e))?;
        if kind.is_dir() {
            hash_dir(tree, &path, files)?;
        } else {
            // Symlinks are hashed as what they point at; a dangling one fails loudly.
            files.insert(relative(tree, &path), hash_file(&path)?);
        }
    }
    Ok(())
}

fn relative(tree: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(tree).unwrap_or(path);
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

    fn write(root: &Path, rel: &str, text: &str) {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        for (rel, text) in [
            ("Cargo.toml", "[workspace]"),
            ("Cargo.lock", "lock"),
            ("labs/Cargo.toml", "[package]"),
            ("labs/tests/suite/main.rs", "mod raft_2aa;"),
            ("labs/target/debug/x", "build output"),
            ("harness/src/lib.rs", "pub mod cluster;"),
            ("proto/proto/metapb.proto", "syntax"),
            (".ci/run", "cargo test"),
            ("raft/Cargo.toml", "[package]"),
            ("raft/src/raft.rs", "fn tick() {}"),
        ] {
            write(t.path(), rel, text);
        }
        t
    }

    #[test]
    fn hashes_protected_files_only() {
        let t = tree();
        let m = Manifest::of_tree(t.path(), vec!["2aa".into()], PROTECTED).unwrap();
        let paths: Vec<&str> = m.files.keys().map(String::as_str).collect();
        assert_eq!(
            paths,
            [
                ".ci/run",
                "Cargo.toml",
                "harness/src/lib.rs",
                "labs/Cargo.toml",
                "labs/tests/suite/main.rs",
                "proto/proto/metapb.proto"
            ]
        );
        assert_eq!(m.files["Cargo.toml"].len(), 64);
        assert_eq!(verify(t.path(), &m).unwrap(), []);
    }

    #[test]
    fn hashes_are_sha256() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "Cargo.toml", "abc");
        let m = Manifest::of_tree(t.path(), vec![], PROTECTED).unwrap();
        assert_eq!(
            m.files["Cargo.toml"],
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn finds_changed_missing_and_added_files() {
        let t = tree();
        let m = Manifest::of_tree(t.path(), vec![], PROTECTED).unwrap();
        // Allowed: lab code, a lab crate's manifest, the lock file, build output.
        write(t.path(), "raft/src/raft.rs", "fn tick() { todo!() }");
        write(
            t.path(),
            "raft/Cargo.toml",
            "[dependencies]\nrand = \"0.8\"",
        );
        write(t.path(), "Cargo.lock", "lock 2");
        write(t.path(), "harness/target/x", "build output");
        assert_eq!(verify(t.path(), &m).unwrap(), []);

        write(t.path(), "labs/tests/suite/main.rs", "");
        fs::remove_file(t.path().join(".ci/run")).unwrap();
        write(t.path(), "harness/src/cheat.rs", "");
        write(t.path(), ".cargo/config.toml", "[patch]");
        write(t.path(), "rust-toolchain.toml", "");
        assert_eq!(
            verify(t.path(), &m).unwrap(),
            [
                Difference::Changed("labs/tests/suite/main.rs".into()),
                Difference::Missing(".ci/run".into()),
                Difference::Added(".cargo/config.toml".into()),
                Difference::Added("harness/src/cheat.rs".into()),
                Difference::Added("rust-toolchain.toml".into()),
            ]
        );
    }

    #[test]
    fn round_trips_through_json() {
        let t = tree();
        let m = Manifest::of_tree(t.path(), vec!["2b".into()], PROTECTED).unwrap();
        let path = t.path().join(MANIFEST_PATH);
        m.write(&path).unwrap();
        assert_eq!(Manifest::read(&path).unwrap(), m);
        fs::write(&path, "{\"format\": 9}").unwrap();
        assert!(Manifest::read(&path).is_err());
    }
}
