//! Core flows of the crate, tested through its public API with a tiny in-memory network.
//! (The graded suites in `labs` cover the course's test list; these guard the crate itself:
//! determinism, hostile input, and the paths the suites reach only indirectly.)

use std::collections::{BTreeMap, VecDeque};

use crate::eraftpb::{
    ConfChange, ConfChangeType, Entry, EntryType, Message, MessageType, Snapshot,
};
use crate::{Config, Error, MemStorage, Raft, RawNode, StateRole, Storage, StorageError};

fn config(id: u64, peers: &[u64]) -> Config {
    let mut c = Config::new(id);
    c.peers = peers.to_vec();
    c
}

fn new_raft(id: u64, peers: &[u64]) -> Raft<MemStorage> {
    Raft::new(&config(id, peers), MemStorage::new()).unwrap()
}

fn msg(from: u64, to: u64, t: MessageType, term: u64) -> Message {
    Message {
        from,
        to,
        msg_type: t,
        term,
        ..Default::default()
    }
}

fn entry(index: u64, term: u64, data: &[u8]) -> Entry {
    Entry {
        index,
        term,
        data: data.to_vec().into(),
        ..Default::default()
    }
}

fn propose(to: u64, data: &[u8]) -> Message {
    let mut m = msg(to, to, MessageType::MsgPropose, 0);
    m.entries = vec![entry(0, 0, data)].into();
    m
}

/// Nodes exchanging messages synchronously; `dropped` links swallow messages.
struct Net {
    nodes: BTreeMap<u64, Raft<MemStorage>>,
    dropped: Vec<(u64, u64)>,
}

impl Net {
    fn new(n: u64) -> Net {
        let peers: Vec<u64> = (1..=n).collect();
        let nodes = peers.iter().map(|&id| (id, new_raft(id, &peers))).collect();
        Net {
            nodes,
            dropped: Vec::new(),
        }
    }

    fn send(&mut self, first: Message) {
        let mut q = VecDeque::from([first]);
        while let Some(m) = q.pop_front() {
            let Some(r) = self.nodes.get_mut(&m.to) else {
                continue;
            };
            let _ = r.step(m);
            for out in r.read_messages() {
                if !self.dropped.contains(&(out.from, out.to)) {
                    q.push_back(out);
                }
            }
        }
    }

    fn isolate(&mut self, id: u64) {
        for &other in self.nodes.keys() {
            if other != id {
                self.dropped.push((id, other));
                self.dropped.push((other, id));
            }
        }
    }

    fn recover(&mut self) {
        self.dropped.clear();
    }

    fn node(&self, id: u64) -> &Raft<MemStorage> {
        &self.nodes[&id]
    }
}

#[test]
fn config_validation() {
    assert!(matches!(
        Config::new(0).validate(),
        Err(Error::ConfigInvalid(_))
    ));
    let mut c = Config::new(1);
    c.heartbeat_tick = 0;
    assert!(matches!(c.validate(), Err(Error::ConfigInvalid(_))));
    let mut c = Config::new(1);
    c.election_tick = 1;
    assert!(matches!(c.validate(), Err(Error::ConfigInvalid(_))));
    assert!(matches!(
        RawNode::new(&Config::new(0), MemStorage::new()),
        Err(Error::ConfigInvalid(_))
    ));
}

#[test]
fn election_timeout_is_randomized_deterministic_and_per_node() {
    let draws = |id: u64, seed: u64| {
        let mut c = config(id, &[1, 2, 3]);
        c.seed = seed;
        let mut r = Raft::new(&c, MemStorage::new()).unwrap();
        (0..50)
            .map(|i| {
                r.become_follower(i + 1, 0);
                r.randomized_election_timeout()
            })
            .collect::<Vec<_>>()
    };
    let a = draws(1, 7);
    assert!(a.iter().all(|&t| (10..20).contains(&t)));
    assert_eq!(a, draws(1, 7), "same seed and id replay the same timeouts");
    assert_ne!(a, draws(2, 7), "nodes draw different timeouts");
    assert_ne!(a, draws(1, 8), "the seed changes the timeouts");
}

#[test]
fn single_node_elects_itself_by_ticking() {
    let mut r = new_raft(1, &[1]);
    for _ in 0..20 {
        r.tick();
    }
    assert_eq!(r.state, StateRole::Leader);
    assert_eq!(r.raft_log.committed, 1, "the no-op commits at once");
    assert!(
        r.msgs.is_empty(),
        "no MsgHup or vote request leaves a single node"
    );
}

#[test]
fn three_nodes_elect_and_replicate() {
    let mut net = Net::new(3);
    net.send(msg(1, 1, MessageType::MsgHup, 0));
    assert_eq!(net.node(1).state, StateRole::Leader);
    net.send(propose(1, b"x"));
    for id in 1..=3 {
        let r = net.node(id);
        assert_eq!(r.raft_log.committed, 2, "node {id}");
        assert_eq!(r.raft_log.last_index(), 2);
        assert_eq!(r.lead, 1);
    }
}

#[test]
fn lagging_follower_catches_up_through_rejections() {
    let mut net = Net::new(3);
    net.send(msg(1, 1, MessageType::MsgHup, 0));
    net.isolate(3);
    for _ in 0..5 {
        net.send(propose(1, b"y"));
    }
    net.recover();
    assert_eq!(net.node(3).raft_log.last_index(), 1);
    // A heartbeat response shows node 3 lagging; appends with back-off bring it up.
    net.send(msg(1, 1, MessageType::MsgBeat, 0));
    assert_eq!(net.node(3).raft_log.last_index(), 6);
    assert_eq!(net.node(3).raft_log.committed, 6);
    assert_eq!(net.node(1).prs[&3].matched, 6);
}

#[test]
fn stale_term_messages_are_ignored_and_newer_ones_demote() {
    let mut r = new_raft(1, &[1, 2, 3]);
    r.become_candidate();
    r.become_leader();
    let _ = r.read_messages();
    // Older term: nothing happens.
    r.term = 5;
    r.step(msg(2, 1, MessageType::MsgAppend, 3)).unwrap();
    assert_eq!(r.state, StateRole::Leader);
    assert!(r.read_messages().is_empty());
    // Newer term from a vote request: follower without a leader.
    let mut m = msg(2, 1, MessageType::MsgRequestVote, 9);
    m.index = 100;
    m.log_term = 9;
    r.step(m).unwrap();
    assert_eq!(
        (r.state, r.term, r.lead, r.vote),
        (StateRole::Follower, 9, 0, 2)
    );
    // Newer term from a heartbeat: follower of the sender.
    r.step(msg(3, 1, MessageType::MsgHeartbeat, 10)).unwrap();
    assert_eq!((r.term, r.lead), (10, 3));
}

#[test]
fn hostile_messages_never_panic() {
    let mut r = new_raft(1, &[1, 2, 3]);
    r.become_candidate();
    r.become_leader();
    let t = r.term;
    // Responses from unknown peers are ignored by Raft and refused by RawNode.
    let mut m = msg(9, 1, MessageType::MsgAppendResponse, t);
    m.index = u64::MAX;
    r.step(m.clone()).unwrap();
    r.step(msg(9, 1, MessageType::MsgHeartbeatResponse, t))
        .unwrap();
    // Acknowledging an index beyond the log changes nothing.
    m.from = 2;
    r.step(m.clone()).unwrap();
    assert_eq!(r.prs[&2].matched, 0);
    m.reject = true;
    m.reject_hint = u64::MAX;
    r.step(m).unwrap();
    // Unsupported message types are typed errors.
    for t in [
        MessageType::MsgReadIndex,
        MessageType::MsgReadIndexResp,
        MessageType::MsgCheckQuorum,
        MessageType::MsgRequestPreVote,
        MessageType::MsgRequestPreVoteResponse,
        MessageType::MsgUnreachable,
        MessageType::MsgSnapStatus,
    ] {
        assert!(matches!(
            r.step(msg(2, 1, t, 100)),
            Err(Error::InvalidMessage(_))
        ));
        assert_eq!(r.term, 1, "{t:?} must not change the term");
    }
    assert!(matches!(
        r.step(msg(1, 1, MessageType::MsgPropose, 0)),
        Err(Error::InvalidMessage(_))
    ));

    // A follower facing malformed appends and snapshots.
    let mut f = new_raft(2, &[1, 2, 3]);
    let mut m = msg(1, 2, MessageType::MsgAppend, 1);
    m.index = 0;
    m.entries = vec![entry(1, 1, b""), entry(3, 1, b"")].into();
    assert!(matches!(f.step(m.clone()), Err(Error::InvalidMessage(_))));
    assert_eq!(
        f.term, 0,
        "a malformed message is refused before the term rule"
    );
    f.handle_append_entries(&m);
    assert_eq!(f.raft_log.last_index(), 0);
    m.index = u64::MAX;
    m.entries = vec![entry(0, 1, b"")].into();
    assert!(f.step(m.clone()).is_err());
    m.entries.clear();
    f.step(m).unwrap();
    let out = f.read_messages();
    assert_eq!(out.len(), 1);
    assert!(out[0].reject);
    let mut hb = msg(1, 2, MessageType::MsgHeartbeat, 1);
    hb.commit = u64::MAX;
    f.step(hb).unwrap();
    assert_eq!(f.raft_log.committed, 0);
    let mut sm = msg(1, 2, MessageType::MsgSnapshot, 1);
    sm.mut_snapshot().mut_metadata().index = u64::MAX;
    assert!(f.step(sm.clone()).is_err());
    f.handle_snapshot(&sm);
    assert_eq!(f.raft_log.last_index(), 0);
    let mut big = msg(1, 2, MessageType::MsgHeartbeat, u64::MAX);
    big.commit = 0;
    f.step(big).unwrap();
    for _ in 0..40 {
        f.tick();
    }
    assert_eq!(f.term, u64::MAX);
}

#[test]
fn snapshot_older_than_committed_is_ignored() {
    let s = MemStorage::new();
    s.wl()
        .append(&[entry(1, 1, b""), entry(2, 1, b""), entry(3, 1, b"")])
        .unwrap();
    let mut r = Raft::new(&config(2, &[1, 2]), s).unwrap();
    r.raft_log.commit_to(3);
    r.raft_log.applied_to(3);
    let mut m = msg(1, 2, MessageType::MsgSnapshot, 1);
    m.mut_snapshot().mut_metadata().index = 2;
    m.mut_snapshot().mut_metadata().term = 1;
    r.step(m).unwrap();
    assert!(r.raft_log.pending_snapshot.is_none());
    assert_eq!(r.raft_log.last_index(), 3);
    let out = r.read_messages();
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].msg_type, out[0].index),
        (MessageType::MsgAppendResponse, 3)
    );
}

#[test]
fn snapshot_temporarily_unavailable_sends_nothing() {
    let s = MemStorage::new();
    let ents: Vec<Entry> = (1..=5).map(|i| entry(i, 1, b"")).collect();
    s.wl().append(&ents).unwrap();
    s.wl().create_snapshot(5, None, vec![]).unwrap();
    s.wl().compact(5).unwrap();
    let mut r = Raft::new(&config(1, &[1, 2]), s.clone()).unwrap();
    r.term = 1;
    r.become_candidate();
    r.become_leader();
    let _ = r.read_messages();
    r.prs.get_mut(&2).unwrap().next_idx = 3;
    s.wl().trigger_snap_unavailable();
    assert!(!r.send_append(2));
    assert!(r.read_messages().is_empty());
    // Next time the snapshot is there.
    assert!(r.send_append(2));
    let out = r.read_messages();
    assert_eq!(out[0].msg_type, MessageType::MsgSnapshot);
    assert_eq!(out[0].get_snapshot().get_metadata().index, 5);
    // The snapshot is in flight: `next_idx` stays, and nothing more goes out until the
    // follower acknowledges it or the application reports on it.
    assert_eq!((r.prs[&2].next_idx, r.prs[&2].pending_snapshot), (3, 5));
    assert!(!r.send_append(2));
    assert!(r.read_messages().is_empty());
}

#[test]
fn snapshot_reports_cannot_come_from_the_network() {
    let s = MemStorage::new();
    let ents: Vec<Entry> = (1..=5).map(|i| entry(i, 1, b"")).collect();
    s.wl().append(&ents).unwrap();
    s.wl().create_snapshot(5, None, vec![]).unwrap();
    s.wl().compact(5).unwrap();
    let mut n = RawNode::new(&config(1, &[1, 2]), s).unwrap();
    n.raft.term = 1;
    n.raft.become_candidate();
    n.raft.become_leader();
    n.raft.prs.get_mut(&2).unwrap().next_idx = 3;
    assert!(n.raft.send_append(2));
    let _ = n.raft.read_messages();
    let term = n.raft.term;
    let before = n.raft.prs[&2];
    assert_eq!(before.pending_snapshot, 5);
    for t in [MessageType::MsgSnapStatus, MessageType::MsgUnreachable] {
        let mut m = msg(2, 1, t, term);
        assert_eq!(n.step(m.clone()), Err(Error::StepLocalMsg), "{t:?}");
        m.reject = true;
        assert!(
            matches!(n.raft.step(m), Err(Error::InvalidMessage(_))),
            "{t:?}"
        );
    }
    assert_eq!(n.raft.prs[&2], before);
    // The application's reports do reach it.
    n.report_snapshot(2, crate::SnapshotStatus::Failure);
    assert_eq!(n.raft.prs[&2].pending_snapshot, 0);
}

#[test]
fn leader_transfer_is_abandoned_after_an_election_timeout() {
    let mut net = Net::new(3);
    net.send(msg(1, 1, MessageType::MsgHup, 0));
    net.isolate(3);
    net.send(msg(3, 1, MessageType::MsgTransferLeader, 0));
    assert_eq!(net.node(1).lead_transferee, Some(3));
    assert_eq!(
        net.nodes.get_mut(&1).unwrap().step(propose(1, b"z")),
        Err(Error::ProposalDropped)
    );
    let r = net.nodes.get_mut(&1).unwrap();
    for _ in 0..r.election_timeout {
        r.tick();
    }
    assert_eq!(r.lead_transferee, None);
    assert_eq!(r.state, StateRole::Leader);
    assert!(r.step(propose(1, b"z")).is_ok());
}

#[test]
fn one_conf_change_at_a_time() {
    let s = MemStorage::new_with_conf_state(vec![1]);
    let mut n = RawNode::new(&Config::new(1), s.clone()).unwrap();
    n.campaign().unwrap();
    let cc = ConfChange {
        change_type: ConfChangeType::AddNode,
        node_id: 2,
        ..Default::default()
    };
    n.propose_conf_change(cc.clone()).unwrap();
    // Not applied yet: a second change is dropped, a normal proposal is not.
    assert_eq!(
        n.propose_conf_change(cc.clone()),
        Err(Error::ProposalDropped)
    );
    n.propose(b"data".to_vec()).unwrap();
    let rd = n.ready();
    s.wl().append(&rd.entries).unwrap();
    let ccs: Vec<&Entry> = rd
        .committed_entries
        .iter()
        .filter(|e| e.entry_type == EntryType::EntryConfChange)
        .collect();
    assert_eq!(ccs.len(), 1);
    let cs = n.apply_conf_change(&cc).unwrap();
    assert_eq!(cs.voters, vec![1, 2]);
    n.advance(rd);
    // Applied: the next change may go.
    n.propose_conf_change(cc).unwrap();
    // Node 0 changes nothing.
    let noop = ConfChange::default();
    assert_eq!(n.apply_conf_change(&noop).unwrap().voters, vec![1, 2]);
}

#[test]
fn removed_node_stops_campaigning_and_removing_everyone_is_safe() {
    let mut r = new_raft(1, &[1, 2]);
    r.remove_node(1);
    for _ in 0..100 {
        r.tick();
    }
    assert_eq!(r.state, StateRole::Follower);
    assert!(r.read_messages().is_empty());
    let mut l = new_raft(1, &[1, 2]);
    l.become_candidate();
    l.become_leader();
    l.remove_node(2);
    l.remove_node(1);
    assert!(l.prs.is_empty());
    for _ in 0..10 {
        l.tick();
    }
    assert_eq!(l.step(propose(1, b"x")), Err(Error::ProposalDropped));
}

#[test]
fn raw_node_step_refuses_local_and_unknown() {
    let mut n = RawNode::new(&config(1, &[1, 2]), MemStorage::new()).unwrap();
    assert_eq!(
        n.step(msg(1, 1, MessageType::MsgHup, 0)),
        Err(Error::StepLocalMsg)
    );
    assert_eq!(
        n.step(msg(1, 1, MessageType::MsgBeat, 0)),
        Err(Error::StepLocalMsg)
    );
    assert_eq!(
        n.step(msg(7, 1, MessageType::MsgAppendResponse, 0)),
        Err(Error::StepPeerNotFound)
    );
    assert_eq!(
        n.step(msg(7, 1, MessageType::MsgRequestVoteResponse, 0)),
        Err(Error::StepPeerNotFound)
    );
    // A vote request from an unknown node is still answered.
    let mut m = msg(7, 1, MessageType::MsgRequestVote, 1);
    m.index = 5;
    m.log_term = 1;
    assert!(n.step(m).is_ok());
    assert_eq!(n.ready().messages.len(), 1);
}

#[test]
fn ready_loop_settles_and_restarts() {
    let s = MemStorage::new_with_conf_state(vec![1]);
    let mut n = RawNode::new(&Config::new(1), s.clone()).unwrap();
    assert!(!n.has_ready());
    n.campaign().unwrap();
    for i in 0..3u8 {
        n.propose(vec![i]).unwrap();
    }
    let mut applied = 0;
    while n.has_ready() {
        let rd = n.ready();
        if let Some(ss) = rd.soft_state {
            assert_eq!(ss.raft_state, StateRole::Leader);
        }
        s.wl().append(&rd.entries).unwrap();
        if let Some(hs) = &rd.hard_state {
            s.wl().set_hard_state(hs.clone());
        }
        applied += rd.committed_entries.len();
        n.advance(rd);
    }
    assert_eq!(applied, 4);
    assert_eq!(n.status().applied, 4);
    assert_eq!(n.get_progress()[&1].matched, 4);
    // Restart with the applied index: nothing is handed out again.
    let mut c = Config::new(1);
    c.applied = 4;
    let mut n2 = RawNode::new(&c, s.clone()).unwrap();
    assert!(!n2.has_ready());
    assert_eq!(n2.raft.term, 1);
    assert_eq!(n2.raft.vote, 1);
    assert_eq!(n2.raft.raft_log.committed, 4);
    assert!(n2.get_progress().is_empty());
    // Compaction in storage is noticed at advance.
    s.wl().compact(3).unwrap();
    n2.campaign().unwrap();
    let rd = n2.ready();
    s.wl().append(&rd.entries).unwrap();
    n2.advance(rd);
    assert_eq!(n2.raft.raft_log.first_index(), 4);
    // An applied index past the log is a config error.
    c.applied = 99;
    assert!(matches!(RawNode::new(&c, s), Err(Error::ConfigInvalid(_))));
}

#[test]
fn pending_snapshot_flows_through_ready() {
    let s = MemStorage::new();
    let mut n = RawNode::new(&config(2, &[1, 2]), s.clone()).unwrap();
    let mut snap = Snapshot::default();
    snap.mut_metadata().index = 10;
    snap.mut_metadata().term = 3;
    snap.mut_metadata().mut_conf_state().voters = vec![1, 2, 3];
    let mut m = msg(1, 2, MessageType::MsgSnapshot, 3);
    m.set_snapshot(snap.clone());
    n.step(m).unwrap();
    assert_eq!(n.raft.raft_log.term(10), Ok(3));
    assert_eq!(
        n.raft.raft_log.term(9),
        Err(Error::Store(StorageError::Compacted))
    );
    let rd = n.ready();
    assert_eq!(rd.snapshot.as_ref(), Some(&snap));
    assert!(rd.committed_entries.is_empty());
    assert_eq!(rd.messages[0].index, 10);
    s.wl().apply_snapshot(rd.snapshot.clone().unwrap()).unwrap();
    n.advance(rd);
    assert!(n.raft.raft_log.pending_snapshot.is_none());
    assert!(!n.has_ready());
    // The leader's next append continues after the snapshot.
    let mut a = msg(1, 2, MessageType::MsgAppend, 3);
    a.index = 10;
    a.log_term = 3;
    a.commit = 11;
    a.entries = vec![entry(11, 3, b"after")].into();
    n.step(a).unwrap();
    let rd = n.ready();
    assert_eq!(rd.entries.len(), 1);
    assert_eq!(rd.committed_entries.len(), 1);
    assert_eq!(s.first_index(), Ok(11));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Random messages in random order never panic and keep the log invariants.
    #[test]
    fn random_messages_keep_invariants(
        ops in proptest::collection::vec(
            (0usize..12, 0u64..5, 0u64..6, 0u64..8, 0u64..8, 0u64..10, proptest::bool::ANY, 0usize..3),
            1..60,
        )
    ) {
        let types = [
            MessageType::MsgHup, MessageType::MsgBeat, MessageType::MsgPropose,
            MessageType::MsgAppend, MessageType::MsgAppendResponse, MessageType::MsgRequestVote,
            MessageType::MsgRequestVoteResponse, MessageType::MsgSnapshot,
            MessageType::MsgHeartbeat, MessageType::MsgHeartbeatResponse,
            MessageType::MsgTransferLeader, MessageType::MsgTimeoutNow,
        ];
        let mut r = new_raft(1, &[1, 2, 3]);
        for (t, from, term, index, log_term, commit, reject, n) in ops {
            let mut m = msg(from, 1, types[t], term);
            m.index = index;
            m.log_term = log_term;
            m.commit = commit;
            m.reject = reject;
            m.reject_hint = index / 2;
            let ents: Vec<Entry> = (0..n as u64)
                .map(|i| entry(index + 1 + i, log_term.max(term.min(log_term + i)), b"e"))
                .collect();
            m.entries = ents.into();
            if types[t] == MessageType::MsgSnapshot {
                m.mut_snapshot().mut_metadata().index = index * 3;
                m.mut_snapshot().mut_metadata().term = term;
                m.mut_snapshot().mut_metadata().mut_conf_state().voters = vec![1, 2, 3];
            }
            let _ = r.step(m);
            r.tick();
            let _ = r.read_messages();
            let l = &r.raft_log;
            proptest::prop_assert!(l.first_index() - 1 <= l.applied);
            proptest::prop_assert!(l.applied <= l.committed);
            proptest::prop_assert!(l.committed <= l.last_index());
            proptest::prop_assert!(l.stabled <= l.last_index());
            for (i, e) in l.entries.iter().enumerate() {
                proptest::prop_assert_eq!(e.index, l.first_index() + i as u64);
            }
        }
    }
}

#[test]
fn divergent_follower_is_skipped_a_term_at_a_time() {
    let storage_of = |terms: &[u64]| {
        let s = MemStorage::new();
        let ents: Vec<Entry> = terms
            .iter()
            .enumerate()
            .map(|(i, &t)| entry(i as u64 + 1, t, b""))
            .collect();
        s.wl().append(&ents).unwrap();
        s
    };
    let mut leader = Raft::new(
        &config(1, &[1, 2]),
        storage_of(&[1, 1, 1, 4, 4, 5, 5, 6, 6, 6]),
    )
    .unwrap();
    let mut follower = Raft::new(
        &config(2, &[1, 2]),
        storage_of(&[1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3]),
    )
    .unwrap();
    leader.term = 7;
    leader.become_candidate();
    leader.become_leader();
    leader.send_append(2);
    let mut rejections = 0;
    let mut q: VecDeque<Message> = leader.read_messages().into();
    while let Some(m) = q.pop_front() {
        let out = if m.to == 2 {
            follower.step(m).unwrap();
            follower.read_messages()
        } else {
            if m.reject {
                rejections += 1;
            }
            leader.step(m).unwrap();
            leader.read_messages()
        };
        q.extend(out);
    }
    assert_eq!(
        follower.raft_log.all_entries(),
        leader.raft_log.all_entries()
    );
    // One entry at a time would take 8 rejections (indexes 10 down to 3).
    assert!(rejections <= 2, "{rejections} rejections");
}
