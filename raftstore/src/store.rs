//! A store: the peers of every region replicated on one node, and the entry point through
//! which a runtime drives them.

use std::collections::BTreeMap;

use engine::{keys, Cf, Engines};
use proto::raft_serverpb::{PeerState, RegionLocalState};

use crate::msg::{CmdResponse, StoreEvent};
use crate::peer::{error_response, Peer};
use crate::peer_msg_handler::PeerMsgHandler;
use crate::{meta, Config, Error, Result, SchedulerClient, Transport};

/// What a store may ask of the world while it handles an event. A runtime builds one per
/// event; this is the store's whole view of the outside (no clock, no threads).
pub struct StoreContext<'a> {
    /// This store's id.
    pub store_id: u64,
    /// The store's configuration.
    pub cfg: &'a Config,
    /// The store's engines.
    pub engines: &'a Engines,
    /// Raft messages to other stores.
    pub transport: &'a mut dyn Transport,
    /// The scheduler.
    pub scheduler: &'a mut dyn SchedulerClient,
}

/// Where a store reaches the world: the transport and the scheduler. (Background tasks join
/// here in later stages.)
pub struct Effects<'a> {
    /// Raft messages to other stores.
    pub transport: &'a mut dyn Transport,
    /// The scheduler.
    pub scheduler: &'a mut dyn SchedulerClient,
}

/// The peers of one store, keyed by region id.
pub struct Store {
    id: u64,
    cfg: Config,
    engines: Engines,
    peers: BTreeMap<u64, Peer>,
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

impl Store {
    /// Starts store `id` over its engines: creates a peer for every region whose state is
    /// persisted as Normal (tombstones stay dead).
    pub fn new(id: u64, cfg: Config, engines: Engines) -> Result<Store> {
        cfg.validate()?;
        let mut regions = Vec::new();
        {
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
            if let Some(e) = decode_error {
                return Err(e);
            }
        }
        let mut peers = BTreeMap::new();
        for state in regions {
            if state.get_state() == PeerState::Tombstone {
                continue;
            }
            let region = state.get_region().clone();
            let peer = Peer::new(id, &cfg, engines.clone(), region.clone())?;
            peers.insert(region.id, peer);
        }
        Ok(Store {
            id,
            cfg,
            engines,
            peers,
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

    /// The peer of `region_id` on this store, if any.
    pub fn peer(&self, region_id: u64) -> Option<&Peer> {
        self.peers.get(&region_id)
    }

    /// Every peer, by region id.
    pub fn peers(&self) -> impl Iterator<Item = &Peer> {
        self.peers.values()
    }

    /// Handles one event, then processes the ready of every peer it touched.
    pub fn handle(&mut self, ev: StoreEvent, fx: Effects<'_>) {
        let mut ctx = StoreContext {
            store_id: self.id,
            cfg: &self.cfg,
            engines: &self.engines,
            transport: fx.transport,
            scheduler: fx.scheduler,
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
            StoreEvent::SchedulerResponse(_) => {
                // Operators from the scheduler are carried out from stage 3b on.
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
}

/// Processes a peer's ready; a peer that cannot persist stops (it must not send or apply
/// anything it could forget) and fails its proposals.
fn ready(h: &mut PeerMsgHandler<'_, '_>, store_id: u64) {
    if let Err(e) = h.handle_raft_ready() {
        tracing::error!("store {store_id}: a peer stops after a failed ready: {e}");
        h.stop(&e);
    }
}
