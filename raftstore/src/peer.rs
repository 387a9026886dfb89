//! One replica of one region on this store.

use std::collections::{BTreeMap, VecDeque};

use engine::Engines;
use proto::eraftpb::{Entry, Message, MessageType};
use proto::metapb::{self, Region};
use proto::raft_cmdpb::RaftCmdResponse;
use proto::raft_serverpb::RaftMessage;
use proto::schedulerpb::RegionHeartbeatRequest;
use raft::{RawNode, SnapshotStatus, StateRole};

use crate::msg::{Callback, CmdResponse};
use crate::snap::transfer::OutgoingSnapshot;
use crate::snap::{SnapFileKind, SnapKey};
use crate::store::StoreContext;
use crate::{util, Config, Error, PeerStorage, Result, SchedulerClient};

/// A command proposed to raft and waiting for its entry to be applied.
pub struct Proposal {
    /// The log index the command's entry got.
    pub index: u64,
    /// The term it was proposed in.
    pub term: u64,
    /// Answers the client.
    pub cb: Callback,
}

impl std::fmt::Debug for Proposal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Proposal({}, {})", self.index, self.term)
    }
}

/// A replica of a region: its raft group over its [`PeerStorage`], its pending proposals and
/// what it knows of the other replicas.
pub struct Peer {
    /// This replica's identity (id and store).
    pub meta: metapb::Peer,
    /// The region this replica belongs to.
    pub region_id: u64,
    /// The raft state machine.
    pub raft_group: RawNode<PeerStorage>,
    /// Proposals waiting to be applied, in log order.
    pub proposals: VecDeque<Proposal>,
    /// Peer id → peer (with its store), to address raft messages.
    pub peer_cache: BTreeMap<u64, metapb::Peer>,
    /// Set once the peer is destroyed; a stopped peer handles nothing.
    pub stopped: bool,
    /// `[region N] peer-id`, for logs and errors.
    pub tag: String,
    /// Base ticks since the peer started, to pace periodic work.
    pub(crate) ticks: u64,
    /// Whether the last processed ready left this peer leader.
    pub(crate) was_leader: bool,
    /// The snapshot whose data is being written into the region's range (stage 2C). While
    /// it is, the peer processes no `Ready`: it must not apply later entries, or answer
    /// reads, before the data is there.
    pub applying_snapshot: Option<SnapKey>,
    /// Committed entries that came in the same `Ready` as a snapshot, applied once the
    /// snapshot's data is in place.
    pub(crate) deferred_entries: Vec<Entry>,
    /// Where the next raft-log GC starts: one past the last index an earlier GC deleted
    /// (0 after a start: from the first entry still stored).
    pub last_compacted_idx: u64,
    /// The region's size as the last split check measured it (`None` until one did).
    pub approximate_size: Option<u64>,
    /// Bytes written into the region since the last split check was scheduled: once the
    /// size is known, the next check waits until this reaches a fraction of the split size.
    pub size_diff_hint: u64,
    /// Whether a split check of this peer is running.
    pub(crate) split_check_running: bool,
    /// Set when an applied conf change removed this peer: the region as it is after the
    /// removal, for the tombstone. The peer is destroyed once the entries before it are
    /// written.
    pub(crate) pending_destroy: Option<Region>,
    /// Set when this peer applied its own removal while leading: it stays a little longer
    /// (until the tick given, with the region for its tombstone), still answering votes, so the
    /// remaining peers can elect a leader that commits the removal even if the messages
    /// carrying the commit index were lost or overtaken by a leader transfer.
    pub(crate) retiring: Option<(u64, Region)>,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("tag", &self.tag)
            .field("term", &self.term())
            .field("leader", &self.leader_id())
            .field("proposals", &self.proposals.len())
            .finish()
    }
}

impl Peer {
    /// Creates the replica of `region` that lives on `store_id`, over the store's engines.
    pub fn new(store_id: u64, cfg: &Config, engines: Engines, region: Region) -> Result<Peer> {
        let meta = util::find_peer(&region, store_id).cloned().ok_or_else(|| {
            Error::other(format!(
                "region {} has no peer on store {store_id}",
                region.id
            ))
        })?;
        Peer::with_meta(cfg, engines, region, meta)
    }

    fn with_meta(
        cfg: &Config,
        engines: Engines,
        region: Region,
        meta: metapb::Peer,
    ) -> Result<Peer> {
        let tag = format!("[region {}] {}", region.id, meta.id);
        let peer_cache = region
            .get_peers()
            .iter()
            .map(|p| (p.id, p.clone()))
            .collect();
        let region_id = region.id;
        let storage = PeerStorage::new(engines, region, tag.clone())?;
        let raft_cfg = raft::Config {
            id: meta.id,
            peers: Vec::new(),
            election_tick: cfg.raft_election_timeout_ticks,
            heartbeat_tick: cfg.raft_heartbeat_ticks,
            applied: storage.applied_index(),
            seed: cfg.seed ^ region_id.rotate_left(32),
        };
        let raft_group = RawNode::new(&raft_cfg, storage)?;
        Ok(Peer {
            meta,
            region_id,
            raft_group,
            proposals: VecDeque::new(),
            peer_cache,
            stopped: false,
            tag,
            ticks: 0,
            was_leader: false,
            applying_snapshot: None,
            deferred_entries: Vec::new(),
            last_compacted_idx: 0,
            approximate_size: None,
            size_diff_hint: 0,
            split_check_running: false,
            pending_destroy: None,
            retiring: None,
        })
    }

    /// Creates an *uninitialised* replica `meta` of region `region_id` on `store_id`: the
    /// store learned of the region from a raft message and knows nothing else about it (not
    /// its range, not its peers). Its log is empty at index and term 0, below the initial
    /// (5, 5) of every initialised replica, so the region's leader cannot bring it up to date
    /// by appending entries (it has none from index 1) and sends a snapshot; the snapshot
    /// brings the region, its range and its data.
    ///
    /// `epoch` is the region epoch of the message that created it. The replica keeps it as
    /// its region's epoch until the snapshot comes, and drops messages of an older epoch: a
    /// removed peer that never learned of its removal still campaigns with its old epoch, and
    /// a new replica that granted it a vote would move to a term the real leader never learns
    /// of (it ignores that leader's lower-term messages) and wedge the region.
    pub fn replicate(
        store_id: u64,
        cfg: &Config,
        engines: Engines,
        region_id: u64,
        meta: metapb::Peer,
        epoch: metapb::RegionEpoch,
    ) -> Result<Peer> {
        if meta.store_id != store_id {
            return Err(Error::other(format!(
                "peer {} of region {region_id} belongs to store {}, not {store_id}",
                meta.id, meta.store_id
            )));
        }
        let mut region = Region {
            id: region_id,
            ..Default::default()
        };
        region.set_region_epoch(epoch);
        Peer::with_meta(cfg, engines, region, meta)
    }

    /// Whether the replica knows its region (its peers and range): bootstrapped, created by a
    /// split, or given a snapshot.
    pub fn is_initialized(&self) -> bool {
        self.storage().is_initialized()
    }

    /// The region as this replica knows it.
    pub fn region(&self) -> &Region {
        self.raft_group.raft.raft_log.storage.region()
    }

    /// The peer storage.
    pub fn storage(&self) -> &PeerStorage {
        &self.raft_group.raft.raft_log.storage
    }

    /// The peer storage, mutably.
    pub fn storage_mut(&mut self) -> &mut PeerStorage {
        &mut self.raft_group.raft.raft_log.storage
    }

    /// Whether this replica leads its region.
    pub fn is_leader(&self) -> bool {
        self.raft_group.raft.state == StateRole::Leader
    }

    /// The leader this replica knows of (0 if none).
    pub fn leader_id(&self) -> u64 {
        self.raft_group.raft.lead
    }

    /// The current raft term.
    pub fn term(&self) -> u64 {
        self.raft_group.raft.term
    }

    /// The index the next proposal will get.
    pub fn next_proposal_index(&self) -> u64 {
        self.raft_group.raft.raft_log.last_index() + 1
    }

    /// The leader as a peer with its store, if known.
    pub fn leader(&self) -> Option<metapb::Peer> {
        self.peer_cache.get(&self.leader_id()).cloned()
    }

    /// Wraps raft messages for their stores and hands them to the transport; a `MsgSnapshot`
    /// goes with its generated file as an [`OutgoingSnapshot`]. A message to a peer this
    /// replica cannot place is dropped (raft retries); raft learns of a snapshot that could not
    /// be sent (a failure) and of a peer the transport could not reach.
    pub fn send(&mut self, ctx: &mut StoreContext<'_>, msgs: Vec<Message>) {
        for msg in msgs {
            let to_id = msg.to;
            let Some(to) = self.peer_cache.get(&to_id).cloned() else {
                tracing::debug!("{} drops a message to unknown peer {to_id}", self.tag);
                continue;
            };
            let mut rm = RaftMessage::new();
            rm.region_id = self.region_id;
            rm.set_from_peer(self.meta.clone());
            rm.set_to_peer(to);
            rm.set_region_epoch(self.region().get_region_epoch().clone());
            if util::is_initial_msg(&msg) {
                rm.start_key = self.region().start_key.clone();
                rm.end_key = self.region().end_key.clone();
            }
            let is_snapshot = msg.get_msg_type() == MessageType::MsgSnapshot;
            rm.set_message(msg);
            if is_snapshot {
                let snap = rm.get_message().get_snapshot();
                let key = SnapKey::of(self.region_id, snap);
                let path = ctx.snap_mgr.path(SnapFileKind::Generated, &key);
                let sent = OutgoingSnapshot::open(rm, &path, ctx.cfg.snap_chunk_size)
                    .and_then(|out| ctx.fx.transport.send_snapshot(out));
                if let Err(e) = sent {
                    tracing::warn!("{} cannot send snapshot {key} to {to_id}: {e}", self.tag);
                    self.raft_group
                        .report_snapshot(to_id, SnapshotStatus::Failure);
                }
            } else if let Err(e) = ctx.fx.transport.send(rm) {
                tracing::debug!("{} failed to send a message to {to_id}: {e}", self.tag);
                self.raft_group.report_unreachable(to_id);
            }
        }
    }

    /// Reports the region to the scheduler (leaders only): the region with its epoch and
    /// peers, this leader, the peers still catching up, and the approximate size.
    pub fn heartbeat_scheduler(&self, scheduler: &mut dyn SchedulerClient) {
        let mut req = RegionHeartbeatRequest::new();
        req.set_region(self.region().clone());
        req.set_leader(self.meta.clone());
        req.set_pending_peers(self.collect_pending_peers().into());
        req.approximate_size = self.approximate_size.unwrap_or(0);
        if let Err(e) = scheduler.region_heartbeat(req) {
            tracing::debug!("{} region heartbeat failed: {e}", self.tag);
        }
    }

    /// The peers of the region that cannot catch up from the leader's log any more: their
    /// match index is below the truncated index, so they wait for (or apply) a snapshot. A
    /// just-added peer is pending until its snapshot is in.
    pub fn collect_pending_peers(&self) -> Vec<metapb::Peer> {
        let truncated = self.storage().truncated_index();
        let prs = &self.raft_group.raft.prs;
        self.region()
            .get_peers()
            .iter()
            .filter(|p| p.id != self.meta.id)
            .filter(|p| prs.get(&p.id).is_none_or(|pr| pr.matched < truncated))
            .cloned()
            .collect()
    }

    /// Answers every pending proposal with `err` (the peer is going away).
    pub fn fail_proposals(&mut self, err: &Error) {
        for p in self.proposals.drain(..) {
            (p.cb)(CmdResponse {
                resp: error_response(err, 0),
                snap: None,
            });
        }
    }
}

/// A response carrying only an error.
pub fn error_response(err: &Error, term: u64) -> RaftCmdResponse {
    let mut resp = RaftCmdResponse::new();
    resp.mut_header().set_error(err.into());
    resp.mut_header().current_term = term;
    resp
}
