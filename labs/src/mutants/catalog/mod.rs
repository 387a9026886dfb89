//! The catalog of classic student bugs, one file per part of the course: [`raft`] for the raft
//! stages (2aa, 2ab, 2ac, the raft half of 2c, 3a), [`store`] for the standalone server and
//! the raftstore (1, 2b, the store half of 2c, and later 3b), and [`scheduler`] for the
//! scheduler (3c).
//!
//! Each entry is caught when the suite of its stage fails with it applied; `labs mutants`
//! checks that, and the unit test below checks that every entry still applies to this tree.

mod raft;
mod scheduler;
mod store;

use super::Mutant;

/// Every entry, in course order.
pub fn all() -> Vec<Mutant> {
    let mut all: Vec<Mutant> = raft::ENTRIES
        .iter()
        .chain(store::ENTRIES)
        .chain(scheduler::ENTRIES)
        .copied()
        .collect();
    all.sort_by_key(|m| {
        crate::stages::STAGES
            .iter()
            .position(|s| s.name == m.stage)
            .unwrap_or(usize::MAX)
    });
    all
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::path::PathBuf;

    use super::*;

    fn workspace() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map(PathBuf::from)
            .unwrap_or_default()
    }

    /// When a refactor moves or rewrites the code an entry mutates, this names the entry and
    /// why it no longer applies, so the catalog is fixed in the same change.
    #[test]
    fn every_entry_applies_to_this_tree() {
        let mut problems = Vec::new();
        for m in all() {
            let path = workspace().join(m.file);
            match std::fs::read_to_string(&path) {
                Ok(source) => {
                    if let Err(e) = m.apply(&source) {
                        problems.push(format!("{}: {}: {e}", m.id, m.file));
                    }
                }
                Err(e) => problems.push(format!("{}: {}: {e}", m.id, m.file)),
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn entries_are_well_formed() {
        let mut ids = HashSet::new();
        for m in all() {
            assert!(ids.insert(m.id), "duplicate id {}", m.id);
            assert!(m.stage().is_some(), "{}: unknown stage {}", m.id, m.stage);
            assert!(
                m.id.starts_with(&format!("{}-", m.stage)),
                "{}: ids start with their stage",
                m.id
            );
            assert!(!m.bug.is_empty() && !m.bug.contains('\n'), "{}", m.id);
        }
    }
}
