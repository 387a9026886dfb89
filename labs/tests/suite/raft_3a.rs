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
