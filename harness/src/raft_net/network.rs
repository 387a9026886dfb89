//! The in-memory, synchronous network of raft nodes: FIFO delivery until quiet, with seeded
//! drops, cut links, isolated nodes and ignored message types.
//!
//! Like a real transport, the network tells the sender of every `MsgSnapshot` how it went
//! ([`Raft::report_snapshot`](raft::Raft::report_snapshot)): `Failure` when it drops the
//! message (a filter, a black hole, an unknown id), `Finish` once the receiver stepped it.
//! A leader keeps a peer paused while a snapshot to it is in flight, so without the reports
//! a lost snapshot would stop replication to that peer for good.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use raft::eraftpb::{Message, MessageType};
use raft::{Config, MemStorage, SnapshotStatus};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::helpers::{labs_seed, new_test_config, new_test_raft_with_config, SeedReport, TestRaft};

/// How many messages one [`Network::send`] may deliver before it gives up: a network that is
/// still busy after this many deliveries has nodes answering each other forever. Every
/// exchange in the suites needs fewer than 2,000 (checked under 5 seeds); at a million, a
/// node that sends `MsgTimeoutNow` to every up-to-date follower kept a test busy for minutes
/// as each new term grew the logs, instead of failing it in milliseconds.
pub const MAX_DELIVERIES: usize = 20_000;

/// What a slot of a [`Network`] holds when the network is built.
pub enum Slot {
    /// "Create one": a fresh node with election 10, heartbeat 1, its own `MemStorage` and
    /// peers `1..=n` (the network's config hook may change the config).
    New,
    /// Swallows every message and emits nothing.
    BlackHole,
    /// An existing node; it takes the slot's id.
    Node(Box<TestRaft>),
}

impl From<TestRaft> for Slot {
    fn from(r: TestRaft) -> Self {
        Slot::Node(Box::new(r))
    }
}

/// A filter hook: keeps a node-produced message if it returns true.
pub type MessageHook = Box<dyn FnMut(&Message) -> bool>;

/// Nodes exchanging messages in memory, one message at a time, in FIFO order.
///
/// Slots are numbered `1..=n`. Only messages produced by nodes are filtered; the messages a
/// test hands to [`Network::send`] are always delivered (unless addressed to a black hole).
/// The sender of a `MsgSnapshot` hears how it went, as from a real transport (see the
/// module docs).
pub struct Network {
    /// The nodes by id; `None` is a black hole.
    pub peers: BTreeMap<u64, Option<TestRaft>>,
    /// The storage of every node the network created, by id.
    pub storage: BTreeMap<u64, MemStorage>,
    drops: BTreeMap<(u64, u64), f64>,
    ignored: BTreeSet<i32>,
    hook: Option<MessageHook>,
    rng: StdRng,
    report: SeedReport,
}

impl Network {
    /// A network over `slots`, seeded from [`labs_seed`].
    pub fn new(slots: Vec<Slot>) -> Network {
        Network::with_config(slots, labs_seed(), |_| {})
    }

    /// A network over `slots` whose drops are decided by an RNG seeded with `seed`.
    pub fn with_seed(slots: Vec<Slot>, seed: u64) -> Network {
        Network::with_config(slots, seed, |_| {})
    }

    /// A network over `slots`; `config_hook` adjusts the config of every node it creates.
    pub fn with_config(slots: Vec<Slot>, seed: u64, config_hook: impl Fn(&mut Config)) -> Network {
        let n = slots.len() as u64;
        let ids: Vec<u64> = (1..=n).collect();
        let mut peers = BTreeMap::new();
        let mut storage = BTreeMap::new();
        for (id, slot) in ids.iter().copied().zip(slots) {
            match slot {
                Slot::New => {
                    let s = MemStorage::new();
                    let mut c: Config = new_test_config(id, 10, 1);
                    c.peers = ids.clone();
                    config_hook(&mut c);
                    let r = new_test_raft_with_config(&c, s.clone());
                    storage.insert(id, s);
                    peers.insert(id, Some(r));
                }
                Slot::BlackHole => {
                    peers.insert(id, None);
                }
                Slot::Node(mut r) => {
                    r.id = id;
                    peers.insert(id, Some(*r));
                }
            }
        }
        Network {
            peers,
            storage,
            drops: BTreeMap::new(),
            ignored: BTreeSet::new(),
            hook: None,
            rng: StdRng::seed_from_u64(seed),
            report: SeedReport::new(seed),
        }
    }

    /// The seed of this network's RNG.
    pub fn seed(&self) -> u64 {
        self.report.seed()
    }

    /// The node with `id`.
    ///
    /// # Panics
    /// If there is no such slot or it is a black hole.
    pub fn peer(&self, id: u64) -> &TestRaft {
        match self.peers.get(&id) {
            Some(Some(r)) => r,
            Some(None) => panic!("slot {id} is a black hole, not a raft node"),
            None => panic!("the network has no slot {id}"),
        }
    }

    /// The node with `id`, mutably.
    ///
    /// # Panics
    /// If there is no such slot or it is a black hole.
    pub fn peer_mut(&mut self, id: u64) -> &mut TestRaft {
        match self.peers.get_mut(&id) {
            Some(Some(r)) => r,
            Some(None) => panic!("slot {id} is a black hole, not a raft node"),
            None => panic!("the network has no slot {id}"),
        }
    }

    /// The storage of node `id`: the one the network created, else the node's own handle.
    ///
    /// # Panics
    /// If there is no such node.
    pub fn storage_of(&self, id: u64) -> MemStorage {
        match self.storage.get(&id) {
            Some(s) => s.clone(),
            None => self.peer(id).raft_log.storage.clone(),
        }
    }

    /// Delivers `msgs`, then everything the nodes produce in answer, in FIFO order, until no
    /// message is left. `msgs` themselves are not filtered; node output is. After a
    /// `MsgSnapshot` is stepped, its sender gets `report_snapshot(to, Finish)`; one sent to
    /// a black hole or an unknown id is lost, and its sender gets `Failure`. Whatever a
    /// report makes the sender queue goes out with the sender's next answer.
    ///
    /// # Panics
    /// If a node produces a `MsgHup`, or the network is still busy after
    /// [`MAX_DELIVERIES`] deliveries.
    pub fn send(&mut self, msgs: Vec<Message>) {
        let mut queue: VecDeque<Message> = msgs.into();
        let mut delivered = 0usize;
        while let Some(m) = queue.pop_front() {
            delivered += 1;
            assert!(
                delivered <= MAX_DELIVERIES,
                "the network did not quiesce after {MAX_DELIVERIES} deliveries; last message {m:?}"
            );
            let (from, to) = (m.from, m.to);
            let snapshot = m.msg_type == MessageType::MsgSnapshot;
            let out = match self.peers.get_mut(&to) {
                Some(Some(r)) => {
                    // Errors are part of the protocol here (a dropped proposal, say).
                    let _ = r.step(m);
                    r.read_messages()
                }
                // A black hole, or an id outside the network: the message is lost.
                _ => {
                    if snapshot {
                        self.report_snapshot(from, to, SnapshotStatus::Failure);
                    }
                    continue;
                }
            };
            if snapshot {
                self.report_snapshot(from, to, SnapshotStatus::Finish);
            }
            let kept = self.filter(out);
            queue.extend(kept);
        }
    }

    /// Applies the filters to messages produced by a node. The sender of a `MsgSnapshot`
    /// they drop gets `report_snapshot(to, Failure)`.
    ///
    /// # Panics
    /// If one of them is a `MsgHup` (local only: a node must never send it).
    pub fn filter(&mut self, msgs: Vec<Message>) -> Vec<Message> {
        let mut kept = Vec::with_capacity(msgs.len());
        for m in msgs {
            assert!(
                m.msg_type != MessageType::MsgHup,
                "node {} sent a MsgHup to node {}: MsgHup is a local message that must never \
                 leave a node ({m:?})",
                m.from,
                m.to
            );
            if self.keeps(&m) {
                kept.push(m);
            } else if m.msg_type == MessageType::MsgSnapshot {
                self.report_snapshot(m.from, m.to, SnapshotStatus::Failure);
            }
        }
        kept
    }

    // Whether the filters let `m` through (ignored types, drops, then the hook).
    fn keeps(&mut self, m: &Message) -> bool {
        if self.ignored.contains(&(m.msg_type as i32)) {
            return false;
        }
        let perc = self.drops.get(&(m.from, m.to)).copied().unwrap_or(0.0);
        if perc > 0.0 && self.rng.gen::<f64>() < perc {
            return false;
        }
        match self.hook.as_mut() {
            Some(hook) => hook(m),
            None => true,
        }
    }

    // Tells node `from` (if it is a node of this network) how its snapshot to `to` went.
    fn report_snapshot(&mut self, from: u64, to: u64, status: SnapshotStatus) {
        if let Some(Some(r)) = self.peers.get_mut(&from) {
            r.report_snapshot(to, status);
        }
    }

    /// Drops messages `from -> to` with probability `perc` (0.0 ..= 1.0).
    pub fn drop(&mut self, from: u64, to: u64, perc: f64) {
        self.drops.insert((from, to), perc);
    }

    /// Drops every message between `a` and `b`, both directions.
    pub fn cut(&mut self, a: u64, b: u64) {
        self.drop(a, b, 1.0);
        self.drop(b, a, 1.0);
    }

    /// Drops every message to and from `id`.
    pub fn isolate(&mut self, id: u64) {
        let ids: Vec<u64> = self.peers.keys().copied().collect();
        for other in ids {
            if other != id {
                self.cut(id, other);
            }
        }
    }

    /// Drops every message of type `t`.
    pub fn ignore(&mut self, t: MessageType) {
        self.ignored.insert(t as i32);
    }

    /// Keeps a node-produced message only if `hook` returns true for it (after the other
    /// filters).
    pub fn set_hook(&mut self, hook: impl FnMut(&Message) -> bool + 'static) {
        self.hook = Some(Box::new(hook));
    }

    /// Clears drops and ignored types (the hook stays).
    pub fn recover(&mut self) {
        self.drops.clear();
        self.ignored.clear();
    }
}

// lab:needs 2aa,2ab,2ac,2c,3a
#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft_net::new_message;

    fn holes(n: usize) -> Vec<Slot> {
        (0..n).map(|_| Slot::BlackHole).collect()
    }

    fn msgs() -> Vec<Message> {
        let mut v = Vec::new();
        for from in 1..=3 {
            for to in 1..=3 {
                if from != to {
                    v.push(new_message(from, to, MessageType::MsgAppend, 1));
                }
            }
        }
        v
    }

    fn links(ms: &[Message]) -> Vec<(u64, u64)> {
        ms.iter().map(|m| (m.from, m.to)).collect()
    }

    #[test]
    #[should_panic(expected = "MsgHup is a local message")]
    fn a_node_sending_msg_hup_panics() {
        let mut net = Network::with_seed(holes(2), 1);
        net.filter(vec![new_message(1, 2, MessageType::MsgHup, 0)]);
    }

    #[test]
    fn cut_isolate_ignore_and_recover() {
        let mut net = Network::with_seed(holes(3), 1);
        net.cut(1, 2);
        assert_eq!(
            links(&net.filter(msgs())),
            vec![(1, 3), (2, 3), (3, 1), (3, 2)]
        );
        net.recover();
        net.isolate(3);
        assert_eq!(links(&net.filter(msgs())), vec![(1, 2), (2, 1)]);
        net.recover();
        net.ignore(MessageType::MsgAppend);
        assert!(net.filter(msgs()).is_empty());
        net.recover();
        assert_eq!(net.filter(msgs()).len(), 6);
    }

    #[test]
    fn drops_follow_the_seed() {
        let run = |seed| {
            let mut net = Network::with_seed(holes(3), seed);
            net.drop(1, 2, 0.5);
            (0..200)
                .map(|_| {
                    net.filter(vec![new_message(1, 2, MessageType::MsgAppend, 1)])
                        .len()
                })
                .collect::<Vec<_>>()
        };
        let a = run(7);
        assert_eq!(a, run(7), "the same seed drops the same messages");
        let kept: usize = a.iter().sum();
        assert!((60..=140).contains(&kept), "kept {kept} of 200 at 50% drop");
    }

    /// Node 1 leads {1, 2, 3}; node 3 missed entries that node 1 then compacted away, so
    /// the next catch-up needs a snapshot.
    fn leader_with_compacted_log() -> Network {
        let mut net = Network::with_seed(vec![Slot::New, Slot::New, Slot::New], 1);
        net.send(vec![new_message(1, 1, MessageType::MsgHup, 0)]);
        net.isolate(3);
        for _ in 0..5 {
            let mut m = new_message(1, 1, MessageType::MsgPropose, 0);
            m.entries = vec![raft::eraftpb::Entry::default()].into();
            net.send(vec![m]);
        }
        let s1 = net.storage_of(1);
        let lead = net.peer_mut(1);
        crate::raft_net::next_ents(lead, &s1);
        let applied = lead.raft_log.applied;
        let mut core = s1.wl();
        core.create_snapshot(
            applied,
            Some(crate::raft_net::conf_state(&[1, 2, 3])),
            Vec::new(),
        )
        .expect("create snapshot");
        core.compact(applied).expect("compact");
        drop(core);
        // The log forgets what storage compacted (as `RawNode::advance` would make it).
        lead.raft_log.maybe_compact();
        net.recover();
        net
    }

    #[test]
    fn snapshots_are_reported_to_their_sender() {
        use std::cell::Cell;
        use std::rc::Rc;

        let mut net = leader_with_compacted_log();
        let applied = net.peer(1).raft_log.applied;
        // The hook loses every snapshot: the leader hears `Failure` and may send another.
        let sent = Rc::new(Cell::new(0));
        let counter = Rc::clone(&sent);
        net.set_hook(move |m| {
            let snap = m.msg_type == MessageType::MsgSnapshot;
            counter.set(counter.get() + u32::from(snap));
            !snap
        });
        let beat = new_message(1, 1, MessageType::MsgBeat, 0);
        net.send(vec![beat.clone()]);
        assert_eq!(sent.get(), 1, "one snapshot per heartbeat response");
        assert_eq!(net.peer(1).prs[&3].pending_snapshot, 0, "failure reported");
        net.send(vec![beat.clone()]);
        assert_eq!(sent.get(), 2, "a lost snapshot is sent again");
        // Delivered: `Finish`, then node 3's acknowledgement, and it catches up.
        net.set_hook(|_| true);
        net.send(vec![beat]);
        let pr = net.peer(1).prs[&3];
        assert_eq!(pr.pending_snapshot, 0);
        assert!(pr.matched >= applied, "{pr:?}");
        assert_eq!(
            net.peer(3).raft_log.committed,
            net.peer(1).raft_log.committed
        );
    }

    #[test]
    fn a_snapshot_to_a_black_hole_is_reported_lost() {
        let mut net = leader_with_compacted_log();
        let lead = net.peers.remove(&1).flatten().expect("node 1");
        // Node 1 in a network where slot 3 swallows everything: it must not stay paused.
        let slots = vec![Slot::from(lead), Slot::BlackHole, Slot::BlackHole];
        let mut net = Network::with_seed(slots, 1);
        net.peer_mut(1)
            .prs
            .get_mut(&3)
            .expect("progress of 3")
            .next_idx = 2;
        let sent = std::rc::Rc::new(std::cell::Cell::new(0));
        let counter = std::rc::Rc::clone(&sent);
        net.set_hook(move |m| {
            counter.set(counter.get() + u32::from(m.msg_type == MessageType::MsgSnapshot));
            true
        });
        let mut resp = new_message(3, 1, MessageType::MsgHeartbeatResponse, 0);
        resp.term = net.peer(1).term;
        net.send(vec![resp]);
        assert_eq!(sent.get(), 1, "node 1 sent node 3 a snapshot");
        let pr = net.peer(1).prs[&3];
        assert_eq!((pr.pending_snapshot, pr.next_idx), (0, 2), "{pr:?}");
    }

    #[test]
    fn send_to_black_holes_and_unknown_ids_is_quiet() {
        let mut net = Network::with_seed(holes(2), 1);
        net.send(vec![
            new_message(1, 2, MessageType::MsgAppend, 1),
            new_message(1, 9, MessageType::MsgAppend, 1),
        ]);
        assert!(net.storage.is_empty());
    }
}
// lab:end-needs
