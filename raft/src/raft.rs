//! [`Raft`]: the consensus state machine of one node — elections, log replication,
//! snapshots, leader transfer and single-step membership change.
//!
//! `Raft` does no I/O: [`Raft::step`] and [`Raft::tick`] change its state and queue
//! messages in [`Raft::msgs`]; the caller (usually [`RawNode`](crate::RawNode)) persists
//! the log and sends the messages.
//!
//! | message | from → to | fields used | handled by |
//! |---|---|---|---|
//! | `MsgHup` | local | — | followers and candidates: start an election |
//! | `MsgBeat` | local | — | leader: heartbeat every peer |
//! | `MsgPropose` | local | `entries` | leader: append and replicate; others: `ProposalDropped` |
//! | `MsgAppend` | leader → follower | `index`/`log_term` = previous entry, `entries`, `commit` | [`Raft::handle_append_entries`] |
//! | `MsgAppendResponse` | follower → leader | `index` = last matching index; on `reject`, `index` = rejected previous index and `reject_hint` = follower's last index | leader: progress, commit; an index ≥ the snapshot in flight ends snapshot state |
//! | `MsgRequestVote` | candidate → all | `index`/`log_term` = candidate's last entry | anyone: vote at most once a term for an up-to-date log |
//! | `MsgRequestVoteResponse` | voter → candidate | `reject` | candidate: count votes |
//! | `MsgSnapshot` | leader → follower | `snapshot` | [`Raft::handle_snapshot`]; sent when the entries a follower needs are compacted, then the follower is paused (below) |
//! | `MsgHeartbeat` | leader → follower | `commit` = min(peer's match, committed) | [`Raft::handle_heartbeat`] |
//! | `MsgHeartbeatResponse` | follower → leader | — | leader: catch up a lagging follower (unless paused) |
//! | `MsgTransferLeader` | local (`from` = transferee) | — | leader: transfer; follower: forward to the leader |
//! | `MsgTimeoutNow` | leader → transferee | — | member: campaign at once |
//! | `MsgSnapStatus`, `MsgUnreachable` | — | — | not stepped (refused as invalid): reported through [`Raft::report_snapshot`] and [`Raft::report_unreachable`] |
//!
//! **Snapshots in flight.** When a leader sends a peer a snapshot at index `i` it records
//! `i` in the peer's [`Progress::pending_snapshot`] and leaves `next_idx` alone. While that
//! is set the peer is *paused*: [`Raft::send_append`] sends it nothing (no append, no second
//! snapshot), heartbeats still go out, and rejections from it are stale. The state ends
//! when the peer acknowledges an index ≥ `i` (replication resumes), when the application
//! reports the transfer ([`SnapshotStatus::Finish`]: probe from `i + 1`;
//! [`SnapshotStatus::Failure`]: ask storage for a snapshot again on the next trigger), or
//! when the progress is rebuilt (new leader, peer removed and added). A storage that has no
//! snapshot yet (`SnapshotTemporarilyUnavailable`) changes nothing: the next heartbeat
//! response asks again.
//!
//! Every message except local ones carries the sender's `term`: a higher term makes the
//! receiver a follower first; a lower one is ignored.

use std::collections::BTreeMap;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::config::Config;
use crate::eraftpb::{ConfState, Entry, EntryType, HardState, Message, MessageType};
use crate::errors::{Error, Result};
use crate::progress::Progress;
use crate::raft_log::RaftLog;
use crate::storage::Storage;
use crate::util::{validate_message, validate_snapshot};

pub use crate::util::{is_local_msg, is_response_msg};

/// The id that means "nobody" (no leader known, no vote cast).
pub const INVALID_ID: u64 = 0;

/// How sending a snapshot to a peer went, as the application reports it with
/// [`RawNode::report_snapshot`](crate::RawNode::report_snapshot).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotStatus {
    /// The snapshot reached the peer: the leader probes right after it.
    Finish,
    /// The snapshot was lost or refused on the way: the leader sends a new one later.
    Failure,
}

/// The role of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum StateRole {
    /// Follows a leader (or waits for one).
    #[default]
    Follower,
    /// Campaigns to become leader.
    Candidate,
    /// Leads the group.
    Leader,
}

/// The volatile state of a node that the application may want to observe: who leads and
/// which role this node has. Not persisted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SoftState {
    /// The leader this node knows of ([`INVALID_ID`] if none).
    pub lead: u64,
    /// This node's role.
    pub raft_state: StateRole,
}

/// The raft state machine of one node.
pub struct Raft<S: Storage> {
    /// This node's id.
    pub id: u64,
    /// The current term.
    pub term: u64,
    /// The candidate voted for in the current term ([`INVALID_ID`] if none).
    pub vote: u64,
    /// The log.
    pub raft_log: RaftLog<S>,
    /// The members and, on a leader, their replication progress.
    pub prs: BTreeMap<u64, Progress>,
    /// This node's role.
    pub state: StateRole,
    /// Votes received in the current election (`true` = granted).
    pub votes: BTreeMap<u64, bool>,
    /// The outbox: messages to send once the log is persisted.
    pub msgs: Vec<Message>,
    /// The leader's id ([`INVALID_ID`] if unknown).
    pub lead: u64,
    /// Ticks between heartbeats.
    pub heartbeat_timeout: usize,
    /// The base election timeout, in ticks.
    pub election_timeout: usize,
    /// Ticks since the last heartbeat (leader only).
    pub heartbeat_elapsed: usize,
    /// Ticks since the last election timeout reset (on a leader: since it started or last
    /// checked a pending leader transfer).
    pub election_elapsed: usize,
    /// The target of a leader transfer in progress, if any.
    pub lead_transferee: Option<u64>,
    /// The log index of the latest conf change proposed; another one may be proposed only
    /// once it is applied.
    pub pending_conf_index: u64,

    randomized_election_timeout: usize,
    rng: SmallRng,
    // Scratch buffers reused on the hot path to avoid allocations.
    ids_buf: Vec<u64>,
    match_buf: Vec<u64>,
}

impl<S: Storage> std::fmt::Debug for Raft<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Raft")
            .field("id", &self.id)
            .field("term", &self.term)
            .field("vote", &self.vote)
            .field("state", &self.state)
            .field("lead", &self.lead)
            .field("raft_log", &self.raft_log)
            .field("prs", &self.prs)
            .finish()
    }
}

// Mixes the configured seed with the node id so that nodes draw different timeouts while a
// run stays reproducible (splitmix64 finaliser).
fn mix_seed(seed: u64, id: u64) -> u64 {
    let mut z = seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476C_E1E5_B9B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl<S: Storage> Raft<S> {
    /// Creates a node from `c` over `storage`: a follower at the stored term, with vote and
    /// commit restored from the hard state and membership from `c.peers` (or the stored
    /// conf state when `c.peers` is empty).
    pub fn new(c: &Config, storage: S) -> Result<Self> {
        // lab:begin 2aa
        // lab:stub let _ = (c, storage);
        // lab:stub todo!("2aa: build a raft node from the config and storage")
        c.validate()?;
        let rs = storage.initial_state()?;
        let mut raft_log = RaftLog::new(storage)?;
        let peers: &[u64] = if c.peers.is_empty() {
            &rs.conf_state.voters
        } else {
            &c.peers
        };
        let next = raft_log.last_index() + 1;
        let prs = peers.iter().map(|&id| (id, Progress::new(next))).collect();
        if c.applied > 0 {
            if c.applied > raft_log.last_index() {
                return Err(Error::ConfigInvalid(format!(
                    "applied index {} is past the last index {}",
                    c.applied,
                    raft_log.last_index()
                )));
            }
            raft_log.commit_to(c.applied);
            raft_log.applied_to(c.applied);
        }
        let hs = rs.hard_state;
        let mut r = Raft {
            id: c.id,
            term: hs.term,
            vote: hs.vote,
            raft_log,
            prs,
            state: StateRole::Follower,
            votes: BTreeMap::new(),
            msgs: Vec::new(),
            lead: INVALID_ID,
            heartbeat_timeout: c.heartbeat_tick,
            election_timeout: c.election_tick,
            heartbeat_elapsed: 0,
            election_elapsed: 0,
            lead_transferee: None,
            pending_conf_index: 0,
            randomized_election_timeout: c.election_tick,
            rng: SmallRng::seed_from_u64(mix_seed(c.seed, c.id)),
            ids_buf: Vec::new(),
            match_buf: Vec::new(),
        };
        r.become_follower(hs.term, INVALID_ID);
        Ok(r)
        // lab:end 2aa
    }

    /// The volatile state (leader and role).
    pub fn soft_state(&self) -> SoftState {
        SoftState {
            lead: self.lead,
            raft_state: self.state,
        }
    }

    /// The state to persist: term, vote and commit index.
    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.raft_log.committed,
            ..Default::default()
        }
    }

    /// The current election timeout, drawn from `[election_timeout, 2 * election_timeout)`.
    pub fn randomized_election_timeout(&self) -> usize {
        self.randomized_election_timeout
    }

    /// Takes (and clears) the outbox.
    pub fn read_messages(&mut self) -> Vec<Message> {
        std::mem::take(&mut self.msgs)
    }

    /// The membership as a sorted list of ids.
    pub fn conf_state(&self) -> ConfState {
        ConfState {
            voters: self.prs.keys().copied().collect(),
            ..Default::default()
        }
    }

    /// Whether this node is in the membership (only members campaign).
    pub fn promotable(&self) -> bool {
        self.prs.contains_key(&self.id)
    }

    /// The number of members needed for a majority.
    pub fn quorum(&self) -> usize {
        self.prs.len() / 2 + 1
    }

    // Queues `m` from this node. Messages other than local ones forwarded to the leader
    // carry the current term.
    fn send(&mut self, mut m: Message) {
        m.from = self.id;
        if m.msg_type != MessageType::MsgPropose && m.msg_type != MessageType::MsgTransferLeader {
            m.term = self.term;
        }
        self.msgs.push(m);
    }

    fn reset_randomized_election_timeout(&mut self) {
        let et = self.election_timeout.max(1);
        self.randomized_election_timeout = et + self.rng.gen_range(0..et);
    }

    // Common part of every role change.
    fn reset(&mut self, term: u64) {
        // lab:begin 2aa
        // lab:stub // TODO(2aa): the state every role change resets (term and vote, leader,
        // lab:stub // timers, votes, pending transfer).
        // lab:stub let _ = term;
        if self.term != term {
            self.term = term;
            self.vote = INVALID_ID;
        }
        self.lead = INVALID_ID;
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        self.reset_randomized_election_timeout();
        self.votes.clear();
        self.lead_transferee = None;
        // lab:end 2aa
    }

    /// Advances the logical clock by one tick: a leader sends heartbeats every
    /// `heartbeat_timeout` ticks (and abandons a leader transfer that took longer than an
    /// election timeout); others campaign when the randomized election timeout elapses.
    pub fn tick(&mut self) {
        // lab:begin 2aa
        // lab:stub todo!("2aa: drive the election and heartbeat timers")
        match self.state {
            StateRole::Leader => {
                self.heartbeat_elapsed += 1;
                self.election_elapsed += 1;
                if self.election_elapsed >= self.election_timeout {
                    self.election_elapsed = 0;
                    self.abort_leader_transfer();
                }
                if self.heartbeat_elapsed >= self.heartbeat_timeout {
                    self.heartbeat_elapsed = 0;
                    self.bcast_heartbeat();
                }
            }
            StateRole::Follower | StateRole::Candidate => {
                self.election_elapsed += 1;
                if self.election_elapsed >= self.randomized_election_timeout {
                    self.election_elapsed = 0;
                    self.campaign();
                }
            }
        }
        // lab:end 2aa
    }

    /// Becomes a follower of `lead` at `term` (the vote is kept if the term is unchanged).
    /// Emits no messages.
    pub fn become_follower(&mut self, term: u64, lead: u64) {
        // lab:begin 2aa
        // lab:stub let _ = (term, lead);
        // lab:stub todo!("2aa: become a follower")
        self.reset(term);
        self.lead = lead;
        self.state = StateRole::Follower;
        // lab:end 2aa
    }

    /// Starts a new term as candidate, voting for itself. Emits no messages: the vote
    /// requests are sent by the `MsgHup` handling.
    pub fn become_candidate(&mut self) {
        // lab:begin 2aa
        // lab:stub todo!("2aa: become a candidate")
        let term = self.term.saturating_add(1);
        self.reset(term);
        self.vote = self.id;
        self.votes.insert(self.id, true);
        self.state = StateRole::Candidate;
        // lab:end 2aa
    }

    /// Becomes leader of the current term: resets every peer's progress and appends an
    /// empty (no-op) entry of the new term. Emits no messages.
    pub fn become_leader(&mut self) {
        // lab:begin 2aa
        // lab:stub todo!("2aa: become the leader and append a no-op entry")
        let term = self.term;
        self.reset(term);
        self.state = StateRole::Leader;
        self.lead = self.id;
        let last = self.raft_log.last_index();
        for pr in self.prs.values_mut() {
            *pr = Progress::new(last + 1);
        }
        if let Some(pr) = self.prs.get_mut(&self.id) {
            pr.matched = last;
        }
        self.reset_pending_conf_index();
        let noop = Entry {
            entry_type: EntryType::EntryNormal,
            term,
            index: last + 1,
            ..Default::default()
        };
        self.append_entries(vec![noop]);
        // lab:end 2aa
    }

    // Appends entries created by this leader and counts its own replica.
    fn append_entries(&mut self, ents: Vec<Entry>) {
        // lab:begin 2aa
        // lab:stub let _ = ents;
        // lab:stub todo!("2aa: append to the leader's log and update its own progress")
        let last = self.raft_log.append(ents);
        if let Some(pr) = self.prs.get_mut(&self.id) {
            pr.maybe_update(last);
        }
        self.maybe_commit();
        // lab:end 2aa
    }

    // Starts an election (the `MsgHup` handling).
    fn campaign(&mut self) {
        // lab:begin 2aa
        // lab:stub todo!("2aa: become candidate and request votes")
        if !self.promotable() {
            return;
        }
        self.become_candidate();
        if self.poll_votes() == StateRole::Leader {
            return;
        }
        let index = self.raft_log.last_index();
        let log_term = self.raft_log.last_term();
        let mut ids = std::mem::take(&mut self.ids_buf);
        ids.clear();
        ids.extend(self.prs.keys().copied().filter(|&id| id != self.id));
        for &to in &ids {
            self.send(Message {
                msg_type: MessageType::MsgRequestVote,
                to,
                index,
                log_term,
                ..Default::default()
            });
        }
        self.ids_buf = ids;
        // lab:end 2aa
    }

    // Counts the votes of members: becomes leader on a majority of grants, follower on a
    // majority of rejections. Returns the resulting role.
    fn poll_votes(&mut self) -> StateRole {
        // lab:begin 2aa
        // lab:stub todo!("2aa: count the votes")
        let (mut granted, mut rejected) = (0, 0);
        for (id, &v) in &self.votes {
            if self.prs.contains_key(id) {
                if v {
                    granted += 1;
                } else {
                    rejected += 1;
                }
            }
        }
        let q = self.quorum();
        if granted >= q {
            self.become_leader();
            self.bcast_append();
        } else if rejected >= q {
            let term = self.term;
            self.become_follower(term, INVALID_ID);
        }
        self.state
        // lab:end 2aa
    }

    /// Handles a message. Messages of a higher term turn this node into a follower first;
    /// messages of a lower term are ignored. Proposals fail with
    /// [`Error::ProposalDropped`] when this node cannot accept them; malformed or
    /// unsupported messages fail with [`Error::InvalidMessage`] and change nothing.
    pub fn step(&mut self, m: Message) -> Result<()> {
        // lab:begin 2aa
        // lab:stub let _ = m;
        // lab:stub todo!("2aa: handle the term of a message, then dispatch on the role")
        // Local messages carry no meaningful term.
        let local = matches!(
            m.msg_type,
            MessageType::MsgHup
                | MessageType::MsgBeat
                | MessageType::MsgPropose
                | MessageType::MsgTransferLeader
        );
        if !local && m.term != 0 && m.term < self.term {
            // A stale message: ignore it.
            return Ok(());
        }
        validate_message(&m)?;
        if !local && m.term > self.term {
            let lead = match m.msg_type {
                MessageType::MsgAppend | MessageType::MsgHeartbeat | MessageType::MsgSnapshot => {
                    m.from
                }
                _ => INVALID_ID,
            };
            self.become_follower(m.term, lead);
        }
        match m.msg_type {
            MessageType::MsgHup => {
                if self.state != StateRole::Leader {
                    self.campaign();
                }
                Ok(())
            }
            MessageType::MsgRequestVote => {
                self.handle_request_vote(&m);
                Ok(())
            }
            _ => match self.state {
                StateRole::Follower => self.step_follower(m),
                StateRole::Candidate => self.step_candidate(m),
                StateRole::Leader => self.step_leader(m),
            },
        }
        // lab:end 2aa
    }

    fn step_follower(&mut self, m: Message) -> Result<()> {
        // lab:begin 2aa
        // lab:stub let _ = m;
        // lab:stub todo!("2aa: follower message handling")
        match m.msg_type {
            MessageType::MsgPropose => Err(Error::ProposalDropped),
            MessageType::MsgAppend => {
                self.election_elapsed = 0;
                self.lead = m.from;
                self.handle_append_entries_owned(m);
                Ok(())
            }
            MessageType::MsgHeartbeat => {
                self.election_elapsed = 0;
                self.lead = m.from;
                self.handle_heartbeat(&m);
                Ok(())
            }
            MessageType::MsgSnapshot => {
                self.election_elapsed = 0;
                self.lead = m.from;
                self.handle_snapshot(&m);
                Ok(())
            }
            MessageType::MsgTransferLeader => {
                if self.lead != INVALID_ID {
                    let mut m = m;
                    m.to = self.lead;
                    self.send(m);
                }
                Ok(())
            }
            MessageType::MsgTimeoutNow => {
                self.campaign();
                Ok(())
            }
            _ => Ok(()),
        }
        // lab:end 2aa
    }

    fn step_candidate(&mut self, m: Message) -> Result<()> {
        // lab:begin 2aa
        // lab:stub let _ = m;
        // lab:stub todo!("2aa: candidate message handling")
        match m.msg_type {
            MessageType::MsgPropose => Err(Error::ProposalDropped),
            MessageType::MsgAppend | MessageType::MsgHeartbeat | MessageType::MsgSnapshot => {
                // A leader of this term exists: concede.
                let term = self.term;
                self.become_follower(term, m.from);
                self.step_follower(m)
            }
            MessageType::MsgRequestVoteResponse => {
                if self.prs.contains_key(&m.from) {
                    self.votes.entry(m.from).or_insert(!m.reject);
                    self.poll_votes();
                }
                Ok(())
            }
            _ => Ok(()),
        }
        // lab:end 2aa
    }

    fn step_leader(&mut self, m: Message) -> Result<()> {
        // lab:begin 2aa
        // lab:stub let _ = m;
        // lab:stub todo!("2aa: leader message handling")
        match m.msg_type {
            MessageType::MsgBeat => {
                self.bcast_heartbeat();
                Ok(())
            }
            MessageType::MsgPropose => self.handle_propose(m),
            MessageType::MsgAppendResponse => {
                self.handle_append_response(&m);
                Ok(())
            }
            MessageType::MsgHeartbeatResponse => {
                self.handle_heartbeat_response(&m);
                Ok(())
            }
            MessageType::MsgTransferLeader => {
                self.handle_transfer_leader(m.from);
                Ok(())
            }
            _ => Ok(()),
        }
        // lab:end 2aa
    }

    // Grants or rejects a vote request.
    fn handle_request_vote(&mut self, m: &Message) {
        // lab:begin 2aa
        // lab:stub let _ = m;
        // lab:stub todo!("2aa: decide whether to grant a vote")
        let can_vote = self.state == StateRole::Follower
            && (self.vote == m.from || (self.vote == INVALID_ID && self.lead == INVALID_ID));
        let grant = can_vote && self.raft_log.is_up_to_date(m.index, m.log_term);
        if grant {
            self.vote = m.from;
            self.election_elapsed = 0;
        }
        self.send(Message {
            msg_type: MessageType::MsgRequestVoteResponse,
            to: m.from,
            reject: !grant,
            ..Default::default()
        });
        // lab:end 2aa
    }

    // The leader side of a proposal: append the entries and replicate them.
    fn handle_propose(&mut self, m: Message) -> Result<()> {
        // lab:begin 2ab
        // lab:stub self.check_proposal(&m.entries)?;
        // lab:stub // TODO(2ab): append the proposed entries and replicate them.
        // lab:stub let _ = m;
        // lab:stub Ok(())
        self.check_proposal(&m.entries)?;
        let term = self.term;
        let mut index = self.raft_log.last_index();
        let mut ents = m.entries.into_vec();
        for e in &mut ents {
            index += 1;
            e.term = term;
            e.index = index;
            if e.entry_type == EntryType::EntryConfChange {
                self.pending_conf_index = index;
            }
        }
        self.append_entries(ents);
        self.bcast_append();
        Ok(())
        // lab:end 2ab
    }

    // Whether the leader may accept a proposal now: not while it is leaving the group or
    // transferring leadership, and only one membership change at a time.
    fn check_proposal(&self, ents: &[Entry]) -> Result<()> {
        // lab:begin 3a
        // lab:stub let _ = ents;
        // lab:stub Ok(())
        if self.lead_transferee.is_some() || !self.promotable() {
            return Err(Error::ProposalDropped);
        }
        let ccs = ents
            .iter()
            .filter(|e| e.entry_type == EntryType::EntryConfChange)
            .count();
        if ccs > 1 || (ccs == 1 && self.pending_conf_index > self.raft_log.applied) {
            return Err(Error::ProposalDropped);
        }
        Ok(())
        // lab:end 3a
    }

    // A new leader may not propose a conf change until the ones in its unapplied log are
    // applied.
    fn reset_pending_conf_index(&mut self) {
        // lab:begin 3a
        // lab:stub self.pending_conf_index = 0;
        let applied = self.raft_log.applied;
        self.pending_conf_index = self
            .raft_log
            .slice_from(applied + 1)
            .iter()
            .rev()
            .find(|e| e.entry_type == EntryType::EntryConfChange)
            .map_or(0, |e| e.index);
        // lab:end 3a
    }

    /// Sends an append carrying the entries `to` is missing (from its `next_idx`) and the
    /// commit index; sends a snapshot instead when those entries are compacted. Sends
    /// nothing while a snapshot to `to` is in flight ([`Progress::is_paused`]). Returns
    /// whether a message was queued.
    pub fn send_append(&mut self, to: u64) -> bool {
        // lab:begin 2ab
        // lab:stub // TODO(2ab): send the missing entries to a peer (2c: or, when they are
        // lab:stub // compacted, a snapshot with `self.send_snapshot(to)`).
        // lab:stub let _ = (to, Self::send_snapshot);
        // lab:stub false
        if to == self.id {
            return false;
        }
        let Some(pr) = self.prs.get(&to) else {
            return false;
        };
        if pr.is_paused() {
            // A snapshot is in flight: the follower's answer (or the application's report)
            // says what to send next.
            return false;
        }
        let mut next = pr.next_idx.max(1);
        let prev_term = match self.raft_log.term(next - 1) {
            Ok(t) => t,
            Err(Error::Store(crate::errors::StorageError::Compacted)) => {
                return self.send_snapshot(to)
            }
            Err(_) => {
                // `next_idx` is past the log (it cannot be, but do not trust it): probe
                // from the end of the log.
                next = self.raft_log.last_index() + 1;
                if let Some(pr) = self.prs.get_mut(&to) {
                    pr.next_idx = next;
                }
                self.raft_log.last_term()
            }
        };
        let prev_index = next - 1;
        let committed = self.raft_log.committed;
        let term = self.term;
        // Borrowed from memory, or read back from storage for a follower far behind.
        let ents = match self.raft_log.entries_from(next) {
            Ok(ents) => ents,
            Err(_) => return self.send_snapshot(to),
        };
        let new_last = ents.last().map(|e| e.index);
        // Batching: when the last message queued for `to` is an append of this term that
        // this one continues, extend it instead of queueing another message.
        let pending = self.msgs.iter_mut().rev().find(|m| m.to == to).filter(|m| {
            m.msg_type == MessageType::MsgAppend
                && m.term == term
                && m.entries.last().map_or(m.index, |e| e.index) == prev_index
        });
        if let Some(pending) = pending {
            pending.entries.extend(ents.iter().cloned());
            pending.commit = committed;
            if let (Some(last), Some(pr)) = (new_last, self.prs.get_mut(&to)) {
                pr.optimistic_update(last);
            }
            return true;
        }
        let ents = ents.into_owned();
        if let (Some(last), Some(pr)) = (new_last, self.prs.get_mut(&to)) {
            pr.optimistic_update(last);
        }
        let m = Message {
            msg_type: MessageType::MsgAppend,
            to,
            index: prev_index,
            log_term: prev_term,
            entries: ents.into(),
            commit: committed,
            ..Default::default()
        };
        self.send(m);
        true
        // lab:end 2ab
    }

    // Sends the latest snapshot to `to` and records it as in flight (`next_idx` stays);
    // nothing if storage has none yet. Returns whether a message was queued.
    fn send_snapshot(&mut self, to: u64) -> bool {
        // lab:begin 2c
        // lab:stub let _ = to;
        // lab:stub todo!("2c: send a snapshot to a peer that needs compacted entries")
        let snap = match self.raft_log.snapshot() {
            Ok(s) => s,
            // Being generated (or failed): no state change, so the next trigger (heartbeat
            // response, proposal) asks again.
            Err(_) => return false,
        };
        let index = snap.get_metadata().index;
        let Some(pr) = self.prs.get_mut(&to) else {
            return false;
        };
        pr.become_snapshot(index);
        self.send(Message {
            msg_type: MessageType::MsgSnapshot,
            to,
            snapshot: protobuf::SingularPtrField::some(snap),
            ..Default::default()
        });
        true
        // lab:end 2c
    }

    /// Takes the application's report on a snapshot this leader sent to `id`: on
    /// [`SnapshotStatus::Finish`] it probes the peer right after the snapshot (and waits for
    /// the peer's answer); on [`SnapshotStatus::Failure`] the next trigger asks storage for a
    /// snapshot again. Ignored unless this node leads and has a snapshot in flight to `id`
    /// (a late or repeated report).
    pub fn report_snapshot(&mut self, id: u64, status: SnapshotStatus) {
        // lab:begin 2c
        // lab:stub let _ = (id, status);
        if self.state != StateRole::Leader {
            return;
        }
        let Some(pr) = self.prs.get_mut(&id) else {
            return;
        };
        if !pr.is_paused() {
            return;
        }
        match status {
            SnapshotStatus::Finish => pr.become_probe(),
            SnapshotStatus::Failure => pr.snapshot_failure(),
        }
        // lab:end 2c
    }

    /// Takes the application's report that the transport could not reach `id`: unless a
    /// snapshot to it is in flight, `next_idx` falls back to `matched + 1`, so that appends
    /// that may be lost are sent again on the next trigger. Ignored unless this node leads
    /// and `id` is another member.
    pub fn report_unreachable(&mut self, id: u64) {
        // lab:begin 2c
        // lab:stub let _ = id;
        if self.state != StateRole::Leader || id == self.id {
            return;
        }
        if let Some(pr) = self.prs.get_mut(&id) {
            if !pr.is_paused() {
                pr.become_probe();
            }
        }
        // lab:end 2c
    }

    // Sends appends to every other member.
    fn bcast_append(&mut self) {
        let mut ids = std::mem::take(&mut self.ids_buf);
        ids.clear();
        ids.extend(self.prs.keys().copied().filter(|&id| id != self.id));
        for &to in &ids {
            self.send_append(to);
        }
        self.ids_buf = ids;
    }

    /// Sends a heartbeat to `to`, carrying `min(matched, committed)` so that the follower
    /// never commits past what its log is known to match.
    pub fn send_heartbeat(&mut self, to: u64) {
        // lab:begin 2aa
        // lab:stub let _ = to;
        // lab:stub todo!("2aa: send a heartbeat")
        let commit = self
            .prs
            .get(&to)
            .map_or(0, |pr| pr.matched.min(self.raft_log.committed));
        self.send(Message {
            msg_type: MessageType::MsgHeartbeat,
            to,
            commit,
            ..Default::default()
        });
        // lab:end 2aa
    }

    fn bcast_heartbeat(&mut self) {
        let mut ids = std::mem::take(&mut self.ids_buf);
        ids.clear();
        ids.extend(self.prs.keys().copied().filter(|&id| id != self.id));
        for &to in &ids {
            self.send_heartbeat(to);
        }
        self.ids_buf = ids;
    }

    /// Handles `MsgAppend` on a follower: rejects it if the previous entry does not match
    /// (with the follower's last index as a hint); otherwise appends the entries, deleting
    /// only a conflicting suffix, advances the commit index, and acknowledges.
    pub fn handle_append_entries(&mut self, m: &Message) {
        self.handle_append_entries_owned(m.clone());
    }

    /// [`Raft::handle_append_entries`] taking the message by value, so that its entries move
    /// into the log instead of being copied (what [`Raft::step`] uses).
    pub fn handle_append_entries_owned(&mut self, m: Message) {
        // lab:begin 2ab
        // lab:stub // TODO(2ab): check the append, append to the log, answer the leader. (A
        // lab:stub // no-op until then, not a panic: the 2aa tests deliver appends too.)
        // lab:stub let _ = m;
        if crate::util::validate_append(&m).is_err() {
            return;
        }
        let mut m = m;
        let ents = std::mem::take(&mut m.entries).into_vec();
        let mut resp = Message {
            msg_type: MessageType::MsgAppendResponse,
            to: m.from,
            ..Default::default()
        };
        match self
            .raft_log
            .maybe_append_owned(m.index, m.log_term, m.commit, ents)
        {
            Some(last) => resp.index = last,
            None => {
                let hint = self.raft_log.find_conflict_by_term(m.index, m.log_term);
                resp.reject = true;
                resp.index = m.index;
                resp.reject_hint = hint;
                resp.log_term = self.raft_log.term(hint).unwrap_or(0);
            }
        }
        self.send(resp);
        // lab:end 2ab
    }

    // The leader side of an append response.
    fn handle_append_response(&mut self, m: &Message) {
        // lab:begin 2ab
        // lab:stub // TODO(2ab): update the peer's progress, commit, or back off and retry.
        // lab:stub let _ = m;
        if !self.prs.contains_key(&m.from) {
            return;
        }
        if m.reject {
            // Skip the follower's divergent suffix a term at a time (etcd's rule): the
            // follower's entry at the hint has term `m.log_term`, so nothing after our last
            // entry of a term <= that can match.
            let hint = if m.log_term > 0 {
                self.raft_log
                    .find_conflict_by_term(m.reject_hint, m.log_term)
            } else {
                m.reject_hint
            };
            let Some(pr) = self.prs.get_mut(&m.from) else {
                return;
            };
            // While a snapshot is in flight, a rejection answers an append sent before it:
            // stale. The snapshot's acknowledgement (or report) decides what comes next.
            if !pr.is_paused() && pr.maybe_decr_to(m.index, hint) {
                self.send_append(m.from);
            }
            return;
        }
        let last = self.raft_log.last_index();
        let Some(pr) = self.prs.get_mut(&m.from) else {
            return;
        };
        let was_paused = pr.is_paused();
        if m.index > last || !pr.maybe_update(m.index) {
            return;
        }
        // The follower installed the snapshot in flight (if any): replicate again.
        pr.maybe_end_snapshot();
        if self.maybe_commit() {
            self.bcast_append();
        } else if was_paused {
            // Nothing was sent while paused: send what the follower lacks (at least the
            // commit index).
            self.send_append(m.from);
        }
        self.maybe_finish_transfer(m.from);
        // lab:end 2ab
    }

    // Commits the highest index replicated on a majority, if it has the current term.
    // Returns whether the commit index moved.
    fn maybe_commit(&mut self) -> bool {
        // lab:begin 2ab
        // lab:stub // TODO(2ab): commit the highest index a majority has, if of this term
        // lab:stub // (`self.match_buf` is a buffer to reuse for the match indexes).
        // lab:stub let _ = &self.match_buf;
        // lab:stub false
        if self.prs.is_empty() {
            return false;
        }
        let mut v = std::mem::take(&mut self.match_buf);
        v.clear();
        v.extend(self.prs.values().map(|pr| pr.matched));
        v.sort_unstable_by(|a, b| b.cmp(a));
        let mci = v.get(self.quorum() - 1).copied().unwrap_or(0);
        self.match_buf = v;
        let term = self.term;
        self.raft_log.maybe_commit(mci, term)
        // lab:end 2ab
    }

    /// Handles `MsgHeartbeat` on a follower: advances the commit index (the leader sends
    /// at most what this node's log is known to match) and answers.
    pub fn handle_heartbeat(&mut self, m: &Message) {
        // lab:begin 2aa
        // lab:stub let _ = m;
        // lab:stub todo!("2aa: handle a heartbeat")
        self.raft_log.commit_to(m.commit);
        self.send(Message {
            msg_type: MessageType::MsgHeartbeatResponse,
            to: m.from,
            ..Default::default()
        });
        // lab:end 2aa
    }

    fn handle_heartbeat_response(&mut self, m: &Message) {
        // lab:begin 2ab
        // lab:stub // TODO(2ab): send appends to a follower that lags behind.
        // lab:stub let _ = m;
        let Some(pr) = self.prs.get(&m.from) else {
            return;
        };
        if pr.matched < self.raft_log.last_index() {
            self.send_append(m.from);
        }
        // lab:end 2ab
    }

    /// Handles `MsgSnapshot`: ignored if it is not newer than the commit index; if the log
    /// already holds the snapshot's last entry, only the commit index moves; otherwise the
    /// log is reset to the snapshot (kept pending for the next `Ready`), the membership is
    /// replaced by the snapshot's, and the leader is told the new last index.
    pub fn handle_snapshot(&mut self, m: &Message) {
        // lab:begin 2c
        // lab:stub let _ = m;
        // lab:stub todo!("2c: install a snapshot from the leader")
        if validate_snapshot(m).is_err() {
            return;
        }
        let snap = m.get_snapshot();
        let meta = snap.get_metadata();
        let index = meta.index;
        if index <= self.raft_log.committed {
            self.send(Message {
                msg_type: MessageType::MsgAppendResponse,
                to: m.from,
                index: self.raft_log.committed,
                ..Default::default()
            });
            return;
        }
        if self.raft_log.match_term(index, meta.term) {
            // The log already holds the snapshot's last entry: only the commit index moves.
            // Resetting would drop entries this node may have acknowledged beyond it.
            self.raft_log.commit_to(index);
            self.send(Message {
                msg_type: MessageType::MsgAppendResponse,
                to: m.from,
                index: self.raft_log.committed,
                ..Default::default()
            });
            return;
        }
        let voters = &meta.get_conf_state().voters;
        if !voters.is_empty() {
            let next = index + 1;
            self.prs = voters.iter().map(|&id| (id, Progress::new(next))).collect();
        }
        self.raft_log.restore(snap.clone());
        self.send(Message {
            msg_type: MessageType::MsgAppendResponse,
            to: m.from,
            index: self.raft_log.last_index(),
            ..Default::default()
        });
        // lab:end 2c
    }

    // The leader side of `MsgTransferLeader`.
    fn handle_transfer_leader(&mut self, transferee: u64) {
        // lab:begin 3a
        // lab:stub let _ = transferee;
        // lab:stub todo!("3a: start (or cancel) a leader transfer")
        if transferee == self.id {
            // Transferring to ourselves cancels a pending transfer.
            self.lead_transferee = None;
            return;
        }
        if !self.prs.contains_key(&transferee) || self.lead_transferee == Some(transferee) {
            return;
        }
        self.lead_transferee = Some(transferee);
        // The transfer must finish within an election timeout.
        self.election_elapsed = 0;
        if !self.maybe_finish_transfer(transferee) {
            self.send_append(transferee);
        }
        // lab:end 3a
    }

    // Sends `MsgTimeoutNow` to the pending transferee `id` once it has the whole log.
    // Returns whether it did.
    fn maybe_finish_transfer(&mut self, id: u64) -> bool {
        // lab:begin 3a
        // lab:stub let _ = id;
        // lab:stub false
        if self.lead_transferee != Some(id) {
            return false;
        }
        let up_to_date = self
            .prs
            .get(&id)
            .is_some_and(|pr| pr.matched == self.raft_log.last_index());
        if up_to_date {
            self.send(Message {
                msg_type: MessageType::MsgTimeoutNow,
                to: id,
                ..Default::default()
            });
        }
        up_to_date
        // lab:end 3a
    }

    fn abort_leader_transfer(&mut self) {
        self.lead_transferee = None;
    }

    /// Adds `id` to the membership (nothing if it is already a member).
    pub fn add_node(&mut self, id: u64) {
        // lab:begin 3a
        // lab:stub let _ = id;
        // lab:stub todo!("3a: add a member")
        let next = self.raft_log.last_index() + 1;
        self.prs.entry(id).or_insert_with(|| Progress::new(next));
        // lab:end 3a
    }

    /// Removes `id` from the membership; a leader re-evaluates its commit index since the
    /// quorum shrank. Removing every node is allowed.
    pub fn remove_node(&mut self, id: u64) {
        // lab:begin 3a
        // lab:stub let _ = id;
        // lab:stub todo!("3a: remove a member")
        if self.prs.remove(&id).is_none() {
            return;
        }
        self.votes.remove(&id);
        if self.lead_transferee == Some(id) {
            self.abort_leader_transfer();
        }
        if self.state == StateRole::Leader && self.maybe_commit() {
            self.bcast_append();
        }
        // lab:end 3a
    }
}
