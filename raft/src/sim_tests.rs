//! A randomized cluster simulation over `RawNode`: message loss, duplication and
//! reordering, partitions, ticks, proposals, log compaction and snapshots, membership
//! changes — checking Raft's safety properties throughout and liveness once healed.

use std::collections::{BTreeMap, BTreeSet};

use protobuf::Message as _;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::eraftpb::{ConfChange, ConfChangeType, EntryType, Message, MessageType};
use crate::{Config, MemStorage, RawNode, SnapshotStatus, StateRole};

struct Node {
    raw: RawNode<MemStorage>,
    storage: MemStorage,
    applied: u64,
}

struct Sim {
    rng: SmallRng,
    nodes: BTreeMap<u64, Node>,
    net: Vec<Message>,
    isolated: Option<u64>,
    drop_rate: f64,
    // Safety oracles: the entry applied at each index, and the leader of each term.
    applied_at: BTreeMap<u64, (u64, Vec<u8>)>,
    leader_of: BTreeMap<u64, u64>,
    next_data: u64,
    // Nodes whose removal was applied somewhere: destroyed, as the raftstore would.
    removed: BTreeSet<u64>,
    snapshots_applied: u64,
}

impl Sim {
    fn new(seed: u64, n: u64) -> Sim {
        let voters: Vec<u64> = (1..=n).collect();
        let nodes = voters
            .iter()
            .map(|&id| {
                let storage = MemStorage::new_with_conf_state(voters.clone());
                let mut c = Config::new(id);
                c.seed = seed;
                let raw = RawNode::new(&c, storage.clone()).unwrap();
                (
                    id,
                    Node {
                        raw,
                        storage,
                        applied: 0,
                    },
                )
            })
            .collect();
        Sim {
            rng: SmallRng::seed_from_u64(seed),
            nodes,
            net: Vec::new(),
            isolated: None,
            drop_rate: (seed % 5) as f64 * 0.08,
            applied_at: BTreeMap::new(),
            leader_of: BTreeMap::new(),
            next_data: 0,
            removed: BTreeSet::new(),
            snapshots_applied: 0,
        }
    }

    fn check_leaders(&mut self) {
        for (&id, n) in &self.nodes {
            let r = &n.raw.raft;
            if r.state == StateRole::Leader {
                let prev = *self.leader_of.entry(r.term).or_insert(id);
                if prev != id {
                    for (id, n) in &self.nodes {
                        let r = &n.raw.raft;
                        eprintln!(
                            "node {id}: {:?} term {} vote {} members {:?} committed {} applied {} last {}",
                            r.state,
                            r.term,
                            r.vote,
                            r.conf_state().voters,
                            r.raft_log.committed,
                            r.raft_log.applied,
                            r.raft_log.last_index()
                        );
                    }
                    panic!("two leaders in term {}: {prev} and {id}", r.term);
                }
            }
        }
    }

    fn process_readies(&mut self) {
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        for id in ids {
            let Some(n) = self.nodes.get_mut(&id) else {
                continue;
            };
            if !n.raw.has_ready() {
                continue;
            }
            let rd = n.raw.ready();
            if let Some(snap) = &rd.snapshot {
                n.storage.wl().apply_snapshot(snap.clone()).unwrap();
                n.applied = n.applied.max(snap.get_metadata().index);
                self.snapshots_applied += 1;
            }
            n.storage.wl().append(&rd.entries).unwrap();
            if let Some(hs) = &rd.hard_state {
                n.storage.wl().set_hard_state(hs.clone());
            }
            self.net.extend(rd.messages.iter().cloned());
            let mut ccs = Vec::new();
            for e in &rd.committed_entries {
                assert_eq!(e.index, n.applied + 1, "node {id} applies out of order");
                n.applied = e.index;
                let seen = self
                    .applied_at
                    .entry(e.index)
                    .or_insert((e.term, e.data.to_vec()));
                assert_eq!(
                    (seen.0, &seen.1[..]),
                    (e.term, &e.data[..]),
                    "node {id} applied a different entry at {}",
                    e.index
                );
                if e.entry_type == EntryType::EntryConfChange {
                    ccs.push(ConfChange::parse_from_bytes(&e.data).unwrap());
                }
            }
            for cc in ccs {
                let cs = n.raw.apply_conf_change(&cc).unwrap();
                n.storage.wl().set_conf_state(cs);
                if cc.change_type == ConfChangeType::RemoveNode {
                    self.removed.insert(cc.node_id);
                }
            }
            n.raw.advance(rd);
        }
        self.check_leaders();
    }

    fn deliver_one(&mut self, lossy: bool) {
        if self.net.is_empty() {
            return;
        }
        let i = self.rng.gen_range(0..self.net.len());
        let m = self.net.swap_remove(i);
        let lost = self.removed.contains(&m.from)
            || self.removed.contains(&m.to)
            || (lossy
                && (self.rng.gen_bool(self.drop_rate)
                    || self.isolated == Some(m.from)
                    || self.isolated == Some(m.to)));
        if lost {
            self.report_snapshot(&m, SnapshotStatus::Failure);
            return;
        }
        if lossy && self.rng.gen_bool(0.05) {
            self.net.push(m.clone());
        }
        let snap = m.msg_type == MessageType::MsgSnapshot;
        let (from, to) = (m.from, m.to);
        if let Some(n) = self.nodes.get_mut(&to) {
            let _ = n.raw.step(m);
        }
        if snap {
            if let Some(n) = self.nodes.get_mut(&from) {
                n.raw.report_snapshot(to, SnapshotStatus::Finish);
            }
        }
    }

    // Tells the sender of a snapshot how its transfer went, as a transport does.
    fn report_snapshot(&mut self, m: &Message, status: SnapshotStatus) {
        if m.msg_type != MessageType::MsgSnapshot {
            return;
        }
        if let Some(n) = self.nodes.get_mut(&m.from) {
            n.raw.report_snapshot(m.to, status);
        }
    }

    fn leader(&self) -> Option<u64> {
        self.nodes
            .iter()
            .filter(|(id, n)| n.raw.raft.state == StateRole::Leader && !self.removed.contains(id))
            .max_by_key(|(_, n)| n.raw.raft.term)
            .map(|(&id, _)| id)
    }

    fn step_randomly(&mut self) {
        match self.rng.gen_range(0..100) {
            0..=14 => {
                let id = self.rng.gen_range(1..=self.nodes.len() as u64);
                if let Some(n) = self.nodes.get_mut(&id) {
                    n.raw.tick();
                }
            }
            15..=24 => {
                if let Some(l) = self.leader() {
                    self.next_data += 1;
                    let data = self.next_data.to_be_bytes().to_vec();
                    let _ = self.nodes.get_mut(&l).unwrap().raw.propose(data);
                }
            }
            25 => {
                self.isolated = if self.isolated.is_some() {
                    None
                } else {
                    Some(self.rng.gen_range(1..=self.nodes.len() as u64))
                };
            }
            26 => {
                // Compact a node's log up to what it applied, keeping a snapshot.
                let id = self.rng.gen_range(1..=self.nodes.len() as u64);
                let n = self.nodes.get_mut(&id).unwrap();
                let applied = n.raw.raft.raft_log.applied;
                let cs = n.raw.raft.conf_state();
                let mut s = n.storage.wl();
                if applied > s.first_index() && s.create_snapshot(applied, Some(cs), vec![]).is_ok()
                {
                    s.compact(applied).unwrap();
                }
            }
            28 => {
                // Crash and restart a node from what it persisted.
                let id = self.rng.gen_range(1..=self.nodes.len() as u64);
                let seed = self.rng.gen();
                let n = self.nodes.get_mut(&id).unwrap();
                let mut c = Config::new(id);
                c.seed = seed;
                c.applied = n.applied;
                n.raw = RawNode::new(&c, n.storage.clone()).unwrap();
            }
            27 => {
                if let Some(l) = self.leader() {
                    let id = self.rng.gen_range(1..=self.nodes.len() as u64);
                    self.nodes.get_mut(&l).unwrap().raw.transfer_leader(id);
                }
            }
            _ => self.deliver_one(true),
        }
        self.process_readies();
    }

    fn heal_and_settle(&mut self) {
        self.isolated = None;
        for _ in 0..20_000 {
            self.process_readies();
            while !self.net.is_empty() {
                self.deliver_one(false);
                self.process_readies();
            }
            let settled = self.leader().is_some_and(|l| {
                let leader = &self.nodes[&l].raw.raft;
                let target = leader.raft_log.last_index();
                self.nodes.iter().all(|(id, n)| {
                    // Members in the leader's view must have everything; so must nodes that
                    // think they are members (unless destroyed).
                    let member = leader.prs.contains_key(id) || n.raw.raft.promotable();
                    self.removed.contains(id)
                        || !member
                        || (n.applied == target && n.raw.raft.raft_log.committed == target)
                })
            });
            if settled {
                return;
            }
            for n in self.nodes.values_mut() {
                n.raw.tick();
            }
        }
        panic!("the cluster did not settle after healing");
    }
}

// How many seeds a test runs: `RAFT_SIM_SEEDS` (for long local searches) or the default.
fn seeds(default: u64) -> u64 {
    std::env::var("RAFT_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

#[test]
fn random_schedules_are_safe_and_live() {
    safe_and_live(0..seeds(24));
}

/// As `random_schedules_are_safe_and_live`, with the logs releasing every applied and
/// persisted entry but one from memory (read back from storage, which the schedules also
/// compact behind the logs' backs).
#[test]
fn random_schedules_with_released_entries() {
    crate::raft_log::set_test_mem_keep(1);
    safe_and_live(200..200 + seeds(24));
    crate::raft_log::set_test_mem_keep(2);
    membership_changes(300..300 + seeds(8));
    crate::raft_log::set_test_mem_keep(crate::raft_log::MEM_KEEP);
}

fn safe_and_live(seeds: std::ops::Range<u64>) {
    let mut snapshots = 0;
    for seed in seeds {
        let n = if seed % 2 == 0 { 3 } else { 5 };
        let mut sim = Sim::new(seed, n);
        for _ in 0..3_000 {
            sim.step_randomly();
        }
        sim.heal_and_settle();
        // Something was agreed on, and a new proposal still commits everywhere.
        // A pending leader transfer may refuse proposals for up to an election timeout.
        let mut proposed = false;
        for _ in 0..100 {
            let l = sim.leader().unwrap();
            let node = sim.nodes.get_mut(&l).unwrap();
            if node.raw.propose(b"last".to_vec()).is_ok() {
                proposed = true;
                break;
            }
            node.raw.tick();
            sim.heal_and_settle();
        }
        assert!(
            proposed,
            "seed {seed}: the leader never accepted a proposal"
        );
        sim.heal_and_settle();
        let l = sim.leader().unwrap();
        let last = sim.nodes[&l].raw.raft.raft_log.last_index();
        assert!(last > 1, "seed {seed}: nothing committed");
        for (id, node) in &sim.nodes {
            assert_eq!(node.applied, last, "seed {seed}: node {id}");
        }
        snapshots += sim.snapshots_applied;
    }
    assert!(snapshots > 0, "no schedule exercised snapshots");
}

#[test]
fn random_schedules_with_membership_changes() {
    membership_changes(100..100 + seeds(12));
}

fn membership_changes(seeds: std::ops::Range<u64>) {
    for seed in seeds {
        let mut sim = Sim::new(seed, 3);
        // Node 4 starts with an empty log and the bootstrap membership (so it does not count
        // itself a member) and joins through a conf change later.
        let storage = MemStorage::new_with_conf_state(vec![1, 2, 3]);
        let mut c = Config::new(4);
        c.seed = seed;
        let raw = RawNode::new(&c, storage.clone()).unwrap();
        sim.nodes.insert(
            4,
            Node {
                raw,
                storage,
                applied: 0,
            },
        );
        let mut added = false;
        let mut removed = false;
        for i in 0..4_000 {
            sim.step_randomly();
            if i % 500 == 499 {
                if let Some(l) = sim.leader() {
                    let cc = if !added {
                        ConfChange {
                            change_type: ConfChangeType::AddNode,
                            node_id: 4,
                            ..Default::default()
                        }
                    } else {
                        ConfChange {
                            change_type: ConfChangeType::RemoveNode,
                            node_id: if l == 1 { 2 } else { 1 },
                            ..Default::default()
                        }
                    };
                    if sim
                        .nodes
                        .get_mut(&l)
                        .unwrap()
                        .raw
                        .propose_conf_change(cc)
                        .is_ok()
                    {
                        if added {
                            removed = true;
                        }
                        added = true;
                    }
                }
            }
        }
        sim.heal_and_settle();
        let l = sim.leader().unwrap();
        let members = sim.nodes[&l].raw.raft.conf_state().voters;
        assert!(!members.is_empty(), "seed {seed}");
        let _ = removed;
        for (id, node) in &sim.nodes {
            if members.contains(id) {
                assert_eq!(
                    node.raw.raft.raft_log.committed, sim.nodes[&l].raw.raft.raft_log.committed,
                    "seed {seed}: member {id} lags"
                );
            }
        }
    }
}
