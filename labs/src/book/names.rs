//! What the tree defines, as a student's tree has it: the names the book may cite.
//!
//! Every `.rs` file of the workspace is read with every `lab:` region stripped (the handout
//! of all stages), so an item that only the reference solution defines does not count: the
//! book of a handout would name something its reader cannot find. Definitions are found by
//! their keyword (`fn`, `struct`, `enum`, `trait`, `type`, `const`, `static`, `mod`,
//! `macro_rules!`), and fields and enum variants by the shape of their line. The protocol
//! names come from our `.proto` files and from raft-proto's `eraftpb.proto`, which `cargo
//! metadata` locates; the crate names from `Cargo.lock`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::handout::strip::strip_source;
use crate::stages::Selection;

/// Directories never read, at any depth.
const SKIPPED: &[&str] = &["target", ".git", "vendor", "docs", "node_modules"];

/// Words of Rust and its prelude that the book may write as code without a definition.
const LANGUAGE: &[&str] = &[
    "true", "false", "None", "Some", "Ok", "Err", "Self", "self", "crate", "super", "u8", "u16",
    "u32", "u64", "usize", "i32", "i64", "bool", "str", "String", "Vec", "Option", "Result", "Box",
    "Default", "Clone", "Drop", "Iterator",
];

/// Environment variables that outside tools read, not this tree.
const OUTSIDE_ENV: &[&str] = &["RUST_LOG", "RUST_BACKTRACE", "CARGO_TARGET_DIR"];

/// The names of a tree, as a student's tree has them.
#[derive(Debug, Default)]
pub struct Names {
    /// Items, fields, variants, proto messages and fields, crates and modules.
    defined: BTreeSet<String>,
    /// The upper-case string literals of the sources (environment variables).
    env: BTreeSet<String>,
    /// The functions of each suite file, by file stem (`raft_2aa`).
    suites: BTreeMap<String, BTreeSet<String>>,
    /// The file names of the tree.
    files: BTreeSet<String>,
}

impl Names {
    /// Reads the tree at `root`.
    pub fn of_tree(root: &Path) -> io::Result<Names> {
        let mut names = Names::default();
        let mut sources = Vec::new();
        walk(root, &mut sources, &mut names.files)?;
        let suites = root.join(super::SUITES);
        for path in sources {
            let text = fs::read_to_string(&path)?;
            match path.extension().and_then(|e| e.to_str()) {
                Some("rs") => {
                    // A file whose markers are malformed is read whole; the handout tools
                    // report its markers.
                    let text = strip_source(&path, &text, &Selection::all())
                        .map(|s| s.source)
                        .unwrap_or(text);
                    rust_names(&text, &mut names.defined, &mut names.env);
                    if path.parent() == Some(suites.as_path()) {
                        let stem = file_stem(&path);
                        let mut fns = BTreeSet::new();
                        rust_names(&text, &mut fns, &mut BTreeSet::new());
                        names.defined.insert(stem.clone());
                        names.suites.insert(stem, fns);
                    }
                }
                Some("proto") => {
                    names.defined.insert(file_stem(&path));
                    proto_names(&text, &mut names.defined);
                }
                _ => {}
            }
        }
        for proto in dependency_protos(root) {
            if let Ok(text) = fs::read_to_string(&proto) {
                names.defined.insert(file_stem(&proto));
                proto_names(&text, &mut names.defined);
            }
        }
        if let Ok(lock) = fs::read_to_string(root.join("Cargo.lock")) {
            for line in lock.lines() {
                if let Some(name) = line.strip_prefix("name = \"") {
                    names
                        .defined
                        .insert(name.trim_end_matches('"').replace('-', "_"));
                }
            }
        }
        Ok(names)
    }

    /// Whether `name` is defined by the tree, is a word of Rust, or (upper case) an
    /// environment variable the tree or a well-known tool reads.
    pub fn knows(&self, name: &str) -> bool {
        self.defined.contains(name)
            || LANGUAGE.contains(&name)
            || self.env.contains(name)
            || OUTSIDE_ENV.contains(&name)
    }

    /// The functions of the suite file `stem`, if there is one.
    pub fn suite(&self, stem: &str) -> Option<&BTreeSet<String>> {
        self.suites.get(stem)
    }

    /// Whether any suite defines the function `name`.
    pub fn is_suite_fn(&self, name: &str) -> bool {
        self.suites.values().any(|fns| fns.contains(name))
    }

    /// Whether a file of this name is in the tree.
    pub fn has_file_named(&self, name: &str) -> bool {
        self.files.contains(name)
    }
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Collects the `.rs` and `.proto` files under `dir` and every file name.
fn walk(dir: &Path, sources: &mut Vec<PathBuf>, files: &mut BTreeSet<String>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            if !SKIPPED.contains(&name.as_str()) && !name.starts_with('.') {
                walk(&path, sources, files)?;
            }
            continue;
        }
        if name.ends_with(".rs") || name.ends_with(".proto") {
            sources.push(path);
        }
        files.insert(name);
    }
    Ok(())
}

/// The `.proto` files of raft-proto (the `eraftpb` messages), wherever cargo keeps its
/// source: found by `cargo metadata`, offline.
fn dependency_protos(root: &Path) -> Vec<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline"])
        .current_dir(root)
        .output();
    let Ok(output) = output else {
        return Vec::new();
    };
    let Ok(meta) = serde_json::from_slice::<serde_json::Value>(&output.stdout) else {
        return Vec::new();
    };
    let mut protos = Vec::new();
    for package in meta["packages"].as_array().into_iter().flatten() {
        if package["name"] != "raft-proto" {
            continue;
        }
        let Some(manifest) = package["manifest_path"].as_str() else {
            continue;
        };
        let dir = Path::new(manifest).with_file_name("proto");
        if let Ok(entries) = fs::read_dir(dir) {
            protos.extend(
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "proto")),
            );
        }
    }
    protos
}

/// The identifiers of `code`, in order, with the punctuation right after each.
fn tokens(code: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            let rest = code[i..].trim_start();
            out.push((&code[start..i], rest));
        } else {
            i += 1;
        }
    }
    out
}

/// The code of a line, without its comment.
fn code_of(line: &str) -> &str {
    line.split("//").next().unwrap_or("")
}

/// The names a Rust source defines, and the upper-case string literals it holds.
fn rust_names(text: &str, defined: &mut BTreeSet<String>, env: &mut BTreeSet<String>) {
    const KEYWORDS: &[&str] = &[
        "fn", "struct", "enum", "trait", "type", "const", "static", "mod", "union",
    ];
    for line in text.lines() {
        for literal in line.split('"').skip(1).step_by(2) {
            let upper = literal
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            if upper && !literal.is_empty() {
                env.insert(literal.to_owned());
            }
        }
        let code = code_of(line);
        let toks = tokens(code);
        for pair in toks.windows(2) {
            let ((word, after), (name, _)) = (pair[0], pair[1]);
            if KEYWORDS.contains(&word) || (word == "macro_rules" && after.starts_with('!')) {
                defined.insert(name.to_owned());
            }
        }
        // A field (`pub name: T,`) or an enum variant (`Name,`, `Name(T)`, `Name { .. }`,
        // `Name = 1,`) leads its line.
        let mut lead = toks.iter().skip_while(|(w, after)| {
            *w == "pub" || (matches!(*w, "crate" | "super") && after.starts_with(')'))
        });
        if let Some((name, after)) = lead.next() {
            let field = after.starts_with(':') && !after.starts_with("::");
            let variant = name.starts_with(|c: char| c.is_ascii_uppercase())
                && (after.is_empty() || after.starts_with([',', '(', '{', '=']));
            if field || variant {
                defined.insert((*name).to_owned());
            }
        }
    }
}

/// The names a `.proto` file defines: messages, enums, services, rpcs, fields, enum values.
fn proto_names(text: &str, defined: &mut BTreeSet<String>) {
    for line in text.lines() {
        let code = code_of(line).trim();
        let toks = tokens(code);
        if let [(kind, _), (name, _), ..] = toks.as_slice() {
            if matches!(*kind, "message" | "enum" | "service" | "rpc" | "oneof") {
                defined.insert((*name).to_owned());
            }
        }
        if code.ends_with(';') {
            if let Some((before, _)) = code.split_once('=') {
                if let Some((name, _)) = tokens(before).last() {
                    defined.insert((*name).to_owned());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_definitions_fields_variants_and_env_literals() {
        let source = "pub struct Peer {\n    pub region_id: u64,\n    cache: Vec<u8>,\n}\n\
                      enum Kind {\n    Vote,\n    Append(u64),\n    Snap { a: u8 },\n    Big = 3,\n}\n\
                      impl Peer {\n    pub(crate) fn propose(&self) { let x = std::env::var(\"LABS_SEED\"); }\n}\n\
                      // fn in_a_comment() {}\n\
                      macro_rules! story { () => {} }\n";
        let (mut defined, mut env) = (BTreeSet::new(), BTreeSet::new());
        rust_names(source, &mut defined, &mut env);
        for name in [
            "Peer",
            "region_id",
            "cache",
            "Kind",
            "Vote",
            "Append",
            "Snap",
            "Big",
            "propose",
            "story",
        ] {
            assert!(defined.contains(name), "{name} in {defined:?}");
        }
        assert!(!defined.contains("in_a_comment"), "{defined:?}");
        assert!(!defined.contains("std"), "{defined:?}");
        assert!(env.contains("LABS_SEED"), "{env:?}");
    }

    #[test]
    fn proto_messages_fields_and_enum_values() {
        let proto = "message RegionEpoch {\n    uint64 conf_ver = 1; // comment\n    \
                     repeated Peer peers = 2;\n}\nenum MessageType {\n    MsgHup = 0;\n}\n\
                     service Scheduler {\n    rpc GetRegion(A) returns (B) {}\n}\n";
        let mut defined = BTreeSet::new();
        proto_names(proto, &mut defined);
        for name in [
            "RegionEpoch",
            "conf_ver",
            "peers",
            "MessageType",
            "MsgHup",
            "Scheduler",
            "GetRegion",
        ] {
            assert!(defined.contains(name), "{name} in {defined:?}");
        }
        assert!(!defined.contains("uint64"), "{defined:?}");
    }
}
