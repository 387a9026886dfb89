//! [`RawNode`]: the application's handle on a raft node, and [`Ready`], the batch of work
//! (entries to persist, messages to send, entries to apply) it hands out.
//!
//! The loop an application runs:
//! 1. feed it ticks ([`RawNode::tick`]), messages ([`RawNode::step`]) and proposals;
//! 2. when [`RawNode::has_ready`], take the [`Ready`]: apply its snapshot and append its
//!    entries and hard state to storage, then send its messages, then apply its committed
//!    entries;
//! 3. hand it back with [`RawNode::advance`];
//! 4. tell the node what became of what it sent: [`RawNode::report_snapshot`] once a
//!    `MsgSnapshot` reached its peer or failed to (a leader sends a peer nothing but
//!    heartbeats while a snapshot to it is in flight), [`RawNode::report_unreachable`] when
//!    the transport could not reach a peer.

use std::collections::BTreeMap;

use protobuf::Message as _;

use crate::config::Config;
use crate::eraftpb::{
    ConfChange, ConfChangeType, ConfState, Entry, EntryType, HardState, Message, MessageType,
    Snapshot,
};
use crate::errors::{Error, Result};
use crate::progress::Progress;
use crate::raft::{is_local_msg, is_response_msg, Raft, SnapshotStatus, SoftState};
use crate::storage::Storage;

// ANCHOR: ready
/// The work a node hands to the application: persist `snapshot`, `entries` and
/// `hard_state`, then send `messages`, then apply `committed_entries`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Ready {
    /// The leader and role, when they changed since the last `Ready`.
    pub soft_state: Option<SoftState>,
    /// Term, vote and commit, when they changed since the last `Ready`.
    pub hard_state: Option<HardState>,
    /// Entries to persist before sending `messages`.
    pub entries: Vec<Entry>,
    /// A snapshot from the leader to apply to storage.
    pub snapshot: Option<Snapshot>,
    /// Committed entries to apply to the state machine.
    pub committed_entries: Vec<Entry>,
    /// Messages to send once `entries` and `hard_state` are persisted.
    pub messages: Vec<Message>,
}
// ANCHOR_END: ready

/// A summary of a node's state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Status {
    /// The node's id.
    pub id: u64,
    /// Term, vote and commit.
    pub hard_state: HardState,
    /// Leader and role.
    pub soft_state: SoftState,
    /// The applied index.
    pub applied: u64,
    /// Every member's progress; empty unless the node is leader.
    pub progress: BTreeMap<u64, Progress>,
}

/// The application's interface to a raft node.
pub struct RawNode<S: Storage> {
    /// The state machine.
    pub raft: Raft<S>,
    prev_ss: SoftState,
    prev_hs: HardState,
}

impl<S: Storage> std::fmt::Debug for RawNode<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawNode").field("raft", &self.raft).finish()
    }
}

impl<S: Storage> RawNode<S> {
    /// Creates a node from a config and a storage (see [`Raft::new`]). The state it starts
    /// in counts as already reported: the first `Ready` carries no soft or hard state unless
    /// something changes.
    pub fn new(c: &Config, storage: S) -> Result<Self> {
        // lab:begin 2ac
        // lab:stub let _ = (c, storage);
        // lab:stub todo!("2ac: create the raft node and remember its initial states")
        let raft = Raft::new(c, storage)?;
        let prev_ss = raft.soft_state();
        let prev_hs = raft.hard_state();
        Ok(RawNode {
            raft,
            prev_ss,
            prev_hs,
        })
        // lab:end 2ac
    }

    /// Advances the logical clock by one tick.
    pub fn tick(&mut self) {
        self.raft.tick();
    }

    /// Starts an election now.
    pub fn campaign(&mut self) -> Result<()> {
        self.raft.step(Message {
            msg_type: MessageType::MsgHup,
            from: self.raft.id,
            ..Default::default()
        })
    }

    /// Proposes `data` as a normal entry. Fails with [`Error::ProposalDropped`] unless this
    /// node is a leader that accepts proposals.
    pub fn propose(&mut self, data: Vec<u8>) -> Result<()> {
        let e = Entry {
            entry_type: EntryType::EntryNormal,
            data: data.into(),
            ..Default::default()
        };
        self.propose_entry(e)
    }

    /// Proposes a membership change: an `EntryConfChange` entry carrying the encoded `cc`.
    /// Only one change may be pending (proposed but not applied) at a time.
    pub fn propose_conf_change(&mut self, cc: ConfChange) -> Result<()> {
        let data = cc
            .write_to_bytes()
            .map_err(|e| Error::InvalidMessage(format!("cannot encode conf change: {e}")))?;
        let e = Entry {
            entry_type: EntryType::EntryConfChange,
            data: data.into(),
            ..Default::default()
        };
        self.propose_entry(e)
    }

    fn propose_entry(&mut self, e: Entry) -> Result<()> {
        self.raft.step(Message {
            msg_type: MessageType::MsgPropose,
            from: self.raft.id,
            entries: vec![e].into(),
            ..Default::default()
        })
    }

    /// Applies a committed membership change and returns the new membership (sorted ids).
    /// A change for node 0 changes nothing.
    pub fn apply_conf_change(&mut self, cc: &ConfChange) -> Result<ConfState> {
        // lab:begin 3a
        // lab:stub let _ = cc;
        // lab:stub todo!("3a: apply a membership change")
        if cc.node_id != 0 {
            match cc.change_type {
                ConfChangeType::AddNode => self.raft.add_node(cc.node_id),
                ConfChangeType::RemoveNode => self.raft.remove_node(cc.node_id),
                ConfChangeType::AddLearnerNode => {
                    return Err(Error::InvalidMessage(
                        "learners are not supported".to_owned(),
                    ))
                }
            }
        }
        Ok(self.raft.conf_state())
        // lab:end 3a
    }

    /// Steps a message received from another node. Local messages (`MsgHup`, `MsgBeat`,
    /// and `MsgSnapStatus` / `MsgUnreachable`, whose reports go through
    /// [`RawNode::report_snapshot`] / [`RawNode::report_unreachable`]) fail with
    /// [`Error::StepLocalMsg`]; responses from a node outside the membership with
    /// [`Error::StepPeerNotFound`].
    pub fn step(&mut self, m: Message) -> Result<()> {
        if is_local_msg(m.msg_type) {
            return Err(Error::StepLocalMsg);
        }
        if is_response_msg(m.msg_type) && !self.raft.prs.contains_key(&m.from) {
            return Err(Error::StepPeerNotFound);
        }
        self.raft.step(m)
    }

    /// Asks the leader to hand leadership over to `transferee`.
    pub fn transfer_leader(&mut self, transferee: u64) {
        let _ = self.raft.step(Message {
            msg_type: MessageType::MsgTransferLeader,
            from: transferee,
            ..Default::default()
        });
    }

    /// Reports how sending a `MsgSnapshot` to `id` went. The transport must report every
    /// snapshot it was handed: until then (or until the peer acknowledges the snapshot) the
    /// leader sends `id` heartbeats only. See [`Raft::report_snapshot`].
    pub fn report_snapshot(&mut self, id: u64, status: SnapshotStatus) {
        self.raft.report_snapshot(id, status);
    }

    /// Reports that the transport could not reach `id` (a message to it was lost). See
    /// [`Raft::report_unreachable`].
    pub fn report_unreachable(&mut self, id: u64) {
        self.raft.report_unreachable(id);
    }

    /// Whether there is anything to persist, send or apply.
    pub fn has_ready(&self) -> bool {
        // lab:begin 2ac
        // lab:stub todo!("2ac: is there anything in the next Ready?")
        let r = &self.raft;
        r.soft_state() != self.prev_ss
            || r.hard_state() != self.prev_hs
            || !r.msgs.is_empty()
            || !r.raft_log.unstable_entries().is_empty()
            || r.raft_log.has_next_ents()
            || r.raft_log.pending_snapshot.is_some()
        // lab:end 2ac
    }

    /// Takes the pending work. The messages move out of the node; entries and states are
    /// handed out again until [`RawNode::advance`] acknowledges them.
    pub fn ready(&mut self) -> Ready {
        // lab:begin 2ac
        // lab:stub todo!("2ac: collect the pending work")
        let r = &mut self.raft;
        let ss = r.soft_state();
        let hs = r.hard_state();
        Ready {
            soft_state: (ss != self.prev_ss).then_some(ss),
            hard_state: (hs != self.prev_hs).then_some(hs),
            entries: r.raft_log.unstable_entries().to_vec(),
            snapshot: r.raft_log.pending_snapshot.clone(),
            committed_entries: r.raft_log.next_ents(),
            messages: std::mem::take(&mut r.msgs),
        }
        // lab:end 2ac
    }

    /// Acknowledges a `Ready` once it has been processed: its entries (and snapshot) are
    /// stable, its committed entries applied, its states remembered as reported.
    pub fn advance(&mut self, rd: Ready) {
        // lab:begin 2ac
        // lab:stub let _ = rd;
        // lab:stub todo!("2ac: record what the Ready delivered")
        if let Some(ss) = rd.soft_state {
            self.prev_ss = ss;
        }
        if let Some(hs) = rd.hard_state {
            self.prev_hs = hs;
        }
        let log = &mut self.raft.raft_log;
        if let Some(snap) = &rd.snapshot {
            log.stable_snap_to(snap.get_metadata().index);
        }
        if let Some(e) = rd.entries.last() {
            log.stable_to(e.index, e.term);
        }
        if let Some(e) = rd.committed_entries.last() {
            log.applied_to(e.index);
        }
        log.maybe_compact();
        // lab:end 2ac
    }

    /// A summary of the node's state.
    pub fn status(&self) -> Status {
        Status {
            id: self.raft.id,
            hard_state: self.raft.hard_state(),
            soft_state: self.raft.soft_state(),
            applied: self.raft.raft_log.applied,
            progress: self.get_progress(),
        }
    }

    /// Every member's progress if this node is leader, else an empty map.
    pub fn get_progress(&self) -> BTreeMap<u64, Progress> {
        if self.raft.state == crate::raft::StateRole::Leader {
            self.raft.prs.clone()
        } else {
            BTreeMap::new()
        }
    }
}
