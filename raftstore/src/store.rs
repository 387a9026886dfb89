//! A store: the peers of every region replicated on one node, and the entry point through
//! which a runtime drives them.

use std::collections::BTreeMap;

use engine::{keys, Cf, Engines};
use proto::raft_serverpb::{PeerState, RegionLocalState};

use crate::msg::{CmdResponse, StoreEvent};
use crate::peer::{error_response, Peer};
use crate::peer_msg_handler::PeerMsgHandler;
use crate::snap::transfer::{ChunkOutcome, SnapReceiver};
use crate::snap::{snapshot_data, SnapFileKind, SnapKey, SnapManager};
use crate::task::{ApplySnapTask, Task};
use crate::util::regions_overlap;
use crate::{meta, Config, Error, Result, SchedulerClient, Transport};

/// Where a store reaches the world while it handles one event: the transport, the scheduler
/// and the runtime's task queue. A runtime builds one per event; this is the store's whole
/// view of the outside (no clock, no threads).
pub struct Effects<'a> {
    /// Raft messages and snapshots to other stores.
    pub transport: &'a mut dyn Transport,
    /// The scheduler.
    pub scheduler: &'a mut dyn SchedulerClient,
    /// Background tasks for the runtime to run (see [`crate::task`]).
    pub tasks: &'a mut Vec<Task>,
}

impl Effects<'_> {
    /// Hands a background task to the runtime; its result comes back as
    /// [`StoreEvent::TaskDone`].
    pub fn spawn(&mut self, task: Task) {
        self.tasks.push(task);
    }
}

/// What a peer's handler may use while it handles an event: the store's own parts, and the
/// [`Effects`] the runtime passed in.
pub struct StoreContext<'a> {
    /// This store's id.
    pub store_id: u64,
    /// The store's configuration.
    pub cfg: &'a Config,
    /// The store's engines.
    pub engines: &'a Engines,
    /// The store's snapshot directory.
    pub snap_mgr: &'a SnapManager,
    /// The outside world.
    pub fx: Effects<'a>,
}

/// The peers of one store, keyed by region id.
pub struct Store {
    id: u64,
    cfg: Config,
    engines: Engines,
    snap_mgr: SnapManager,
    receiver: SnapReceiver,
    peers: BTreeMap<u64, Peer>,
    /// Tasks to hand to the runtime at the next event (those found necessary at start).
    startup_tasks: Vec<Task>,
    /// Base ticks since the store started.
    ticks: u64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("id", &self.id)
            .field("peers", &self.peers)
            .finish()
    }
}

/// Every region state the kv engine holds.
fn load_region_states(engines: &Engines) -> Result<Vec<RegionLocalState>> {
    let mut regions = Vec::new();
    let snap = engines.kv.snapshot()?;
    let mut decode_error = None;
    snap.scan_cf(
        Cf::Raft,
        keys::REGION_META_MIN_KEY,
        Some(keys::REGION_META_MAX_KEY),
        |key, value| {
            if keys::decode_region_meta_key(key)
                .is_some_and(|(_, suffix)| suffix == keys::REGION_STATE_SUFFIX)
            {
                use protobuf::Message as _;
                match RegionLocalState::parse_from_bytes(value) {
                    Ok(state) => regions.push(state),
                    Err(e) => {
                        decode_error = Some(Error::corrupt(format!(
                            "region state under {key:02x?}: {e}"
                        )));
                        return false;
                    }
                }
            }
            true
        },
    )?;
    match decode_error {
        Some(e) => Err(e),
        None => Ok(regions),
    }
}

impl Store {
    /// Starts store `id` over its engines: creates a peer for every region whose state is
    /// persisted as Normal or Applying (tombstones stay dead), cleans the snapshot directory
    /// (`<engines>/snap`), and schedules the application of any snapshot a crash interrupted
    /// (handed to the runtime with the first event).
    pub fn new(id: u64, cfg: Config, engines: Engines) -> Result<Store> {
        cfg.validate()?;
        let snap_mgr = SnapManager::new(engines.path().join("snap"))?;
        let mut peers = BTreeMap::new();
        let mut applying = Vec::new();
        for state in load_region_states(&engines)? {
            if state.get_state() == PeerState::Tombstone {
                continue;
            }
            let region = state.get_region().clone();
            let mut peer = Peer::new(id, &cfg, engines.clone(), region.clone())?;
            if state.get_state() == PeerState::Applying {
                let t = peer.storage().apply_state().get_truncated_state();
                let key = SnapKey {
                    region_id: region.id,
                    term: t.term,
                    index: t.index,
                };
                peer.applying_snapshot = Some(key);
                applying.push(key);
            }
            peers.insert(region.id, peer);
        }
        snap_mgr.clean_at_start(|key| applying.contains(key))?;
        let mut startup_tasks = Vec::new();
        for key in applying {
            let data = snap_mgr.read_received_meta(&key).map_err(|e| {
                Error::corrupt(format!(
                    "region {} was applying snapshot {key} and cannot go on: {e}",
                    key.region_id
                ))
            })?;
            tracing::info!(
                "store {id}: region {} resumes applying snapshot {key}",
                key.region_id
            );
            startup_tasks.push(Task::ApplySnapshot(ApplySnapTask::new(
                key,
                data,
                &snap_mgr,
                cfg.task_batch_bytes,
            )));
        }
        let receiver = SnapReceiver::new(snap_mgr.clone(), cfg.ticks(cfg.snap_receive_timeout));
        Ok(Store {
            id,
            cfg,
            engines,
            snap_mgr,
            receiver,
            peers,
            startup_tasks,
            ticks: 0,
        })
    }

    /// This store's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The store's engines.
    pub fn engines(&self) -> &Engines {
        &self.engines
    }

    /// The store's snapshot directory.
    pub fn snap_manager(&self) -> &SnapManager {
        &self.snap_mgr
    }

    /// The peer of `region_id` on this store, if any.
    pub fn peer(&self, region_id: u64) -> Option<&Peer> {
        self.peers.get(&region_id)
    }

    /// Every peer, by region id.
    pub fn peers(&self) -> impl Iterator<Item = &Peer> {
        self.peers.values()
    }

    /// Handles one event, then processes the ready of every peer it touched.
    pub fn handle(&mut self, ev: StoreEvent, mut fx: Effects<'_>) {
        for task in self.startup_tasks.drain(..) {
            fx.spawn(task);
        }
        let mut ctx = StoreContext {
            store_id: self.id,
            cfg: &self.cfg,
            engines: &self.engines,
            snap_mgr: &self.snap_mgr,
            // Rebuilt field by field: the runtime's trait objects coerce to the shorter life.
            fx: Effects {
                transport: fx.transport,
                scheduler: fx.scheduler,
                tasks: fx.tasks,
            },
        };
        match ev {
            StoreEvent::Tick => {
                self.ticks += 1;
                if self
                    .ticks
                    .is_multiple_of(self.cfg.ticks(self.cfg.kv_sync_interval))
                {
                    if let Err(e) = self.engines.kv.sync() {
                        tracing::error!("store {}: syncing the kv engine failed: {e}", self.id);
                    }
                }
                self.receiver.on_tick(self.ticks);
                for peer in self.peers.values_mut() {
                    let mut h = PeerMsgHandler::new(peer, &mut ctx);
                    h.on_tick();
                    ready(&mut h, self.id);
                }
            }
            StoreEvent::Raft(msg) => {
                if msg.get_to_peer().store_id != self.id {
                    tracing::debug!(
                        "store {} got a message for store {}",
                        self.id,
                        msg.get_to_peer().store_id
                    );
                    return;
                }
                let Some(peer) = self.peers.get_mut(&msg.region_id) else {
                    // Creating peers from messages comes with stage 3b.
                    tracing::debug!("store {} has no peer of region {}", self.id, msg.region_id);
                    return;
                };
                let mut h = PeerMsgHandler::new(peer, &mut ctx);
                if let Err(e) = h.on_raft_msg(msg) {
                    tracing::debug!("store {}: raft message refused: {e}", self.id);
                }
                ready(&mut h, self.id);
            }
            StoreEvent::SnapshotChunk(chunk) => {
                let to_store = chunk.get_message().get_to_peer().store_id;
                if to_store != self.id {
                    tracing::debug!(
                        "store {} got a snapshot chunk for store {to_store}",
                        self.id
                    );
                    return;
                }
                match self.receiver.on_chunk(chunk, self.ticks) {
                    Ok(ChunkOutcome::Pending | ChunkOutcome::Duplicate) => {}
                    Ok(ChunkOutcome::Complete(key, msg)) => {
                        if let Err(e) = on_snapshot_received(&mut self.peers, key, *msg, &mut ctx) {
                            tracing::warn!("store {}: snapshot {key} refused: {e}", self.id);
                            self.snap_mgr.delete_received(&key);
                            self.receiver.forget(&key);
                        }
                    }
                    Err(e) => tracing::warn!("store {}: {e}", self.id),
                }
            }
            StoreEvent::SnapshotStatus {
                region_id,
                to_peer_id,
                status,
            } => {
                if let Some(peer) = self.peers.get_mut(&region_id) {
                    peer.raft_group.report_snapshot(to_peer_id, status);
                    let mut h = PeerMsgHandler::new(peer, &mut ctx);
                    ready(&mut h, self.id);
                }
            }
            StoreEvent::Command { req, cb } => {
                let region_id = req.get_header().region_id;
                let Some(peer) = self.peers.get_mut(&region_id) else {
                    cb(CmdResponse {
                        resp: error_response(&Error::RegionNotFound(region_id), 0),
                        snap: None,
                    });
                    return;
                };
                let mut h = PeerMsgHandler::new(peer, &mut ctx);
                h.propose_raft_command(req, cb);
                ready(&mut h, self.id);
            }
            StoreEvent::TaskDone(result) => {
                let Some(peer) = self.peers.get_mut(&result.region_id()) else {
                    tracing::debug!("store {}: a task result for a gone region", self.id);
                    return;
                };
                let mut h = PeerMsgHandler::new(peer, &mut ctx);
                h.on_task_done(result);
                ready(&mut h, self.id);
            }
            StoreEvent::SchedulerResponse(_) => {
                // Operators from the scheduler are carried out from stage 3b on.
            }
            StoreEvent::SplitRegion { cb, .. } => {
                if let Some(cb) = cb {
                    cb(CmdResponse {
                        resp: error_response(&Error::other("splits come with stage 3b"), 0),
                        snap: None,
                    });
                }
            }
        }
    }

    /// The persisted apply state of a region on this store (for tests and tools).
    pub fn apply_state(
        &self,
        region_id: u64,
    ) -> Result<Option<proto::raft_serverpb::RaftApplyState>> {
        meta::apply_state(&self.engines.kv, region_id)
    }

    /// Whether the snapshot directory holds any file of kind `kind` (for tests).
    pub fn has_snapshot_files(&self, kind: SnapFileKind) -> Result<bool> {
        Ok(self.snap_mgr.list()?.iter().any(|(k, _)| *k == kind))
    }
}

/// A snapshot file arrived whole and verified: checks that it may be applied here and
/// steps its message into the peer. An error refuses it (the caller deletes the file); a
/// snapshot raft does not take (not newer than what the peer has) is deleted too.
fn on_snapshot_received(
    peers: &mut BTreeMap<u64, Peer>,
    key: SnapKey,
    msg: proto::raft_serverpb::RaftMessage,
    ctx: &mut StoreContext<'_>,
) -> Result<()> {
    let data = snapshot_data(msg.get_message().get_snapshot())?;
    let region = data.get_region();
    let to = msg.get_to_peer();
    // The framework's `check_snapshot`: the snapshot must describe a region that holds
    // the target peer, and must not overlap another region of this store (it would
    // overwrite that region's data).
    if !region
        .get_peers()
        .iter()
        .any(|p| p.id == to.id && p.store_id == to.store_id)
    {
        return Err(Error::other(format!(
            "its region {} does not hold the target peer {}",
            region.id, to.id
        )));
    }
    if let Some(other) = peers
        .values()
        .map(|p| p.region())
        .find(|r| r.id != region.id && regions_overlap(r, region))
    {
        return Err(Error::other(format!(
            "its region {} overlaps region {} of this store",
            region.id, other.id
        )));
    }
    let Some(peer) = peers.get_mut(&msg.region_id) else {
        return Err(Error::RegionNotFound(msg.region_id));
    };
    if crate::util::is_epoch_stale(region.get_region_epoch(), peer.region().get_region_epoch()) {
        return Err(Error::other(format!(
            "its region epoch {:?} is older than the peer's {:?}",
            region.get_region_epoch(),
            peer.region().get_region_epoch()
        )));
    }
    ctx.snap_mgr.write_received_meta(&key, &data)?;
    let mut h = PeerMsgHandler::new(peer, ctx);
    h.on_raft_msg(msg)?;
    if !h.snapshot_pending(&key) {
        tracing::debug!(
            "store {}: raft did not take snapshot {key} (not newer than the peer's state)",
            ctx.store_id
        );
        ctx.snap_mgr.delete_received(&key);
    }
    let store_id = ctx.store_id;
    let mut h = PeerMsgHandler::new(peer, ctx);
    ready(&mut h, store_id);
    Ok(())
}

/// Processes a peer's ready; a peer that cannot persist stops (it must not send or apply
/// anything it could forget) and fails its proposals.
fn ready(h: &mut PeerMsgHandler<'_, '_>, store_id: u64) {
    if let Err(e) = h.handle_raft_ready() {
        tracing::error!("store {store_id}: a peer stops after a failed ready: {e}");
        h.stop(&e);
    }
}

#[cfg(test)]
mod tests;
