//! [`ClusterClient`]: raw KV calls to a whole cluster, routed as a real client routes them.
//!
//! The client finds the key's region and leader (in its [`RegionCache`], else at the
//! scheduler), fills the request's context (region, epoch, peer) and sends it to the
//! leader's store. A region error says what changed: `NotLeader` with a hint is retried at
//! the hinted peer; any other (a stale epoch, a key outside the region, a missing region, a
//! timeout) after a short pause with the region looked up again at the scheduler. A store
//! that does not answer is skipped for the region's next peer. A scan continues region after
//! region until it has its pairs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use proto::adminpb::{OperatorKind, SplitRegionRequest};
use proto::errorpb;
use proto::kvrpcpb::{Context, RawDeleteRequest, RawGetRequest, RawPutRequest, RawScanRequest};
use proto::metapb;
use tokio::runtime::Runtime;

use super::conn::ClientConfig;
use super::error::{GrpcError, Result};
use super::kv_client::TinyKvClient;
use super::region_cache::RegionCache;
use super::scheduler_client::{RegionAndLeader, SchedulerConn};

/// How long a client waits before it looks a region up again.
const PAUSE: Duration = Duration::from_millis(50);

/// A client of a whole cluster (see the module docs).
pub struct ClusterClient {
    rt: Runtime,
    conn: SchedulerConn,
    cfg: ClientConfig,
    stores: Mutex<BTreeMap<String, Arc<TinyKvClient>>>,
    cache: Mutex<RegionCache>,
    /// The patience of one call, retries included.
    pub timeout: Duration,
}

impl std::fmt::Debug for ClusterClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterClient")
            .field("scheduler", &self.conn.addr())
            .finish_non_exhaustive()
    }
}

impl ClusterClient {
    /// Connects to the scheduler at `addr` (on a small runtime of the client's own).
    pub fn connect(addr: &str, cfg: ClientConfig) -> Result<ClusterClient> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tinykv-cluster-client")
            .enable_all()
            .build()
            .map_err(GrpcError::Runtime)?;
        let conn = rt.block_on(SchedulerConn::connect(addr, cfg.clone()))?;
        Ok(ClusterClient {
            rt,
            conn,
            timeout: cfg.request_timeout,
            cfg,
            stores: Mutex::new(BTreeMap::new()),
            cache: Mutex::new(RegionCache::default()),
        })
    }

    /// The region holding `key` and its leader, as the scheduler knows them.
    pub fn region(&self, key: &[u8]) -> Result<Option<RegionAndLeader>> {
        self.rt.block_on(self.conn.get_region(key))
    }

    /// Region `id` and its leader, as the scheduler knows them.
    pub fn region_by_id(&self, id: u64) -> Result<Option<RegionAndLeader>> {
        self.rt.block_on(self.conn.get_region_by_id(id))
    }

    /// Store `id` as the scheduler knows it.
    pub fn store(&self, id: u64) -> Result<metapb::Store> {
        self.rt.block_on(self.conn.get_store(id))
    }

    /// Every store the scheduler knows (tombstones excluded).
    pub fn stores(&self) -> Result<Vec<metapb::Store>> {
        self.rt.block_on(self.conn.get_all_stores(true))
    }

    /// The region of `key` and its leader: from the cache, else from the scheduler (and
    /// then cached).
    fn locate(&self, key: &[u8]) -> Result<Option<RegionAndLeader>> {
        if let Some(found) = self.cache.lock().region(key) {
            return Ok(Some(found));
        }
        let found = self.region(key)?;
        if let Some((region, leader)) = &found {
            self.cache.lock().insert(region.clone(), leader.clone());
        }
        Ok(found)
    }

    /// The client of store `store_id`, its address from the cache or the scheduler.
    fn store_client(&self, store_id: u64) -> Result<Arc<TinyKvClient>> {
        let cached = self.cache.lock().store(store_id);
        let addr = match cached {
            Some(addr) => addr,
            None => {
                let addr = self.store(store_id)?.address;
                self.cache.lock().insert_store(store_id, addr.clone());
                addr
            }
        };
        self.kv(&addr)
    }

    fn kv(&self, addr: &str) -> Result<Arc<TinyKvClient>> {
        if let Some(c) = self.stores.lock().get(addr) {
            return Ok(c.clone());
        }
        let c = Arc::new(TinyKvClient::connect_on(
            self.rt.handle().clone(),
            addr,
            self.cfg.clone(),
        )?);
        self.stores.lock().insert(addr.to_owned(), c.clone());
        Ok(c)
    }

    /// Runs `op` on the leader of `key`'s region until it answers without a region error;
    /// returns the answer and the region it came from.
    fn routed<T>(
        &self,
        key: &[u8],
        op: impl Fn(&TinyKvClient, Context) -> Result<(Option<errorpb::Error>, T)>,
    ) -> Result<(T, metapb::Region)> {
        let deadline = Instant::now() + self.timeout;
        let mut hint: Option<metapb::Peer> = None;
        let mut turn = 0usize;
        let mut last: Option<GrpcError> = None;
        while Instant::now() < deadline {
            let Some((region, leader)) = self.locate(key)? else {
                std::thread::sleep(PAUSE);
                continue;
            };
            let peers = region.get_peers();
            if peers.is_empty() {
                std::thread::sleep(PAUSE);
                continue;
            }
            let peer = hint
                .take()
                .filter(|h| peers.contains(h))
                .or_else(|| leader.clone().filter(|_| turn == 0))
                .unwrap_or_else(|| peers[turn % peers.len()].clone());
            turn += 1;
            let mut ctx = Context::new();
            ctx.region_id = region.id;
            ctx.set_region_epoch(region.get_region_epoch().clone());
            ctx.set_peer(peer.clone());
            let answer = self.store_client(peer.store_id).and_then(|kv| op(&kv, ctx));
            match answer {
                Ok((None, t)) => {
                    if leader.as_ref() != Some(&peer) {
                        self.cache.lock().set_leader(region.id, Some(peer));
                    }
                    return Ok((t, region));
                }
                Ok((Some(err), _)) => {
                    if err.has_not_leader() && err.get_not_leader().has_leader() {
                        let new = err.get_not_leader().get_leader().clone();
                        let mut cache = self.cache.lock();
                        if peers.contains(&new) {
                            cache.set_leader(region.id, Some(new.clone()));
                        } else {
                            // A leader the cached region does not list: the peers changed.
                            cache.forget_region(region.id);
                        }
                        hint = Some(new);
                    } else {
                        self.cache.lock().forget_region(region.id);
                        turn = 0;
                        std::thread::sleep(PAUSE);
                    }
                    last = Some(GrpcError::Refused {
                        addr: format!("store {}", peer.store_id),
                        what: "a raw call",
                        message: format!("region error: {err:?}"),
                    });
                }
                // The store answered and refused the request itself: asking again is no use.
                Err(e) if is_final(&e) => return Err(e),
                Err(e) => {
                    // A store that is down or unreachable (or moved): the next peer, of the
                    // region as the scheduler knows it now.
                    let mut cache = self.cache.lock();
                    cache.forget_store(peer.store_id);
                    cache.forget_region(region.id);
                    drop(cache);
                    tracing::debug!("store {}: {e}", peer.store_id);
                    last = Some(e);
                    std::thread::sleep(PAUSE);
                }
            }
        }
        Err(last.unwrap_or(GrpcError::Timeout {
            addr: self.conn.addr().to_owned(),
            what: "a routed raw call",
            after: self.timeout,
        }))
    }

    /// The value of `key` in `cf`, `None` if absent.
    pub fn get(&self, cf: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.routed(key, |kv, ctx| {
            let mut req = RawGetRequest::new();
            req.set_context(ctx);
            req.cf = cf.to_owned();
            req.key = key.to_vec();
            let mut resp = kv.send_raw_get(req)?;
            refused(kv, "RawGet", &resp.error)?;
            let found = (!resp.not_found).then(|| std::mem::take(&mut resp.value));
            Ok((resp.region_error.take(), found))
        })
        .map(|(v, _)| v)
    }

    /// Sets `key` to `value` in `cf`.
    pub fn put(&self, cf: &str, key: &[u8], value: &[u8]) -> Result<()> {
        self.routed(key, |kv, ctx| {
            let mut req = RawPutRequest::new();
            req.set_context(ctx);
            req.cf = cf.to_owned();
            req.key = key.to_vec();
            req.value = value.to_vec();
            let mut resp = kv.send_raw_put(req)?;
            refused(kv, "RawPut", &resp.error)?;
            Ok((resp.region_error.take(), ()))
        })
        .map(|_| ())
    }

    /// Removes `key` from `cf`.
    pub fn delete(&self, cf: &str, key: &[u8]) -> Result<()> {
        self.routed(key, |kv, ctx| {
            let mut req = RawDeleteRequest::new();
            req.set_context(ctx);
            req.cf = cf.to_owned();
            req.key = key.to_vec();
            let mut resp = kv.send_raw_delete(req)?;
            refused(kv, "RawDelete", &resp.error)?;
            Ok((resp.region_error.take(), ()))
        })
        .map(|_| ())
    }

    /// Splits the region holding `key` at `key`, which becomes the first key of the new
    /// right-hand region; returns the two regions. Fails at once if `key` already starts a
    /// region.
    pub fn split(&self, key: &[u8]) -> Result<(metapb::Region, metapb::Region)> {
        let ((left, right), _) = self.routed(key, |kv, ctx| {
            let mut req = SplitRegionRequest::new();
            req.set_context(ctx);
            req.split_key = key.to_vec();
            let mut resp = kv.send_split_region(req)?;
            refused(kv, "SplitRegion", &resp.error)?;
            if let Some(err) = resp.region_error.as_ref() {
                let outside = err.get_key_not_in_region();
                if err.has_key_not_in_region() && outside.start_key == key {
                    return Err(GrpcError::Refused {
                        addr: kv.addr().to_owned(),
                        what: "SplitRegion",
                        message: format!(
                            "the key is where region {} starts already",
                            outside.region_id
                        ),
                    });
                }
            }
            Ok((
                resp.region_error.take(),
                (resp.take_left(), resp.take_right()),
            ))
        })?;
        Ok((left, right))
    }

    /// Hands the scheduler an administrator's operator of `kind` on region `region_id` for
    /// its peer on store `store_id` (a new peer there, for [`OperatorKind::AddPeer`]), then
    /// waits until the scheduler's view of the region shows it done: the peer leads, is a
    /// member, or is gone. Returns the peer; fails if the scheduler refuses the operator or
    /// it is not done within the client's timeout.
    pub fn operate(
        &self,
        region_id: u64,
        kind: OperatorKind,
        store_id: u64,
    ) -> Result<metapb::Peer> {
        let peer = self
            .rt
            .block_on(self.conn.add_operator(region_id, kind, store_id))?;
        let deadline = Instant::now() + self.timeout;
        loop {
            let done = self
                .region_by_id(region_id)?
                .is_some_and(|(region, leader)| {
                    let member = region.get_peers().iter().any(|p| p.id == peer.id);
                    match kind {
                        OperatorKind::TransferLeader => leader.is_some_and(|l| l.id == peer.id),
                        OperatorKind::AddPeer => member,
                        OperatorKind::RemovePeer => !member,
                    }
                });
            if done {
                return Ok(peer);
            }
            if Instant::now() >= deadline {
                return Err(GrpcError::Timeout {
                    addr: self.conn.addr().to_owned(),
                    what: "an operator",
                    after: self.timeout,
                });
            }
            std::thread::sleep(PAUSE);
        }
    }

    /// Up to `limit` pairs of `cf` from `start` on, in key order, across regions.
    pub fn scan(&self, cf: &str, start: &[u8], limit: u32) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        let mut from = start.to_vec();
        while (out.len() as u32) < limit {
            let want = limit - out.len() as u32;
            let (pairs, region) = self.routed(&from, |kv, ctx| {
                let mut req = RawScanRequest::new();
                req.set_context(ctx);
                req.cf = cf.to_owned();
                req.start_key = from.clone();
                req.limit = want;
                let mut resp = kv.send_raw_scan(req)?;
                refused(kv, "RawScan", &resp.error)?;
                let pairs: Vec<_> = resp
                    .take_kvs()
                    .into_iter()
                    .map(|mut p| (p.take_key(), p.take_value()))
                    .collect();
                Ok((resp.region_error.take(), pairs))
            })?;
            out.extend(pairs);
            if region.end_key.is_empty() {
                break;
            }
            from = region.end_key;
        }
        out.truncate(limit as usize);
        Ok(out)
    }
}

/// Whether `e` is a store's verdict on the request itself (a bad argument, a refusal in
/// the response), not a store that is down, slow or not ready.
fn is_final(e: &GrpcError) -> bool {
    match e {
        GrpcError::Refused { .. } => true,
        GrpcError::Call { code, .. } => matches!(
            code,
            tonic::Code::InvalidArgument | tonic::Code::FailedPrecondition
        ),
        _ => false,
    }
}

fn refused(kv: &TinyKvClient, what: &'static str, error: &str) -> Result<()> {
    if error.is_empty() {
        return Ok(());
    }
    Err(GrpcError::Refused {
        addr: kv.addr().to_owned(),
        what,
        message: error.to_owned(),
    })
}
