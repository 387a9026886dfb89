//! A store: the peers of every region replicated on one node, and the entry point through
//! which a runtime drives them.

pub(crate) mod create_peer;
mod region_ranges;

use std::collections::{BTreeMap, VecDeque};

use engine::{keys, Cf, Engines};
use proto::metapb::Region;
use proto::raft_serverpb::{PeerState, RaftMessage, RegionLocalState};
use proto::schedulerpb::StoreStats;

use crate::msg::{CmdResponse, StoreEvent};
use crate::peer::{error_response, Peer};
use crate::peer_msg_handler::PeerMsgHandler;
use crate::snap::transfer::{ChunkOutcome, SnapReceiver};
use crate::snap::{snapshot_data, SnapFileKind, SnapKey, SnapManager};
use crate::task::{ApplySnapTask, Task, TaskResult};
use crate::util::KeyRange;
use crate::{meta, Config, Error, Result, SchedulerClient, Transport};

pub use region_ranges::RegionRanges;

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

    /// The same effects for a shorter borrow (to hand on by value).
    pub fn reborrow(&mut self) -> Effects<'_> {
        Effects {
            transport: &mut *self.transport,
            scheduler: &mut *self.scheduler,
            tasks: &mut *self.tasks,
        }
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
    /// What the store knows across its peers (region ranges, ...).
    pub meta: &'a mut StoreMeta,
    /// The outside world.
    pub fx: Effects<'a>,
}

/// What a store knows across its peers, and what a peer's handler asks the store to do once
/// it is done (a handler reaches only its own peer).
#[derive(Debug, Default)]
pub struct StoreMeta {
    /// The key ranges of the store's initialised regions; never overlapping.
    pub region_ranges: RegionRanges,
    /// Destroyed regions whose data a task is deleting: no snapshot may fill these ranges
    /// until the task is done.
    pub(crate) pending_cleanups: BTreeMap<u64, KeyRange>,
    /// First vote requests for regions a split will create here but has not yet (see
    /// [`create_peer`]): replayed when the split creates the peer.
    pub(crate) pending_votes: Vec<RaftMessage>,
    /// Work for the store after the current handler.
    pub(crate) actions: VecDeque<StoreAction>,
}

/// What a peer's handler asks of its store.
#[derive(Debug)]
pub(crate) enum StoreAction {
    /// A split applied here created `region`: start its peer (`campaign`: the parent led,
    /// so the new region's peer here starts an election at once).
    CreateSplitPeer { region: Region, campaign: bool },
    /// The peer of `region_id` destroyed itself: forget it.
    Destroyed { region_id: u64 },
    /// Handle this raft message again as if no peer of its region were here (a stale peer
    /// was destroyed because of it; the message may create its successor).
    Reroute(Box<RaftMessage>),
}

impl StoreMeta {
    /// How many first vote requests wait for the split that will create their peer here.
    pub fn pending_vote_count(&self) -> usize {
        self.pending_votes.len()
    }

    /// Whether the data of destroyed region `region_id` is still being deleted here.
    pub fn is_clearing(&self, region_id: u64) -> bool {
        self.pending_cleanups.contains_key(&region_id)
    }

    /// Whether a snapshot of `region` may fill its range here: it overlaps no other region,
    /// and no destroyed region's data is still being deleted there.
    pub fn check_snapshot_range(&self, region: &Region) -> Result<()> {
        let (start, end) = (region.get_start_key(), region.get_end_key());
        if let Some(other) = self
            .region_ranges
            .overlapping(start, end)
            .into_iter()
            .find(|&id| id != region.id)
        {
            return Err(Error::other(format!(
                "its region {} overlaps region {other} of this store",
                region.id
            )));
        }
        let probe = KeyRange::of_region(region);
        if let Some((id, _)) = self
            .pending_cleanups
            .iter()
            .find(|(_, r)| r.overlaps(&probe))
        {
            return Err(Error::other(format!(
                "the data of destroyed region {id} is still being deleted in its range"
            )));
        }
        Ok(())
    }
}

/// A [`StoreContext`] over a store's parts and the runtime's effects (a macro, so the borrows
/// stay field by field and the store's peers remain usable beside it).
macro_rules! context {
    ($store:ident, $fx:ident) => {
        StoreContext {
            store_id: $store.id,
            cfg: &$store.cfg,
            engines: &$store.engines,
            snap_mgr: &$store.snap_mgr,
            meta: &mut $store.meta,
            // Rebuilt field by field: the runtime's trait objects coerce to the shorter life.
            fx: Effects {
                transport: &mut *$fx.transport,
                scheduler: &mut *$fx.scheduler,
                tasks: &mut *$fx.tasks,
            },
        }
    };
}

/// The peers of one store, keyed by region id.
pub struct Store {
    id: u64,
    cfg: Config,
    engines: Engines,
    snap_mgr: SnapManager,
    receiver: SnapReceiver,
    peers: BTreeMap<u64, Peer>,
    meta: StoreMeta,
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
        let mut meta = StoreMeta::default();
        let mut applying = Vec::new();
        let mut tombstones = Vec::new();
        for state in load_region_states(&engines)? {
            if state.get_state() == PeerState::Tombstone {
                tombstones.push(state.get_region().clone());
                continue;
            }
            let region = state.get_region().clone();
            if crate::util::find_peer(&region, id).is_none() {
                // The region no longer lists this store: its peer was removed and the crash
                // came before its tombstone was written. Finish the job.
                tracing::warn!(
                    "store {id}: region {} no longer has a peer here; tombstoning it",
                    region.id
                );
                let mut wb = engine::WriteBatch::new();
                meta::write_region_state(&mut wb, &region, PeerState::Tombstone)?;
                wb.delete_cf(Cf::Raft, &keys::apply_state_key(region.id))?;
                engines.kv.write(wb, engine::Durability::Sync)?;
                tombstones.push(region);
                continue;
            }
            if let Err(other) = meta.region_ranges.insert(&region) {
                return Err(Error::corrupt(format!(
                    "store {id}: regions {} and {other} overlap",
                    region.id
                )));
            }
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
        for region in tombstones {
            create_peer::finish_destroy_at_start(
                &engines,
                &cfg,
                &mut meta,
                &region,
                &mut startup_tasks,
            )?;
        }
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
            meta,
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

    /// What the store knows across its peers (region ranges, pending votes and cleanups).
    pub fn meta(&self) -> &StoreMeta {
        &self.meta
    }

    /// The peer of `region_id` on this store, if any.
    pub fn peer(&self, region_id: u64) -> Option<&Peer> {
        self.peers.get(&region_id)
    }

    /// Every peer, by region id.
    pub fn peers(&self) -> impl Iterator<Item = &Peer> {
        self.peers.values()
    }

    /// Handles a batch of events as a threaded runtime takes them from its queue: raft
    /// messages and client commands are stepped into their peers one after another, and each
    /// touched peer's ready is processed once, after the run of them (many proposals, one
    /// synced raft-engine write); any other event first processes the readies pending before
    /// it, then is handled as by [`Store::handle`]. A batch of one event is exactly
    /// [`Store::handle`], which the simulator uses.
    pub fn handle_batch(
        &mut self,
        events: impl IntoIterator<Item = StoreEvent>,
        mut fx: Effects<'_>,
    ) {
        let mut touched = std::collections::BTreeSet::new();
        for ev in events {
            match ev {
                StoreEvent::Raft(msg) => {
                    touched.extend(self.step_raft_message(msg, &mut fx));
                }
                StoreEvent::Command { req, cb } => {
                    touched.extend(self.propose_command(req, cb, &mut fx));
                }
                other => {
                    for region_id in std::mem::take(&mut touched) {
                        self.ready_region(region_id, &mut fx);
                    }
                    self.handle(other, fx.reborrow());
                }
            }
        }
        for region_id in touched {
            self.ready_region(region_id, &mut fx);
        }
        self.run_actions(&mut fx);
    }

    /// Proposes a client command to its region's peer; returns the region whose ready is
    /// due, or `None` if the command was answered at once (no peer of its region here).
    fn propose_command(
        &mut self,
        req: proto::raft_cmdpb::RaftCmdRequest,
        cb: crate::Callback,
        fx: &mut Effects<'_>,
    ) -> Option<u64> {
        for task in self.startup_tasks.drain(..) {
            fx.spawn(task);
        }
        let region_id = req.get_header().region_id;
        let Some(peer) = self.peers.get_mut(&region_id).filter(|p| !p.stopped) else {
            cb(CmdResponse {
                resp: error_response(&Error::RegionNotFound(region_id), 0),
                snap: None,
            });
            return None;
        };
        let mut ctx = context!(self, fx);
        let mut h = PeerMsgHandler::new(peer, &mut ctx);
        h.propose_raft_command(req, cb);
        Some(region_id)
    }

    /// Processes the ready of `region_id`'s peer, if it is still here.
    fn ready_region(&mut self, region_id: u64, fx: &mut Effects<'_>) {
        if let Some(peer) = self.peers.get_mut(&region_id) {
            let mut ctx = context!(self, fx);
            let mut h = PeerMsgHandler::new(peer, &mut ctx);
            ready(&mut h, self.id);
        }
    }

    /// Handles one event, then processes the ready of every peer it touched and carries out
    /// what the peers' handlers asked of the store (peers created by a split, destroyed).
    pub fn handle(&mut self, ev: StoreEvent, mut fx: Effects<'_>) {
        for task in self.startup_tasks.drain(..) {
            fx.spawn(task);
        }
        match ev {
            StoreEvent::Tick => self.on_tick(&mut fx),
            StoreEvent::Raft(msg) => self.on_raft_message(msg, &mut fx),
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
                        let mut ctx = context!(self, fx);
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
                    let mut ctx = context!(self, fx);
                    let mut h = PeerMsgHandler::new(peer, &mut ctx);
                    ready(&mut h, self.id);
                }
            }
            StoreEvent::Command { req, cb } => {
                if let Some(region_id) = self.propose_command(req, cb, &mut fx) {
                    self.ready_region(region_id, &mut fx);
                }
            }
            StoreEvent::TaskDone(TaskResult::RegionDataCleared { region_id, result }) => {
                match result {
                    Ok(()) => {
                        self.meta.pending_cleanups.remove(&region_id);
                    }
                    // The range stays closed to snapshots; the next start clears it again.
                    Err(e) => tracing::error!(
                        "store {}: deleting the data of destroyed region {region_id} failed: {e}",
                        self.id
                    ),
                }
            }
            StoreEvent::TaskDone(result) => {
                let Some(peer) = self.peers.get_mut(&result.region_id()) else {
                    tracing::debug!("store {}: a task result for a gone region", self.id);
                    return;
                };
                let mut ctx = context!(self, fx);
                let mut h = PeerMsgHandler::new(peer, &mut ctx);
                h.on_task_done(result);
                ready(&mut h, self.id);
            }
            StoreEvent::SchedulerResponse(resp) => {
                let region_id = resp.region_id;
                if let Some(peer) = self.peers.get_mut(&region_id) {
                    let mut ctx = context!(self, fx);
                    let mut h = PeerMsgHandler::new(peer, &mut ctx);
                    h.on_scheduler_response(resp);
                    ready(&mut h, self.id);
                }
            }
            StoreEvent::SplitRegion {
                region_id,
                region_epoch,
                split_key,
                cb,
            } => match self.peers.get_mut(&region_id).filter(|p| !p.stopped) {
                Some(peer) => {
                    let mut ctx = context!(self, fx);
                    let mut h = PeerMsgHandler::new(peer, &mut ctx);
                    h.on_split_region(region_epoch, split_key, cb);
                    ready(&mut h, self.id);
                }
                None => {
                    if let Some(cb) = cb {
                        cb(CmdResponse {
                            resp: error_response(&Error::RegionNotFound(region_id), 0),
                            snap: None,
                        });
                    }
                }
            },
        }
        self.run_actions(&mut fx);
    }

    /// One base tick for every peer, the kv sync and the store heartbeat when due.
    fn on_tick(&mut self, fx: &mut Effects<'_>) {
        self.ticks += 1;
        if self
            .ticks
            .is_multiple_of(self.cfg.ticks(self.cfg.kv_sync_interval))
        {
            if let Err(e) = self.engines.kv.sync() {
                tracing::error!("store {}: syncing the kv engine failed: {e}", self.id);
            }
        }
        if self
            .ticks
            .is_multiple_of(self.cfg.ticks(self.cfg.scheduler_store_heartbeat_interval))
        {
            self.store_heartbeat(fx);
        }
        self.receiver.on_tick(self.ticks);
        let mut ctx = context!(self, fx);
        for peer in self.peers.values_mut() {
            let mut h = PeerMsgHandler::new(peer, &mut ctx);
            h.on_tick();
            ready(&mut h, self.id);
        }
    }

    /// Reports the store's statistics to the scheduler.
    fn store_heartbeat(&self, fx: &mut Effects<'_>) {
        let mut stats = StoreStats::new();
        stats.store_id = self.id;
        stats.region_count = u32::try_from(self.peers.len()).unwrap_or(u32::MAX);
        stats.applying_snap_count = u32::try_from(
            self.peers
                .values()
                .filter(|p| p.applying_snapshot.is_some())
                .count(),
        )
        .unwrap_or(u32::MAX);
        stats.receiving_snap_count = u32::try_from(self.receiver.in_progress()).unwrap_or(u32::MAX);
        if let Err(e) = fx.scheduler.store_heartbeat(stats) {
            tracing::debug!("store {}: store heartbeat failed: {e}", self.id);
        }
    }

    /// A raft message from another store: to its peer here, or, if the region has no peer
    /// here, maybe to a peer created for it (see [`create_peer`]).
    fn on_raft_message(&mut self, msg: RaftMessage, fx: &mut Effects<'_>) {
        if let Some(region_id) = self.step_raft_message(msg, fx) {
            self.ready_region(region_id, fx);
        }
    }

    /// Steps a raft message into its peer (created for it if it may be, see
    /// [`create_peer`]); returns the region whose ready is due, if the message reached a peer.
    fn step_raft_message(&mut self, msg: RaftMessage, fx: &mut Effects<'_>) -> Option<u64> {
        for task in self.startup_tasks.drain(..) {
            fx.spawn(task);
        }
        if msg.get_to_peer().store_id != self.id {
            tracing::debug!(
                "store {} got a message for store {}",
                self.id,
                msg.get_to_peer().store_id
            );
            return None;
        }
        if !msg.has_region_epoch() || !msg.has_message() {
            tracing::debug!("store {}: a raft message without epoch or body", self.id);
            return None;
        }
        let region_id = msg.region_id;
        tracing::trace!(
            "store {} <- region {region_id} {:?} from {} to {} term {}",
            self.id,
            msg.get_message().get_msg_type(),
            msg.get_from_peer().id,
            msg.get_to_peer().id,
            msg.get_message().term
        );
        let mut ctx = context!(self, fx);
        let peer = match self.peers.entry(region_id) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                match create_peer::maybe_create_peer(&mut ctx, &msg) {
                    Ok(Some(peer)) => e.insert(*peer),
                    Ok(None) => return None,
                    Err(err) => {
                        tracing::warn!(
                            "store {}: cannot create a peer of region {region_id}: {err}",
                            self.id
                        );
                        return None;
                    }
                }
            }
        };
        let mut h = PeerMsgHandler::new(peer, &mut ctx);
        if let Err(e) = h.on_raft_msg(msg) {
            tracing::debug!("store {}: raft message refused: {e}", self.id);
        }
        Some(region_id)
    }

    /// Carries out what the handlers asked for, in order (each may ask for more).
    fn run_actions(&mut self, fx: &mut Effects<'_>) {
        while let Some(action) = self.meta.actions.pop_front() {
            match action {
                StoreAction::Destroyed { region_id } => {
                    if self.peers.get(&region_id).is_some_and(|p| p.stopped) {
                        self.peers.remove(&region_id);
                    }
                }
                StoreAction::Reroute(msg) => self.on_raft_message(*msg, fx),
                StoreAction::CreateSplitPeer { region, campaign } => {
                    self.create_split_peer(region, campaign, fx)
                }
            }
        }
    }

    /// Starts the peer of a region a split just created here. A peer of it may already be
    /// here, created by a message from the new region's leader before the split was applied on
    /// this store: if it is still uninitialised it owns nothing and is replaced (its raft
    /// hard state is kept, see [`PeerStorage::new`](crate::PeerStorage::new)); an initialised
    /// one is ahead of the split and stays.
    fn create_split_peer(&mut self, region: Region, campaign: bool, fx: &mut Effects<'_>) {
        let region_id = region.id;
        if self
            .peers
            .get(&region_id)
            .is_some_and(|p| p.is_initialized() && !p.stopped)
        {
            tracing::info!(
                "store {}: region {region_id} from a split is already here",
                self.id
            );
            return;
        }
        let mut peer = match Peer::new(self.id, &self.cfg, self.engines.clone(), region) {
            Ok(peer) => peer,
            Err(e) => {
                tracing::error!(
                    "store {}: cannot start region {region_id} after a split: {e}",
                    self.id
                );
                return;
            }
        };
        if campaign && peer.region().get_peers().len() > 1 {
            // The parent's leader is here: its sibling's peer here campaigns at once, so the new
            // region gets a leader (and the scheduler hears of it) without an election
            // timeout.
            if let Err(e) = peer.raft_group.campaign() {
                tracing::debug!("{} cannot campaign: {e}", peer.tag);
            }
        }
        self.peers.insert(region_id, peer);
        if let Some(peer) = self.peers.get_mut(&region_id) {
            let mut ctx = context!(self, fx);
            let mut h = PeerMsgHandler::new(peer, &mut ctx);
            ready(&mut h, self.id);
        }
        let (votes, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.meta.pending_votes)
            .into_iter()
            .partition(|m| m.region_id == region_id);
        self.meta.pending_votes = rest;
        for msg in votes {
            self.on_raft_message(msg, fx);
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
    ctx.meta.check_snapshot_range(region)?;
    let Some(peer) = peers.get_mut(&msg.region_id).filter(|p| !p.stopped) else {
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

// lab:needs 2aa..3b
#[cfg(test)]
mod tests;
// lab:end-needs
