//! Concurrent simulated clients: the generic test's clients as simulator tasks.
//!
//! Each client is an event-driven state machine living in [`World::workload`]: it issues one
//! operation at a time and runs the original harness's request logic asynchronously
//! (`request` → `call_command_on_leader` → `call_command`, see `harness-api.md` §2): it looks
//! the region up in the scheduler (polling 100 × 20 ms), starts from the scheduler's leader
//! (polling 500 × 10 ms), sends the command to one peer at a time with a 1 s timeout per
//! attempt, follows `NotLeader` hints, the scheduler's leader or a random peer of the region,
//! retries at once on `StaleCommand` / `EpochNotMatch` / `NotLeader`, and on a timeout of the
//! whole 5 s `call_command_on_leader` or any other region error backs off 100 ms and refreshes
//! the region, for at least 10 attempts and 5 s before it gives up with "request timeout" (a
//! test failure, as in the original).
//!
//! A store answers through a `Send` callback that cannot reach the simulator, so callbacks
//! drop their answer into a shared inbox; a poller event (every [`POLL_INTERVAL`] while some
//! client waits for an answer) moves each answer to its client, which sees it
//! `client_latency` later. Every wake-up of a client (answer, attempt timeout, poll, back-off)
//! carries the client's current wait token; a stale one (the answer of an attempt that already
//! timed out, say) is ignored.
//!
//! Every operation is recorded in a linearizability [`History`] from the first send of its
//! first attempt to the client's receipt of the answer: a put that is retried after a
//! timeout stays one operation (its attempts write the same key and value, so whichever is
//! applied leaves the same state, and by Raft's log matching none can be applied after a later
//! attempt was acknowledged). A scan is one operation reading every key of its range (present
//! or absent), even when it spans several regions. Operations that never get an answer (the
//! clients were abandoned while they waited) are recorded as unknown: possibly applied.
//!
//! Besides the history, the clients keep the original's own oracle: in loop mode a scan of
//! the client's keys must return exactly the concatenation of its acknowledged puts. Because
//! that oracle checks every loop scan whole, the history records by default only the newest
//! keys of most loop scans ([`Workload::scan_window`]); it would otherwise grow quadratically
//! with the number of puts.
//!
//! Test code drives the clients through methods on [`Cluster`]: [`Cluster::install_workload`],
//! [`Cluster::start_clients`], [`Cluster::run_clients_for`], [`Cluster::stop_clients`],
//! [`Cluster::wait_clients`], [`Cluster::abandon_clients`], [`Cluster::run_scripts`],
//! [`Cluster::check_client_appends`], [`Cluster::delete_client_keys`] and
//! [`Cluster::check_linearizable`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use engine::Cf;
use parking_lot::Mutex;
use proto::metapb;
use proto::raft_cmdpb::{CmdType, RaftCmdRequest, Request};
use raftstore::{CmdResponse, StoreEvent};
use rand::Rng;

use super::client::{new_delete_cf_cmd, new_put_cf_cmd, new_request, new_snap_cmd};
use super::describe::CmdDesc;
use super::{deliver, Cluster, World};
use crate::linearizability::{self, CheckResult, History, KvInput, KvOutput, OpId, Outcome};
use crate::sim::Label;
use crate::sim::{Core, SimTime};

/// How often answers in the inbox are handed to their clients.
pub const POLL_INTERVAL: Duration = Duration::from_millis(1);
const GET_REGION_POLLS: u32 = 100;
const GET_REGION_INTERVAL: Duration = Duration::from_millis(20);
const LEADER_POLLS: u32 = 500;
const LEADER_INTERVAL: Duration = Duration::from_millis(10);
/// How long one attempt waits for a store's answer.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);
/// The patience of `request` and of each `call_command_on_leader` inside it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const MIN_ATTEMPTS: u32 = 10;
const BACKOFF: Duration = Duration::from_millis(100);

/// One client operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpSpec {
    /// Write `key` → `value` in `default`.
    Put {
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
    },
    /// Delete `key` from `default`.
    Delete {
        /// The key.
        key: Vec<u8>,
    },
    /// Read the pairs of `default` in `[start, end)` (empty `end`: to the last key).
    Scan {
        /// First key.
        start: Vec<u8>,
        /// End key, exclusive.
        end: Vec<u8>,
    },
}

impl OpSpec {
    fn input(&self) -> KvInput {
        match self {
            OpSpec::Put { key, value } => KvInput::put(key, value),
            OpSpec::Delete { key } => KvInput::delete(key),
            OpSpec::Scan { start, end } => KvInput::scan(start, end),
        }
    }

    fn first_key(&self) -> &[u8] {
        match self {
            OpSpec::Put { key, .. } | OpSpec::Delete { key } => key,
            OpSpec::Scan { start, .. } => start,
        }
    }

    fn describe(&self) -> String {
        match self {
            OpSpec::Put { key, value } => format!(
                "put {:?} = {:?}",
                String::from_utf8_lossy(key),
                String::from_utf8_lossy(value)
            ),
            OpSpec::Delete { key } => format!("delete {:?}", String::from_utf8_lossy(key)),
            OpSpec::Scan { start, end } => format!(
                "scan [{:?}, {:?})",
                String::from_utf8_lossy(start),
                String::from_utf8_lossy(end)
            ),
        }
    }
}

/// What a client does when its operation finishes.
#[derive(Debug, Clone, Default)]
enum Mode {
    /// Nothing: the client is idle once its operation (if any) finishes.
    #[default]
    Idle,
    /// The generic test's loop: put or scan with probability 1/2 each, until stopped.
    Loop,
    /// Run these operations in order, then go idle.
    Script(VecDeque<OpSpec>),
}

/// Where an operation's current `request` stands.
#[derive(Debug, Clone)]
enum Phase {
    /// Polling the scheduler for the region of the current key.
    Region { polls: u32 },
    /// Polling the scheduler for the region's leader.
    Leader { req: RaftCmdRequest, polls: u32 },
    /// Waiting for the answer of an attempt sent to `leader`.
    Calling {
        req: RaftCmdRequest,
        leader: metapb::Peer,
        /// End of the current `call_command_on_leader`.
        deadline: SimTime,
    },
    /// Waiting before refreshing the region.
    Backoff,
}

#[derive(Debug, Clone)]
struct InFlight {
    spec: OpSpec,
    hid: OpId,
    /// The key whose region the current request targets (a scan moves it region by region).
    cursor: Vec<u8>,
    /// Pairs a scan has collected for the history (those at or after `record_from`).
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
    /// Where the history's record of a scan starts (see [`Workload::scan_window`]).
    record_from: Vec<u8>,
    /// The concatenated values of every pair a scan has read so far (the client's oracle).
    values: String,
    /// Start of the current `request`.
    req_start: SimTime,
    /// Attempts of the current `request`.
    attempt: u32,
    phase: Phase,
}

/// One simulated client.
#[derive(Debug, Clone, Default)]
struct Client {
    /// Puts acknowledged in the current iteration (the next put writes key `j`).
    j: u64,
    /// The concatenation of the acknowledged puts' values.
    last: String,
    mode: Mode,
    op: Option<InFlight>,
    /// Bumped at every wait; a wake-up carrying another value is stale.
    wait: u64,
    /// Results of script operations, in order.
    results: Vec<KvOutput>,
    /// Operations completed.
    completed: u64,
    /// Loop scans started.
    scans: u64,
}

/// An answer a store's callback dropped in the inbox.
struct Delivery {
    client: usize,
    token: u64,
    resp: CmdResponse,
}

/// How much of each loop scan the history records (see [`Workload::scan_window`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanWindow {
    /// A scan is recorded as a read of the client's last `keys` keys only ...
    pub keys: u64,
    /// ... except every `full_every`-th scan of each client, recorded whole.
    pub full_every: u64,
}

impl Default for ScanWindow {
    fn default() -> Self {
        ScanWindow {
            keys: 16,
            full_every: 16,
        }
    }
}

/// The clients, their shared history and inbox (kept in [`World::workload`]).
pub struct Workload {
    clients: Vec<Client>,
    history: History,
    /// How much of a loop scan the history records: `None` records every scan whole.
    ///
    /// A loop scan reads every key the client has written in the iteration, so recording
    /// them all makes the history grow quadratically (a 5-client iteration of the generic
    /// test has ~5 000 operations but ~600 000 per-key reads). The client's own oracle checks
    /// every scan whole anyway (it must equal the client's acknowledged puts), so by default
    /// the history records the newest keys of each scan (the ones a lost, late or duplicated
    /// write would touch) and every 16th scan whole; script operations (the final scans and
    /// deletes) are always recorded whole.
    pub scan_window: Option<ScanWindow>,
    inbox: Arc<Mutex<Vec<Delivery>>>,
    poller_running: bool,
    stopping: bool,
    failures: Vec<String>,
}

impl std::fmt::Debug for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workload")
            .field("clients", &self.clients.len())
            .field("history", &self.history.len())
            .field("stopping", &self.stopping)
            .field("failures", &self.failures)
            .finish()
    }
}

impl Workload {
    /// `clients` idle clients and an empty history.
    pub fn new(clients: usize) -> Self {
        Workload {
            clients: vec![Client::default(); clients],
            history: History::new(),
            scan_window: Some(ScanWindow::default()),
            inbox: Arc::new(Mutex::new(Vec::new())),
            poller_running: false,
            stopping: false,
            failures: Vec::new(),
        }
    }

    /// Number of clients.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Whether there are no clients.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// Everything the clients did, as a linearizability history.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// Failures the clients saw (wrong scans, malformed answers, request timeouts).
    pub fn failures(&self) -> &[String] {
        &self.failures
    }

    /// Whether every client is idle (no operation in flight, nothing left to do).
    pub fn idle(&self) -> bool {
        self.clients
            .iter()
            .all(|c| c.op.is_none() && !matches!(c.mode, Mode::Loop | Mode::Script(_)))
    }

    /// How many puts client `c` has had acknowledged in the current iteration.
    pub fn acked(&self, c: usize) -> u64 {
        self.clients[c].j
    }

    /// Operations client `c` completed (over all iterations).
    pub fn completed(&self, c: usize) -> u64 {
        self.clients[c].completed
    }
}

/// The key of client `c`'s `j`-th put.
pub fn client_key(c: usize, j: u64) -> String {
    format!("{c} {j:08}")
}

/// The value of client `c`'s `j`-th put.
pub fn client_value(c: usize, j: u64) -> String {
    format!("x {c} {j} y")
}

fn wl_of(w: &mut World) -> &mut Workload {
    match w.workload.as_mut() {
        Some(wl) => wl,
        None => panic!("no workload is installed in the world"),
    }
}

fn fail_client(w: &mut World, ci: usize, what: String) {
    let wl = wl_of(w);
    let cl = &mut wl.clients[ci];
    let desc = cl
        .op
        .as_ref()
        .map(|op| format!(" during {}", op.spec.describe()))
        .unwrap_or_default();
    wl.failures.push(format!("client {ci}{desc}: {what}"));
    if let Some(op) = cl.op.take() {
        wl.history.timeout(op.hid);
    }
    cl.mode = Mode::Idle;
    cl.wait += 1;
}

/// Schedules a wake-up of client `ci` after `delay`; it runs `f` unless the client moved on.
fn wake_after(
    w: &mut World,
    c: &mut Core<World>,
    ci: usize,
    delay: Duration,
    label: &'static str,
    f: fn(&mut World, &mut Core<World>, usize),
) {
    let cl = &mut wl_of(w).clients[ci];
    cl.wait += 1;
    let token = cl.wait;
    c.schedule(delay, label, move |w: &mut World, c: &mut Core<World>| {
        if w.workload.as_ref().map(|wl| wl.clients[ci].wait) == Some(token) {
            f(w, c, ci);
        }
    });
}

/// A client's command, for the trace.
struct ClientDesc(usize, CmdDesc);

impl std::fmt::Display for ClientDesc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "client {}: {}", self.0, self.1)
    }
}

/// Picks the client's next operation (or makes it idle).
fn next_op(w: &mut World, c: &mut Core<World>, ci: usize) {
    let stopping = wl_of(w).stopping;
    let spec = {
        let cl = &mut wl_of(w).clients[ci];
        match &mut cl.mode {
            Mode::Idle => None,
            Mode::Loop if stopping => {
                cl.mode = Mode::Idle;
                None
            }
            Mode::Loop => {
                let j = cl.j;
                if c.rng().gen_bool(0.5) {
                    Some(OpSpec::Put {
                        key: client_key(ci, j).into_bytes(),
                        value: client_value(ci, j).into_bytes(),
                    })
                } else {
                    Some(OpSpec::Scan {
                        start: client_key(ci, 0).into_bytes(),
                        end: client_key(ci, j).into_bytes(),
                    })
                }
            }
            Mode::Script(ops) => {
                let next = ops.pop_front();
                if next.is_none() {
                    cl.mode = Mode::Idle;
                }
                next
            }
        }
    };
    if let Some(spec) = spec {
        start_op(w, c, ci, spec);
    }
}

fn start_op(w: &mut World, c: &mut Core<World>, ci: usize, spec: OpSpec) {
    let now = c.now();
    let wl = wl_of(w);
    let cl = &mut wl.clients[ci];
    // What the history records of a loop scan: its last `window` keys, or all of it.
    let (input, record_from) = match (&spec, &wl.scan_window, &cl.mode) {
        (OpSpec::Scan { start, end }, Some(window), Mode::Loop) => {
            cl.scans += 1;
            let from = if cl.scans.is_multiple_of(window.full_every) {
                start.clone()
            } else {
                client_key(ci, cl.j.saturating_sub(window.keys)).into_bytes()
            };
            (KvInput::scan(&from, end), from)
        }
        _ => (spec.input(), Vec::new()),
    };
    let hid = wl.history.invoke(ci as u64, input, now.0);
    let cursor = spec.first_key().to_vec();
    wl.clients[ci].op = Some(InFlight {
        spec,
        hid,
        cursor,
        pairs: Vec::new(),
        record_from,
        values: String::new(),
        req_start: now,
        attempt: 0,
        phase: Phase::Backoff,
    });
    begin_request(w, c, ci);
}

fn op_mut(w: &mut World, ci: usize) -> &mut InFlight {
    match wl_of(w).clients[ci].op.as_mut() {
        Some(op) => op,
        None => panic!("client {ci} has no operation in flight"),
    }
}

/// `request(key, ...)`: a fresh request for the region of the operation's cursor.
fn begin_request(w: &mut World, c: &mut Core<World>, ci: usize) {
    let op = op_mut(w, ci);
    op.req_start = c.now();
    op.attempt = 0;
    attempt(w, c, ci);
}

/// One iteration of `request`'s loop.
fn attempt(w: &mut World, c: &mut Core<World>, ci: usize) {
    let now = c.now();
    let op = op_mut(w, ci);
    if op.attempt >= MIN_ATTEMPTS && now.since(op.req_start) >= REQUEST_TIMEOUT {
        let key = String::from_utf8_lossy(&op.cursor).into_owned();
        fail_client(w, ci, format!("request timeout for key {key:?}"));
        return;
    }
    op.attempt += 1;
    op.phase = Phase::Region { polls: 0 };
    poll_region(w, c, ci);
}

fn poll_region(w: &mut World, c: &mut Core<World>, ci: usize) {
    let key = op_mut(w, ci).cursor.clone();
    match w.scheduler.get_region(&key) {
        Some((region, _)) => {
            let reqs = request_for(&op_mut(w, ci).spec);
            let req = new_request(region.id, region.get_region_epoch().clone(), reqs);
            op_mut(w, ci).phase = Phase::Leader { req, polls: 0 };
            poll_leader(w, c, ci);
        }
        None => {
            let op = op_mut(w, ci);
            let Phase::Region { polls } = &mut op.phase else {
                return;
            };
            *polls += 1;
            if *polls >= GET_REGION_POLLS {
                let key = String::from_utf8_lossy(&key).into_owned();
                fail_client(w, ci, format!("find no region for {key:?}"));
                return;
            }
            wake_after(
                w,
                c,
                ci,
                GET_REGION_INTERVAL,
                "client region poll",
                poll_region,
            );
        }
    }
}

fn request_for(spec: &OpSpec) -> Vec<Request> {
    match spec {
        OpSpec::Put { key, value } => vec![new_put_cf_cmd("default", key, value)],
        OpSpec::Delete { key } => vec![new_delete_cf_cmd("default", key)],
        OpSpec::Scan { .. } => vec![new_snap_cmd()],
    }
}

fn scheduler_leader(w: &World, region_id: u64) -> Option<metapb::Peer> {
    w.scheduler
        .get_region_by_id(region_id)
        .and_then(|(_, leader)| leader)
}

/// `call_command_on_leader`: start from the scheduler's leader.
fn poll_leader(w: &mut World, c: &mut Core<World>, ci: usize) {
    let Phase::Leader { req, .. } = &op_mut(w, ci).phase else {
        return;
    };
    let region_id = req.get_header().region_id;
    match scheduler_leader(w, region_id) {
        Some(leader) => {
            let op = op_mut(w, ci);
            let Phase::Leader { req, .. } = std::mem::replace(&mut op.phase, Phase::Backoff) else {
                return;
            };
            op.phase = Phase::Calling {
                req,
                leader,
                deadline: c.now().after(REQUEST_TIMEOUT),
            };
            send(w, c, ci);
        }
        None => {
            let Phase::Leader { polls, .. } = &mut op_mut(w, ci).phase else {
                return;
            };
            *polls += 1;
            if *polls >= LEADER_POLLS {
                fail_client(w, ci, format!("can't get the leader of region {region_id}"));
                return;
            }
            wake_after(w, c, ci, LEADER_INTERVAL, "client leader poll", poll_leader);
        }
    }
}

/// One attempt of `call_command_on_leader` (or its end, if its time is up).
fn send(w: &mut World, c: &mut Core<World>, ci: usize) {
    let now = c.now();
    let latency = w.cfg.client_latency;
    let op = op_mut(w, ci);
    let Phase::Calling {
        req,
        leader,
        deadline,
    } = &mut op.phase
    else {
        return;
    };
    if now >= *deadline {
        // `call_command_on_leader` returned `None`: back off and refresh the region.
        backoff(w, c, ci);
        return;
    }
    req.mut_header().set_peer(leader.clone());
    let req = req.clone();
    let store_id = leader.store_id;
    wake_after(
        w,
        c,
        ci,
        ATTEMPT_TIMEOUT,
        "client attempt timeout",
        on_timeout,
    );
    let wl = wl_of(w);
    let token = wl.clients[ci].wait;
    let inbox = Arc::clone(&wl.inbox);
    let cb = Box::new(move |resp: CmdResponse| {
        inbox.lock().push(Delivery {
            client: ci,
            token,
            resp,
        })
    });
    let label = Label::new("client command", ClientDesc(ci, CmdDesc::of(&req)));
    deliver(
        w,
        c,
        store_id,
        latency,
        label,
        StoreEvent::Command { req, cb },
    );
    let wl = wl_of(w);
    if !wl.poller_running {
        wl.poller_running = true;
        c.schedule(POLL_INTERVAL, "client inbox", poll_inbox);
    }
}

fn backoff(w: &mut World, c: &mut Core<World>, ci: usize) {
    op_mut(w, ci).phase = Phase::Backoff;
    wake_after(w, c, ci, BACKOFF, "client backoff", attempt);
}

/// Hands the answers in the inbox to their clients (after the return trip).
fn poll_inbox(w: &mut World, c: &mut Core<World>) {
    let latency = w.cfg.client_latency;
    let wl = wl_of(w);
    let deliveries = std::mem::take(&mut *wl.inbox.lock());
    for d in deliveries {
        let Delivery {
            client,
            token,
            resp,
        } = d;
        if wl.clients[client].wait != token {
            continue;
        }
        c.schedule(latency, "client response", move |w: &mut World, c| {
            on_response(w, c, client, token, resp)
        });
    }
    let waiting = wl.clients.iter().any(|cl| {
        matches!(
            cl.op.as_ref().map(|o| &o.phase),
            Some(Phase::Calling { .. })
        )
    });
    if waiting {
        c.schedule(POLL_INTERVAL, "client inbox", poll_inbox);
    } else {
        wl.poller_running = false;
    }
}

/// The attempt got no answer within its timeout: try the scheduler's leader if it changed,
/// else a random peer of the region.
fn on_timeout(w: &mut World, c: &mut Core<World>, ci: usize) {
    let Phase::Calling { req, leader, .. } = &op_mut(w, ci).phase else {
        return;
    };
    let region_id = req.get_header().region_id;
    let current = leader.clone();
    let next = match scheduler_leader(w, region_id) {
        Some(l) if l != current => l,
        _ => match w.scheduler.get_region_by_id(region_id) {
            Some((region, _)) if !region.get_peers().is_empty() => {
                let i = c.rng().gen_range(0..region.get_peers().len());
                region.get_peers()[i].clone()
            }
            _ => current,
        },
    };
    if let Phase::Calling { leader, .. } = &mut op_mut(w, ci).phase {
        *leader = next;
    }
    send(w, c, ci);
}

fn on_response(w: &mut World, c: &mut Core<World>, ci: usize, token: u64, resp: CmdResponse) {
    {
        let cl = &mut wl_of(w).clients[ci];
        if cl.wait != token {
            return;
        }
        cl.wait += 1;
    }
    let err = resp.resp.get_header().get_error();
    if err.has_stale_command() || err.has_epoch_not_match() || err.has_not_leader() {
        let hint = err
            .get_not_leader()
            .has_leader()
            .then(|| err.get_not_leader().get_leader().clone());
        let Phase::Calling { req, .. } = &op_mut(w, ci).phase else {
            return;
        };
        let region_id = req.get_header().region_id;
        let next = hint.or_else(|| scheduler_leader(w, region_id));
        if let (Some(next), Phase::Calling { leader, .. }) = (next, &mut op_mut(w, ci).phase) {
            *leader = next;
        }
        send(w, c, ci);
        return;
    }
    if resp.resp.get_header().has_error() {
        backoff(w, c, ci);
        return;
    }
    request_done(w, c, ci, resp);
}

/// The current request succeeded.
fn request_done(w: &mut World, c: &mut Core<World>, ci: usize, resp: CmdResponse) {
    let responses = resp.resp.get_responses();
    let spec = op_mut(w, ci).spec.clone();
    // The concatenated values a scan read (its whole range, for the client's own oracle).
    let mut values = String::new();
    let want = match spec {
        OpSpec::Put { .. } => CmdType::Put,
        OpSpec::Delete { .. } => CmdType::Delete,
        OpSpec::Scan { .. } => CmdType::Snap,
    };
    if responses.len() != 1 || responses[0].get_cmd_type() != want {
        fail_client(w, ci, format!("a {want:?} command answered {responses:?}"));
        return;
    }
    let output = match &spec {
        OpSpec::Put { .. } | OpSpec::Delete { .. } => KvOutput::Done,
        OpSpec::Scan { end, .. } => {
            let mut oracle = std::mem::take(&mut op_mut(w, ci).values);
            let Some(snap) = resp.snap else {
                fail_client(w, ci, "a snap response carries no read view".to_owned());
                return;
            };
            let op = op_mut(w, ci);
            // Iterate [cursor, end) inside the region: the same pairs as the original's
            // region-bounded iteration that stops at `end`, without walking past `end`.
            let region_start = snap.region.get_start_key();
            let region_end = snap.region.get_end_key();
            let lower = op.cursor.as_slice().max(region_start);
            let upper = match (region_end.is_empty(), end.is_empty()) {
                (true, true) => None,
                (true, false) => Some(end.as_slice()),
                (false, true) => Some(region_end),
                (false, false) => Some(region_end.min(end.as_slice())),
            };
            let mut it = match snap.snap.iter_cf(Cf::Default, lower, upper) {
                Ok(it) => it,
                Err(e) => {
                    fail_client(w, ci, format!("scan: {e}"));
                    return;
                }
            };
            it.seek(lower);
            while let Some((k, v)) = it.item() {
                if !end.is_empty() && k >= end.as_slice() {
                    break;
                }
                if k >= op.record_from.as_slice() {
                    op.pairs.push((k.to_vec(), v.to_vec()));
                }
                oracle.push_str(&String::from_utf8_lossy(v));
                it.next();
            }
            if let Err(e) = it.status() {
                fail_client(w, ci, format!("scan: {e}"));
                return;
            }
            let region_end = region_end.to_vec();
            if !(region_end.is_empty() || (!end.is_empty() && region_end >= *end)) {
                // Continue in the next region.
                op.cursor = region_end;
                op.values = oracle;
                begin_request(w, c, ci);
                return;
            }
            values = oracle;
            KvOutput::Pairs(std::mem::take(&mut op.pairs))
        }
    };
    finish_op(w, c, ci, spec, output, values);
}

fn finish_op(
    w: &mut World,
    c: &mut Core<World>,
    ci: usize,
    spec: OpSpec,
    output: KvOutput,
    values: String,
) {
    let now = c.now();
    w.liveness.progress(now);
    let wl = wl_of(w);
    let cl = &mut wl.clients[ci];
    let Some(op) = cl.op.take() else {
        return;
    };
    wl.history.complete(op.hid, output.clone(), now.0);
    cl.completed += 1;
    match &mut cl.mode {
        Mode::Loop => match (&spec, &output) {
            (OpSpec::Put { value, .. }, _) => {
                cl.last.push_str(&String::from_utf8_lossy(value));
                cl.j += 1;
            }
            (OpSpec::Scan { .. }, _) => {
                let got = values;
                if got != cl.last {
                    let want = cl.last.clone();
                    wl.failures.push(format!(
                        "client {ci}: {} returned {got:?}, expected {want:?}",
                        spec.describe()
                    ));
                    cl.mode = Mode::Idle;
                    return;
                }
            }
            _ => {}
        },
        Mode::Script(_) => cl.results.push(output),
        Mode::Idle => {}
    }
    next_op(w, c, ci);
}

// ---------------------------------------------------------------------------------------------
// Driving a workload from test code.

impl Cluster {
    fn workload_ref(&self) -> &Workload {
        match self.world().workload.as_ref() {
            Some(wl) => wl,
            None => self.fail("no workload is installed (call install_workload first)"),
        }
    }

    /// Installs `clients` idle clients with an empty history (replacing any earlier workload).
    pub fn install_workload(&mut self, clients: usize) {
        self.world_mut().workload = Some(Workload::new(clients));
    }

    /// The installed workload.
    pub fn workload(&self) -> &Workload {
        self.workload_ref()
    }

    /// Starts the generic test's client loop on every client: each starts from `j = 0` and an
    /// empty `last`, and puts or scans with probability 1/2 until [`Cluster::stop_clients`].
    pub fn start_clients(&mut self) {
        let (w, c) = self.sim().parts();
        let wl = wl_of(w);
        wl.stopping = false;
        for ci in 0..wl.clients.len() {
            let cl = &mut wl.clients[ci];
            if cl.op.is_some() {
                continue;
            }
            cl.j = 0;
            cl.last.clear();
            cl.mode = Mode::Loop;
            c.schedule(Duration::ZERO, "client start", move |w, c| {
                next_op(w, c, ci)
            });
        }
    }

    /// Tells the looping clients to stop after their current operation.
    pub fn stop_clients(&mut self) {
        wl_of(self.world_mut()).stopping = true;
    }

    /// Runs the simulator for `d`, failing the test as soon as a client fails.
    pub fn run_clients_for(&mut self, d: Duration) {
        self.sim().run_until_true(d, |w| {
            w.workload
                .as_ref()
                .is_some_and(|wl| !wl.failures.is_empty())
        });
        self.check_client_failures();
        self.run_for(Duration::ZERO);
    }

    /// Fails the test if some client failed.
    pub fn check_client_failures(&self) {
        if let Some(first) = self.workload_ref().failures.first() {
            self.fail(first);
        }
    }

    /// Runs until every client is idle (fails the test after `timeout`, or if a client fails).
    pub fn wait_clients(&mut self, timeout: Duration) {
        let idle = self.sim().run_until_true(timeout, |w| {
            w.workload
                .as_ref()
                .is_some_and(|wl| wl.idle() || !wl.failures.is_empty())
        });
        self.check_client_failures();
        if !idle {
            self.fail(&format!("the clients did not finish within {timeout:?}"));
        }
    }

    /// Gives up on every operation in flight: each is recorded with an unknown outcome
    /// (possibly applied), and every client goes idle.
    pub fn abandon_clients(&mut self) {
        let wl = wl_of(self.world_mut());
        for cl in &mut wl.clients {
            if let Some(op) = cl.op.take() {
                wl.history.timeout(op.hid);
            }
            cl.mode = Mode::Idle;
            cl.wait += 1;
        }
    }

    /// Runs one script per client concurrently (`scripts[c]` for client `c`, which must be
    /// idle) and returns each client's results in order; fails the test if a client fails or
    /// the scripts take longer than `timeout`.
    pub fn run_scripts(
        &mut self,
        scripts: Vec<Vec<OpSpec>>,
        timeout: Duration,
    ) -> Vec<Vec<KvOutput>> {
        let (w, c) = self.sim().parts();
        let wl = wl_of(w);
        let n = scripts.len();
        assert!(n <= wl.clients.len(), "more scripts than clients");
        for (ci, script) in scripts.into_iter().enumerate() {
            let cl = &mut wl.clients[ci];
            assert!(cl.op.is_none(), "client {ci} is busy");
            cl.results.clear();
            cl.mode = Mode::Script(script.into());
            c.schedule(Duration::ZERO, "client script", move |w, c| {
                next_op(w, c, ci)
            });
        }
        self.wait_clients(timeout);
        let wl = wl_of(self.world_mut());
        (0..n)
            .map(|ci| std::mem::take(&mut wl.clients[ci].results))
            .collect()
    }

    /// The generic test's final check of every client: scans the client's keys of the
    /// current iteration and checks that every acknowledged put `x {c} {k} y` appears exactly
    /// once and in order. Returns each client's count of acknowledged puts.
    pub fn check_client_appends(&mut self) -> Vec<u64> {
        let counts: Vec<u64> = {
            let wl = self.workload_ref();
            (0..wl.len()).map(|ci| wl.acked(ci)).collect()
        };
        let scripts = counts
            .iter()
            .enumerate()
            .map(|(ci, &j)| {
                vec![OpSpec::Scan {
                    start: client_key(ci, 0).into_bytes(),
                    end: client_key(ci, j).into_bytes(),
                }]
            })
            .collect();
        let results = self.run_scripts(scripts, Duration::from_secs(120));
        for (ci, (res, &j)) in results.iter().zip(&counts).enumerate() {
            let got: String = match res.as_slice() {
                [KvOutput::Pairs(pairs)] => pairs
                    .iter()
                    .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                    .collect(),
                other => self.fail(&format!("client {ci}: final scan returned {other:?}")),
            };
            check_appends(self, ci, j, &got);
        }
        counts
    }

    /// Deletes every key client `c` wrote in this iteration (`counts[c]` keys), all clients
    /// concurrently.
    pub fn delete_client_keys(&mut self, counts: &[u64]) {
        let scripts = counts
            .iter()
            .enumerate()
            .map(|(ci, &j)| {
                (0..j)
                    .map(|k| OpSpec::Delete {
                        key: client_key(ci, k).into_bytes(),
                    })
                    .collect()
            })
            .collect();
        self.run_scripts(scripts, Duration::from_secs(600));
    }

    /// Starts a new, empty history, once the caller knows the state every recorded key ends
    /// in is "absent" (the generic test deletes every key it wrote at the end of an
    /// iteration): with no operation in flight that is a quiescent point, so the next
    /// iteration's history checked from the empty state is equivalent to checking both.
    /// Fails the test if a client is busy or some recorded operation has an unknown outcome
    /// (it could still take effect later).
    pub fn reset_history_at_quiescence(&mut self) {
        let wl = self.workload_ref();
        if !wl.idle() {
            self.fail("reset_history_at_quiescence: some client is busy");
        }
        if let Some(op) = wl
            .history
            .ops()
            .iter()
            .find(|o| !matches!(o.outcome, Outcome::Completed { .. }))
        {
            self.fail(&format!(
                "reset_history_at_quiescence: operation {} has an unknown outcome",
                op.id
            ));
        }
        wl_of(self.world_mut()).history = History::new();
    }

    /// Checks the whole client history for linearizability; on a violation fails the test
    /// with the checker's minimized offending history, and on a history the checker could not
    /// decide within its budget fails it too (an unchecked history is not a passed one).
    pub fn check_linearizable(&self) {
        let history = self.workload_ref().history();
        match linearizability::check(history) {
            CheckResult::Ok => {}
            CheckResult::Violation(v) => self.fail(&format!(
                "the client history ({} operations) is not linearizable:\n{v}",
                history.len()
            )),
            // An oracle that gives up proves nothing: the run fails, with its seed, so that
            // the history (or the checker's budget) gets fixed rather than ignored.
            CheckResult::Inconclusive(i) => self.fail(&format!(
                "the client history ({} operations) could not be checked for linearizability: {i}",
                history.len()
            )),
        }
    }
}

/// Every append `x {client} {k} y` for k < count appears exactly once, in order.
pub fn check_appends(cluster: &Cluster, client: usize, count: u64, got: &str) {
    let mut pos = 0;
    for k in 0..count {
        let want = client_value(client, k);
        match got[pos..].find(&want) {
            Some(off) => {
                let at = pos + off;
                if got[at + want.len()..].contains(&want) {
                    cluster.fail(&format!(
                        "client {client}: append {want:?} appears twice in {got:?}"
                    ));
                }
                pos = at + want.len();
            }
            None => cluster.fail(&format!(
                "client {client}: append {want:?} is missing or out of order in {got:?}"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::ClusterConfig;

    fn run_three_clients(seed: u64) -> Cluster {
        let mut cluster = Cluster::new("workload_three_clients", seed, ClusterConfig::new(3));
        cluster.run_for(Duration::from_secs(1));
        cluster.install_workload(3);
        // Record every scan whole: the strictest history.
        wl_of(cluster.world_mut()).scan_window = None;
        cluster.start_clients();
        cluster.run_clients_for(Duration::from_secs(2));
        cluster.stop_clients();
        cluster.wait_clients(Duration::from_secs(60));
        cluster
    }

    #[test]
    fn three_clients_on_a_fault_free_cluster_make_progress_and_check_out() {
        let mut cluster = run_three_clients(11);
        for ci in 0..3 {
            assert!(
                cluster.workload().acked(ci) > 5,
                "client {ci} acked only {} puts",
                cluster.workload().acked(ci)
            );
            assert!(cluster.workload().completed(ci) > 10);
        }
        let counts = cluster.check_client_appends();
        assert_eq!(counts.len(), 3);
        let h = cluster.workload().history();
        assert!(h
            .ops()
            .iter()
            .all(|o| matches!(o.outcome, Outcome::Completed { .. })));
        cluster.check_linearizable();
        cluster.delete_client_keys(&counts);
        cluster.check_linearizable();
        // After the deletes every client's range reads empty.
        let scripts = (0..3)
            .map(|ci| {
                vec![OpSpec::Scan {
                    start: client_key(ci, 0).into_bytes(),
                    end: client_key(ci, counts[ci]).into_bytes(),
                }]
            })
            .collect();
        let results = cluster.run_scripts(scripts, Duration::from_secs(30));
        for r in results {
            assert_eq!(r, vec![KvOutput::Pairs(vec![])]);
        }
    }

    #[test]
    fn a_corrupted_history_entry_is_caught() {
        let cluster = run_three_clients(12);
        let h = cluster.workload().history().clone();
        assert!(linearizability::check(&h).is_ok());
        // Rebuild the history with one scan that returned a non-empty result changed: its
        // first pair now reads a value that was never written.
        let victim = h
            .ops()
            .iter()
            .position(|o| matches!(o.output(), Some(KvOutput::Pairs(p)) if !p.is_empty()))
            .unwrap_or_else(|| panic!("no non-empty scan in the history"));
        let mut bad = History::new();
        for (i, o) in h.ops().iter().enumerate() {
            let id = bad.invoke(o.client, o.input.clone(), o.call);
            match &o.outcome {
                Outcome::Completed { output, time } => {
                    let mut output = output.clone();
                    if i == victim {
                        if let KvOutput::Pairs(p) = &mut output {
                            p[0].1 = b"never written".to_vec();
                        }
                    }
                    bad.complete(id, output, *time);
                }
                Outcome::Unknown | Outcome::Pending => bad.timeout(id),
                Outcome::NotApplied => bad.fail(id),
            }
        }
        let verdict = linearizability::check(&bad);
        let Some(v) = verdict.violation() else {
            panic!("the corrupted history passed: {verdict}")
        };
        assert!(v.to_string().contains("never written"), "{v}");

        // A scan that misses an acknowledged put is caught too.
        let victim = h
            .ops()
            .iter()
            .rposition(|o| matches!(o.output(), Some(KvOutput::Pairs(p)) if p.len() > 1))
            .unwrap_or_else(|| panic!("no scan with two pairs"));
        let mut bad = History::new();
        for (i, o) in h.ops().iter().enumerate() {
            let id = bad.invoke(o.client, o.input.clone(), o.call);
            if let Outcome::Completed { output, time } = &o.outcome {
                let mut output = output.clone();
                if i == victim {
                    if let KvOutput::Pairs(p) = &mut output {
                        p.remove(0);
                    }
                }
                bad.complete(id, output, *time);
            }
        }
        assert!(linearizability::check(&bad).is_violation());
    }

    #[test]
    fn abandoned_operations_are_unknown() {
        let mut cluster = Cluster::new("workload_abandon", 5, ClusterConfig::new(3));
        cluster.run_for(Duration::from_secs(1));
        cluster.install_workload(2);
        cluster.start_clients();
        cluster.run_clients_for(Duration::from_millis(500));
        // Stop every store: the operations in flight can never be answered.
        for id in cluster.store_ids() {
            cluster.stop_store(id);
        }
        cluster.run_clients_for(Duration::from_millis(300));
        cluster.abandon_clients();
        assert!(cluster.workload().idle());
        let unknown = cluster
            .workload()
            .history()
            .ops()
            .iter()
            .filter(|o| matches!(o.outcome, Outcome::Unknown))
            .count();
        assert_eq!(unknown, 2, "both clients had an operation in flight");
        cluster.check_linearizable();
    }

    #[test]
    fn a_write_lost_behind_the_clients_back_is_caught_by_both_oracles() {
        let mut cluster = Cluster::new("workload_lost_write", 8, ClusterConfig::new(3));
        cluster.run_for(Duration::from_secs(1));
        cluster.install_workload(1);
        wl_of(cluster.world_mut()).scan_window = None;
        cluster.start_clients();
        cluster.run_clients_for(Duration::from_millis(500));
        assert!(cluster.workload().acked(0) > 3);
        // Lose client 0's first put on every store, as a buggy store might. The apply
        // oracle sees the write (no command wrote it) and, when told the stores restarted,
        // that their data no longer matches their applied index; its complaints are taken
        // here, so that this test checks the client-side oracles.
        for id in cluster.store_ids() {
            let kv = &cluster.engines(id).kv;
            if let Err(e) = kv.delete_cf(Cf::Default, client_key(0, 0).as_bytes()) {
                panic!("cannot tamper with store {id}: {e}");
            }
            if let Err(e) = cluster.world().apply_oracle.restarted(id, kv) {
                panic!("cannot reset the apply oracle of store {id}: {e}");
            }
        }
        let noticed = cluster.world().apply_oracle.take_violations();
        assert!(
            noticed.iter().any(|v| v.contains("differs")),
            "the apply oracle did not notice the lost write: {noticed:?}"
        );
        let failed = cluster.sim().run_until_true(Duration::from_secs(5), |w| {
            w.workload
                .as_ref()
                .is_some_and(|wl| !wl.failures.is_empty())
        });
        assert!(
            failed,
            "the client's scan oracle did not notice the lost write"
        );
        let failure = &cluster.workload().failures()[0];
        assert!(failure.contains("expected"), "{failure}");
        let verdict = linearizability::check(cluster.workload().history());
        assert!(verdict.is_violation(), "the checker missed it: {verdict}");
    }

    #[test]
    fn same_seed_same_workload_run() {
        let mut a = run_three_clients(21);
        let mut b = run_three_clients(21);
        assert_eq!(a.sim().trace_hash(), b.sim().trace_hash());
        assert_eq!(a.workload().history().len(), b.workload().history().len());
    }
}
