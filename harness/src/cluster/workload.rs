//! Concurrent simulated clients: the generic test's clients as simulator tasks.
//!
//! Each client lives in [`World::workload`] and issues one operation at a time. An operation
//! runs the original harness's request logic on the request state machine (`request.rs`,
//! shared with the blocking helpers): one `request` for a put or a delete, one per region for
//! a scan, which continues at each region's end key. A request that gives up ("request
//! timeout", "find no region") fails the client, and the test, as in the original.
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
use std::time::Duration;

use engine::Cf;
use proto::raft_cmdpb::{CmdType, Request};
use rand::Rng;

use super::request::{self, Call, RequestId, REQUEST_TIMEOUT};
use super::request::{new_delete_cf_cmd, new_put_cf_cmd, new_snap_cmd};
use super::{Cluster, World};
use crate::linearizability::{self, CheckResult, History, KvInput, KvOutput, OpId, Outcome};
use crate::sim::Core;

pub use super::request::POLL_INTERVAL;

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
    /// The operation's current request (a scan runs one per region).
    request: Option<RequestId>,
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
    /// Results of script operations, in order.
    results: Vec<KvOutput>,
    /// Operations completed.
    completed: u64,
    /// Loop scans started.
    scans: u64,
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

/// The clients and their shared history (kept in [`World::workload`]).
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
    cl.mode = Mode::Idle;
    if let Some(op) = cl.op.take() {
        wl.history.timeout(op.hid);
        if let Some(id) = op.request {
            request::cancel(w, id);
        }
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
        request: None,
    });
    begin_request(w, c, ci);
}

fn op_mut(w: &mut World, ci: usize) -> &mut InFlight {
    match wl_of(w).clients[ci].op.as_mut() {
        Some(op) => op,
        None => panic!("client {ci} has no operation in flight"),
    }
}

/// Starts the operation's `request` for the region of its cursor.
fn begin_request(w: &mut World, c: &mut Core<World>, ci: usize) {
    let op = op_mut(w, ci);
    let call = Call::request(&op.cursor, request_for(&op.spec), REQUEST_TIMEOUT).by_client(ci);
    let done = Box::new(move |w: &mut World, c: &mut Core<World>, id, outcome| {
        request_done(w, c, ci, id, outcome)
    });
    let id = request::start(w, c, call, done);
    op_mut(w, ci).request = Some(id);
}

fn request_for(spec: &OpSpec) -> Vec<Request> {
    match spec {
        OpSpec::Put { key, value } => vec![new_put_cf_cmd("default", key, value)],
        OpSpec::Delete { key } => vec![new_delete_cf_cmd("default", key)],
        OpSpec::Scan { .. } => vec![new_snap_cmd()],
    }
}

/// The operation's current request finished.
fn request_done(
    w: &mut World,
    c: &mut Core<World>,
    ci: usize,
    id: RequestId,
    outcome: request::Outcome,
) {
    let current = w
        .workload
        .as_ref()
        .and_then(|wl| wl.clients.get(ci))
        .and_then(|cl| cl.op.as_ref())
        .and_then(|op| op.request);
    if current != Some(id) {
        return; // the operation was abandoned
    }
    let resp = match outcome {
        Ok(resp) => resp,
        Err(failure) => return fail_client(w, ci, failure.to_string()),
    };
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

    /// Installs `clients` idle clients with an empty history (replacing any earlier workload,
    /// whose operations in flight are dropped).
    pub fn install_workload(&mut self, clients: usize) {
        let w = self.world_mut();
        let old = w.workload.replace(Workload::new(clients));
        for op in old
            .iter()
            .flat_map(|wl| &wl.clients)
            .filter_map(|cl| cl.op.as_ref())
        {
            if let Some(id) = op.request {
                request::cancel(w, id);
            }
        }
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
        let w = self.world_mut();
        let wl = wl_of(w);
        let mut requests = Vec::new();
        for cl in &mut wl.clients {
            if let Some(op) = cl.op.take() {
                wl.history.timeout(op.hid);
                requests.extend(op.request);
            }
            cl.mode = Mode::Idle;
        }
        for id in requests {
            request::cancel(w, id);
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

    /// Stops the looping clients, waits for them (up to 120 s of virtual time), and checks
    /// what they did: every client got puts acknowledged, each finds all of them once and in
    /// order ([`Cluster::check_client_appends`]), and the history is linearizable. Returns each
    /// client's count of acknowledged puts.
    pub fn stop_and_check_clients(&mut self) -> Vec<u64> {
        self.stop_clients();
        self.wait_clients(Duration::from_secs(120));
        let counts = self.check_client_appends();
        if !counts.iter().all(|&n| n > 0) {
            self.fail(&format!(
                "every client should have had puts acknowledged: {counts:?}"
            ));
        }
        self.check_linearizable();
        counts
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

// lab:needs 2aa..3b
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
        // Tamper at a moment every store has applied the same entries, so that every store
        // loses the write at the same applied index (the apply oracle is quiet afterwards).
        let level = cluster.sim().run_until_true(Duration::from_secs(1), |w| {
            let applied: Vec<Option<u64>> = w
                .stores
                .values()
                .map(|n| {
                    n.store
                        .as_ref()
                        .and_then(|s| s.peer(1))
                        .map(|p| p.storage().applied_index())
                })
                .collect();
            applied.windows(2).all(|p| p[0] == p[1])
        });
        assert!(level, "the stores never applied the same entries");
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
// lab:end-needs
