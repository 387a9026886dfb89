//! One harness, two raft libraries: our `raft` crate (`ours`) and the published raft-rs 0.7
//! (`theirs`). Both speak the same `raft_proto::eraftpb` types, so a single generic driver
//! ([`Cluster`]) runs a 3-node in-memory cluster over either, with the same driving loop:
//!
//! 1. keep up to `window` proposals in flight on the leader (proposed but not yet applied
//!    there);
//! 2. one pass over the nodes (1, 2, 3): handle each node's `Ready` — persist entries and
//!    hard state to its `MemStorage`, queue its messages, apply its committed entries,
//!    advance;
//! 3. deliver every queued message to its target's `step`;
//! 4. repeat until all three nodes have applied every proposal.
//!
//! Applying checks each entry against the proposal it must be (payload `i` in order), so a
//! broken run panics instead of reporting a time.

use raft_proto::eraftpb::{Entry, EntryType, Message};

/// Bytes per proposal.
pub const PAYLOAD_LEN: usize = 128;

/// Bytes 8.. of every payload (fixed, so checking them is one `memcmp`).
const FILLER: [u8; PAYLOAD_LEN - 8] = {
    let mut f = [0u8; PAYLOAD_LEN - 8];
    let mut j = 0;
    while j < f.len() {
        f[j] = (j as u8).wrapping_mul(37).wrapping_add(11);
        j += 1;
    }
    f
};

/// The payload of proposal `i`: `i` as 8 little-endian bytes, then a fixed filler.
pub fn payload(i: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(PAYLOAD_LEN);
    v.extend_from_slice(&i.to_le_bytes());
    v.extend_from_slice(&FILLER);
    v
}

/// Whether `data` is exactly `payload(i)` (without allocating).
pub fn payload_matches(i: u64, data: &[u8]) -> bool {
    data.len() == PAYLOAD_LEN && data[..8] == i.to_le_bytes() && data[8..] == FILLER
}

/// The state machine of one node: counts applied proposals and checks that they arrive in
/// proposal order with the proposed bytes.
#[derive(Debug, Default)]
pub struct Applier {
    /// Proposals applied so far (the leader's empty no-op entries are not counted).
    pub count: u64,
    /// Index of the last applied entry (including no-ops).
    pub last_index: u64,
}

impl Applier {
    /// Applies one committed entry.
    pub fn apply(&mut self, e: &Entry) {
        assert!(
            e.index == self.last_index + 1,
            "applied index {} after {}",
            e.index,
            self.last_index
        );
        self.last_index = e.index;
        if e.data.is_empty() {
            return; // a new leader's no-op
        }
        assert_eq!(e.entry_type, EntryType::EntryNormal);
        assert!(
            payload_matches(self.count, &e.data),
            "entry {} does not carry proposal {}",
            e.index,
            self.count
        );
        self.count += 1;
    }
}

/// What the driver needs from a raft library's node (a `RawNode` plus its `MemStorage`).
pub trait Node: Sized {
    /// Library name for reports.
    const NAME: &'static str;
    /// Node `id` of a group with voters `1..=n`, fresh storage.
    fn create(id: u64, n: u64) -> Self;
    fn campaign(&mut self);
    fn tick(&mut self);
    fn propose(&mut self, data: Vec<u8>);
    fn step(&mut self, m: Message);
    fn is_leader(&self) -> bool;
    /// Handles one `Ready` if there is one: persist, queue messages into `out`, apply
    /// committed entries into `app`, advance. Returns whether there was one.
    fn handle_ready(&mut self, out: &mut Vec<Message>, app: &mut Applier) -> bool;
}

/// Result of one timed run.
#[derive(Debug, Clone, Copy)]
pub struct RunStats {
    /// Driving-loop iterations.
    pub iterations: u64,
    /// Messages delivered.
    pub messages: u64,
    /// Iterations in which nothing happened, so the leader was ticked (should stay 0).
    pub stalls: u64,
    /// Messages delivered, by `MessageType` number.
    pub by_type: [u64; 24],
}

/// A 3-node cluster whose node 1 is leader and whose log is settled (every node has applied
/// the leader's no-op and no message is in flight).
pub struct Cluster<N: Node> {
    pub nodes: Vec<N>,
    pub appliers: Vec<Applier>,
    outbox: Vec<Message>,
    inbox: Vec<Message>,
}

impl<N: Node> Cluster<N> {
    /// Builds the cluster and elects node 1 (not part of any timing).
    pub fn elected(n: u64) -> Self {
        let mut c = Cluster {
            nodes: (1..=n).map(|id| N::create(id, n)).collect(),
            appliers: (0..n).map(|_| Applier::default()).collect(),
            outbox: Vec::with_capacity(1024),
            inbox: Vec::with_capacity(1024),
        };
        c.nodes[0].campaign();
        let mut rounds = 0;
        let mut by_type = [0; 24];
        while c.pump(&mut by_type).1 {
            rounds += 1;
            assert!(rounds < 1000, "{}: election does not settle", N::NAME);
        }
        assert!(c.nodes[0].is_leader(), "{}: node 1 did not win", N::NAME);
        for (i, n) in c.nodes.iter().enumerate().skip(1) {
            assert!(!n.is_leader(), "{}: node {} is leader too", N::NAME, i + 1);
        }
        let noop = c.appliers[0].last_index;
        assert!(noop > 0, "{}: the leader's no-op was not applied", N::NAME);
        for a in &c.appliers {
            assert_eq!(a.last_index, noop, "{}: nodes did not settle", N::NAME);
        }
        c
    }

    /// One pass: every node's `Ready`, then every queued message delivered. Returns
    /// (messages delivered, whether anything happened).
    fn pump(&mut self, by_type: &mut [u64; 24]) -> (u64, bool) {
        let mut any = false;
        for (node, app) in self.nodes.iter_mut().zip(self.appliers.iter_mut()) {
            any |= node.handle_ready(&mut self.outbox, app);
        }
        std::mem::swap(&mut self.outbox, &mut self.inbox);
        let delivered = self.inbox.len() as u64;
        any |= delivered > 0;
        for m in self.inbox.drain(..) {
            by_type[(m.msg_type as usize).min(23)] += 1;
            let to = m.to;
            assert!(
                to >= 1 && to as usize <= self.nodes.len(),
                "message to {to}"
            );
            self.nodes[to as usize - 1].step(m);
        }
        (delivered, any)
    }

    /// Proposes `proposals` on node 1, at most `window` in flight (proposed but not yet
    /// applied on the leader), and drives the cluster until every node applied all of them.
    /// Panics if any node applies anything else, or in another order.
    pub fn run(&mut self, proposals: Vec<Vec<u8>>, window: u64) -> RunStats {
        let total = proposals.len() as u64;
        let base: Vec<u64> = self.appliers.iter().map(|a| a.count).collect();
        assert!(base.iter().all(|&b| b == 0), "run() on a used cluster");
        let mut props = proposals.into_iter();
        let mut proposed = 0u64;
        let mut stats = RunStats {
            iterations: 0,
            messages: 0,
            stalls: 0,
            by_type: [0; 24],
        };
        loop {
            let leader_applied = self.appliers[0].count;
            while proposed < total && proposed - leader_applied < window {
                self.nodes[0].propose(props.next().expect("proposal"));
                proposed += 1;
            }
            let (delivered, any) = self.pump(&mut stats.by_type);
            stats.iterations += 1;
            stats.messages += delivered;
            if self.appliers.iter().all(|a| a.count == total) {
                break;
            }
            if !any {
                // Nothing moved: let the leader's heartbeat probe the followers.
                stats.stalls += 1;
                assert!(stats.stalls < 1000, "{}: the cluster is stuck", N::NAME);
                self.nodes[0].tick();
            }
        }
        for a in &self.appliers {
            assert_eq!(a.count, total);
        }
        stats
    }
}

/// The proposals of one run: `payload(0..n)`.
pub fn proposals(n: u64) -> Vec<Vec<u8>> {
    (0..n).map(payload).collect()
}

/// Our `raft` crate.
pub mod ours_impl {
    use super::{Applier, Message, Node};
    use ours::{Config, MemStorage, RawNode, StateRole};

    pub struct OursNode {
        pub node: RawNode<MemStorage>,
        pub storage: MemStorage,
    }

    /// The config the harness uses for our raft. It has no flow-control knobs (no message
    /// size limit, no in-flight limit: the leader sends everything a follower misses at
    /// once) and always merges consecutive appends to one peer into one message.
    pub fn config(id: u64) -> Config {
        let mut c = Config::new(id);
        c.election_tick = 10;
        c.heartbeat_tick = 1;
        c
    }

    impl Node for OursNode {
        const NAME: &'static str = "ours";

        fn create(id: u64, n: u64) -> Self {
            let storage = MemStorage::new_with_conf_state((1..=n).collect());
            let node = RawNode::new(&config(id), storage.clone()).expect("ours: RawNode::new");
            OursNode { node, storage }
        }
        fn campaign(&mut self) {
            self.node.campaign().expect("ours: campaign");
        }
        fn tick(&mut self) {
            self.node.tick();
        }
        fn propose(&mut self, data: Vec<u8>) {
            self.node.propose(data).expect("ours: propose");
        }
        fn step(&mut self, m: Message) {
            self.node.step(m).expect("ours: step");
        }
        fn is_leader(&self) -> bool {
            self.node.raft.state == StateRole::Leader
        }
        fn handle_ready(&mut self, out: &mut Vec<Message>, app: &mut Applier) -> bool {
            if !self.node.has_ready() {
                return false;
            }
            let mut rd = self.node.ready();
            if let Some(snap) = &rd.snapshot {
                self.storage
                    .wl()
                    .apply_snapshot(snap.clone())
                    .expect("ours: apply snapshot");
            }
            if !rd.entries.is_empty() {
                self.storage.wl().append(&rd.entries).expect("ours: append");
            }
            if let Some(hs) = &rd.hard_state {
                self.storage.wl().set_hard_state(hs.clone());
            }
            out.append(&mut rd.messages);
            for e in &rd.committed_entries {
                app.apply(e);
            }
            self.node.advance(rd);
            true
        }
    }
}

/// raft-rs 0.7 from crates.io.
pub mod theirs_impl {
    use super::{Applier, Message, Node};
    use raft_proto::eraftpb::ConfState;
    use theirs::{storage::MemStorage, Config, RawNode, StateRole};

    pub struct TheirsNode {
        pub node: RawNode<MemStorage>,
        pub storage: MemStorage,
    }

    /// Whether raft-rs merges an append into the previous still-queued append to the same
    /// peer (`Config::batch_append`). Our raft always does that, so the fair comparison
    /// turns it on; `RAFT_BENCH_THEIRS_BATCH_APPEND=0` measures raft-rs's default (off).
    pub fn batch_append() -> bool {
        std::env::var("RAFT_BENCH_THEIRS_BATCH_APPEND").map_or(true, |v| v != "0")
    }

    /// A typical raft-rs configuration: messages may batch up to 1 MiB, 256 appends in
    /// flight per follower, `batch_append` (see [`batch_append`]), no pre-vote /
    /// check-quorum (ours has neither), no limits on uncommitted or per-Ready committed
    /// size.
    pub fn config(id: u64) -> Config {
        Config {
            id,
            election_tick: 10,
            heartbeat_tick: 1,
            max_size_per_msg: 1024 * 1024,
            max_inflight_msgs: 256,
            batch_append: batch_append(),
            ..Default::default()
        }
    }

    fn logger() -> slog::Logger {
        slog::Logger::root(slog::Discard, slog::o!())
    }

    impl Node for TheirsNode {
        const NAME: &'static str = "raft-rs 0.7";

        fn create(id: u64, n: u64) -> Self {
            let voters: Vec<u64> = (1..=n).collect();
            let storage = MemStorage::new_with_conf_state(ConfState::from((voters, vec![])));
            let cfg = config(id);
            cfg.validate().expect("theirs: config");
            let node =
                RawNode::new(&cfg, storage.clone(), &logger()).expect("theirs: RawNode::new");
            TheirsNode { node, storage }
        }
        fn campaign(&mut self) {
            self.node.campaign().expect("theirs: campaign");
        }
        fn tick(&mut self) {
            self.node.tick();
        }
        fn propose(&mut self, data: Vec<u8>) {
            self.node.propose(vec![], data).expect("theirs: propose");
        }
        fn step(&mut self, m: Message) {
            self.node.step(m).expect("theirs: step");
        }
        fn is_leader(&self) -> bool {
            self.node.raft.state == StateRole::Leader
        }
        fn handle_ready(&mut self, out: &mut Vec<Message>, app: &mut Applier) -> bool {
            if !self.node.has_ready() {
                return false;
            }
            let mut rd = self.node.ready();
            // A leader's messages may go out before its entries are persisted.
            out.append(&mut rd.take_messages());
            if !rd.snapshot().is_empty() {
                self.storage
                    .wl()
                    .apply_snapshot(rd.snapshot().clone())
                    .expect("theirs: apply snapshot");
            }
            if !rd.entries().is_empty() {
                self.storage
                    .wl()
                    .append(rd.entries())
                    .expect("theirs: append");
            }
            if let Some(hs) = rd.hs() {
                self.storage.wl().set_hardstate(hs.clone());
            }
            out.append(&mut rd.take_persisted_messages());
            for e in rd.committed_entries() {
                app.apply(e);
            }
            let mut light = self.node.advance(rd);
            if let Some(commit) = light.commit_index() {
                self.storage.wl().mut_hard_state().set_commit(commit);
            }
            out.append(&mut light.take_messages());
            for e in light.committed_entries() {
                app.apply(e);
            }
            self.node.advance_apply();
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip() {
        for i in [0u64, 1, 255, 256, 9_999] {
            assert!(payload_matches(i, &payload(i)));
            assert!(!payload_matches(i + 1, &payload(i)));
        }
    }

    fn check<N: Node>() {
        let mut c = Cluster::<N>::elected(3);
        let stats = c.run(proposals(2_000), 64);
        assert_eq!(stats.stalls, 0, "{}", N::NAME);
    }

    #[test]
    fn ours_applies_everything_in_order() {
        check::<ours_impl::OursNode>();
    }

    #[test]
    fn theirs_applies_everything_in_order() {
        check::<theirs_impl::TheirsNode>();
    }
}
