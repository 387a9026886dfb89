//! The mock scheduler of the simulated cluster: region lookup by key, id allocation, region
//! heartbeats, and the add-peer / remove-peer / transfer-leader operators that tests request.
//!
//! It plays the part of the original's `MockSchedulerClient` (`kv/test_raftstore/scheduler.go`)
//! and keeps its observable behaviour, the facts stage 3B's students rely on:
//!
//! - the scheduler learns about a region only from a region heartbeat of its leader;
//! - a heartbeat first updates the pending-peer set and the region's leader, **then** checks
//!   staleness (so a partitioned old leader still flips the recorded leader, see
//!   `pitfalls.md` item 5);
//! - a region is replaced by an overlapping one only if the newcomer's `version` is strictly
//!   larger; a heartbeat with an older epoch is refused and answered with nothing;
//! - there is one operator per region, and its step (a `ChangePeer` or a `TransferLeader`) is
//!   attached to **every** response until the scheduler sees the operator done, so stores get
//!   the same command many times and must treat duplicates as harmless.
//!
//! It is a plain single-threaded value: the simulator owns it (as a
//! [`ClusterScheduler`], the trait every scheduler of a simulated cluster implements), calls
//! it, and collects the heartbeat responses with [`MockScheduler::take_responses`] to deliver
//! them to the leader's store as events. All maps are `BTreeMap`s, so nothing depends on hash
//! order. It has no periodic work: [`ClusterScheduler::wants_ticks`] says no, so a cluster on
//! the mock schedules no scheduler ticks, and it ignores the virtual time the trait's calls
//! carry.
//!
//! # Differences from the original
//!
//! Each is deliberate and documented again where it happens:
//!
//! 1. **No panics inside the scheduler.** Where the original panics because a heartbeat reveals
//!    a store bug (a peer set changed without a `conf_ver` bump, a `conf_ver` that rose by
//!    anything but one conf change, a range with `start_key >= end_key`, a heartbeat without a
//!    leader or region), the mock records a [violation](MockScheduler::violations) and refuses that
//!    heartbeat with [`SchedulerError::Violation`]. The harness turns recorded violations
//!    into a test failure with the message.
//! 2. **The conf-version rule is exact, and one step stricter than the original.** A heartbeat
//!    whose `conf_ver` is larger than the cached region's must carry `conf_ver` exactly one
//!    larger, and either a peer set that differs by exactly one added or one removed peer (the
//!    smaller set contained in the larger), or, with an equal peer count, the same peers and
//!    `version` exactly one larger too (the original's rule, kept as written). The original
//!    checks the `+1` only in the equal-count case, so it lets an add, remove, add between two
//!    heartbeats through (`conf_ver` +3, one peer more); the mock records a violation for it,
//!    as for every other jump (`pitfalls.md` item 4): one applied conf change, one `conf_ver`
//!    step, one heartbeat.
//! 3. Peer sets are compared by `(store id, peer id)`, not by store id alone, so a peer
//!    replaced by another id on the same store counts as a change.
//! 4. [`get_region_by_id`](MockScheduler::get_region_by_id) of an unknown or removed region id
//!    returns `None`; the original maps such an id to the empty key and returns the first
//!    region and its leader. [`ask_split`](MockScheduler::ask_split) of an unknown region
//!    therefore fails with [`SchedulerError::RegionNotFound`].
//! 5. Range reconciliation also removes (or is refused by) a cached region that **starts
//!    inside** the heartbeat's range; the original looks only at the region containing the
//!    heartbeat's start key, so a stale pre-split heartbeat could be inserted on top of a newer
//!    half and leave two cached regions overlapping.
//! 6. An `AddPeer` operator counts its peer as seen only if a peer with the same id **on the
//!    same store** is in the heartbeat (the original matches the id alone).
//! 7. A heartbeat whose leader is on a store the scheduler does not know is refused with a
//!    violation before it changes anything (the original updates its state, then calls a nil
//!    response handler and crashes).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Bound;
use std::time::Duration;

use proto::eraftpb::ConfChangeType;
use proto::metapb::{Peer, Region, Store};
use proto::schedulerpb::{
    AskSplitResponse, RegionHeartbeatRequest, RegionHeartbeatResponse, StoreStats,
};
use raftstore::util::is_epoch_stale;

use super::{fmt_epoch, ClusterScheduler, SchedulerError};

/// A scheduling step the tests asked for, one per region at most.
#[derive(Debug, Clone, PartialEq)]
pub enum Operator {
    /// Add `peer` to the region. Done once a heartbeat listed the peer (`seen`) and the peer is
    /// no longer pending; until it is seen every response carries `ChangePeer{AddNode, peer}`,
    /// afterwards responses carry no step while the peer catches up.
    AddPeer {
        /// The peer to add.
        peer: Peer,
        /// Whether a heartbeat has listed the peer in the region yet.
        seen: bool,
    },
    /// Remove `peer` from the region. Done once a heartbeat no longer lists its id; until then
    /// every response carries `ChangePeer{RemoveNode, peer}`.
    RemovePeer {
        /// The peer to remove.
        peer: Peer,
    },
    /// Make `peer` the region's leader. Done once a heartbeat comes from it (same peer id);
    /// until then every response carries `TransferLeader{peer}`.
    TransferLeader {
        /// The peer that should lead.
        peer: Peer,
    },
}

impl fmt::Display for Operator {
    /// One line, as [`ClusterScheduler::operator`] reports it: `add peer (store 5, peer 12)`
    /// (with `, seen` once a heartbeat listed it), `remove peer (store 2, peer 2)`,
    /// `transfer leader to (store 3, peer 3)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operator::AddPeer { peer, seen } => {
                write!(f, "add peer {}", fmt_peer(peer))?;
                if *seen {
                    f.write_str(", seen")?;
                }
                Ok(())
            }
            Operator::RemovePeer { peer } => write!(f, "remove peer {}", fmt_peer(peer)),
            Operator::TransferLeader { peer } => {
                write!(f, "transfer leader to {}", fmt_peer(peer))
            }
        }
    }
}

/// The mock scheduler: the cluster's view of stores and regions as the tests see it.
#[derive(Debug)]
pub struct MockScheduler {
    cluster_id: u64,
    next_id: u64,
    bootstrapped: bool,
    stores: BTreeMap<u64, Store>,
    /// Cached regions by start key (ranges do not overlap).
    regions: BTreeMap<Vec<u8>, Region>,
    /// Region id → start key of its cached region.
    region_keys: BTreeMap<u64, Vec<u8>>,
    operators: BTreeMap<u64, Operator>,
    /// The last reported leader of each region (kept when the region leaves the cache).
    leaders: BTreeMap<u64, Peer>,
    /// Ids of the peers the last heartbeats reported as pending.
    pending_peers: BTreeSet<u64>,
    /// Heartbeat responses not yet delivered: (store id of the leader, response).
    responses: Vec<(u64, RegionHeartbeatResponse)>,
    violations: Vec<String>,
}

impl MockScheduler {
    /// An empty, not yet bootstrapped scheduler. `first_id` is the first id
    /// [`alloc_id`](Self::alloc_id) hands out; the harness passes `store count + 1`, as the
    /// original does, since ids `1..=count` name the bootstrap stores and peers.
    pub fn new(cluster_id: u64, first_id: u64) -> MockScheduler {
        MockScheduler {
            cluster_id,
            next_id: first_id,
            bootstrapped: false,
            stores: BTreeMap::new(),
            regions: BTreeMap::new(),
            region_keys: BTreeMap::new(),
            operators: BTreeMap::new(),
            leaders: BTreeMap::new(),
            pending_peers: BTreeSet::new(),
            responses: Vec::new(),
            violations: Vec::new(),
        }
    }

    /// The cluster id.
    pub fn cluster_id(&self) -> u64 {
        self.cluster_id
    }

    /// A fresh id, larger than every id handed out before.
    pub fn alloc_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Bootstraps the cluster with its first store. A second call (or a call once regions are
    /// known) fails with [`SchedulerError::AlreadyBootstrapped`] and changes nothing.
    pub fn bootstrap(&mut self, store: Store) -> Result<(), SchedulerError> {
        if self.bootstrapped || !self.regions.is_empty() {
            self.bootstrapped = true;
            return Err(SchedulerError::AlreadyBootstrapped);
        }
        self.stores.insert(store.id, store);
        self.bootstrapped = true;
        Ok(())
    }

    /// Whether [`bootstrap`](Self::bootstrap) succeeded.
    pub fn is_bootstrapped(&self) -> bool {
        self.bootstrapped
    }

    /// Adds or replaces a store.
    pub fn put_store(&mut self, store: Store) {
        self.stores.insert(store.id, store);
    }

    /// The store with this id.
    pub fn get_store(&self, store_id: u64) -> Option<&Store> {
        self.stores.get(&store_id)
    }

    /// The cached region containing `key`, with its last reported leader.
    pub fn get_region(&self, key: &[u8]) -> Option<(Region, Option<Peer>)> {
        let region = self.region_containing(key)?;
        Some((region.clone(), self.leaders.get(&region.id).cloned()))
    }

    /// The cached region with this id, with its last reported leader.
    ///
    /// Difference from the original: an unknown (or removed) id gives `None`. The original
    /// maps it to the empty key and returns the first region instead, so a caller polling a
    /// vanished region silently watched another one.
    pub fn get_region_by_id(&self, region_id: u64) -> Option<(Region, Option<Peer>)> {
        let key = self.region_keys.get(&region_id)?;
        let region = self.regions.get(key).filter(|r| r.id == region_id)?;
        Some((region.clone(), self.leaders.get(&region_id).cloned()))
    }

    /// The last leader reported for the region (also for a stale heartbeat, and kept after the
    /// region left the cache).
    pub fn leader(&self, region_id: u64) -> Option<&Peer> {
        self.leaders.get(&region_id)
    }

    /// The cached regions in key order.
    pub fn regions(&self) -> impl Iterator<Item = &Region> + '_ {
        self.regions.values()
    }

    /// Whether the last heartbeat that listed this peer reported it as pending.
    pub fn is_pending(&self, peer_id: u64) -> bool {
        self.pending_peers.contains(&peer_id)
    }

    /// Schedules adding `peer` to the region, replacing the region's current operator.
    pub fn add_peer(&mut self, region_id: u64, peer: Peer) {
        self.operators
            .insert(region_id, Operator::AddPeer { peer, seen: false });
    }

    /// Schedules removing `peer` from the region, replacing the region's current operator.
    pub fn remove_peer(&mut self, region_id: u64, peer: Peer) {
        self.operators
            .insert(region_id, Operator::RemovePeer { peer });
    }

    /// Schedules moving the region's leadership to `peer`, replacing the region's current
    /// operator.
    pub fn transfer_leader(&mut self, region_id: u64, peer: Peer) {
        self.operators
            .insert(region_id, Operator::TransferLeader { peer });
    }

    /// The region's unfinished operator, if any.
    pub fn operator(&self, region_id: u64) -> Option<&Operator> {
        self.operators.get(&region_id)
    }

    /// The heartbeat responses queued since the last call, oldest first, each with the id of
    /// the store it is for (the store of the leader that sent the heartbeat).
    pub fn take_responses(&mut self) -> Vec<(u64, RegionHeartbeatResponse)> {
        std::mem::take(&mut self.responses)
    }

    /// Every store bug the scheduler noticed so far, oldest first. A test must fail if this is
    /// not empty.
    pub fn violations(&self) -> &[String] {
        &self.violations
    }

    /// Takes the recorded violations, leaving none.
    pub fn take_violations(&mut self) -> Vec<String> {
        std::mem::take(&mut self.violations)
    }

    /// Ids for splitting `region`: a new region id and one new peer id per peer, in peer order.
    ///
    /// Fails if the cluster is not bootstrapped, if the scheduler does not know the region
    /// (the original compared against the first region instead, see
    /// [`get_region_by_id`](Self::get_region_by_id)), or if `region`'s epoch is older than the
    /// scheduler's.
    pub fn ask_split(&mut self, region: &Region) -> Result<AskSplitResponse, SchedulerError> {
        self.check_bootstrapped()?;
        let (current, _) = self
            .get_region_by_id(region.id)
            .ok_or(SchedulerError::RegionNotFound(region.id))?;
        if is_epoch_stale(region.get_region_epoch(), current.get_region_epoch()) {
            return Err(SchedulerError::StaleEpoch {
                region_id: region.id,
                epoch: region.get_region_epoch().clone(),
                current: current.get_region_epoch().clone(),
            });
        }
        let mut resp = AskSplitResponse::default();
        resp.mut_header().cluster_id = self.cluster_id;
        resp.new_region_id = self.alloc_id();
        for _ in region.get_peers() {
            let id = self.alloc_id();
            resp.new_peer_ids.push(id);
        }
        Ok(resp)
    }

    /// A store's statistics: ignored, as in the original.
    pub fn store_heartbeat(&mut self, _stats: &StoreStats) {}

    /// A region heartbeat from the region's leader. On success a response is queued for the
    /// leader's store (see [`take_responses`](Self::take_responses)) carrying the step of the
    /// region's operator, if it has one and is not done.
    ///
    /// The steps, as in the original:
    /// 1. the heartbeat region's peers leave the pending set, its `pending_peers` join it;
    /// 2. the leader is recorded as the region's leader, **before** any staleness check;
    /// 3. the range is reconciled with the cache: a region with the same range is replaced if
    ///    the heartbeat's version is larger (a stale epoch is refused); an overlapping region
    ///    is removed if the heartbeat's version is strictly larger, else the heartbeat is
    ///    refused; the heartbeat's region is inserted once nothing overlaps;
    /// 4. `conf_ver` is reconciled with the cached region: a stale epoch is refused; a larger
    ///    `conf_ver` must be exactly one larger and describe exactly one conf change (see
    ///    [`check_one_conf_change`]), then the heartbeat's region is stored; an equal one must
    ///    come with the same peers;
    /// 5. the operator is checked: a finished one is deleted, else its step goes into the
    ///    response, which is addressed to the leader's store.
    ///
    /// Refused heartbeats (stale, or a violation) queue no response. Where the original
    /// panics the mock records a violation instead (see the module docs).
    pub fn region_heartbeat(&mut self, req: &RegionHeartbeatRequest) -> Result<(), SchedulerError> {
        self.check_bootstrapped()?;
        if !req.has_region() || !req.has_leader() {
            return Err(self.violation(format!(
                "a region heartbeat must carry a region and a leader: {req:?}"
            )));
        }
        let region = req.get_region();
        let leader = req.get_leader();
        let store_id = leader.store_id;
        if !self.stores.contains_key(&store_id) {
            // The original updates its state, then calls the handler of an unknown store and
            // crashes; the mock refuses the heartbeat before changing anything.
            return Err(self.violation(format!(
                "region {} heartbeat names leader {} on store {store_id}, which the scheduler \
                 does not know",
                region.id,
                fmt_peer(leader)
            )));
        }

        // 1. Pending peers.
        for p in region.get_peers() {
            self.pending_peers.remove(&p.id);
        }
        for p in req.get_pending_peers() {
            self.pending_peers.insert(p.id);
        }

        // 2. The leader, even if the heartbeat turns out stale (pitfall 5).
        self.leaders.insert(region.id, leader.clone());

        // 3 and 4. Reconcile with the cache.
        self.reconcile_range(region)?;
        self.reconcile_conf_ver(region)?;

        // 5. Response, for the leader's store.
        let mut resp = RegionHeartbeatResponse::default();
        resp.mut_header().cluster_id = self.cluster_id;
        resp.region_id = region.id;
        resp.set_region_epoch(region.get_region_epoch().clone());
        resp.set_target_peer(leader.clone());
        self.apply_operator(region, leader, &mut resp);
        self.responses.push((store_id, resp));
        Ok(())
    }

    fn check_bootstrapped(&self) -> Result<(), SchedulerError> {
        if self.bootstrapped {
            Ok(())
        } else {
            Err(SchedulerError::NotBootstrapped)
        }
    }

    fn violation(&mut self, msg: String) -> SchedulerError {
        self.violations.push(msg.clone());
        SchedulerError::Violation(msg)
    }

    fn region_containing(&self, key: &[u8]) -> Option<&Region> {
        self.regions
            .range::<[u8], _>((Bound::Unbounded, Bound::Included(key)))
            .next_back()
            .map(|(_, r)| r)
            .filter(|r| contains_key(r, key))
    }

    /// The first cached region overlapping `region`: the one containing its start key, else
    /// the first one starting inside its range.
    fn first_overlapping(&self, region: &Region) -> Option<&Region> {
        let start = region.get_start_key();
        let end = region.get_end_key();
        self.region_containing(start).or_else(|| {
            self.regions
                .range::<[u8], _>((Bound::Excluded(start), Bound::Unbounded))
                .next()
                .map(|(_, r)| r)
                .filter(|r| end.is_empty() || r.get_start_key() < end)
        })
    }

    fn insert_region(&mut self, region: Region) {
        self.region_keys
            .insert(region.id, region.get_start_key().to_vec());
        self.regions.insert(region.get_start_key().to_vec(), region);
    }

    fn remove_region(&mut self, start_key: &[u8]) {
        if let Some(old) = self.regions.remove(start_key) {
            if self.region_keys.get(&old.id).map(Vec::as_slice) == Some(start_key) {
                self.region_keys.remove(&old.id);
            }
        }
    }

    fn stale(region: &Region, current: &Region) -> SchedulerError {
        SchedulerError::StaleEpoch {
            region_id: region.id,
            epoch: region.get_region_epoch().clone(),
            current: current.get_region_epoch().clone(),
        }
    }

    /// Step 3: version and range.
    fn reconcile_range(&mut self, region: &Region) -> Result<(), SchedulerError> {
        let (start, end) = (region.get_start_key(), region.get_end_key());
        // The original's ExceedEndKey: a non-empty end key must lie after the start key.
        if !end.is_empty() && start >= end {
            return Err(self.violation(format!(
                "region {} heartbeat has start key {start:02x?} >= end key {end:02x?}",
                region.id
            )));
        }
        let version = region.get_region_epoch().version;
        loop {
            let Some(cached) = self.first_overlapping(region) else {
                self.insert_region(region.clone());
                return Ok(());
            };
            if cached.get_start_key() == start && cached.get_end_key() == end {
                if is_epoch_stale(region.get_region_epoch(), cached.get_region_epoch()) {
                    return Err(Self::stale(region, cached));
                }
                if cached.get_region_epoch().version < version {
                    let key = cached.get_start_key().to_vec();
                    self.remove_region(&key);
                    self.insert_region(region.clone());
                }
                return Ok(());
            }
            // Overlap: e.g. [a, c) split into [a, b) and [b, c); either half reporting first
            // overlaps the cached parent, which it replaces only with a strictly newer version.
            if version <= cached.get_region_epoch().version {
                return Err(Self::stale(region, cached));
            }
            let key = cached.get_start_key().to_vec();
            self.remove_region(&key);
        }
    }

    /// Step 4: conf_ver and peers, against the cached region with the heartbeat's start key
    /// (which step 3 left in place).
    fn reconcile_conf_ver(&mut self, region: &Region) -> Result<(), SchedulerError> {
        let Some(cached) = self.regions.get(region.get_start_key()).cloned() else {
            // Cannot happen: step 3 succeeded only with such a region in the cache.
            return Err(self.violation(format!(
                "region {} vanished from the cache during its heartbeat",
                region.id
            )));
        };
        let (epoch, cached_epoch) = (region.get_region_epoch(), cached.get_region_epoch());
        if is_epoch_stale(epoch, cached_epoch) {
            return Err(Self::stale(region, &cached));
        }
        if let Some(v) = conf_change_violation(&cached, region) {
            return Err(self.violation(v));
        }
        if epoch.conf_ver > cached_epoch.conf_ver {
            self.insert_region(region.clone());
        }
        Ok(())
    }

    /// Step 5: finish the region's operator or attach its step to the response.
    fn apply_operator(
        &mut self,
        region: &Region,
        leader: &Peer,
        resp: &mut RegionHeartbeatResponse,
    ) {
        let Some(op) = self.operators.get_mut(&region.id) else {
            return;
        };
        let finished = match op {
            Operator::AddPeer { peer, seen } => {
                if !*seen {
                    *seen = region
                        .get_peers()
                        .iter()
                        .any(|p| p.id == peer.id && p.store_id == peer.store_id);
                }
                // Once seen it may still be catching up: done when no longer pending.
                *seen && !self.pending_peers.contains(&peer.id)
            }
            Operator::RemovePeer { peer } => !region.get_peers().iter().any(|p| p.id == peer.id),
            Operator::TransferLeader { peer } => leader.id == peer.id,
        };
        if finished {
            self.operators.remove(&region.id);
            return;
        }
        match op {
            Operator::AddPeer { peer, seen } => {
                if !*seen {
                    let cp = resp.mut_change_peer();
                    cp.set_change_type(ConfChangeType::AddNode);
                    cp.set_peer(peer.clone());
                }
            }
            Operator::RemovePeer { peer } => {
                let cp = resp.mut_change_peer();
                cp.set_change_type(ConfChangeType::RemoveNode);
                cp.set_peer(peer.clone());
            }
            Operator::TransferLeader { peer } => {
                resp.mut_transfer_leader().set_peer(peer.clone());
            }
        }
    }
}

/// The mock as the cluster's scheduler: each call is the inherent method of the same name
/// (the virtual times are ignored; there is nothing periodic to do).
impl ClusterScheduler for MockScheduler {
    fn cluster_id(&self) -> u64 {
        self.cluster_id
    }

    fn alloc_id(&mut self) -> u64 {
        MockScheduler::alloc_id(self)
    }

    fn bootstrap(&mut self, store: Store) -> Result<(), SchedulerError> {
        MockScheduler::bootstrap(self, store)
    }

    fn is_bootstrapped(&self) -> bool {
        self.bootstrapped
    }

    fn put_store(&mut self, store: Store) {
        MockScheduler::put_store(self, store);
    }

    fn get_store(&self, store_id: u64) -> Option<Store> {
        MockScheduler::get_store(self, store_id).cloned()
    }

    fn get_region(&self, key: &[u8]) -> Option<(Region, Option<Peer>)> {
        MockScheduler::get_region(self, key)
    }

    fn get_region_by_id(&self, region_id: u64) -> Option<(Region, Option<Peer>)> {
        MockScheduler::get_region_by_id(self, region_id)
    }

    fn leader(&self, region_id: u64) -> Option<Peer> {
        MockScheduler::leader(self, region_id).cloned()
    }

    fn regions(&self) -> Vec<Region> {
        MockScheduler::regions(self).cloned().collect()
    }

    fn is_pending(&self, peer_id: u64) -> bool {
        MockScheduler::is_pending(self, peer_id)
    }

    fn add_peer(&mut self, region_id: u64, peer: Peer) {
        MockScheduler::add_peer(self, region_id, peer);
    }

    fn remove_peer(&mut self, region_id: u64, peer: Peer) {
        MockScheduler::remove_peer(self, region_id, peer);
    }

    fn transfer_leader(&mut self, region_id: u64, peer: Peer) {
        MockScheduler::transfer_leader(self, region_id, peer);
    }

    fn operator(&self, region_id: u64) -> Option<String> {
        MockScheduler::operator(self, region_id).map(Operator::to_string)
    }

    fn region_heartbeat(
        &mut self,
        req: &RegionHeartbeatRequest,
        _now: Duration,
    ) -> Result<(), SchedulerError> {
        MockScheduler::region_heartbeat(self, req)
    }

    fn store_heartbeat(&mut self, stats: &StoreStats, _now: Duration) {
        MockScheduler::store_heartbeat(self, stats);
    }

    fn ask_split(&mut self, region: &Region) -> Result<AskSplitResponse, SchedulerError> {
        MockScheduler::ask_split(self, region)
    }

    /// Ignored, as in the original: the halves' heartbeats update the cache.
    fn report_split(&mut self, _left: &Region, _right: &Region) -> Result<(), SchedulerError> {
        Ok(())
    }

    /// No: the mock does nothing periodically.
    fn wants_ticks(&self) -> bool {
        false
    }

    /// Nothing to do.
    fn tick(&mut self, _now: Duration) {}

    fn take_responses(&mut self) -> Vec<(u64, RegionHeartbeatResponse)> {
        MockScheduler::take_responses(self)
    }

    fn has_violations(&self) -> bool {
        !self.violations.is_empty()
    }

    fn take_violations(&mut self) -> Vec<String> {
        MockScheduler::take_violations(self)
    }
}

impl raftstore::SchedulerClient for MockScheduler {
    fn alloc_id(&mut self) -> raftstore::Result<u64> {
        Ok(MockScheduler::alloc_id(self))
    }

    fn region_heartbeat(&mut self, req: RegionHeartbeatRequest) -> raftstore::Result<()> {
        MockScheduler::region_heartbeat(self, &req).map_err(Into::into)
    }

    fn store_heartbeat(&mut self, stats: StoreStats) -> raftstore::Result<()> {
        MockScheduler::store_heartbeat(self, &stats);
        Ok(())
    }

    fn ask_split(&mut self, region: &Region) -> raftstore::Result<AskSplitResponse> {
        MockScheduler::ask_split(self, region).map_err(Into::into)
    }

    /// Ignored, as in the original: the halves' heartbeats update the cache.
    fn report_split(&mut self, _left: &Region, _right: &Region) -> raftstore::Result<()> {
        Ok(())
    }
}

/// The mock's membership rule for a heartbeat that is not stale against `cached`, the
/// scheduler's copy of the same region: a `conf_ver` that rose must describe exactly one
/// conf change ([`check_one_conf_change`]), and peers may not change without a `conf_ver`
/// bump. Returns the violation, if any. The harness applies the same rule on top of the real
/// scheduler ([`super::real`]).
pub(crate) fn conf_change_violation(cached: &Region, region: &Region) -> Option<String> {
    let (epoch, cached_epoch) = (region.get_region_epoch(), cached.get_region_epoch());
    if epoch.conf_ver > cached_epoch.conf_ver {
        check_one_conf_change(cached, region).err().map(|why| {
            format!(
                "region {} heartbeat is not one conf change after the scheduler's copy: \
                 {why}; scheduler has {} {}, heartbeat has {} {}",
                region.id,
                fmt_epoch(cached_epoch),
                fmt_peers(cached),
                fmt_epoch(epoch),
                fmt_peers(region)
            )
        })
    } else if peer_set(region) != peer_set(cached)
        || region.get_peers().len() != cached.get_peers().len()
    {
        Some(format!(
            "region {} peers changed without a conf_ver bump (conf_ver {}): scheduler has \
             {}, heartbeat has {}",
            region.id,
            epoch.conf_ver,
            fmt_peers(cached),
            fmt_peers(region)
        ))
    } else {
        None
    }
}

/// The original's rule for a heartbeat whose `conf_ver` is larger than the cached region's,
/// made exact: `conf_ver` rose by exactly one, and the peers (by store and id) differ by exactly
/// one added or one removed peer, the smaller set inside the larger; with an equal peer count
/// the peers must be the same and `version` must have risen by exactly one too (the original's
/// equal-count case, kept as it is). The error names the broken rule, in the original's words
/// where it has them.
fn check_one_conf_change(cached: &Region, heartbeat: &Region) -> Result<(), String> {
    let (old, new) = (cached.get_region_epoch(), heartbeat.get_region_epoch());
    if new.conf_ver != old.conf_ver + 1 {
        return Err(format!(
            "unmatched conf version: conf_ver rose by {} ({} -> {}), one conf change raises it by 1",
            new.conf_ver - old.conf_ver,
            old.conf_ver,
            new.conf_ver
        ));
    }
    let (before, after) = (peer_set(cached), peer_set(heartbeat));
    let (smaller, larger) = if before.len() <= after.len() {
        (&before, &after)
    } else {
        (&after, &before)
    };
    match larger.len() - smaller.len() {
        0 => {
            if before != after {
                return Err(
                    "should only one conf change: the peer count is the same but \
                            the peers differ"
                        .to_owned(),
                );
            }
            if new.version != old.version + 1 {
                return Err(format!(
                    "unmatched version: the same peers with conf_ver +1 need version +1, got \
                     {} -> {}",
                    old.version, new.version
                ));
            }
            Ok(())
        }
        1 => {
            if smaller.is_subset(larger) {
                Ok(())
            } else {
                Err(
                    "should include all peers: the smaller peer set is not inside the larger"
                        .to_owned(),
                )
            }
        }
        n => Err(format!(
            "should only one conf change: {n} peers more or fewer with one conf_ver step"
        )),
    }
}

fn contains_key(region: &Region, key: &[u8]) -> bool {
    let end = region.get_end_key();
    key >= region.get_start_key() && (end.is_empty() || key < end)
}

fn peer_set(region: &Region) -> BTreeSet<(u64, u64)> {
    region
        .get_peers()
        .iter()
        .map(|p| (p.store_id, p.id))
        .collect()
}

fn fmt_peer(p: &Peer) -> String {
    format!("(store {}, peer {})", p.store_id, p.id)
}

fn fmt_peers(region: &Region) -> String {
    let peers: Vec<String> = region.get_peers().iter().map(fmt_peer).collect();
    format!("[{}]", peers.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::metapb::RegionEpoch;
    use proto::schedulerpb::ErrorType;
    use raftstore::SchedulerClient;

    fn peer(store_id: u64, id: u64) -> Peer {
        raftstore::util::new_peer(store_id, id)
    }

    fn store(id: u64) -> Store {
        Store {
            id,
            ..Default::default()
        }
    }

    fn region(
        id: u64,
        start: &[u8],
        end: &[u8],
        (conf_ver, version): (u64, u64),
        peers: &[(u64, u64)],
    ) -> Region {
        let mut r = Region {
            id,
            start_key: start.to_vec(),
            end_key: end.to_vec(),
            ..Default::default()
        };
        r.set_region_epoch(RegionEpoch {
            conf_ver,
            version,
            ..Default::default()
        });
        r.set_peers(peers.iter().map(|&(s, p)| peer(s, p)).collect());
        r
    }

    fn hb(region: &Region, leader: (u64, u64), pending: &[(u64, u64)]) -> RegionHeartbeatRequest {
        let mut req = RegionHeartbeatRequest::default();
        req.set_region(region.clone());
        req.set_leader(peer(leader.0, leader.1));
        req.set_pending_peers(pending.iter().map(|&(s, p)| peer(s, p)).collect());
        req
    }

    const FIVE: &[(u64, u64)] = &[(1, 1), (2, 2), (3, 3), (4, 4), (5, 5)];

    /// A bootstrapped scheduler with stores 1..=5, as the harness builds it.
    fn sched() -> MockScheduler {
        let mut s = MockScheduler::new(0, 6);
        s.bootstrap(store(1)).unwrap();
        for id in 1..=5 {
            s.put_store(store(id));
        }
        s
    }

    /// `sched()` that knows region 1 `["", "")` with all five peers, led by (1,1).
    fn sched_with_region() -> (MockScheduler, Region) {
        let mut s = sched();
        let r = region(1, b"", b"", (1, 1), FIVE);
        s.region_heartbeat(&hb(&r, (1, 1), &[])).unwrap();
        s.take_responses();
        (s, r)
    }

    fn single_response(s: &mut MockScheduler) -> (u64, RegionHeartbeatResponse) {
        let mut rs = s.take_responses();
        assert_eq!(rs.len(), 1, "expected one response, got {rs:?}");
        rs.pop().unwrap()
    }

    #[test]
    fn bootstrap_twice_errors() {
        let mut s = MockScheduler::new(0, 6);
        assert!(!s.is_bootstrapped());
        s.bootstrap(store(1)).unwrap();
        assert!(s.is_bootstrapped());
        assert_eq!(s.get_store(1), Some(&store(1)));
        let err = s.bootstrap(store(2)).unwrap_err();
        assert_eq!(err, SchedulerError::AlreadyBootstrapped);
        assert_eq!(
            err.to_pb().get_field_type(),
            ErrorType::ALREADY_BOOTSTRAPPED
        );
        assert!(
            s.get_store(2).is_none(),
            "a refused bootstrap changes nothing"
        );
        assert!(s.is_bootstrapped());
    }

    #[test]
    fn calls_before_bootstrap_are_refused() {
        let mut s = MockScheduler::new(0, 6);
        let r = region(1, b"", b"", (1, 1), FIVE);
        assert_eq!(
            s.region_heartbeat(&hb(&r, (1, 1), &[])),
            Err(SchedulerError::NotBootstrapped)
        );
        assert_eq!(s.ask_split(&r), Err(SchedulerError::NotBootstrapped));
        assert!(s.take_responses().is_empty());
    }

    #[test]
    fn alloc_ids_are_monotonic_from_first_id() {
        let mut s = MockScheduler::new(0, 6);
        assert_eq!(s.alloc_id(), 6);
        assert_eq!(s.alloc_id(), 7);
        let via_trait = SchedulerClient::alloc_id(&mut s).unwrap();
        assert_eq!(via_trait, 8);
        let mut last = via_trait;
        for _ in 0..100 {
            let id = s.alloc_id();
            assert!(id > last);
            last = id;
        }
    }

    #[test]
    fn heartbeat_of_a_new_region_inserts_it() {
        let mut s = sched();
        assert!(s.get_region(b"k").is_none());
        let r = region(1, b"", b"", (1, 1), FIVE);
        s.region_heartbeat(&hb(&r, (1, 1), &[])).unwrap();
        let (got, leader) = s.get_region(b"k").unwrap();
        assert_eq!(got, r);
        assert_eq!(leader, Some(peer(1, 1)));
        assert_eq!(s.get_region_by_id(1), Some((r.clone(), Some(peer(1, 1)))));
        assert_eq!(s.regions().cloned().collect::<Vec<_>>(), vec![r]);
        assert_eq!(s.take_responses().len(), 1);
    }

    #[test]
    fn get_region_by_key_on_split_regions() {
        let mut s = sched();
        let a = region(1, b"", b"k2", (1, 2), FIVE);
        let b = region(6, b"k2", b"k5", (1, 2), FIVE);
        let c = region(7, b"k5", b"", (1, 2), FIVE);
        for (r, l) in [(&c, (3, 3)), (&a, (1, 1)), (&b, (2, 2))] {
            s.region_heartbeat(&hb(r, l, &[])).unwrap();
        }
        assert_eq!(s.get_region(b"").unwrap().0.id, 1);
        assert_eq!(s.get_region(b"k1").unwrap().0.id, 1);
        assert_eq!(s.get_region(b"k2").unwrap().0.id, 6);
        assert_eq!(
            s.get_region(b"k4\xff").unwrap(),
            (b.clone(), Some(peer(2, 2)))
        );
        assert_eq!(s.get_region(b"k5").unwrap().0.id, 7);
        assert_eq!(s.get_region(b"zzz").unwrap().0.id, 7);
        let ids: Vec<u64> = s.regions().map(|r| r.id).collect();
        assert_eq!(ids, vec![1, 6, 7], "key order");
    }

    #[test]
    fn get_region_misses_a_gap() {
        let mut s = sched();
        let r = region(6, b"k2", b"k5", (1, 2), FIVE);
        s.region_heartbeat(&hb(&r, (1, 1), &[])).unwrap();
        assert!(s.get_region(b"k1").is_none());
        assert!(s.get_region(b"k5").is_none());
        assert!(s.get_region(b"k3").is_some());
    }

    #[test]
    fn stale_heartbeats_are_rejected_without_response() {
        let (mut s, _) = sched_with_region();
        let newer = region(1, b"", b"", (3, 2), FIVE);
        // conf_ver 1 -> 3 with the same peers (e.g. add then remove one) is fine.
        s.region_heartbeat(&hb(&newer, (1, 1), &[])).unwrap();
        s.take_responses();

        let old_version = region(1, b"", b"", (3, 1), FIVE);
        let err = s
            .region_heartbeat(&hb(&old_version, (1, 1), &[]))
            .unwrap_err();
        assert!(matches!(
            err,
            SchedulerError::StaleEpoch { region_id: 1, .. }
        ));
        let old_conf = region(1, b"", b"", (2, 2), FIVE);
        let err = s.region_heartbeat(&hb(&old_conf, (1, 1), &[])).unwrap_err();
        assert!(matches!(err, SchedulerError::StaleEpoch { .. }));
        assert!(err.to_string().contains("stale"));

        assert!(s.take_responses().is_empty());
        assert_eq!(s.get_region_by_id(1).unwrap().0, newer);
        assert!(s.violations().is_empty(), "staleness is not a store bug");
        // Through the trait the refusal is an error too.
        assert!(SchedulerClient::region_heartbeat(&mut s, hb(&old_conf, (1, 1), &[])).is_err());
    }

    #[test]
    fn leader_is_recorded_even_for_a_stale_heartbeat() {
        // The original's behaviour (pitfall 5): a partitioned old leader still flips the view.
        let (mut s, _) = sched_with_region();
        let newer = region(1, b"", b"", (1, 2), FIVE);
        s.region_heartbeat(&hb(&newer, (2, 2), &[])).unwrap();
        assert_eq!(s.get_region(b"a").unwrap().1, Some(peer(2, 2)));
        let old = region(1, b"", b"", (1, 1), FIVE);
        assert!(s.region_heartbeat(&hb(&old, (3, 3), &[])).is_err());
        assert_eq!(s.get_region(b"a").unwrap(), (newer, Some(peer(3, 3))));
        assert_eq!(s.leader(1), Some(&peer(3, 3)));
    }

    #[test]
    fn split_left_half_first_then_right_half() {
        let mut s = sched();
        let parent = region(1, b"", b"", (1, 1), FIVE);
        s.region_heartbeat(&hb(&parent, (1, 1), &[])).unwrap();

        // Same version overlapping the parent: refused.
        let bogus = region(1, b"", b"m", (1, 1), FIVE);
        assert!(matches!(
            s.region_heartbeat(&hb(&bogus, (1, 1), &[])),
            Err(SchedulerError::StaleEpoch { .. })
        ));
        assert_eq!(s.get_region(b"z").unwrap().0, parent);

        let left = region(1, b"", b"m", (1, 2), FIVE);
        let right = region(
            6,
            b"m",
            b"",
            (1, 2),
            &[(1, 7), (2, 8), (3, 9), (4, 10), (5, 11)],
        );
        s.region_heartbeat(&hb(&left, (1, 1), &[])).unwrap();
        assert_eq!(s.get_region(b"a").unwrap().0, left);
        assert!(
            s.get_region(b"z").is_none(),
            "the parent is gone, right unknown yet"
        );
        s.region_heartbeat(&hb(&right, (2, 8), &[])).unwrap();
        assert_eq!(
            s.get_region(b"z").unwrap(),
            (right.clone(), Some(peer(2, 8)))
        );
        assert_eq!(s.get_region_by_id(1).unwrap().0, left);
        assert_eq!(s.get_region_by_id(6).unwrap().0, right);

        // A late heartbeat of the parent is refused and does not come back.
        assert!(s.region_heartbeat(&hb(&parent, (1, 1), &[])).is_err());
        assert_eq!(s.regions().count(), 2);
    }

    #[test]
    fn split_right_half_first_then_left_half() {
        let mut s = sched();
        let parent = region(1, b"", b"", (1, 1), FIVE);
        s.region_heartbeat(&hb(&parent, (1, 1), &[])).unwrap();
        let left = region(1, b"", b"m", (1, 2), FIVE);
        let right = region(6, b"m", b"", (1, 2), FIVE);
        s.region_heartbeat(&hb(&right, (1, 1), &[])).unwrap();
        assert!(s.get_region(b"a").is_none());
        assert!(s.get_region_by_id(1).is_none(), "region 1 left the cache");
        s.region_heartbeat(&hb(&left, (1, 1), &[])).unwrap();
        assert_eq!(s.get_region(b"a").unwrap().0, left);
        assert_eq!(s.get_region(b"z").unwrap().0, right);
    }

    #[test]
    fn a_stale_parent_does_not_cover_a_newer_half_starting_inside_it() {
        // Difference from the original: it looks only at the region containing the start key.
        let mut s = sched();
        let right = region(6, b"m", b"", (1, 2), FIVE);
        s.region_heartbeat(&hb(&right, (1, 1), &[])).unwrap();
        let parent = region(1, b"", b"", (1, 1), FIVE);
        assert!(matches!(
            s.region_heartbeat(&hb(&parent, (1, 1), &[])),
            Err(SchedulerError::StaleEpoch { .. })
        ));
        assert!(s.get_region(b"a").is_none());
        assert_eq!(s.regions().count(), 1);

        // A strictly newer region covering it replaces it.
        let covering = region(1, b"", b"", (1, 3), FIVE);
        s.region_heartbeat(&hb(&covering, (1, 1), &[])).unwrap();
        assert_eq!(s.regions().cloned().collect::<Vec<_>>(), vec![covering]);
    }

    #[test]
    fn peers_change_with_conf_ver_plus_one_is_accepted() {
        let (mut s, _) = sched_with_region();
        let removed = region(1, b"", b"", (2, 1), &[(1, 1), (2, 2), (3, 3), (4, 4)]);
        s.region_heartbeat(&hb(&removed, (1, 1), &[])).unwrap();
        assert_eq!(s.get_region_by_id(1).unwrap().0, removed);
        let added = region(
            1,
            b"",
            b"",
            (3, 1),
            &[(1, 1), (2, 2), (3, 3), (4, 4), (5, 12)],
        );
        s.region_heartbeat(&hb(&added, (1, 1), &[])).unwrap();
        assert_eq!(s.get_region_by_id(1).unwrap().0, added);
        assert!(s.violations().is_empty());
    }

    /// A heartbeat that `region_heartbeat` must refuse as a violation whose message names
    /// `rule`, leaving the cache as it was and queueing no response.
    fn assert_violation(s: &mut MockScheduler, heartbeat: &Region, rule: &str) {
        let before = s.get_region_by_id(heartbeat.id).map(|(r, _)| r);
        let err = s.region_heartbeat(&hb(heartbeat, (1, 1), &[])).unwrap_err();
        assert!(
            matches!(&err, SchedulerError::Violation(m) if m.contains(rule)),
            "expected a violation naming {rule:?}, got {err:?}"
        );
        let recorded = s.take_violations();
        assert_eq!(recorded.len(), 1, "{recorded:?}");
        assert!(recorded[0].contains(rule), "{recorded:?}");
        assert!(
            s.take_responses().is_empty(),
            "a refused heartbeat gets no response"
        );
        assert_eq!(
            s.get_region_by_id(heartbeat.id).map(|(r, _)| r),
            before,
            "a refused heartbeat changes nothing"
        );
    }

    #[test]
    fn conf_ver_plus_two_is_a_violation_even_when_the_peers_fit() {
        // Pitfall 4: two conf changes between two heartbeats. Remove (2,2), then add (2,12):
        // same size, one store's peer replaced.
        let (mut s, _) = sched_with_region();
        let swapped = region(
            1,
            b"",
            b"",
            (3, 1),
            &[(1, 1), (2, 12), (3, 3), (4, 4), (5, 5)],
        );
        assert_violation(&mut s, &swapped, "unmatched conf version");
        // Two removals at once.
        let shrunk = region(1, b"", b"", (3, 1), &[(1, 1), (2, 2), (3, 3)]);
        assert_violation(&mut s, &shrunk, "unmatched conf version");
        // Add, remove, add: one peer more, conf_ver + 3. The original lets this through (it
        // checks the +1 only when the counts are equal); the exact rule does not.
        let four = region(1, b"", b"", (2, 1), &[(1, 1), (2, 2), (3, 3), (4, 4)]);
        s.region_heartbeat(&hb(&four, (1, 1), &[])).unwrap();
        s.take_responses();
        let add_remove_add = region(
            1,
            b"",
            b"",
            (5, 1),
            &[(1, 1), (2, 2), (3, 3), (4, 4), (5, 14)],
        );
        assert_violation(&mut s, &add_remove_add, "conf_ver rose by 3");
    }

    #[test]
    fn one_conf_change_must_add_or_remove_exactly_one_peer() {
        let (mut s, _) = sched_with_region();
        // conf_ver + 1 with two peers gone.
        let two_gone = region(1, b"", b"", (2, 1), &[(1, 1), (2, 2), (3, 3)]);
        assert_violation(&mut s, &two_gone, "should only one conf change");
        // conf_ver + 1, one peer fewer, but another peer than the cached ones in it.
        let not_inside = region(1, b"", b"", (2, 1), &[(1, 1), (2, 2), (3, 3), (6, 6)]);
        assert_violation(&mut s, &not_inside, "should include all peers");
        // conf_ver + 1 with an equal-size set that differs (a store swapped).
        let swapped = region(
            1,
            b"",
            b"",
            (2, 1),
            &[(1, 1), (2, 2), (3, 3), (4, 4), (6, 12)],
        );
        assert_violation(&mut s, &swapped, "should only one conf change");
        // The same store with another peer id counts as a different peer.
        let renamed = region(
            1,
            b"",
            b"",
            (2, 1),
            &[(1, 1), (2, 2), (3, 3), (4, 4), (5, 9)],
        );
        assert_violation(&mut s, &renamed, "should only one conf change");
        // Through the trait the refusal is an error carrying the message.
        let err = SchedulerClient::region_heartbeat(&mut s, hb(&two_gone, (1, 1), &[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("invariant violated"), "{err}");
        assert_eq!(s.take_violations().len(), 1);
    }

    #[test]
    fn equal_peers_with_conf_ver_plus_one_need_version_plus_one() {
        // The original's equal-count case: same peers, conf_ver + 1 and version + 1.
        let (mut s, _) = sched_with_region();
        let same_version = region(1, b"", b"", (2, 1), FIVE);
        assert_violation(&mut s, &same_version, "unmatched version");
        let version_plus_two = region(1, b"", b"", (2, 3), FIVE);
        // A larger version replaces the cached region in step 3 (as in the original), so the
        // conf_ver rule has nothing left to compare against: accepted.
        s.region_heartbeat(&hb(&version_plus_two, (1, 1), &[]))
            .unwrap();
        assert_eq!(s.get_region_by_id(1).unwrap().0, version_plus_two);
        let (mut s, _) = sched_with_region();
        let both_plus_one = region(1, b"", b"", (2, 2), FIVE);
        s.region_heartbeat(&hb(&both_plus_one, (1, 1), &[]))
            .unwrap();
        assert_eq!(s.get_region_by_id(1).unwrap().0, both_plus_one);
        assert!(s.violations().is_empty());
    }

    #[test]
    fn a_conf_change_after_a_split_is_checked_against_the_half() {
        // Split into [, m) and [m, ), then one conf change on the right half: accepted; a
        // second one skipped over (conf_ver + 2) on the left half: a violation.
        let (mut s, _) = sched_with_region();
        let left = region(1, b"", b"m", (1, 2), FIVE);
        let right = region(
            6,
            b"m",
            b"",
            (1, 2),
            &[(1, 7), (2, 8), (3, 9), (4, 10), (5, 11)],
        );
        s.region_heartbeat(&hb(&left, (1, 1), &[])).unwrap();
        s.region_heartbeat(&hb(&right, (1, 7), &[])).unwrap();
        let right_less = region(6, b"m", b"", (2, 2), &[(1, 7), (2, 8), (3, 9), (4, 10)]);
        s.region_heartbeat(&hb(&right_less, (1, 7), &[])).unwrap();
        assert_eq!(s.get_region(b"z").unwrap().0, right_less);
        s.take_responses();
        let left_jump = region(1, b"", b"m", (3, 2), &[(1, 1), (2, 2), (3, 3)]);
        assert_violation(&mut s, &left_jump, "unmatched conf version");
    }

    #[test]
    fn peer_set_change_without_conf_ver_bump_is_a_violation() {
        let (mut s, r) = sched_with_region();
        let changed = region(1, b"", b"", (1, 1), &[(1, 1), (2, 2), (3, 3), (4, 4)]);
        let err = s.region_heartbeat(&hb(&changed, (1, 1), &[])).unwrap_err();
        assert!(matches!(err, SchedulerError::Violation(_)));
        assert_eq!(s.violations().len(), 1);
        assert!(
            s.violations()[0].contains("without a conf_ver bump"),
            "{:?}",
            s.violations()
        );
        assert!(s.take_responses().is_empty());
        assert_eq!(
            s.get_region_by_id(1).unwrap().0,
            r,
            "the cache keeps its region"
        );

        // Same stores, another peer id on one of them: a change too.
        let renamed = region(
            1,
            b"",
            b"",
            (1, 1),
            &[(1, 1), (2, 2), (3, 3), (4, 4), (5, 9)],
        );
        assert!(s.region_heartbeat(&hb(&renamed, (1, 1), &[])).is_err());
        assert_eq!(s.take_violations().len(), 2);
        assert!(s.violations().is_empty());
    }

    #[test]
    fn malformed_heartbeats_are_violations() {
        let (mut s, _) = sched_with_region();
        let backwards = region(9, b"z", b"a", (1, 1), FIVE);
        assert!(s.region_heartbeat(&hb(&backwards, (1, 1), &[])).is_err());
        let empty = region(9, b"a", b"a", (1, 1), FIVE);
        assert!(s.region_heartbeat(&hb(&empty, (1, 1), &[])).is_err());
        let mut no_leader = RegionHeartbeatRequest::default();
        no_leader.set_region(region(1, b"", b"", (1, 1), FIVE));
        assert!(s.region_heartbeat(&no_leader).is_err());
        let r = region(1, b"", b"", (2, 1), &[(1, 1), (2, 2), (3, 3), (4, 4)]);
        assert!(
            s.region_heartbeat(&hb(&r, (42, 1), &[])).is_err(),
            "unknown store"
        );
        let untouched = region(1, b"", b"", (1, 1), FIVE);
        assert_eq!(
            s.get_region_by_id(1).unwrap(),
            (untouched, Some(peer(1, 1)))
        );
        assert_eq!(s.violations().len(), 4, "{:?}", s.violations());
        assert!(s.take_responses().is_empty());
        assert_eq!(s.regions().count(), 1);
    }

    #[test]
    fn add_peer_operator_lifecycle() {
        let (mut s, _) = sched_with_region();
        let four = region(1, b"", b"", (2, 1), &[(1, 1), (2, 2), (3, 3), (4, 4)]);
        s.region_heartbeat(&hb(&four, (1, 1), &[])).unwrap();
        s.take_responses();

        s.add_peer(1, peer(5, 12));
        // Not yet seen: every response asks for AddNode.
        for _ in 0..2 {
            s.region_heartbeat(&hb(&four, (1, 1), &[])).unwrap();
            let (_, resp) = single_response(&mut s);
            assert!(resp.has_change_peer());
            assert_eq!(
                resp.get_change_peer().get_change_type(),
                ConfChangeType::AddNode
            );
            assert_eq!(resp.get_change_peer().get_peer(), &peer(5, 12));
            assert!(!resp.has_transfer_leader());
        }
        // Seen, but pending: no step, operator kept.
        let five = region(
            1,
            b"",
            b"",
            (3, 1),
            &[(1, 1), (2, 2), (3, 3), (4, 4), (5, 12)],
        );
        s.region_heartbeat(&hb(&five, (1, 1), &[(5, 12)])).unwrap();
        let (_, resp) = single_response(&mut s);
        assert!(!resp.has_change_peer());
        assert!(s.is_pending(12));
        assert_eq!(
            s.operator(1),
            Some(&Operator::AddPeer {
                peer: peer(5, 12),
                seen: true
            })
        );
        // Still pending, still no step.
        s.region_heartbeat(&hb(&five, (1, 1), &[(5, 12)])).unwrap();
        assert!(!single_response(&mut s).1.has_change_peer());
        assert!(s.operator(1).is_some());
        // Caught up: finished and deleted.
        s.region_heartbeat(&hb(&five, (1, 1), &[])).unwrap();
        assert!(!single_response(&mut s).1.has_change_peer());
        assert!(!s.is_pending(12));
        assert!(s.operator(1).is_none());
    }

    #[test]
    fn add_peer_with_the_id_on_another_store_is_not_seen() {
        let (mut s, _) = sched_with_region();
        s.add_peer(1, peer(6, 5));
        let r = region(1, b"", b"", (1, 1), FIVE); // peer 5 lives on store 5
        s.region_heartbeat(&hb(&r, (1, 1), &[])).unwrap();
        assert!(single_response(&mut s).1.has_change_peer());
        assert_eq!(
            s.operator(1),
            Some(&Operator::AddPeer {
                peer: peer(6, 5),
                seen: false
            })
        );
    }

    #[test]
    fn remove_peer_operator_finishes_once_the_peer_is_gone() {
        let (mut s, r) = sched_with_region();
        s.remove_peer(1, peer(5, 5));
        for _ in 0..2 {
            s.region_heartbeat(&hb(&r, (1, 1), &[])).unwrap();
            let (_, resp) = single_response(&mut s);
            assert_eq!(
                resp.get_change_peer().get_change_type(),
                ConfChangeType::RemoveNode
            );
            assert_eq!(resp.get_change_peer().get_peer(), &peer(5, 5));
        }
        let four = region(1, b"", b"", (2, 1), &[(1, 1), (2, 2), (3, 3), (4, 4)]);
        s.region_heartbeat(&hb(&four, (1, 1), &[])).unwrap();
        assert!(!single_response(&mut s).1.has_change_peer());
        assert!(s.operator(1).is_none());
    }

    #[test]
    fn transfer_leader_operator_finishes_when_the_target_reports() {
        let (mut s, r) = sched_with_region();
        s.transfer_leader(1, peer(3, 3));
        s.region_heartbeat(&hb(&r, (1, 1), &[])).unwrap();
        let (to, resp) = single_response(&mut s);
        assert_eq!(to, 1);
        assert_eq!(resp.get_transfer_leader().get_peer(), &peer(3, 3));
        assert!(!resp.has_change_peer());
        assert!(s.operator(1).is_some());
        s.region_heartbeat(&hb(&r, (3, 3), &[])).unwrap();
        let (to, resp) = single_response(&mut s);
        assert_eq!(to, 3);
        assert!(!resp.has_transfer_leader());
        assert!(s.operator(1).is_none());
        assert_eq!(s.get_region_by_id(1).unwrap().1, Some(peer(3, 3)));
    }

    #[test]
    fn scheduling_replaces_the_current_operator() {
        let (mut s, r) = sched_with_region();
        s.remove_peer(1, peer(5, 5));
        s.transfer_leader(1, peer(2, 2));
        s.region_heartbeat(&hb(&r, (1, 1), &[])).unwrap();
        let (_, resp) = single_response(&mut s);
        assert!(!resp.has_change_peer());
        assert_eq!(resp.get_transfer_leader().get_peer(), &peer(2, 2));
    }

    #[test]
    fn stale_heartbeats_do_not_advance_operators() {
        let (mut s, _) = sched_with_region();
        let newer = region(1, b"", b"", (1, 2), FIVE);
        s.region_heartbeat(&hb(&newer, (1, 1), &[])).unwrap();
        s.take_responses();
        s.transfer_leader(1, peer(3, 3));
        let stale = region(1, b"", b"", (1, 1), FIVE);
        assert!(s.region_heartbeat(&hb(&stale, (3, 3), &[])).is_err());
        assert!(s.take_responses().is_empty());
        assert!(s.operator(1).is_some());
    }

    #[test]
    fn response_is_addressed_to_the_leaders_store() {
        let (mut s, _) = sched_with_region();
        let r = region(1, b"", b"", (1, 1), FIVE);
        s.region_heartbeat(&hb(&r, (4, 4), &[])).unwrap();
        let (to, resp) = single_response(&mut s);
        assert_eq!(to, 4);
        assert_eq!(resp.region_id, 1);
        assert_eq!(resp.get_target_peer(), &peer(4, 4));
        assert_eq!(resp.get_region_epoch(), r.get_region_epoch());
        assert_eq!(resp.get_header().cluster_id, 0);
        assert!(!resp.has_change_peer() && !resp.has_transfer_leader());
        assert!(s.take_responses().is_empty(), "taken once");
    }

    #[test]
    fn responses_queue_in_heartbeat_order() {
        let mut s = sched();
        let a = region(1, b"", b"m", (1, 2), FIVE);
        let b = region(6, b"m", b"", (1, 2), FIVE);
        s.region_heartbeat(&hb(&a, (2, 2), &[])).unwrap();
        s.region_heartbeat(&hb(&b, (5, 5), &[])).unwrap();
        let rs = s.take_responses();
        let got: Vec<(u64, u64)> = rs.iter().map(|(to, r)| (*to, r.region_id)).collect();
        assert_eq!(got, vec![(2, 1), (5, 6)]);
    }

    #[test]
    fn unknown_region_id_is_none() {
        let (s, _) = sched_with_region();
        // The original would return region 1 here (the region containing "").
        assert!(s.get_region_by_id(99).is_none());
        assert!(s.get_region_by_id(1).is_some());
    }

    #[test]
    fn ask_split_allocates_ids_and_rejects_stale_epochs() {
        let (mut s, r) = sched_with_region();
        let resp = s.ask_split(&r).unwrap();
        assert_eq!(resp.new_region_id, 6);
        assert_eq!(resp.get_new_peer_ids(), &[7, 8, 9, 10, 11]);
        assert_eq!(s.alloc_id(), 12);

        let newer = region(1, b"", b"", (2, 1), &[(1, 1), (2, 2), (3, 3), (4, 4)]);
        s.region_heartbeat(&hb(&newer, (1, 1), &[])).unwrap();
        assert!(matches!(
            s.ask_split(&r),
            Err(SchedulerError::StaleEpoch { region_id: 1, .. })
        ));
        let resp = SchedulerClient::ask_split(&mut s, &newer).unwrap();
        assert_eq!(resp.get_new_peer_ids().len(), 4);

        let unknown = region(99, b"", b"", (1, 1), FIVE);
        let err = s.ask_split(&unknown).unwrap_err();
        assert_eq!(err, SchedulerError::RegionNotFound(99));
        assert_eq!(err.to_pb().get_field_type(), ErrorType::REGION_NOT_FOUND);
        assert!(SchedulerClient::ask_split(&mut s, &unknown).is_err());
    }

    #[test]
    fn works_as_a_dyn_scheduler_client() {
        let (mut s, r) = sched_with_region();
        let client: &mut dyn SchedulerClient = &mut s;
        client.store_heartbeat(StoreStats::default()).unwrap();
        client.report_split(&r, &r).unwrap();
        client.region_heartbeat(hb(&r, (2, 2), &[])).unwrap();
        assert_eq!(s.take_responses()[0].0, 2);
    }

    #[test]
    fn works_as_a_cluster_scheduler() {
        let (mut s, r) = sched_with_region();
        let sched: &mut dyn ClusterScheduler = &mut s;
        assert_eq!(sched.cluster_id(), 0);
        assert!(sched.is_bootstrapped());
        assert!(!sched.wants_ticks(), "the mock has nothing periodic to do");
        sched.tick(Duration::from_secs(1));
        assert!(sched.take_responses().is_empty());
        assert_eq!(sched.get_store(3), Some(store(3)));
        assert_eq!(sched.get_store(9), None);
        assert_eq!(sched.leader(1), Some(peer(1, 1)));
        assert_eq!(sched.regions(), vec![r.clone()]);
        assert_eq!(sched.get_region(b"k"), Some((r.clone(), Some(peer(1, 1)))));

        // Operators, described in one line; a new one replaces the old.
        assert_eq!(sched.operator(1), None);
        sched.add_peer(1, peer(6, 12));
        assert_eq!(
            sched.operator(1).as_deref(),
            Some("add peer (store 6, peer 12)")
        );
        sched.transfer_leader(1, peer(3, 3));
        assert_eq!(
            sched.operator(1).as_deref(),
            Some("transfer leader to (store 3, peer 3)")
        );
        sched.remove_peer(1, peer(5, 5));
        assert_eq!(
            sched.operator(1).as_deref(),
            Some("remove peer (store 5, peer 5)")
        );
        sched
            .region_heartbeat(&hb(&r, (2, 2), &[(4, 4)]), Duration::from_secs(2))
            .unwrap();
        assert!(sched.is_pending(4));
        let rs = sched.take_responses();
        assert_eq!(rs.len(), 1);
        assert_eq!(rs[0].0, 2);
        assert_eq!(
            rs[0].1.get_change_peer().get_change_type(),
            ConfChangeType::RemoveNode
        );
        sched.store_heartbeat(&StoreStats::default(), Duration::from_secs(2));
        sched.report_split(&r, &r).unwrap();
        let resp = sched.ask_split(&r).unwrap();
        assert_eq!(resp.get_new_peer_ids().len(), 5);
        assert!(sched.alloc_id() > resp.new_region_id);

        // Violations are seen and taken through the trait.
        assert!(!sched.has_violations());
        let backwards = region(9, b"z", b"a", (1, 1), FIVE);
        assert!(sched
            .region_heartbeat(&hb(&backwards, (1, 1), &[]), Duration::ZERO)
            .is_err());
        assert!(sched.has_violations());
        assert_eq!(sched.take_violations().len(), 1);
        assert!(!sched.has_violations());
        assert_eq!(
            sched.bootstrap(store(2)),
            Err(SchedulerError::AlreadyBootstrapped)
        );
    }

    #[test]
    fn an_add_peer_seen_says_so() {
        let op = Operator::AddPeer {
            peer: peer(5, 12),
            seen: true,
        };
        assert_eq!(op.to_string(), "add peer (store 5, peer 12), seen");
    }
}
