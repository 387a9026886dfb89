//! Classic bugs in the raft stages: 2aa (election), 2ab (replication), 2ac (RawNode), the
//! raft half of 2c (compaction and snapshots) and 3a (leader transfer, membership change).

use crate::mutants::Mutant;

/// The raft entries.
pub const ENTRIES: &[Mutant] = &[Mutant {
    id: "2aa-forget-leader",
    stage: "2aa",
    bug: "a follower forgets who its leader is when it steps down",
    file: "raft/src/raft.rs",
    after: "pub fn become_follower(",
    find: "self.lead = lead;",
    replace: "self.lead = 0;",
}];
