//! One client request on the simulator: the original harness's request logic (`request` →
//! `call_command_on_leader` → `call_command`, see `harness-api.md` §2) as a state machine
//! whose steps are simulator events, reporting its outcome to whoever started it.
//!
//! Every client runs it: each simulated client of [`super::workload`] runs one request per
//! operation (a scan one per region), and the blocking helpers of [`super::client`]
//! (`must_put`, `get`, `scan`, ...) start one and run the simulator until it finishes.
//!
//! The rules, the original's:
//! - look the region of the key up in the scheduler, polling 100 × 20 ms ("find no region");
//! - start from the scheduler's leader of the region, polling 500 × 10 ms ("can't get the
//!   leader");
//! - **unlike the original**, a `request` whose polls find no region or no leader backs off
//!   and tries again like after any failed attempt, and reports "find no region" / "can't get
//!   the leader" only when it gives up. After a split under partitions, the new region has no
//!   leader until enough of its stores have applied the split, which can take longer than
//!   2 s while the network keeps changing; the original aborts the whole test then
//!   (`pitfalls.md` A3), although nothing is wrong. A `Call::on_leader` still fails at once;
//! - send the command to one peer at a time, with a 1 s timeout per attempt;
//! - after an attempt with no answer, try the scheduler's leader if it changed, else a random
//!   peer of the region;
//! - on `StaleCommand` / `EpochNotMatch` / `NotLeader`, retry at once (same command, same
//!   epoch) at the `NotLeader` hint, else at the scheduler's leader;
//! - on a timeout of the whole `call_command_on_leader` (the request's timeout, 5 s for the
//!   helpers) or any other region error, back off 100 ms and refresh the region;
//! - give up with "request timeout" after at least 10 attempts and the request's timeout (a
//!   test failure, as in the original).
//!
//! One difference, on purpose: a `request` answered with `EpochNotMatch` refreshes the region
//! from the scheduler (at once if the scheduler already has another epoch or region for the
//! key, else after the 100 ms back-off) instead of repeating the stale command until its
//! `call_command_on_leader` times out. The original's loop sends the same stale command for
//! the full 5 s after every split (every client stalls 5 s per split of its region, and in
//! virtual time that is a burst of thousands of commands); the command can never succeed
//! with that epoch. [`Call::on_leader`] keeps the original's behaviour.
//!
//! A [`Call::on_leader`] runs the inner loop alone (the original's `call_command_on_leader`):
//! its answer is the first that is not a "try elsewhere" error, errors included, and it gives
//! up when its timeout passes.
//!
//! A store answers through a `Send` callback that cannot reach the simulator, so callbacks
//! drop their answer into a shared inbox; a poller event (every [`POLL_INTERVAL`] while some
//! request waits for an answer) moves each answer to its request, which sees it
//! `client_latency` later. Every wake-up of a request (answer, attempt timeout, poll, back-off)
//! carries the request's current wait token; a stale one (the answer of an attempt that
//! already timed out, say) is ignored, and so is every wake-up of a cancelled request.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use proto::metapb;
use proto::raft_cmdpb::{RaftCmdRequest, Request};
use raftstore::{Callback, CmdResponse, StoreEvent};
use rand::Rng;

use super::describe::CmdDesc;
use super::{deliver, World};
use crate::scheduler::ClusterScheduler;
use crate::sim::{Core, Label, SimTime};

/// How often answers in the inbox are handed to their requests.
pub const POLL_INTERVAL: Duration = Duration::from_millis(1);
pub(crate) const GET_REGION_POLLS: u32 = 100;
pub(crate) const GET_REGION_INTERVAL: Duration = Duration::from_millis(20);
pub(crate) const LEADER_POLLS: u32 = 500;
pub(crate) const LEADER_INTERVAL: Duration = Duration::from_millis(10);
/// How long one attempt waits for a store's answer.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);
/// The patience of the helpers' and clients' requests (and of each `call_command_on_leader`
/// inside them).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const MIN_ATTEMPTS: u32 = 10;
const BACKOFF: Duration = Duration::from_millis(100);

pub use raftstore::cmd::{
    new_delete_cf_cmd, new_get_cf_cmd, new_put_cf_cmd, new_request, new_snap_cmd,
};

/// Why a request gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The scheduler knew no region for the key.
    NoRegion(Vec<u8>),
    /// The scheduler knew no leader for the region.
    NoLeader(u64),
    /// `request` made its attempts and spent its timeout without a success.
    Timeout(Vec<u8>),
    /// A [`Call::on_leader`] got no final answer within its timeout.
    NoAnswer,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::NoRegion(key) => write!(f, "find no region for {key:02x?}"),
            Failure::NoLeader(region) => write!(f, "can't get the leader of region {region}"),
            Failure::Timeout(key) => write!(f, "request timeout for key {key:02x?}"),
            Failure::NoAnswer => f.write_str("no answer from the region's leader in time"),
        }
    }
}

/// How a request ended: the answer (with its read view, for a `Snap`), or why it gave up.
pub(crate) type Outcome = Result<CmdResponse, Failure>;

/// Told how a request ended, inside the event that ended it.
pub(crate) type OnDone = Box<dyn FnOnce(&mut World, &mut Core<World>, RequestId, Outcome)>;

/// Names a request in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct RequestId(u64);

enum Kind {
    /// `request`: the region is looked up (again after every back-off).
    Request { key: Vec<u8>, reqs: Vec<Request> },
    /// `call_command_on_leader`: the command's header names the region and epoch.
    OnLeader,
}

/// What a request runs.
pub(crate) struct Call {
    kind: Kind,
    /// The command of the current attempts.
    cmd: RaftCmdRequest,
    timeout: Duration,
    /// The simulated client that runs it, for the trace.
    client: Option<usize>,
}

impl Call {
    /// The original's `request(key, reqs, timeout)`: succeeds with an answer free of errors.
    pub(crate) fn request(key: &[u8], reqs: Vec<Request>, timeout: Duration) -> Call {
        Call {
            kind: Kind::Request {
                key: key.to_vec(),
                reqs,
            },
            cmd: RaftCmdRequest::new(),
            timeout,
            client: None,
        }
    }

    /// The original's `call_command_on_leader(cmd, timeout)`.
    pub(crate) fn on_leader(cmd: RaftCmdRequest, timeout: Duration) -> Call {
        Call {
            kind: Kind::OnLeader,
            cmd,
            timeout,
            client: None,
        }
    }

    /// Run by simulated client `ci` (named in the trace).
    pub(crate) fn by_client(mut self, ci: usize) -> Call {
        self.client = Some(ci);
        self
    }
}

/// Where a request stands.
#[derive(Debug)]
enum Stage {
    /// Polling the scheduler for the region of the key.
    Region { polls: u32 },
    /// Polling the scheduler for the region's leader.
    Leader { polls: u32 },
    /// Waiting for the answer of an attempt sent to `leader`.
    Calling {
        leader: metapb::Peer,
        /// End of the current `call_command_on_leader`.
        deadline: SimTime,
    },
    /// Waiting before refreshing the region.
    Backoff,
}

struct Machine {
    call: Call,
    /// Why the last round of `request` found nothing to send to, if it did not.
    unavailable: Option<Failure>,
    on_done: OnDone,
    started: SimTime,
    /// Rounds of `request`'s loop so far.
    attempts: u32,
    stage: Stage,
    /// Bumped at every wait; a wake-up carrying another value is stale.
    token: u64,
}

/// An answer a store's callback dropped in the inbox.
struct Delivery {
    id: RequestId,
    token: u64,
    resp: CmdResponse,
}

/// The requests in flight and their inbox (in [`World::requests`]).
#[derive(Default)]
pub(crate) struct Requests {
    live: BTreeMap<RequestId, Machine>,
    next: u64,
    inbox: Arc<Mutex<Vec<Delivery>>>,
    poller_running: bool,
}

impl Requests {
    fn token(&self, id: RequestId) -> Option<u64> {
        self.live.get(&id).map(|m| m.token)
    }
}

/// Starts `call`; `on_done` learns its outcome (never before `start` returns). The request
/// counts as client progress for the liveness watchdog when it succeeds.
pub(crate) fn start(w: &mut World, c: &mut Core<World>, call: Call, on_done: OnDone) -> RequestId {
    let r = &mut w.requests;
    let id = RequestId(r.next);
    r.next += 1;
    let on_leader = matches!(call.kind, Kind::OnLeader);
    r.live.insert(
        id,
        Machine {
            call,
            on_done,
            started: c.now(),
            attempts: 0,
            unavailable: None,
            stage: Stage::Leader { polls: 0 },
            token: 0,
        },
    );
    if on_leader {
        poll_leader(w, c, id);
    } else {
        attempt(w, c, id);
    }
    id
}

/// Forgets a request: it never reports, and its answers and wake-ups are ignored.
pub(crate) fn cancel(w: &mut World, id: RequestId) {
    w.requests.live.remove(&id);
}

/// Sends `cmd` to the store its header names, `client_latency` from now, over a connection
/// to the store's current incarnation (lost if the store is down or restarts meanwhile).
pub(crate) fn send_command(
    w: &World,
    c: &mut Core<World>,
    cmd: RaftCmdRequest,
    client: Option<usize>,
    cb: Callback,
) {
    let store_id = cmd.get_header().get_peer().store_id;
    let label = Label::new("client command", CmdDesc::of(&cmd).by_client(client));
    let latency = w.cfg.client_latency;
    deliver(
        w,
        c,
        store_id,
        latency,
        label,
        StoreEvent::Command { req: cmd, cb },
    );
}

fn finish(w: &mut World, c: &mut Core<World>, id: RequestId, outcome: Outcome) {
    let Some(m) = w.requests.live.remove(&id) else {
        return;
    };
    if outcome
        .as_ref()
        .is_ok_and(|r| !r.resp.get_header().has_error())
    {
        w.liveness.progress(c.now());
    }
    (m.on_done)(w, c, id, outcome);
}

/// Schedules a wake-up of request `id` after `delay`; it runs `f` unless the request moved
/// on.
fn wake_after(
    w: &mut World,
    c: &mut Core<World>,
    id: RequestId,
    delay: Duration,
    label: &'static str,
    f: fn(&mut World, &mut Core<World>, RequestId),
) {
    let Some(m) = w.requests.live.get_mut(&id) else {
        return;
    };
    m.token += 1;
    let token = m.token;
    c.schedule(delay, label, move |w: &mut World, c: &mut Core<World>| {
        if w.requests.token(id) == Some(token) {
            f(w, c, id);
        }
    });
}

/// One round of `request`'s loop, or its end.
fn attempt(w: &mut World, c: &mut Core<World>, id: RequestId) {
    let now = c.now();
    let Some(m) = w.requests.live.get_mut(&id) else {
        return;
    };
    let Kind::Request { key, .. } = &m.call.kind else {
        return;
    };
    if m.attempts >= MIN_ATTEMPTS && now.since(m.started) >= m.call.timeout {
        let failure = m
            .unavailable
            .take()
            .unwrap_or_else(|| Failure::Timeout(key.clone()));
        finish(w, c, id, Err(failure));
        return;
    }
    m.attempts += 1;
    m.stage = Stage::Region { polls: 0 };
    poll_region(w, c, id);
}

fn poll_region(w: &mut World, c: &mut Core<World>, id: RequestId) {
    let Some(m) = w.requests.live.get_mut(&id) else {
        return;
    };
    let Kind::Request { key, reqs } = &m.call.kind else {
        return;
    };
    if let Some((region, _)) = w.scheduler.get_region(key) {
        m.call.cmd = new_request(region.id, region.get_region_epoch().clone(), reqs.clone());
        m.stage = Stage::Leader { polls: 0 };
        poll_leader(w, c, id);
        return;
    }
    let Stage::Region { polls } = &mut m.stage else {
        return;
    };
    *polls += 1;
    if *polls >= GET_REGION_POLLS {
        m.unavailable = Some(Failure::NoRegion(key.clone()));
        backoff(w, c, id);
        return;
    }
    let label = "client region poll";
    wake_after(w, c, id, GET_REGION_INTERVAL, label, poll_region);
}

fn scheduler_leader(s: &dyn ClusterScheduler, region_id: u64) -> Option<metapb::Peer> {
    s.get_region_by_id(region_id).and_then(|(_, leader)| leader)
}

/// `call_command_on_leader`: start from the scheduler's leader.
fn poll_leader(w: &mut World, c: &mut Core<World>, id: RequestId) {
    let now = c.now();
    let Some(m) = w.requests.live.get_mut(&id) else {
        return;
    };
    let region_id = m.call.cmd.get_header().region_id;
    if let Some(leader) = scheduler_leader(&*w.scheduler, region_id) {
        m.unavailable = None;
        m.stage = Stage::Calling {
            leader,
            deadline: now.after(m.call.timeout),
        };
        send(w, c, id);
        return;
    }
    let Stage::Leader { polls } = &mut m.stage else {
        return;
    };
    *polls += 1;
    if *polls >= LEADER_POLLS {
        if matches!(m.call.kind, Kind::Request { .. }) {
            m.unavailable = Some(Failure::NoLeader(region_id));
            backoff(w, c, id);
        } else {
            finish(w, c, id, Err(Failure::NoLeader(region_id)));
        }
        return;
    }
    wake_after(w, c, id, LEADER_INTERVAL, "client leader poll", poll_leader);
}

/// One attempt of `call_command_on_leader` (or its end, if its time is up).
fn send(w: &mut World, c: &mut Core<World>, id: RequestId) {
    let now = c.now();
    let Some(m) = w.requests.live.get_mut(&id) else {
        return;
    };
    let Stage::Calling { leader, deadline } = &m.stage else {
        return;
    };
    if now >= *deadline {
        match m.call.kind {
            Kind::Request { .. } => backoff(w, c, id),
            Kind::OnLeader => finish(w, c, id, Err(Failure::NoAnswer)),
        }
        return;
    }
    m.call.cmd.mut_header().set_peer(leader.clone());
    let (cmd, client) = (m.call.cmd.clone(), m.call.client);
    let label = "client attempt timeout";
    wake_after(w, c, id, ATTEMPT_TIMEOUT, label, on_timeout);
    let r = &mut w.requests;
    let Some(token) = r.token(id) else {
        return;
    };
    let inbox = Arc::clone(&r.inbox);
    let cb = Box::new(move |resp| inbox.lock().push(Delivery { id, token, resp }));
    if !r.poller_running {
        r.poller_running = true;
        c.schedule(POLL_INTERVAL, "client inbox", poll_inbox);
    }
    send_command(w, c, cmd, client, cb);
}

fn backoff(w: &mut World, c: &mut Core<World>, id: RequestId) {
    if let Some(m) = w.requests.live.get_mut(&id) {
        m.stage = Stage::Backoff;
    }
    wake_after(w, c, id, BACKOFF, "client backoff", attempt);
}

/// Hands the answers in the inbox to their requests (after the return trip).
fn poll_inbox(w: &mut World, c: &mut Core<World>) {
    let latency = w.cfg.client_latency;
    let r = &mut w.requests;
    let deliveries = std::mem::take(&mut *r.inbox.lock());
    for Delivery { id, token, resp } in deliveries {
        if r.token(id) != Some(token) {
            continue;
        }
        c.schedule(latency, "client response", move |w: &mut World, c| {
            on_response(w, c, id, token, resp)
        });
    }
    let waiting = r
        .live
        .values()
        .any(|m| matches!(m.stage, Stage::Calling { .. }));
    if waiting {
        c.schedule(POLL_INTERVAL, "client inbox", poll_inbox);
    } else {
        r.poller_running = false;
    }
}

/// The attempt got no answer within its timeout: try the scheduler's leader if it changed,
/// else a random peer of the region.
fn on_timeout(w: &mut World, c: &mut Core<World>, id: RequestId) {
    let Some(m) = w.requests.live.get_mut(&id) else {
        return;
    };
    let Stage::Calling { leader, .. } = &mut m.stage else {
        return;
    };
    let region_id = m.call.cmd.get_header().region_id;
    *leader = match scheduler_leader(&*w.scheduler, region_id) {
        Some(l) if l != *leader => l,
        _ => match w.scheduler.get_region_by_id(region_id) {
            Some((region, _)) if !region.get_peers().is_empty() => {
                let i = c.rng().gen_range(0..region.get_peers().len());
                region.get_peers()[i].clone()
            }
            _ => leader.clone(),
        },
    };
    send(w, c, id);
}

fn on_response(w: &mut World, c: &mut Core<World>, id: RequestId, token: u64, resp: CmdResponse) {
    let Some(m) = w.requests.live.get_mut(&id) else {
        return;
    };
    if m.token != token {
        return;
    }
    // The attempt's timeout is stale now.
    m.token += 1;
    let header = resp.resp.get_header();
    let err = header.get_error();
    if let (true, Kind::Request { key, .. }) = (err.has_epoch_not_match(), &m.call.kind) {
        // The command's epoch is gone for good: refresh the region (see the module docs).
        let sent = m.call.cmd.get_header();
        let moved_on = w.scheduler.get_region(key).is_some_and(|(r, _)| {
            r.id != sent.region_id || r.get_region_epoch() != sent.get_region_epoch()
        });
        if moved_on {
            attempt(w, c, id);
        } else {
            backoff(w, c, id);
        }
    } else if err.has_stale_command() || err.has_epoch_not_match() || err.has_not_leader() {
        let region_id = m.call.cmd.get_header().region_id;
        let next = if err.get_not_leader().has_leader() {
            Some(err.get_not_leader().get_leader().clone())
        } else {
            scheduler_leader(&*w.scheduler, region_id)
        };
        if let (Some(next), Stage::Calling { leader, .. }) = (next, &mut m.stage) {
            *leader = next;
        }
        send(w, c, id);
    } else if header.has_error() && matches!(m.call.kind, Kind::Request { .. }) {
        backoff(w, c, id);
    } else {
        finish(w, c, id, Ok(resp));
    }
}

// lab:needs 2aa..3b
#[cfg(test)]
mod tests {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::time::Duration;

    use super::*;
    use crate::cluster::{Cluster, ClusterConfig};

    fn failure_of(f: impl FnOnce()) -> String {
        let panic = catch_unwind(AssertUnwindSafe(f)).expect_err("the helper fails the test");
        panic.downcast_ref::<String>().cloned().unwrap_or_default()
    }

    /// With every store down, `request` makes its 10 rounds of a 5 s `call_command_on_leader`
    /// and a 100 ms back-off, then gives up with the original's message.
    #[test]
    fn a_request_to_a_dead_cluster_gives_up_after_ten_rounds() {
        let mut c = Cluster::new("request_dead_cluster", 3, ClusterConfig::new(3));
        c.must_put(b"k", b"v");
        for id in c.store_ids() {
            c.stop_store(id);
        }
        let start = c.sim().now();
        let msg = failure_of(|| c.must_put(b"k", b"w"));
        assert!(msg.starts_with("request timeout for key [6b]"), "{msg}");
        let took = c.sim().now().since(start);
        assert!(
            took >= Duration::from_millis(10 * 5_100) && took < Duration::from_secs(52),
            "gave up after {took:?}"
        );
    }

    /// A region the scheduler never hears of (no store ever ran) is looked up 2 s per
    /// attempt, for at least 10 attempts and the request's timeout, and then reported as
    /// "find no region" (the original fails the test after the first 2 s).
    #[test]
    fn a_request_for_an_unknown_region_fails_with_find_no_region() {
        let mut c = Cluster::new("request_no_region", 3, ClusterConfig::new(3));
        for id in c.store_ids() {
            c.stop_store(id);
        }
        let msg = failure_of(|| c.must_put(b"k", b"v"));
        assert!(msg.starts_with("find no region for [6b]"), "{msg}");
        let took = c.sim().now().since(SimTime::ZERO);
        assert!(
            took >= Duration::from_secs(20) && took < Duration::from_secs(25),
            "gave up after {took:?}"
        );
    }

    /// The blocking lookup of a region (`Cluster::get_region`) still gives up after 2 s.
    #[test]
    fn get_region_gives_up_after_two_seconds() {
        let mut c = Cluster::new("request_get_region", 3, ClusterConfig::new(3));
        for id in c.store_ids() {
            c.stop_store(id);
        }
        let msg = failure_of(|| {
            c.get_region(b"k");
        });
        assert!(msg.starts_with("find no region for [6b]"), "{msg}");
        assert!(c.sim().now() <= SimTime::ZERO.after(Duration::from_millis(2_100)));
    }

    /// `call_command_on_leader` returns the first answer that is not a "try elsewhere" error,
    /// errors included, and nothing once its time is up.
    #[test]
    fn call_command_on_leader_returns_final_errors_and_gives_up_in_time() {
        let mut c = Cluster::new("request_on_leader", 3, ClusterConfig::new(3));
        c.must_put(b"k", b"v");
        let region = c.get_region(b"k");
        let epoch = region.get_region_epoch().clone();
        let bad = new_request(
            region.id,
            epoch.clone(),
            vec![new_put_cf_cmd("nope", b"k", b"v")],
        );
        let resp = c.call_command_on_leader(bad, REQUEST_TIMEOUT);
        let err = resp.map(|r| r.resp.get_header().get_error().clone());
        assert!(err.is_some_and(|e| e.message.contains("nope")));

        for id in c.store_ids() {
            c.stop_store(id);
        }
        let start = c.sim().now();
        let put = new_request(
            region.id,
            epoch,
            vec![new_put_cf_cmd("default", b"k", b"w")],
        );
        assert!(c
            .call_command_on_leader(put, Duration::from_secs(3))
            .is_none());
        let took = c.sim().now().since(start);
        assert!(
            took >= Duration::from_secs(3) && took < Duration::from_millis(3_100),
            "gave up after {took:?}"
        );
    }
}
// lab:end-needs
