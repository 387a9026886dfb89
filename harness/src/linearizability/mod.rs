//! A linearizability checker over recorded client histories.
//!
//! The cluster workloads record every client operation as an [`Operation`]: who issued it, the
//! virtual time it was invoked, and either its result and the virtual time it returned, or the
//! fact that the client never learned the outcome (a timeout). [`check`] then decides whether
//! some *linearization* exists: a total order of the operations that respects real time (an
//! operation that returned before another was invoked comes first) and in which every result
//! is what a single sequential key-value store would have answered.
//!
//! The checker is an oracle: it reads client histories only, never the store's internals, so it
//! stays right when the store under test is wrong.
//!
//! # Algorithm
//!
//! * **P-compositionality.** Linearizability is local: a history is linearizable iff each of
//!   its per-object projections is. [`Model::partition`] splits the history by key (a scan is
//!   projected onto every key of the history inside its range) and every key is checked on its
//!   own, which turns one huge search into many small ones.
//! * **Wing–Gong search with Lowe's just-in-time linearization** (the algorithm porcupine uses).
//!   Call and return events of one key are sorted by time into a doubly linked list. A
//!   depth-first search walks the list: at a call event it tries to linearize that operation
//!   next (the model must accept its result in the current state); on success the operation is
//!   lifted out of the list and the walk restarts from the head; at a return event the
//!   operation returning there has not been linearized although it must have taken effect by
//!   now, so the search backtracks. The history is linearizable once every operation with a
//!   known outcome is linearized.
//! * **Memoization.** Two search nodes that have linearized the same set of operations and
//!   reached the same model state have the same future; a hash set of `(set, state)` pairs
//!   (the set as a bitset plus a Zobrist hash of it) prunes the repeats. The key-value states
//!   are a length plus a 122-bit polynomial fingerprint of the value, so long appended values
//!   cost O(1) to step, hash and compare.
//! * **Greedy reads.** A read-only operation that fits the current state and is invoked
//!   before the earliest pending return can be linearized right away without losing any
//!   solution, so the search takes it and never branches on it.
//! * **Look-ahead pruning.** After each step the search asks the model whether the next few
//!   pending operations can still succeed ([`Model::may_precede`]) unless one of their
//!   *enablers* ([`Model::enablers`]) still comes. For the key-value model a read's enablers
//!   are the puts whose value starts its value (and the deletes, if its value is empty or
//!   starts with an appended value); without them only appends can intervene, so a state that
//!   is not a prefix of the read's value is abandoned at once instead of after exploring every
//!   order of the concurrent appends.
//! * **Unobservable unknown writes.** A timed-out put or append whose value no read ever shows
//!   is dropped: had it been applied, every value until the next put or delete would contain
//!   it, so no read can lie in that stretch, and the state after it is the same either way.
//! * **Budgets, in two passes.** The problem is NP-complete, and one key with many concurrent
//!   writes of unknown outcome can take the whole budget, so keys are searched in two passes.
//!   The first gives every key a small budget
//!   ([`CheckOptions::first_pass_steps_per_key`]): most keys are decided there, and a
//!   violation found there is reported at once, without spending the deep budget on the
//!   keys still undecided. Otherwise the deep pass searches those keys again, in key order,
//!   each with [`CheckOptions::max_steps_per_key`], and stops at the first violation. Keys
//!   that exhaust the deep budget yield [`CheckResult::Inconclusive`] (instead of hanging
//!   the test) only if no key fails. Both passes are deterministic, so a history always gets
//!   the same verdict and report.
//!
//! # Unknown outcomes
//!
//! A client that timed out does not know whether its request took effect: the request may sit
//! in a leader's log and be committed much later (see the "ghost reappearance" pitfall), or be
//! lost for ever. Treating a timeout as "not applied" would reject correct stores; treating it
//! as "applied before the timeout" would too. So an operation recorded with
//! [`History::timeout`] (or never resolved) has an unconstrained result and a return time of
//! +infinity: it may take effect at any point after its invocation, or never. A timed-out
//! write that shows up later is therefore fine, but one that shows up and then disappears
//! again is a violation.
//!
//! # Reports
//!
//! On a violation the checker picks the smallest failing key of the pass that found a violation
//! (keys left undecided are named in the report), minimizes its history (shortest failing prefix,
//! then delta debugging that drops operations while the history still fails), and renders it as a
//! timeline with an explanation: the longest linearizable prefix, the state it reaches, and why
//! none of the pending operations can come next. The timeline's bars are drawn on the ordered
//! distinct event times, so overlaps are exact but distances are not to scale.
//!
//! Minimization never separates an operation from the operations its result was built from
//! ([`Model::depends_on`]): dropping a write drops the whole chain built on it, e.g. a
//! compare-and-set that found the written value and wrote its own, and every read of that. A time
//! cut drops an operation invoked before the cut whose write was invoked after it, with its chain;
//! an operation that can never succeed is shown with the writes it was built from. So every result
//! in a report has its source in the report, and the failure shown is one of the store, not an
//! artefact of the minimization (a read of a value whose writer was removed).
//!
//! ```text
//! linearizability violation on key "k": 3 of the key's 201 operations still fail (minimized):
//!       op client          call       return  operation
//!     #150      0           500          505  |-|            put "v50."
//!     #186      2           620          625      |-|        put "v62."
//!     #300      9          1000         1005          |-|    get -> "v50."
//! The longest linearizable prefix has 2 of 3 operations: #150, #186; the state after it is "v62.".
//! #300 (client 9, get -> "v50.") must take effect before it returned at 1005, but none of the operations that may come next fits:
//!   - #300 (client 9, get -> "v50."): impossible in state "v62."
//! ```

mod checker;
mod model;
#[cfg(test)]
mod tests;

pub use checker::{check, check_with, check_with_stats, CheckStats};
pub use model::{Fingerprinted, KvInput, KvModel, KvOp, KvOutput, KvState, Model};

use std::fmt;

/// Identifies a simulated client (only used to render reports).
pub type ClientId = u64;

/// A point in (virtual) time; any monotonically comparable integer works, nanoseconds of the
/// simulator clock in the cluster tests.
pub type Time = u64;

/// Index of an operation in its [`History`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpId(pub usize);

impl fmt::Display for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What became of an invoked operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome<O> {
    /// Invoked, not resolved yet; checked like [`Outcome::Unknown`].
    Pending,
    /// The client received `output` at `time`.
    Completed {
        /// The result the client received.
        output: O,
        /// When the client received it.
        time: Time,
    },
    /// The client gave up (timeout, lost connection): the operation may have taken effect at
    /// any point after its invocation, or never, and its result is unconstrained.
    Unknown,
    /// The operation definitely did not take effect (a definite error); it is left out of the
    /// check.
    NotApplied,
}

/// One client operation of a [`History`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation<I, O> {
    /// The operation's index in its history.
    pub id: OpId,
    /// The client that issued it.
    pub client: ClientId,
    /// What was asked.
    pub input: I,
    /// When it was invoked.
    pub call: Time,
    /// What became of it.
    pub outcome: Outcome<O>,
}

impl<I, O> Operation<I, O> {
    /// The return time, `None` (+infinity) unless the operation completed.
    pub fn return_time(&self) -> Option<Time> {
        match &self.outcome {
            Outcome::Completed { time, .. } => Some(*time),
            _ => None,
        }
    }

    /// The output, `None` unless the operation completed.
    pub fn output(&self) -> Option<&O> {
        match &self.outcome {
            Outcome::Completed { output, .. } => Some(output),
            _ => None,
        }
    }
}

/// A recorded client history, built while the workload runs.
///
/// Operations may be recorded in any order and overlap freely; only their times matter.
///
/// ```
/// use harness::linearizability::{check, History, KvInput, KvOutput};
/// let mut h = History::new();
/// let put = h.invoke(1, KvInput::put("k", "v"), 10);
/// let get = h.invoke(2, KvInput::get("k"), 15);
/// h.complete(put, KvOutput::Done, 20);
/// h.complete(get, KvOutput::value("v"), 25);
/// assert!(check(&h).is_ok());
/// ```
#[derive(Clone, Debug)]
pub struct History<I = KvInput, O = KvOutput> {
    ops: Vec<Operation<I, O>>,
}

impl<I, O> Default for History<I, O> {
    fn default() -> Self {
        History { ops: Vec::new() }
    }
}

impl<I: Clone, O: Clone> History<I, O> {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `client` invoked `input` at `time`; resolve it later with
    /// [`History::complete`], [`History::timeout`] or [`History::fail`].
    pub fn invoke(&mut self, client: ClientId, input: I, time: Time) -> OpId {
        let id = OpId(self.ops.len());
        self.ops.push(Operation {
            id,
            client,
            input,
            call: time,
            outcome: Outcome::Pending,
        });
        id
    }

    /// Records that `op` returned `output` at `time`.
    ///
    /// # Panics
    /// If `op` was already resolved or `time` precedes its invocation (a harness bug).
    pub fn complete(&mut self, op: OpId, output: O, time: Time) {
        let o = self.pending_mut(op);
        assert!(
            time >= o.call,
            "operation {op} returns at {time}, before its call at {}",
            o.call
        );
        o.outcome = Outcome::Completed { output, time };
    }

    /// Records that the client never learned the outcome of `op`: it may have taken effect at
    /// any time after its invocation, or never.
    ///
    /// # Panics
    /// If `op` was already resolved.
    pub fn timeout(&mut self, op: OpId) {
        self.pending_mut(op).outcome = Outcome::Unknown;
    }

    /// Records that `op` definitely did not take effect (so it is left out of the check).
    ///
    /// # Panics
    /// If `op` was already resolved.
    pub fn fail(&mut self, op: OpId) {
        self.pending_mut(op).outcome = Outcome::NotApplied;
    }

    /// Records a complete operation in one call.
    pub fn record(&mut self, client: ClientId, input: I, call: Time, output: O, ret: Time) -> OpId {
        let id = self.invoke(client, input, call);
        self.complete(id, output, ret);
        id
    }

    /// The recorded operations, indexed by [`OpId`].
    pub fn ops(&self) -> &[Operation<I, O>] {
        &self.ops
    }

    /// Number of recorded operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// A new history holding only the operations `ids` (renumbered in the given order), e.g.
    /// to replay the minimized history of a report.
    pub fn sub_history(&self, ids: &[OpId]) -> Self {
        let ops = ids
            .iter()
            .enumerate()
            .map(|(i, id)| Operation {
                id: OpId(i),
                ..self.ops[id.0].clone()
            })
            .collect();
        History { ops }
    }

    fn pending_mut(&mut self, op: OpId) -> &mut Operation<I, O> {
        let o = &mut self.ops[op.0];
        assert!(
            matches!(o.outcome, Outcome::Pending),
            "operation {op} was already resolved"
        );
        o
    }
}

/// Limits of one check. The defaults: a first pass of 20 000 steps per key, then 2 000 000
/// steps per key for the keys it could not decide; minimization on with 1 000 000 steps,
/// delta debugging up to 400 operations.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// Maximum number of model steps the deep search may take for one key before giving up
    /// with [`CheckResult::Inconclusive`].
    pub max_steps_per_key: u64,
    /// Step budget per key of the first pass. Every key is first searched with this budget;
    /// a violation found then is reported at once, so one hard key cannot hide or delay a
    /// plain violation on another. Only if the first pass finds none are the keys it could
    /// not decide searched again, in key order, with [`CheckOptions::max_steps_per_key`],
    /// stopping at the first one that fails. A key searched deeply repeats its first-pass
    /// steps (the search keeps no state between passes). A value of at least
    /// `max_steps_per_key` makes the first pass the only one; `0` leaves every key that
    /// needs a search to the deep pass.
    pub first_pass_steps_per_key: u64,
    /// Whether to minimize the failing key history of a violation.
    pub minimize: bool,
    /// Maximum total number of model steps spent minimizing (the best history found so far is
    /// reported when it runs out). Each candidate sub-history may take at most four times
    /// the steps the whole key history took to fail (at least 20 000, at most
    /// `max_steps_per_key`); one that needs more counts as passing.
    pub max_minimize_steps: u64,
    /// Delta debugging runs only on failing prefixes of at most this many operations (the
    /// shortest failing prefix is always computed).
    pub max_minimize_ops: usize,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            max_steps_per_key: 2_000_000,
            first_pass_steps_per_key: 20_000,
            minimize: true,
            max_minimize_steps: 1_000_000,
            max_minimize_ops: 400,
        }
    }
}

/// The verdict of a check.
#[derive(Clone, Debug)]
pub enum CheckResult {
    /// Every key history is linearizable.
    Ok,
    /// Some key history is not linearizable.
    Violation(Box<Violation>),
    /// No violation found, but the search budget ran out on some keys. (A violation on any
    /// key takes precedence.)
    Inconclusive(Inconclusive),
}

impl CheckResult {
    /// Whether the history was found linearizable.
    pub fn is_ok(&self) -> bool {
        matches!(self, CheckResult::Ok)
    }

    /// Whether a violation was found.
    pub fn is_violation(&self) -> bool {
        matches!(self, CheckResult::Violation(_))
    }

    /// Whether the budget ran out.
    pub fn is_inconclusive(&self) -> bool {
        matches!(self, CheckResult::Inconclusive(_))
    }

    /// The violation, if any.
    pub fn violation(&self) -> Option<&Violation> {
        match self {
            CheckResult::Violation(v) => Some(v),
            _ => None,
        }
    }
}

/// A non-linearizable key history, minimized.
#[derive(Clone, Debug)]
pub struct Violation {
    /// The key (rendered by the model).
    pub key: String,
    /// The minimized offending sub-history of that key, in call order.
    pub ops: Vec<ReportedOp>,
    /// How many operations the key's full history has.
    pub key_history_len: usize,
    /// Why no linearization exists.
    pub explanation: String,
    /// Other keys whose histories were found not linearizable either. Only keys found by the
    /// same pass of the search are listed (see [`CheckOptions::first_pass_steps_per_key`]).
    pub other_keys: Vec<String>,
    /// Keys whose histories were neither found linearizable nor failing: their deep search
    /// ran out of budget, or was skipped once this violation was known.
    pub undecided_keys: Vec<String>,
}

/// One operation of a report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportedOp {
    /// The operation in the checked [`History`].
    pub id: OpId,
    /// Its client.
    pub client: ClientId,
    /// Invocation time.
    pub call: Time,
    /// Return time, `None` if the outcome is unknown.
    pub ret: Option<Time>,
    /// The operation and its result as seen on this key, e.g. `get -> "x 1 0 y"`.
    pub description: String,
}

/// The search budget ran out before a verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inconclusive {
    /// The keys whose deep search ran out of budget, in key order.
    pub keys: Vec<String>,
    /// The per-key budget of the deep search in model steps
    /// ([`CheckOptions::max_steps_per_key`]).
    pub budget: u64,
}

impl fmt::Display for CheckResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckResult::Ok => write!(f, "history is linearizable"),
            CheckResult::Violation(v) => v.fmt(f),
            CheckResult::Inconclusive(i) => i.fmt(f),
        }
    }
}

impl fmt::Display for Inconclusive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "linearizability check inconclusive: search budget of {} steps per key exceeded on {} key(s): {}",
            self.budget,
            self.keys.len(),
            self.keys.join(", ")
        )
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "linearizability violation on key {}: {} of the key's {} operations still fail (minimized):",
            self.key,
            self.ops.len(),
            self.key_history_len
        )?;
        f.write_str(&render_timeline(&self.ops))?;
        writeln!(f, "{}", self.explanation)?;
        if !self.other_keys.is_empty() {
            writeln!(
                f,
                "{} other key(s) fail too: {}",
                self.other_keys.len(),
                self.other_keys.join(", ")
            )?;
        }
        if !self.undecided_keys.is_empty() {
            writeln!(
                f,
                "{} key(s) left undecided (search budget exhausted, or skipped after this violation): {}",
                self.undecided_keys.len(),
                self.undecided_keys.join(", ")
            )?;
        }
        Ok(())
    }
}

/// Renders operations as a table plus a bar chart whose columns are the distinct event times
/// in order (so overlaps are exact, distances are not to scale).
fn render_timeline(ops: &[ReportedOp]) -> String {
    use std::fmt::Write;
    const MAX_ROWS: usize = 400;
    let mut times: Vec<Time> = ops
        .iter()
        .flat_map(|o| [Some(o.call), o.ret])
        .flatten()
        .collect();
    times.sort_unstable();
    times.dedup();
    let draw = times.len() <= 60;
    let column = |t: Time| times.binary_search(&t).unwrap_or(0) * 2;
    let width = times.len() * 2 + 1;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  {:>6} {:>6}  {:>12} {:>12}  operation",
        "op", "client", "call", "return"
    );
    for o in ops.iter().take(MAX_ROWS) {
        let ret = match o.ret {
            Some(t) => t.to_string(),
            None => "?".to_string(),
        };
        let mut line = format!(
            "  {:>6} {:>6}  {:>12} {:>12}  ",
            o.id.to_string(),
            o.client,
            o.call,
            ret
        );
        if draw {
            let mut bar = vec![' '; width];
            let start = column(o.call);
            let end = o.ret.map_or(width - 1, column);
            for c in bar.iter_mut().take(end + 1).skip(start) {
                *c = '-';
            }
            bar[start] = '|';
            bar[end] = if o.ret.is_some() { '|' } else { '>' };
            line.extend(bar);
            line.push_str("  ");
        }
        line.push_str(&o.description);
        if o.ret.is_none() {
            line.push_str("  (outcome unknown)");
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    if ops.len() > MAX_ROWS {
        let _ = writeln!(out, "  ... {} more operations", ops.len() - MAX_ROWS);
    }
    out
}
