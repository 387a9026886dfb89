//! Stage 3A: leader transfer and single-step membership change in the raft core (16 tests,
//! `raft_test.go` and `rawnode_test.go` of the original).

use protobuf::Message as _;

use crate::raft_common::*;

/// A conf change of `change_type` for `node_id`.
fn conf_change(change_type: ConfChangeType, node_id: u64) -> ConfChange {
    ConfChange {
        change_type,
        node_id,
        ..Default::default()
    }
}

/// The encoded form of a conf change, as it sits in an `EntryConfChange` entry.
fn encode(cc: &ConfChange) -> Vec<u8> {
    cc.write_to_bytes().expect("encode ConfChange")
}

/// Persists a ready's entries and advances.
fn persist_and_advance(node: &mut RawNode<MemStorage>, storage: &MemStorage, rd: Ready) {
    if !rd.entries.is_empty() {
        storage
            .wl()
            .append(&rd.entries)
            .expect("append ready entries");
    }
    node.advance(rd);
}

/// A single-voter raw node over `storage`.
fn single_raw_node(storage: &MemStorage) -> RawNode<MemStorage> {
    let mut c = new_test_config(1, 10, 1);
    c.peers = vec![1];
    RawNode::new(&c, storage.clone()).expect("RawNode::new")
}

/// The entries of `storage` in `[lo, hi)`.
fn storage_entries(storage: &MemStorage, lo: u64, hi: u64) -> Vec<Entry> {
    use raft::Storage;
    storage.entries(lo, hi).expect("storage entries")
}

/// The last index of `storage`.
fn storage_last_index(storage: &MemStorage) -> u64 {
    use raft::Storage;
    storage.last_index().expect("storage last index")
}

/// A proposal and a conf change proposal land in the log, the conf change as an
/// `EntryConfChange` whose data is the encoded `ConfChange`.
#[test]
fn raw_node_propose_and_conf_change_3a() {
    let s = MemStorage::new();
    let mut node = single_raw_node(&s);
    let rd = node.ready();
    persist_and_advance(&mut node, &s, rd);
    let rd = node.ready();
    assert!(
        rd.hard_state.is_none() && rd.entries.is_empty(),
        "after advance: no hard state change and no entries expected, got {rd:?}"
    );

    node.campaign().expect("campaign");
    let rd = node.ready();
    assert_eq!(
        rd.soft_state.map(|ss| ss.lead),
        Some(1),
        "the ready after campaigning must report node 1 as lead: {rd:?}"
    );
    node.propose(b"somedata".to_vec()).expect("propose");
    let cc = conf_change(ConfChangeType::AddNode, 1);
    node.propose_conf_change(cc.clone())
        .expect("propose conf change");
    persist_and_advance(&mut node, &s, rd);
    for _ in 0..10 {
        if !node.has_ready() {
            break;
        }
        let rd = node.ready();
        persist_and_advance(&mut node, &s, rd);
    }

    for (what, ents) in [
        ("raft log", node.raft.raft_log.all_entries()),
        ("storage", {
            let last = storage_last_index(&s);
            storage_entries(&s, 1, last + 1)
        }),
    ] {
        assert!(ents.len() >= 2, "{what}: too few entries {ents:?}");
        let tail = &ents[ents.len() - 2..];
        assert_eq!(
            tail[0].entry_type,
            EntryType::EntryNormal,
            "{what}: {tail:?}"
        );
        assert_eq!(&tail[0].data[..], b"somedata", "{what}: {tail:?}");
        assert_eq!(
            tail[1].entry_type,
            EntryType::EntryConfChange,
            "{what}: {tail:?}"
        );
        assert_eq!(tail[1].data.to_vec(), encode(&cc), "{what}: {tail:?}");
    }
}

/// Adding a node twice is harmless, and once a conf change is applied the next one can be
/// proposed.
#[test]
fn raw_node_propose_add_duplicate_node_3a() {
    let s = MemStorage::new();
    let mut node = single_raw_node(&s);
    let rd = node.ready();
    persist_and_advance(&mut node, &s, rd);
    node.campaign().expect("campaign");
    let mut leader = false;
    for _ in 0..10 {
        let rd = node.ready();
        let is_lead = rd.soft_state.map(|ss| ss.lead) == Some(1);
        persist_and_advance(&mut node, &s, rd);
        if is_lead {
            leader = true;
            break;
        }
    }
    assert!(leader, "node 1 never reported itself as lead");

    let mut propose_and_apply = |cc: &ConfChange| {
        node.propose_conf_change(cc.clone())
            .expect("propose conf change");
        let rd = node.ready();
        if !rd.entries.is_empty() {
            s.wl().append(&rd.entries).expect("append");
        }
        for e in &rd.committed_entries {
            if e.entry_type == EntryType::EntryConfChange {
                let mut applied = ConfChange::default();
                applied
                    .merge_from_bytes(&e.data)
                    .expect("decode ConfChange");
                node.apply_conf_change(&applied).expect("apply conf change");
            }
        }
        node.advance(rd);
    };
    let cc1 = conf_change(ConfChangeType::AddNode, 1);
    let cc2 = conf_change(ConfChangeType::AddNode, 2);
    propose_and_apply(&cc1);
    propose_and_apply(&cc1);
    propose_and_apply(&cc2);

    let last = storage_last_index(&s);
    let ents = storage_entries(&s, last - 2, last + 1);
    let got: Vec<(EntryType, Vec<u8>)> = ents
        .iter()
        .map(|e| (e.entry_type, e.data.to_vec()))
        .collect();
    let want = vec![
        (EntryType::EntryConfChange, encode(&cc1)),
        (EntryType::EntryConfChange, encode(&cc1)),
        (EntryType::EntryConfChange, encode(&cc2)),
    ];
    assert_eq!(got, want, "the last three entries in storage");
}

/// The members of a node (its progress map's ids).
fn members(r: &TestRaft) -> Vec<u64> {
    r.prs.keys().copied().collect()
}

/// `RawNode::apply_conf_change` changes the membership and returns it; a change naming node 0
/// changes nothing. Catches an `apply_conf_change` that only reports the conf state, or that
/// tests the node id the wrong way round: the original's raw-node test applies changes but
/// never looks at the membership they produce. Found by `cargo mutants`.
#[test]
fn raw_node_apply_conf_change_changes_membership_3a() {
    let s = MemStorage::new();
    let mut node = single_raw_node(&s);
    let cs = node
        .apply_conf_change(&conf_change(ConfChangeType::AddNode, 2))
        .expect("add node 2");
    assert_eq!(cs.voters, vec![1, 2], "the conf state after adding node 2");
    assert_eq!(
        members(&node.raft),
        vec![1, 2],
        "node 2 must get a progress"
    );
    let cs = node
        .apply_conf_change(&conf_change(ConfChangeType::RemoveNode, 1))
        .expect("remove node 1");
    assert_eq!(cs.voters, vec![2], "the conf state after removing node 1");
    assert_eq!(members(&node.raft), vec![2]);
    let cs = node
        .apply_conf_change(&conf_change(ConfChangeType::AddNode, 0))
        .expect("a change for node 0");
    assert_eq!(
        cs.voters,
        vec![2],
        "a change for node 0 must change nothing"
    );
}

/// `add_node` adds a member.
#[test]
fn add_node_3a() {
    let mut r = new_test_raft(1, vec![1], 10, 1, MemStorage::new());
    r.add_node(2);
    assert_eq!(members(&r), vec![1, 2]);
}

/// `remove_node` removes a member; removing the last one must not panic.
#[test]
fn remove_node_3a() {
    let mut r = new_test_raft(1, vec![1, 2], 10, 1, MemStorage::new());
    r.remove_node(2);
    assert_eq!(members(&r), vec![1]);
    r.remove_node(1);
    assert_eq!(members(&r), Vec::<u64>::new());
}

/// Removing a node lowers the quorum, and the leader re-evaluates its commit index at once.
#[test]
fn commit_after_remove_node_3a() {
    let s = MemStorage::new();
    let mut r = new_test_raft(1, vec![1, 2], 5, 1, s.clone());
    r.become_candidate();
    r.become_leader();

    let cc = conf_change(ConfChangeType::RemoveNode, 2);
    let mut cc_entry = new_entry(0, 0, &encode(&cc));
    cc_entry.entry_type = EntryType::EntryConfChange;
    r.step(new_message_with_entries(
        1,
        1,
        MsgPropose,
        0,
        vec![cc_entry],
    ))
    .expect("propose the conf change");
    let ents = next_ents(&mut r, &s);
    assert!(ents.is_empty(), "nothing may commit yet, got {ents:?}");
    let cc_index = r.raft_log.last_index();

    r.step(propose(1, 1, b"hello"))
        .expect("propose while the change is pending");
    let mut ack = new_message(2, 1, MsgAppendResponse, r.term);
    ack.index = cc_index;
    r.step(ack).expect("append response");

    let ents = next_ents(&mut r, &s);
    let kinds: Vec<(EntryType, Vec<u8>)> = ents
        .iter()
        .map(|e| (e.entry_type, e.data.to_vec()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (EntryType::EntryNormal, Vec::new()),
            (EntryType::EntryConfChange, encode(&cc)),
        ],
        "the no-op and the conf change commit"
    );

    r.remove_node(2);
    let ents = next_ents(&mut r, &s);
    assert_eq!(
        ents.len(),
        1,
        "exactly the pending proposal commits, got {ents:?}"
    );
    assert_eq!(ents[0].entry_type, EntryType::EntryNormal);
    assert_eq!(&ents[0].data[..], b"hello");
}

/// `{from: transferee, to, MsgTransferLeader}`.
fn transfer(transferee: u64, to: u64) -> Message {
    new_message(transferee, to, MsgTransferLeader, 0)
}

/// Node `r` has `state` and `lead`.
///
/// The original checks state and lead. A node still leading must also have no transfer
/// pending (a cancelled or ignored transfer that stayed pending would keep dropping
/// proposals); etcd checks that too.
#[track_caller]
fn check_transfer_state(r: &TestRaft, state: StateRole, lead: u64) {
    assert_eq!(
        (r.state, r.lead),
        (state, lead),
        "node {} (state, lead) after the transfer",
        r.id
    );
    if r.state == Leader {
        assert_eq!(
            r.lead_transferee, None,
            "leader {}: a transfer is still pending",
            r.id
        );
    }
}

/// A 3-node network whose node 1 is leader.
fn leader_1_network() -> Network {
    let mut net = Network::new(slots("NNN"));
    net.send(vec![hup(1)]);
    assert_eq!(net.peer(1).state, Leader);
    assert_eq!(net.peer(1).lead, 1);
    net
}

/// Leadership moves to an up-to-date follower, and back.
#[test]
fn leader_transfer_to_up_to_date_node_3a() {
    let mut net = leader_1_network();
    net.send(vec![transfer(2, 1)]);
    check_transfer_state(net.peer(1), Follower, 2);
    net.send(vec![propose(1, 1, &[])]);
    net.send(vec![transfer(1, 2)]);
    check_transfer_state(net.peer(1), Leader, 1);
}

/// A transfer request given to the transferee while it is a follower reaches the leader and
/// completes.
#[test]
fn leader_transfer_to_up_to_date_node_from_follower_3a() {
    let mut net = leader_1_network();
    net.send(vec![transfer(2, 2)]);
    check_transfer_state(net.peer(1), Follower, 2);
    net.send(vec![propose(1, 1, &[])]);
    net.send(vec![transfer(1, 1)]);
    check_transfer_state(net.peer(1), Leader, 1);
}

/// The leader first brings a lagging transferee up to date, then hands over.
#[test]
fn leader_transfer_to_slow_follower_3a() {
    let mut net = leader_1_network();
    net.isolate(3);
    net.send(vec![propose(1, 1, &[])]);
    net.recover();
    assert_eq!(net.peer(1).prs[&3].matched, 1);
    net.send(vec![transfer(3, 1)]);
    check_transfer_state(net.peer(1), Follower, 3);
}

/// A transferee behind the compacted log gets a snapshot first, then leadership.
#[test]
fn leader_transfer_after_snapshot_3a() {
    let mut net = leader_1_network();
    net.isolate(3);
    net.send(vec![propose(1, 1, &[])]);
    let s1 = net.storage_of(1);
    {
        let lead = net.peer_mut(1);
        next_ents(lead, &s1);
        let applied = lead.raft_log.applied;
        let cs = conf_state(&members(lead));
        let mut core = s1.wl();
        core.create_snapshot(applied, Some(cs), Vec::new())
            .expect("create snapshot");
        core.compact(applied).expect("compact");
    }
    net.recover();
    assert_eq!(net.peer(1).prs[&3].matched, 1);
    net.send(vec![transfer(3, 1)]);
    let term = net.peer(1).term;
    net.send(vec![new_message(3, 1, MsgHeartbeatResponse, term)]);
    check_transfer_state(net.peer(1), Follower, 3);
}

/// Transferring to the current leader does nothing.
#[test]
fn leader_transfer_to_self_3a() {
    let mut net = leader_1_network();
    net.send(vec![transfer(1, 1)]);
    check_transfer_state(net.peer(1), Leader, 1);
}

/// A transfer to a node outside the group is ignored.
#[test]
fn leader_transfer_to_non_existing_node_3a() {
    let mut net = leader_1_network();
    net.send(vec![transfer(4, 1)]);
    check_transfer_state(net.peer(1), Leader, 1);
}

/// A pending transfer does not stop a higher-term election.
#[test]
fn leader_transfer_receive_higher_term_vote_3a() {
    let mut net = leader_1_network();
    net.isolate(3);
    net.send(vec![transfer(3, 1)]);
    assert_eq!(
        net.peer(1).lead_transferee,
        Some(3),
        "the transfer must be pending"
    );
    let mut m = hup(2);
    m.index = 1;
    m.term = 2;
    net.send(vec![m]);
    check_transfer_state(net.peer(1), Follower, 2);
}

/// A transfer to a node removed from the group is ignored.
#[test]
fn leader_transfer_remove_node_3a() {
    let mut net = leader_1_network();
    net.ignore(MsgTimeoutNow);
    net.peer_mut(1).remove_node(3);
    net.send(vec![transfer(3, 1)]);
    check_transfer_state(net.peer(1), Leader, 1);
}

/// Asking for the current leader while a transfer is pending cancels the transfer.
#[test]
fn leader_transfer_back_3a() {
    let mut net = leader_1_network();
    net.isolate(3);
    net.send(vec![transfer(3, 1)]);
    assert_eq!(
        net.peer(1).lead_transferee,
        Some(3),
        "the transfer must be pending"
    );
    net.send(vec![transfer(1, 1)]);
    check_transfer_state(net.peer(1), Leader, 1);
}

/// A new transfer target replaces the pending one.
#[test]
fn leader_transfer_second_transfer_to_another_node_3a() {
    let mut net = leader_1_network();
    net.isolate(3);
    net.send(vec![transfer(3, 1)]);
    assert_eq!(
        net.peer(1).lead_transferee,
        Some(3),
        "the transfer must be pending"
    );
    net.send(vec![transfer(2, 1)]);
    check_transfer_state(net.peer(1), Follower, 2);
}

/// A node outside the membership never campaigns, even on `MsgTimeoutNow`, nor wins.
#[test]
fn transfer_non_member_3a() {
    let mut r = new_test_raft(1, vec![2, 3, 4], 5, 1, MemStorage::new());
    let _ = r.step(new_message(2, 1, MsgTimeoutNow, 0));
    let _ = r.step(new_message(2, 1, MsgRequestVoteResponse, 0));
    let _ = r.step(new_message(3, 1, MsgRequestVoteResponse, 0));
    assert_eq!(r.state, Follower);
}

// ---------------------------------------------------------------------------------------
// Beyond the original: what a leader does while a transfer is pending, how long a transfer
// lasts, and the rules that keep membership changes one at a time.
// ---------------------------------------------------------------------------------------

/// The `EntryConfChange` entry carrying `cc`, as a proposal holds it.
fn conf_change_entry(cc: &ConfChange) -> Entry {
    let mut e = new_entry(0, 0, &encode(cc));
    e.entry_type = EntryType::EntryConfChange;
    e
}

/// Proposes `cc` to node `r` (as `RawNode::propose_conf_change` does).
fn propose_cc(r: &mut TestRaft, cc: &ConfChange) -> Result<(), raft::Error> {
    let id = r.id;
    r.step(new_message_with_entries(
        id,
        id,
        MsgPropose,
        0,
        vec![conf_change_entry(cc)],
    ))
}

/// The indexes of the conf-change entries of `r`'s log after its applied index.
fn unapplied_conf_changes(r: &TestRaft) -> Vec<u64> {
    r.raft_log
        .all_entries()
        .iter()
        .filter(|e| e.index > r.raft_log.applied && e.entry_type == EntryType::EntryConfChange)
        .map(|e| e.index)
        .collect()
}

/// A leader drops proposals while a transfer is pending, and accepts them again once the
/// transfer is cancelled.
///
/// Catches a leader that keeps appending during a transfer: every new entry puts the
/// transferee behind again, so the hand-over may never happen, and the entries may be lost
/// when the transferee wins (Raft thesis §3.10: the leader stops accepting new client
/// requests). The original returns `ErrProposalDropped` but no 3A test checks it.
#[test]
fn proposal_dropped_during_transfer_3a() {
    let mut net = leader_1_network();
    net.isolate(3);
    net.send(vec![transfer(3, 1)]);
    assert_eq!(
        net.peer(1).lead_transferee,
        Some(3),
        "the transfer must be pending"
    );
    let last = net.peer(1).raft_log.last_index();
    assert_eq!(
        net.peer_mut(1).step(propose(1, 1, b"during the transfer")),
        Err(raft::Error::ProposalDropped),
        "a leader transferring leadership must drop proposals"
    );
    assert_eq!(
        net.peer(1).raft_log.last_index(),
        last,
        "the dropped proposal must not enter the log"
    );

    net.send(vec![transfer(1, 1)]);
    assert_eq!(
        net.peer_mut(1).step(propose(1, 1, b"after the transfer")),
        Ok(()),
        "once the transfer is cancelled, proposals are accepted again"
    );
}

/// A pending transfer lasts one election timeout from the request (not from whenever the
/// leader's clock last wrapped): the transferee has `election_timeout - 1` ticks to take
/// over, and at the next tick the leader gives up and accepts proposals again.
///
/// Catches a leader that never abandons a transfer to an unreachable transferee (it would
/// drop every proposal for good), and one that does not restart its election clock when the
/// transfer starts (the transfer may be abandoned at the very next tick). The original
/// checks neither.
#[test]
fn pending_transfer_lasts_one_election_timeout_3a() {
    let mut net = leader_1_network();
    net.isolate(3);
    let et = net.peer(1).election_timeout;
    for _ in 1..et {
        net.peer_mut(1).tick();
    }
    net.peer_mut(1).read_messages();
    net.send(vec![transfer(3, 1)]);
    assert_eq!(net.peer(1).lead_transferee, Some(3), "the transfer starts");
    for t in 1..et {
        net.peer_mut(1).tick();
        assert_eq!(
            net.peer(1).lead_transferee,
            Some(3),
            "{t} ticks after the request (election timeout {et}): the transfer must still be \
             pending"
        );
    }
    net.peer_mut(1).tick();
    let lead = net.peer_mut(1);
    assert_eq!(
        (lead.state, lead.lead_transferee),
        (Leader, None),
        "{et} ticks after the request the leader must abandon the transfer and stay leader"
    );
    assert_eq!(
        lead.step(propose(1, 1, b"after giving up")),
        Ok(()),
        "after abandoning the transfer the leader accepts proposals"
    );
}

/// Removing the target of a pending transfer cancels the transfer.
///
/// Catches a leader that keeps waiting for a node no longer in the group: it drops every
/// proposal until the election timeout ends the transfer. (Not in the original.)
#[test]
fn removing_transferee_cancels_transfer_3a() {
    let mut net = leader_1_network();
    net.isolate(3);
    net.send(vec![transfer(3, 1)]);
    assert_eq!(
        net.peer(1).lead_transferee,
        Some(3),
        "the transfer must be pending"
    );
    net.peer_mut(1).remove_node(3);
    let lead = net.peer_mut(1);
    assert_eq!(
        lead.lead_transferee, None,
        "node 3 left the group: the transfer to it must be cancelled"
    );
    assert_eq!(lead.step(propose(1, 1, b"x")), Ok(()), "proposals resume");
}

/// The leader sends `MsgTimeoutNow` only once the transferee has its whole log, not merely
/// the committed part.
///
/// Catches a leader that compares the transferee's match with the commit index: the
/// transferee campaigns without the leader's last entry, and the entry is lost if it wins
/// (a proposal the client was never told failed). (Not in the original, whose transferees
/// lack committed entries or nothing.)
#[test]
fn transfer_waits_for_whole_log_3a() {
    let s = MemStorage::new();
    let mut r = new_test_raft(1, vec![1, 2, 3], 10, 1, s.clone());
    r.become_candidate();
    r.become_leader();
    commit_noop_entry(&mut r, &s);
    r.step(propose(1, 1, b"x")).expect("proposal");
    r.read_messages();
    assert_eq!(
        (
            r.raft_log.committed,
            r.raft_log.last_index(),
            r.prs[&3].matched
        ),
        (1, 2, 1),
        "entry 2 is neither committed nor on node 3"
    );

    r.step(transfer(3, 1)).expect("transfer to 3");
    let msgs = r.read_messages();
    assert!(
        msgs.iter().all(|m| m.msg_type != MsgTimeoutNow),
        "node 3 lacks entry 2: no MsgTimeoutNow yet, got {msgs:?}"
    );
    assert_eq!(r.lead_transferee, Some(3), "the transfer is pending");

    let mut ack = new_message(3, 1, MsgAppendResponse, r.term);
    ack.index = 2;
    r.step(ack).expect("node 3 acks entry 2");
    let timeout_now: Vec<u64> = r
        .read_messages()
        .iter()
        .filter(|m| m.msg_type == MsgTimeoutNow)
        .map(|m| m.to)
        .collect();
    assert_eq!(
        timeout_now,
        vec![3],
        "node 3 has the whole log now: exactly one MsgTimeoutNow, to node 3"
    );
}

/// A leader accepts a conf change only when no other one is unapplied: a second proposal is
/// refused (or, etcd style, turned into a normal entry), and accepted once the first is
/// applied.
///
/// Catches a leader that lets two conf changes be in flight: with single-step changes, two
/// unapplied changes can build configurations whose majorities do not overlap. (The
/// original's `TestRawNodeProposeAddDuplicateNode3A` always applies one change before it
/// proposes the next, so it never notices.)
#[test]
fn second_conf_change_refused_while_one_pending_3a() {
    let s = MemStorage::new();
    let mut r = new_test_raft(1, vec![1, 2, 3], 10, 1, s.clone());
    r.become_candidate();
    r.become_leader();
    commit_noop_entry(&mut r, &s);
    let add4 = conf_change(ConfChangeType::AddNode, 4);
    let remove3 = conf_change(ConfChangeType::RemoveNode, 3);
    propose_cc(&mut r, &add4).expect("the first conf change");
    assert_eq!(unapplied_conf_changes(&r), vec![2]);

    let _ = propose_cc(&mut r, &remove3);
    assert_eq!(
        unapplied_conf_changes(&r),
        vec![2],
        "AddNode 4 (index 2) is not applied yet: RemoveNode 3 must not enter the log as a \
         conf change"
    );

    // Node 2 acknowledges, AddNode 4 commits and is applied.
    let last = r.raft_log.last_index();
    let mut ack = new_message(2, 1, MsgAppendResponse, r.term);
    ack.index = last;
    r.step(ack).expect("node 2's ack");
    next_ents(&mut r, &s);
    assert_eq!(r.raft_log.applied, last, "everything is applied");
    propose_cc(&mut r, &remove3).expect("the next conf change");
    assert_eq!(
        unapplied_conf_changes(&r),
        vec![last + 1],
        "with nothing pending, RemoveNode 3 is accepted"
    );
}

/// A new leader whose log holds an unapplied conf change (from an earlier term) refuses
/// another until that one is applied.
///
/// Catches a leader that resets its pending conf index to 0 on election: it accepts a second
/// change while the first is still in flight (the single-server change bug across leader
/// changes, see pitfalls.md). (Not in the original.)
#[test]
fn new_leader_respects_unapplied_conf_change_3a() {
    let add4 = conf_change(ConfChangeType::AddNode, 4);
    let mut cc_entry = conf_change_entry(&add4);
    cc_entry.index = 2;
    cc_entry.term = 1;
    let s = storage_with(&[empty_entry(1, 1), cc_entry]);
    s.wl().set_hard_state(hard_state(1, 0));
    let mut r = new_test_raft(1, vec![1, 2, 3], 10, 1, s.clone());
    r.become_candidate();
    r.become_leader();
    assert_eq!(r.raft_log.applied, 0, "nothing is applied");

    let remove3 = conf_change(ConfChangeType::RemoveNode, 3);
    let _ = propose_cc(&mut r, &remove3);
    assert_eq!(
        unapplied_conf_changes(&r),
        vec![2],
        "the new leader's log holds AddNode 4 (index 2), unapplied: RemoveNode 3 must not \
         enter the log as a conf change"
    );

    // The no-op commits everything before it; once applied, a change may be proposed.
    let last = r.raft_log.last_index();
    let mut ack = new_message(2, 1, MsgAppendResponse, r.term);
    ack.index = last;
    r.step(ack).expect("node 2's ack");
    next_ents(&mut r, &s);
    assert_eq!(r.raft_log.applied, last, "everything is applied");
    propose_cc(&mut r, &remove3).expect("the next conf change");
    assert_eq!(unapplied_conf_changes(&r), vec![last + 1]);
}

/// Adding a node that is already a member changes nothing, its progress included.
///
/// Catches an `add_node` that overwrites the member's progress: a repeated AddNode (the
/// scheduler repeats its conf changes until it sees them applied) resets a live follower's
/// match to 0, and the leader re-sends its log and may stop committing. The original's
/// `TestRawNodeProposeAddDuplicateNode3A` re-adds the single leader itself, whose own match
/// the next append restores.
#[test]
fn add_existing_node_keeps_progress_3a() {
    let mut net = leader_1_network();
    net.send(vec![propose(1, 1, b"x")]);
    let before = net.peer(1).prs.clone();
    assert_eq!(before[&2].matched, 2, "node 2 has the no-op and x");
    net.peer_mut(1).add_node(2);
    net.peer_mut(1).add_node(1);
    assert_eq!(
        net.peer(1).prs,
        before,
        "re-adding members 2 and 1 must leave every progress as it was"
    );
}
