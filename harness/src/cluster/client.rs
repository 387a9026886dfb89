//! Client operations on a [`Cluster`], named and shaped after the original harness's
//! (`must_put`, `get`, `scan`, `request`, `call_command_on_leader`, ...). They start a request
//! on the request state machine (`request.rs`, shared with the simulated clients) and run the
//! simulator until it finishes, so their timeouts are virtual time: a test that waits five
//! seconds for a leader costs only the events of those five seconds.

use std::sync::Arc;
use std::time::Duration;

use engine::Cf;
use parking_lot::Mutex;
use proto::metapb;
use proto::raft_cmdpb::{CmdType, RaftCmdRequest, Request};
use proto::raft_serverpb::PeerState;
use raftstore::CmdResponse;

use super::request::{self, Call, Failure, Outcome};
use super::request::{GET_REGION_INTERVAL, GET_REGION_POLLS, LEADER_INTERVAL, LEADER_POLLS};
use super::{Cluster, Slot};

pub use super::request::{
    new_delete_cf_cmd, new_get_cf_cmd, new_put_cf_cmd, new_request, new_snap_cmd, REQUEST_TIMEOUT,
};

const ENGINE_POLLS: u32 = 300;
const ENGINE_INTERVAL: Duration = Duration::from_millis(20);

/// The answer to a command sent with [`Cluster::send_command`], filled in while the
/// simulation runs (if the store ever answers).
#[derive(Clone, Default)]
pub struct PendingAnswer(Slot<CmdResponse>);

impl std::fmt::Debug for PendingAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PendingAnswer")
            .field(&self.is_answered())
            .finish()
    }
}

impl PendingAnswer {
    /// Whether the store answered (and the answer was not taken yet).
    pub fn is_answered(&self) -> bool {
        self.0.lock().is_some()
    }

    /// The answer, if the store gave one; taken, so a second call returns `None`.
    pub fn take(&self) -> Option<CmdResponse> {
        self.0.lock().take()
    }
}

impl Cluster {
    /// The region containing `key` as the scheduler knows it; waits up to 2 s of virtual
    /// time (the scheduler learns a region from its leader's first heartbeat).
    pub fn get_region(&mut self, key: &[u8]) -> metapb::Region {
        for _ in 0..GET_REGION_POLLS {
            if let Some((region, _)) = self.world().scheduler.get_region(key) {
                return region;
            }
            self.run_for(GET_REGION_INTERVAL);
        }
        self.fail(&format!("find no region for {key:02x?}"))
    }

    /// The leader of a region as the scheduler knows it; waits up to 5 s of virtual time.
    pub fn leader_of_region(&mut self, region_id: u64) -> Option<metapb::Peer> {
        for _ in 0..LEADER_POLLS {
            if let Some((_, Some(leader))) = self.world().scheduler.get_region_by_id(region_id) {
                return Some(leader);
            }
            self.run_for(LEADER_INTERVAL);
        }
        None
    }

    /// Sends `req` to the store named by its header's peer and waits up to `timeout` for
    /// the answer; `None` on timeout (the store may be stopped or partitioned).
    pub fn call_command(&mut self, req: RaftCmdRequest, timeout: Duration) -> Option<CmdResponse> {
        let slot: Slot<CmdResponse> = Arc::new(Mutex::new(None));
        let fill = Arc::clone(&slot);
        let cb = Box::new(move |resp: CmdResponse| *fill.lock() = Some(resp));
        let (w, c) = self.sim().parts();
        request::send_command(w, c, req, None, cb);
        let answered = self
            .sim()
            .run_until_true(timeout, |_| slot.lock().is_some());
        if !answered {
            return None;
        }
        // The answer travels back to the client.
        let latency = self.world().cfg.client_latency;
        self.run_for(latency);
        let resp = slot.lock().take();
        resp
    }

    /// Sends `req` to the store its header names and returns at once: the answer lands in the
    /// returned [`PendingAnswer`] as the simulation runs. No retries, no timeout: for tests
    /// that keep several commands in flight at one store, or watch when (and whether) a store
    /// answers one.
    pub fn send_command(&mut self, req: RaftCmdRequest) -> PendingAnswer {
        let answer = PendingAnswer::default();
        let fill = Arc::clone(&answer.0);
        let cb = Box::new(move |resp: CmdResponse| *fill.lock() = Some(resp));
        let (w, c) = self.sim().parts();
        request::send_command(w, c, req, None, cb);
        answer
    }

    /// Runs `call` on the request state machine until it finishes.
    fn run_call(&mut self, call: Call) -> Outcome {
        let slot: Slot<Outcome> = Arc::new(Mutex::new(None));
        let fill = Arc::clone(&slot);
        let (w, c) = self.sim().parts();
        request::start(
            w,
            c,
            call,
            Box::new(move |_, _, _, out| *fill.lock() = Some(out)),
        );
        // The machine always has a wake-up scheduled until it reports, and gives up within
        // bounded virtual time.
        while slot.lock().is_none() {
            if !self.sim().step() {
                self.fail("the simulator ran out of events while a request waited");
            }
        }
        let out = slot.lock().take();
        out.unwrap_or_else(|| self.fail("a request finished without an outcome"))
    }

    /// Sends `req` to the region's leader, following NotLeader hints and the scheduler's
    /// view, until it gets an answer that is not a "try elsewhere" error, or `timeout`
    /// passes (`None`). Fails the test if the scheduler knows no leader for the region.
    pub fn call_command_on_leader(
        &mut self,
        req: RaftCmdRequest,
        timeout: Duration,
    ) -> Option<CmdResponse> {
        match self.run_call(Call::on_leader(req, timeout)) {
            Ok(resp) => Some(resp),
            Err(Failure::NoAnswer) => None,
            Err(e) => self.fail(&e.to_string()),
        }
    }

    /// Sends `reqs` for the region holding `key` until one attempt succeeds: refreshes the
    /// region from the scheduler and retries on timeouts and region errors, for at least 10
    /// attempts and `timeout`. Fails the test if it never succeeds.
    pub fn request(&mut self, key: &[u8], reqs: Vec<Request>, timeout: Duration) -> CmdResponse {
        self.world_mut().liveness.helpers_waiting += 1;
        let out = self.run_call(Call::request(key, reqs, timeout));
        self.world_mut().liveness.helpers_waiting -= 1;
        out.unwrap_or_else(|e| self.fail(&e.to_string()))
    }

    /// Writes `key` → `value` in `default`.
    pub fn must_put(&mut self, key: &[u8], value: &[u8]) {
        self.must_put_cf("default", key, value);
    }

    /// Writes `key` → `value` in `cf`.
    pub fn must_put_cf(&mut self, cf: &str, key: &[u8], value: &[u8]) {
        let resp = self.request(key, vec![new_put_cf_cmd(cf, key, value)], REQUEST_TIMEOUT);
        let responses = resp.resp.get_responses();
        if responses.len() != 1 || responses[0].get_cmd_type() != CmdType::Put {
            self.fail(&format!("a put answered {responses:?}"));
        }
    }

    /// Reads `key` from `default` (empty if absent).
    pub fn get(&mut self, key: &[u8]) -> Vec<u8> {
        self.get_cf("default", key)
    }

    /// Reads `key` from `cf` (empty if absent).
    pub fn get_cf(&mut self, cf: &str, key: &[u8]) -> Vec<u8> {
        let resp = self.request(key, vec![new_get_cf_cmd(cf, key)], REQUEST_TIMEOUT);
        let responses = resp.resp.get_responses();
        if responses.len() != 1 || responses[0].get_cmd_type() != CmdType::Get {
            self.fail(&format!("a get answered {responses:?}"));
        }
        responses[0].get_get().value.clone()
    }

    /// Fails the test unless `key` reads as `value`.
    pub fn must_get(&mut self, key: &[u8], value: &[u8]) {
        let got = self.get(key);
        if got != value {
            self.fail(&format!(
                "expected {key:02x?} to be {value:02x?}, got {got:02x?}"
            ));
        }
    }

    /// Deletes `key` from `default`.
    pub fn must_delete(&mut self, key: &[u8]) {
        self.must_delete_cf("default", key);
    }

    /// Deletes `key` from `cf`.
    pub fn must_delete_cf(&mut self, cf: &str, key: &[u8]) {
        let resp = self.request(key, vec![new_delete_cf_cmd(cf, key)], REQUEST_TIMEOUT);
        let responses = resp.resp.get_responses();
        if responses.len() != 1 || responses[0].get_cmd_type() != CmdType::Delete {
            self.fail(&format!("a delete answered {responses:?}"));
        }
    }

    /// The values of `default` in `[start, end)` (empty `end` = to the last key), read
    /// region by region through `Snap` requests.
    pub fn scan(&mut self, start: &[u8], end: &[u8]) -> Vec<Vec<u8>> {
        let mut key = start.to_vec();
        let mut values = Vec::new();
        loop {
            let resp = self.request(&key, vec![new_snap_cmd()], REQUEST_TIMEOUT);
            let responses = resp.resp.get_responses();
            if responses.len() != 1 || responses[0].get_cmd_type() != CmdType::Snap {
                self.fail(&format!("a snap answered {responses:?}"));
            }
            let Some(snap) = resp.snap else {
                self.fail("a snap response carries no read view");
            };
            let region = snap.region.clone();
            let mut it = snap
                .iter_cf(Cf::Default, &key)
                .unwrap_or_else(|e| self.fail(&format!("scan: {e}")));
            while let Some((k, v)) = it.item() {
                if !end.is_empty() && k >= end {
                    break;
                }
                values.push(v.to_vec());
                it.next();
            }
            if let Err(e) = it.status() {
                self.fail(&format!("scan: {e}"));
            }
            key = region.get_end_key().to_vec();
            if key.is_empty() || (!end.is_empty() && key.as_slice() >= end) {
                return values;
            }
        }
    }

    /// Waits (up to 6 s of virtual time) until store `store_id`'s kv engine holds `key` →
    /// `value` in `cf`.
    pub fn must_get_cf_equal(&mut self, store_id: u64, cf: Cf, key: &[u8], value: &[u8]) {
        let mut last = None;
        for _ in 0..ENGINE_POLLS {
            last = self
                .engines(store_id)
                .kv
                .get_cf(cf, key)
                .ok()
                .flatten()
                .map(Vec::from);
            if last.as_deref() == Some(value) {
                return;
            }
            self.run_for(ENGINE_INTERVAL);
        }
        self.fail(&format!(
            "store {store_id}: expected {key:02x?} = {value:02x?} in {cf}, found {last:02x?}"
        ))
    }

    /// [`Cluster::must_get_cf_equal`] in `default`.
    pub fn must_get_equal(&mut self, store_id: u64, key: &[u8], value: &[u8]) {
        self.must_get_cf_equal(store_id, Cf::Default, key, value);
    }

    /// Waits (up to 6 s of virtual time) until store `store_id`'s kv engine has no `key` in
    /// `cf`.
    pub fn must_get_cf_none(&mut self, store_id: u64, cf: Cf, key: &[u8]) {
        for _ in 0..ENGINE_POLLS {
            match self.engines(store_id).kv.get_cf(cf, key) {
                Ok(None) => return,
                Ok(Some(_)) => {}
                Err(e) => self.fail(&format!("store {store_id}: reading {key:02x?}: {e}")),
            }
            self.run_for(ENGINE_INTERVAL);
        }
        self.fail(&format!("store {store_id}: {key:02x?} is still in {cf}"))
    }

    /// [`Cluster::must_get_cf_none`] in `default`.
    pub fn must_get_none(&mut self, store_id: u64, key: &[u8]) {
        self.must_get_cf_none(store_id, Cf::Default, key);
    }
}

impl Cluster {
    /// The original's log-trim check: for every region the scheduler knows and every store
    /// whose kv engine holds the region's apply state, `applied − truncated ≤ limit`. A store
    /// whose peer of the region was destroyed (its region state is a tombstone, or gone) holds
    /// no log of it and is skipped, as a store without the region is.
    pub fn check_log_trimmed(&mut self, limit: u64) {
        let regions: Vec<u64> = self
            .world()
            .scheduler
            .regions()
            .iter()
            .map(|r| r.id)
            .collect();
        for region in regions {
            for store in self.store_ids() {
                let live = self
                    .region_state_of(store, region)
                    .is_some_and(|s| s.get_state() != PeerState::Tombstone);
                if !live {
                    continue;
                }
                let state = match raftstore::meta::apply_state(&self.engines(store).kv, region) {
                    Ok(Some(state)) => state,
                    Ok(None) => continue,
                    Err(e) => self.fail(&format!(
                        "store {store}: apply state of region {region}: {e}"
                    )),
                };
                let (applied, truncated) = (state.applied_index, state.get_truncated_state().index);
                if applied - truncated.min(applied) > limit {
                    self.fail(&format!(
                        "store {store}, region {region}: the raft log is not trimmed: applied {applied}, truncated {truncated}, more than {limit} apart"
                    ));
                }
            }
        }
    }
}

/// How many times [`Cluster::must_replicas_converge`] checks a region whose epoch keeps
/// changing under it before it gives up.
pub const CONVERGE_ATTEMPTS: u32 = 20;

/// User pairs of one store: (column family, key, value), in order.
type StoreData = Vec<(Cf, Vec<u8>, Vec<u8>)>;

impl Cluster {
    /// Checks that the replicas of every region hold exactly the same user data (all data
    /// column families) within the region's range: after a write barrier in each region that
    /// every store holding a peer of it has applied, those stores must not differ there. An
    /// oracle that reads the engines, not the store's own state, so it catches a store that
    /// applied something twice or skipped it on one replica. Regions and their peers are the
    /// scheduler's view, walked by key from `""` along end keys (so a region split meanwhile
    /// is followed); stores without a peer of a region are not compared for it. The barrier is
    /// deleted again (on every replica) before the comparison: it must not show up in later
    /// scans of the clients' keys.
    ///
    /// A scheduler may move replicas meanwhile (balance, replica repair): a region whose
    /// epoch changed between the barrier and the comparison is checked again with its new
    /// peers, up to [`CONVERGE_ATTEMPTS`] times.
    pub fn must_replicas_converge(&mut self) {
        self.clear_filters();
        let mut key = Vec::new();
        loop {
            let mut region = self.get_region(&key);
            let mut attempt = 1;
            while !self.must_region_replicas_converge(&region) {
                if attempt == CONVERGE_ATTEMPTS {
                    self.fail(&format!(
                        "must_replicas_converge: region {} changed its epoch during each of {CONVERGE_ATTEMPTS} checks",
                        region.id
                    ));
                }
                attempt += 1;
                self.run_for(Duration::from_millis(500));
                region = self.get_region(&key);
            }
            key = region.get_end_key().to_vec();
            if key.is_empty() {
                return;
            }
        }
    }

    /// Checks one region's replicas; false (nothing compared) if the scheduler's copy of the
    /// region has another epoch after the barrier than before it.
    fn must_region_replicas_converge(&mut self, region: &metapb::Region) -> bool {
        // Right after the region's start key: inside the region unless it is tiny.
        let mut barrier = region.get_start_key().to_vec();
        barrier.extend_from_slice(format!("\0~barrier {}", self.sim().now().0).as_bytes());
        let stores: Vec<u64> = region.get_peers().iter().map(|p| p.store_id).collect();
        let barrier_inside = raftstore::util::region_contains_key(region, &barrier);
        if barrier_inside {
            self.must_put(&barrier, b"1");
            for &s in &stores {
                self.must_get_equal(s, &barrier, b"1");
            }
            // Gone again before anyone else reads: after splits a region may start inside a
            // client's key range, and so does its barrier key.
            self.must_delete(&barrier);
            for &s in &stores {
                self.must_get_none(s, &barrier);
            }
        } else {
            self.run_for(Duration::from_secs(1));
        }
        let now = self.world().scheduler.get_region_by_id(region.id);
        if now.is_none_or(|(r, _)| r.get_region_epoch() != region.get_region_epoch()) {
            return false;
        }
        let mut first: Option<(u64, StoreData)> = None;
        for &s in &stores {
            let contents = self.data_of(s, region);
            match &first {
                None => first = Some((s, contents)),
                Some((s0, c0)) if &contents != c0 => {
                    let diff = c0
                        .iter()
                        .zip(contents.iter())
                        .find(|(a, b)| a != b)
                        .map(|(a, b)| format!("store {s0}: {a:02x?}\nstore {s}: {b:02x?}"))
                        .unwrap_or_else(|| {
                            format!("{} pairs vs {} pairs", c0.len(), contents.len())
                        });
                    self.fail(&format!(
                        "replicas of region {} on stores {s0} and {s} hold different data; first difference:\n{diff}",
                        region.id
                    ));
                }
                Some(_) => {}
            }
        }
        true
    }

    /// Every user pair in a store's kv engine within `region`'s range, in order.
    fn data_of(&self, store_id: u64, region: &metapb::Region) -> StoreData {
        let mut out = Vec::new();
        let snap = match self.engines(store_id).kv.snapshot() {
            Ok(s) => s,
            Err(e) => self.fail(&format!("store {store_id}: snapshot: {e}")),
        };
        let range = raftstore::util::KeyRange::of_region(region);
        for &cf in Cf::DATA {
            if let Err(e) = snap.scan_cf(cf, &range.start, range.end_bound(), |k, v| {
                out.push((cf, k.to_vec(), v.to_vec()));
                true
            }) {
                self.fail(&format!("store {store_id}: scanning {cf}: {e}"));
            }
        }
        out
    }
}
