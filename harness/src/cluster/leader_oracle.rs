//! Leader completeness, checked from outside the stores: a leader must hold every entry
//! that any replica of its region knows to be committed (Raft §5.4.1).
//!
//! A raft that elects a candidate whose log is behind (a vote granted without the
//! up-to-date check, say) produces such a leader. Nothing crashes: the followers refuse to
//! overwrite their committed entries, the leader keeps probing, clients time out. This
//! check names the broken rule the moment the watchdog sees such a leader, instead of
//! waiting for the cluster to wedge.
//!
//! The rule, as checked: for a leader `L` of term `t` and any replica `P` of the same
//! region, if `P` has committed index `c` whose entry has a term `≤ t`, then `L`'s log must
//! reach `c` (an entry committed in an earlier term is in every later leader's log; one of
//! term `t` was created by `L`). A deposed leader still believing in an older term is not
//! held to entries of newer terms.

use super::World;

/// The first violation of leader completeness among the running stores, described.
pub(crate) fn check(w: &World) -> Option<String> {
    let peers: Vec<(u64, &raftstore::Peer)> = w
        .stores
        .iter()
        .flat_map(|(&id, n)| {
            n.store
                .iter()
                .flat_map(move |s| s.peers().map(move |p| (id, p)))
        })
        .collect();
    for &(lstore, leader) in peers.iter().filter(|(_, p)| p.is_leader()) {
        let lr = &leader.raft_group.raft;
        for &(pstore, p) in peers
            .iter()
            .filter(|(s, p)| p.region_id == leader.region_id && *s != lstore)
        {
            let log = &p.raft_group.raft.raft_log;
            let committed = log.committed;
            let Ok(term) = log.term(committed) else {
                continue;
            };
            if term <= lr.term && committed > lr.raft_log.last_index() {
                return Some(format!(
                    "leader completeness: peer {} on store {lstore} leads region {} in term {} with a log ending at {}, but peer {} on store {pstore} has committed index {committed} (term {term}): a leader must hold every committed entry",
                    leader.meta.id,
                    leader.region_id,
                    lr.term,
                    lr.raft_log.last_index(),
                    p.meta.id
                ));
            }
        }
    }
    None
}
