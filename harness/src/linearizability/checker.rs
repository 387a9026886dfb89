//! The search: Wing–Gong / Lowe just-in-time linearization with memoization, per partition;
//! plus minimization and explanation of a failing partition.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};

use super::model::{KvModel, Model};
use super::{
    CheckOptions, CheckResult, ClientId, History, Inconclusive, OpId, Outcome, ReportedOp, Time,
    Violation,
};

/// Counters of one check, e.g. to see how close a workload comes to the budget.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckStats {
    /// Number of partitions (keys) checked.
    pub keys: usize,
    /// Number of projected operations checked, over all keys.
    pub ops: usize,
    /// Model steps taken by the search, over all keys and both passes (the steps of
    /// [`CheckStats::first_pass_steps`] included).
    pub steps: u64,
    /// Model steps taken by the most expensive key (its first and deep search together).
    pub max_key_steps: u64,
    /// Model steps spent minimizing and explaining a violation.
    pub minimize_steps: u64,
    /// Model steps taken by the first pass, over all keys (see
    /// [`CheckOptions::first_pass_steps_per_key`]).
    pub first_pass_steps: u64,
    /// Number of keys the first pass could not decide that the deep search took on.
    pub deep_keys: usize,
}

/// Checks a key-value history with [`KvModel`] and the default [`CheckOptions`].
pub fn check(history: &History) -> CheckResult {
    check_with(&KvModel, history, &CheckOptions::default())
}

/// Checks `history` against `model` within the limits of `options`.
pub fn check_with<M: Model>(
    model: &M,
    history: &History<M::Input, M::Output>,
    options: &CheckOptions,
) -> CheckResult {
    check_with_stats(model, history, options).0
}

/// Like [`check_with`], also returning counters of the work done.
///
/// The keys are searched in two passes (see [`CheckOptions::first_pass_steps_per_key`]): a
/// cheap one over every key, then a deep one, in key order, over the keys the first could not
/// decide, which stops at the first violation. A violation found by either pass is reported
/// without spending the deep budget on the keys still undecided.
pub fn check_with_stats<M: Model>(
    model: &M,
    history: &History<M::Input, M::Output>,
    options: &CheckOptions,
) -> (CheckResult, CheckStats) {
    let all = history.ops();
    let applied: Vec<_> = all
        .iter()
        .filter(|o| !matches!(o.outcome, Outcome::NotApplied))
        .collect();
    let mut stats = CheckStats::default();
    let deep_budget = options.max_steps_per_key;
    let first_budget = options.first_pass_steps_per_key.min(deep_budget);
    // Failing keys in key order, with the steps their failing search took.
    let mut failing: Vec<KeyHistory<M>> = Vec::new();
    // Keys the first pass could not decide, in key order, with the steps spent on them.
    let mut undecided: Vec<KeyHistory<M>> = Vec::new();
    // 1. The first pass: every key, with the small budget.
    for (key, projected) in model.partition(&applied) {
        let mut ops: Vec<POp<M::Op>> = projected
            .into_iter()
            .filter_map(|(id, op)| {
                let o = &all[id.0];
                let ret = o.return_time();
                // An unknown read constrains nothing and changes nothing.
                (ret.is_some() || !model.is_read_only(&op)).then_some(POp {
                    id,
                    client: o.client,
                    call: o.call,
                    ret,
                    op,
                })
            })
            .collect();
        ops.sort_by_key(|p| (p.call, p.id));
        stats.keys += 1;
        stats.ops += ops.len();
        let refs: Vec<&POp<M::Op>> = ops.iter().collect();
        let mut steps = 0;
        let verdict = search(model, &refs, first_budget, Mode::Check, &mut steps);
        stats.steps += steps;
        stats.first_pass_steps += steps;
        stats.max_key_steps = stats.max_key_steps.max(steps);
        match verdict {
            Verdict::Linearizable => {}
            Verdict::Violation(_) => failing.push((key, ops, steps)),
            Verdict::Exhausted => undecided.push((key, ops, steps)),
        }
    }
    // 2. The deep pass, unless the first already had the full budget or found a violation:
    // each undecided key searched again from the start with the full budget (the search
    // keeps no state between passes, so a key's first-pass steps are repeated), until one
    // fails.
    let mut exhausted: Vec<M::Key> = Vec::new();
    if first_budget < deep_budget {
        let mut rest = std::mem::take(&mut undecided).into_iter();
        while failing.is_empty() {
            let Some((key, ops, first_steps)) = rest.next() else {
                break;
            };
            stats.deep_keys += 1;
            let refs: Vec<&POp<M::Op>> = ops.iter().collect();
            let mut steps = 0;
            let verdict = search(model, &refs, deep_budget, Mode::Check, &mut steps);
            stats.steps += steps;
            stats.max_key_steps = stats.max_key_steps.max(first_steps + steps);
            match verdict {
                Verdict::Linearizable => {}
                Verdict::Violation(_) => failing.push((key, ops, steps)),
                Verdict::Exhausted => exhausted.push(key),
            }
        }
        // Left undecided: the keys a violation cut short.
        undecided = rest.collect();
    } else {
        exhausted.extend(undecided.drain(..).map(|(key, _, _)| key));
    }
    if failing.is_empty() {
        let result = if exhausted.is_empty() {
            CheckResult::Ok
        } else {
            CheckResult::Inconclusive(Inconclusive {
                keys: exhausted.iter().map(|k| model.describe_key(k)).collect(),
                budget: options.max_steps_per_key,
            })
        };
        return (result, stats);
    }
    // In key order: the deep pass visits the undecided keys in key order, and stops at the
    // first key that fails.
    let undecided_keys = exhausted
        .iter()
        .chain(undecided.iter().map(|(key, _, _)| key))
        .map(|k| model.describe_key(k))
        .collect();
    // Report the smallest failing key (the first one in key order among equals).
    let pick = (0..failing.len())
        .min_by_key(|&i| failing[i].1.len())
        .expect("non-empty");
    let other_keys = failing
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != pick)
        .map(|(_, (k, _, _))| model.describe_key(k))
        .collect();
    let (key, ops, steps_to_fail) = &failing[pick];
    let refs: Vec<&POp<M::Op>> = ops.iter().collect();
    let mut left = options.max_minimize_steps;
    let explain_budget = steps_to_fail
        .saturating_mul(4)
        .max(EXPLAIN_BUDGET)
        .min(options.max_steps_per_key);
    let kept = if options.minimize {
        // A candidate far harder to refute than the whole key history is not worth it.
        let per_check = (steps_to_fail.saturating_mul(4))
            .max(20_000)
            .min(options.max_steps_per_key);
        minimize(model, &refs, per_check, options, &mut left)
    } else {
        (0..refs.len()).collect()
    };
    let sub: Vec<&POp<M::Op>> = kept.iter().map(|&i| refs[i]).collect();
    let mut steps = 0;
    // Without look-ahead the longest prefix runs up to the operation that actually fails, but
    // the search may take far longer: fall back to look-ahead if it runs out.
    let verdict = match search(model, &sub, EXPLAIN_BUDGET, Mode::Explain, &mut steps) {
        Verdict::Exhausted => search(
            model,
            &sub,
            explain_budget,
            Mode::ExplainWithLookahead,
            &mut steps,
        ),
        v => v,
    };
    let explanation = match verdict {
        Verdict::Violation(best) => explain(model, &sub, &best),
        // Cannot happen (the search is deterministic and this set failed before), but an
        // oracle must not panic on its own account.
        _ => "(no explanation: the minimized history did not fail again)".to_string(),
    };
    stats.minimize_steps = options.max_minimize_steps - left + steps;
    let violation = Violation {
        key: model.describe_key(key),
        ops: sub
            .iter()
            .map(|p| ReportedOp {
                id: p.id,
                client: p.client,
                call: p.call,
                ret: p.ret,
                description: model.describe_op(&p.op),
            })
            .collect(),
        key_history_len: ops.len(),
        explanation,
        other_keys,
        undecided_keys,
    };
    (CheckResult::Violation(Box::new(violation)), stats)
}

/// A partition's key, its operations and the steps its (last) search took.
type KeyHistory<M> = (<M as Model>::Key, Vec<POp<<M as Model>::Op>>, u64);

/// A projected operation with its timing.
struct POp<P> {
    id: OpId,
    client: ClientId,
    call: Time,
    /// `None`: unknown outcome, returns at +infinity.
    ret: Option<Time>,
    op: P,
}

/// What a search is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Just the verdict.
    Check,
    /// Also record the longest linearized sequence, without look-ahead pruning (so that the
    /// sequence runs up to the operation that actually fails).
    Explain,
    /// Record the longest sequence, with look-ahead.
    ExplainWithLookahead,
}

/// Step budget of an explanation search without look-ahead.
const EXPLAIN_BUDGET: u64 = 100_000;

enum Verdict {
    Linearizable,
    /// Not linearizable; with `explain`, the longest linearized sequence found (indices).
    Violation(Vec<usize>),
    Exhausted,
}

const NIL: usize = usize::MAX;

/// A call or return event in the doubly linked event list; index 0 is the head sentinel.
#[derive(Clone, Copy)]
struct Node {
    op: usize,
    is_call: bool,
    prev: usize,
    next: usize,
    /// The other event of the same operation (`NIL` for the call of an unknown operation,
    /// which has no return event: it returns at +infinity).
    partner: usize,
}

struct Events {
    nodes: Vec<Node>,
}

impl Events {
    fn new<P>(ops: &[&POp<P>]) -> Self {
        let mut events: Vec<(Time, u8, usize)> = Vec::with_capacity(ops.len() * 2);
        for (i, o) in ops.iter().enumerate() {
            // Calls sort before returns at equal times: such operations count as concurrent.
            events.push((o.call, 0, i));
            if let Some(r) = o.ret {
                events.push((r, 1, i));
            }
        }
        events.sort_unstable();
        let head = Node {
            op: NIL,
            is_call: false,
            prev: NIL,
            next: if events.is_empty() { NIL } else { 1 },
            partner: NIL,
        };
        let mut nodes = vec![head];
        let mut call_node = vec![NIL; ops.len()];
        let len = events.len();
        for (k, &(_, kind, op)) in events.iter().enumerate() {
            let idx = k + 1;
            nodes.push(Node {
                op,
                is_call: kind == 0,
                prev: k,
                next: if idx < len { idx + 1 } else { NIL },
                partner: NIL,
            });
            if kind == 0 {
                call_node[op] = idx;
            } else {
                nodes[idx].partner = call_node[op];
                nodes[call_node[op]].partner = idx;
            }
        }
        Events { nodes }
    }

    fn unlink(&mut self, i: usize) {
        let Node { prev, next, .. } = self.nodes[i];
        self.nodes[prev].next = next;
        if next != NIL {
            self.nodes[next].prev = prev;
        }
    }

    fn relink(&mut self, i: usize) {
        let Node { prev, next, .. } = self.nodes[i];
        self.nodes[prev].next = i;
        if next != NIL {
            self.nodes[next].prev = i;
        }
    }

    /// Removes a call event and its return event.
    fn lift(&mut self, call: usize) {
        self.unlink(call);
        let partner = self.nodes[call].partner;
        if partner != NIL {
            self.unlink(partner);
        }
    }

    /// Undoes [`Events::lift`] (in reverse order, dancing-links style).
    fn unlift(&mut self, call: usize) {
        let partner = self.nodes[call].partner;
        if partner != NIL {
            self.relink(partner);
        }
        self.relink(call);
    }
}

/// The set of linearized operations, with an incrementally maintained Zobrist hash.
#[derive(Clone, PartialEq, Eq)]
struct OpSet {
    words: Vec<u64>,
    zobrist: u64,
}

impl Hash for OpSet {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.zobrist.hash(state);
    }
}

fn zobrist(i: usize) -> u64 {
    // splitmix64
    let mut z = (i as u64)
        .wrapping_add(1)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl OpSet {
    fn new(n: usize) -> Self {
        OpSet {
            words: vec![0; n.div_ceil(64)],
            zobrist: 0,
        }
    }

    fn contains(&self, i: usize) -> bool {
        self.words[i / 64] & (1 << (i % 64)) != 0
    }

    fn toggle(&mut self, i: usize) {
        self.words[i / 64] ^= 1 << (i % 64);
        self.zobrist ^= zobrist(i);
    }
}

/// Searches for a linearization of `ops` (sorted by call time) within `budget` model steps,
/// adding the steps taken to `steps`.
fn search<M: Model>(
    model: &M,
    ops: &[&POp<M::Op>],
    budget: u64,
    mode: Mode,
    steps: &mut u64,
) -> Verdict {
    let explain = mode != Mode::Check;
    let use_lookahead = mode != Mode::Explain;
    if !explain
        && ops
            .iter()
            .any(|o| o.ret.is_some() && model.impossible(&o.op))
    {
        return Verdict::Violation(Vec::new());
    }
    let read_only: Vec<bool> = ops.iter().map(|o| model.is_read_only(&o.op)).collect();
    let enablers: Vec<Vec<usize>> = if M::LOOKAHEAD == 0 {
        Vec::new()
    } else {
        let plain: Vec<&M::Op> = ops.iter().map(|o| &o.op).collect();
        // An enabler invoked after the operation returned cannot come before it.
        let mut enablers = model.enablers(&plain);
        for (r, list) in enablers.iter_mut().enumerate() {
            list.retain(|&w| ops[r].ret.is_none_or(|ret| ops[w].call <= ret));
            // Latest return first (unknown ones first of all), see `lookahead`.
            list.sort_by_key(|&w| std::cmp::Reverse(ops[w].ret.unwrap_or(Time::MAX)));
        }
        enablers
    };
    let mut events = Events::new(ops);
    let mut state = model.init();
    let mut linearized = OpSet::new(ops.len());
    let mut seen: HashSet<(OpSet, M::State)> = HashSet::new();
    // (call event, state before it, forced)
    let mut stack: Vec<(usize, M::State, bool)> = Vec::new();
    let mut best: Vec<usize> = Vec::new();
    let start = *steps;
    let mut entry = events.nodes[0].next;
    // At a new search node, first look for a read that fits the current state.
    let mut fresh = true;
    loop {
        if entry == NIL {
            // Every operation with a known outcome is linearized; the unknown ones left took
            // effect after everything else, or never.
            return Verdict::Linearizable;
        }
        let mut dead_end = false;
        if fresh {
            fresh = false;
            // Greedy reads: a read-only operation in the window (invoked before the earliest
            // pending return) that fits the current state can be linearized right now without
            // loss of generality: everything that must precede it already has, and moving it
            // earlier changes no state. So it is taken, and no alternative is tried here.
            let mut e = entry;
            while e != NIL && events.nodes[e].is_call {
                let op = events.nodes[e].op;
                if read_only[op] {
                    if *steps - start >= budget {
                        return Verdict::Exhausted;
                    }
                    *steps += 1;
                    if model.step(&state, &ops[op].op).is_some() {
                        break;
                    }
                }
                e = events.nodes[e].next;
            }
            if e != NIL && events.nodes[e].is_call {
                let op = events.nodes[e].op;
                linearized.toggle(op);
                if seen.insert((linearized.clone(), state.clone())) {
                    stack.push((e, state.clone(), true));
                    events.lift(e);
                    if explain && stack.len() > best.len() {
                        best = stack.iter().map(|&(e, _, _)| events.nodes[e].op).collect();
                    }
                    entry = events.nodes[0].next;
                    fresh = true;
                    continue;
                }
                // Explored before, and failed: so does this node.
                linearized.toggle(op);
                dead_end = true;
            }
        }
        let node = events.nodes[entry];
        if !dead_end && node.is_call {
            // Reads that fit were taken above; the others cannot go here.
            if !read_only[node.op] {
                if *steps - start >= budget {
                    return Verdict::Exhausted;
                }
                *steps += 1;
                if let Some(next) = model.step(&state, &ops[node.op].op) {
                    linearized.toggle(node.op);
                    if (!use_lookahead
                        || lookahead(model, ops, &enablers, &linearized, &events, &next, node.op))
                        && seen.insert((linearized.clone(), next.clone()))
                    {
                        stack.push((entry, std::mem::replace(&mut state, next), false));
                        events.lift(entry);
                        if explain && stack.len() > best.len() {
                            best = stack.iter().map(|&(e, _, _)| events.nodes[e].op).collect();
                        }
                        entry = events.nodes[0].next;
                        fresh = true;
                        continue;
                    }
                    linearized.toggle(node.op);
                }
            }
            entry = node.next;
            continue;
        }
        // Dead end, or the operation returning here must already have taken effect:
        // backtrack, past forced reads (their node has no alternative).
        loop {
            let Some((call, before, forced)) = stack.pop() else {
                return Verdict::Violation(best);
            };
            state = before;
            linearized.toggle(events.nodes[call].op);
            events.unlift(call);
            if !forced {
                entry = events.nodes[call].next;
                break;
            }
        }
    }
}

/// Whether the next few pending operations with known outcomes may still follow `state`.
fn lookahead<M: Model>(
    model: &M,
    ops: &[&POp<M::Op>],
    enablers: &[Vec<usize>],
    linearized: &OpSet,
    events: &Events,
    state: &M::State,
    current: usize,
) -> bool {
    if M::LOOKAHEAD == 0 {
        return true;
    }
    // Every pending operation with a known outcome returns at or after the first return event
    // in the list, so any enabler that returned earlier is linearized already.
    let mut e = events.nodes[0].next;
    while e != NIL && events.nodes[e].is_call {
        e = events.nodes[e].next;
    }
    let horizon = if e == NIL {
        Time::MAX
    } else {
        ops[events.nodes[e].op].ret.unwrap_or(Time::MAX)
    };
    let mut e = events.nodes[0].next;
    let mut seen = 0;
    while e != NIL && seen < M::LOOKAHEAD {
        let node = events.nodes[e];
        if node.is_call && node.op != current {
            seen += 1;
            let o = ops[node.op];
            if o.ret.is_some()
                && !model.may_precede(state, &o.op)
                && enablers[node.op]
                    .iter()
                    .take_while(|&&w| ops[w].ret.is_none_or(|r| r >= horizon))
                    .all(|&w| linearized.contains(w))
            {
                return false;
            }
        }
        e = node.next;
    }
    true
}

/// Shrinks a failing partition (`ops` in call order): the shortest failing prefix, then
/// delta debugging. Returns the kept indices, in call order.
///
/// The result keeps every operation that a kept one depends on, directly or through others
/// (see [`Model::depends_on`]; only operations invoked before the dependent one returned
/// count, a later one cannot have produced its result): dropping an operation drops the whole
/// chain built on it, so the report never shows a result whose source is missing, a failure
/// of the minimization rather than of the store.
fn minimize<M: Model>(
    model: &M,
    ops: &[&POp<M::Op>],
    per_check: u64,
    options: &CheckOptions,
    left: &mut u64,
) -> Vec<usize> {
    let depends = |r: usize, w: usize| {
        r != w
            && ops[r].ret.is_none_or(|ret| ops[w].call <= ret)
            && model.depends_on(&ops[r].op, &ops[w].op)
    };
    // An operation that can never succeed fails on its own, shown with the operations its
    // result was built from.
    if let Some(i) = (0..ops.len()).find(|&i| ops[i].ret.is_some() && model.impossible(&ops[i].op))
    {
        let mut kept = vec![false; ops.len()];
        kept[i] = true;
        let mut todo = vec![i];
        while let Some(r) = todo.pop() {
            for (w, k) in kept.iter_mut().enumerate() {
                if !*k && depends(r, w) {
                    *k = true;
                    todo.push(w);
                }
            }
        }
        return (0..ops.len()).filter(|&i| kept[i]).collect();
    }
    let fails = |subset: &[usize], left: &mut u64| -> bool {
        if *left == 0 || subset.is_empty() {
            return false;
        }
        let sub: Vec<&POp<M::Op>> = subset.iter().map(|&i| ops[i]).collect();
        let mut steps = 0;
        let verdict = search(model, &sub, per_check.min(*left), Mode::Check, &mut steps);
        *left = left.saturating_sub(steps);
        matches!(verdict, Verdict::Violation(_))
    };
    // 1. The shortest failing time prefix: the operations invoked by time T, without the
    // reads still running at T. Every operation that may precede a kept read was invoked
    // before the read returned, so it is kept too: a read never loses what it may have seen.
    // But an operation that both reads and writes (a compare-and-set) is kept from its call
    // on, and may depend on a write invoked later, while it ran: it goes, with everything
    // built on it. (Not monotone in general, so the binary search finds some failing cut
    // whose previous cut passes.)
    let read_only: Vec<bool> = ops.iter().map(|o| model.is_read_only(&o.op)).collect();
    let cut = |t: Time| -> Vec<usize> {
        let prefix = (0..ops.len())
            .filter(|&i| ops[i].call <= t && (!read_only[i] || ops[i].ret.is_some_and(|r| r <= t)))
            .collect();
        without_orphans(ops, depends, prefix)
    };
    let mut times: Vec<Time> = ops
        .iter()
        .flat_map(|o| [Some(o.call), o.ret])
        .flatten()
        .collect();
    times.sort_unstable();
    times.dedup();
    let (mut lo, mut hi) = (0, times.len());
    let mut cur: Vec<usize> = (0..ops.len()).collect();
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        let candidate = cut(times[mid]);
        if fails(&candidate, left) {
            hi = mid;
            cur = candidate;
        } else {
            lo = mid;
        }
    }
    if cur.len() > options.max_minimize_ops {
        return cur;
    }
    // 2. The direct dependents of each operation; dropping one drops their closure.
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); ops.len()];
    for &w in &cur {
        for &r in &cur {
            if depends(r, w) {
                dependents[w].push(r);
            }
        }
    }
    // 3. Delta debugging: drop chunks (with everything that depends on them, transitively)
    // while it still fails, halving the chunk size, then single operations until nothing
    // more can go. `cur` keeps every dependency of its operations (the cuts do, and a chunk
    // goes with its dependents' dependents), so each candidate does too.
    let mut chunk = (cur.len() / 2).max(1);
    loop {
        let before = cur.len();
        let mut i = 0;
        while i < cur.len() {
            let end = (i + chunk).min(cur.len());
            let mut removed = vec![false; ops.len()];
            let mut todo: Vec<usize> = cur[i..end].to_vec();
            for &w in &todo {
                removed[w] = true;
            }
            while let Some(w) = todo.pop() {
                for &r in &dependents[w] {
                    if !removed[r] {
                        removed[r] = true;
                        todo.push(r);
                    }
                }
            }
            let candidate: Vec<usize> = cur.iter().copied().filter(|&x| !removed[x]).collect();
            if fails(&candidate, left) {
                cur = candidate;
            } else {
                i += chunk;
            }
        }
        if chunk > 1 {
            chunk /= 2;
        } else if cur.len() == before || *left == 0 {
            break;
        }
    }
    cur
}

/// `set` (indices into `ops`, in call order) without the operations that depend, directly or
/// through others, on an operation outside it. `depends(r, w)` must imply that `w` was
/// invoked no later than `r` returned: then only the operations still running when `w` was
/// invoked need a look, few for a time cut of a long history.
fn without_orphans<P>(
    ops: &[&POp<P>],
    depends: impl Fn(usize, usize) -> bool,
    set: Vec<usize>,
) -> Vec<usize> {
    let mut kept = vec![false; ops.len()];
    for &i in &set {
        kept[i] = true;
    }
    // Latest return first, unknown outcomes first of all.
    let mut by_ret = set.clone();
    by_ret.sort_by_key(|&i| std::cmp::Reverse(ops[i].ret.unwrap_or(Time::MAX)));
    let mut gone: Vec<usize> = (0..ops.len()).filter(|&i| !kept[i]).collect();
    while let Some(w) = gone.pop() {
        for &r in &by_ret {
            if ops[r].ret.is_some_and(|ret| ret < ops[w].call) {
                break;
            }
            if kept[r] && depends(r, w) {
                kept[r] = false;
                gone.push(r);
            }
        }
    }
    set.into_iter().filter(|&i| kept[i]).collect()
}

/// Explains why `ops` has no linearization, given the longest linearized sequence found.
fn explain<M: Model>(model: &M, ops: &[&POp<M::Op>], best: &[usize]) -> String {
    let label = |i: usize| {
        let o = ops[i];
        format!(
            "{} (client {}, {})",
            o.id,
            o.client,
            model.describe_op(&o.op)
        )
    };
    let mut state = model.init();
    for &i in best {
        match model.step(&state, &ops[i].op) {
            Some(s) => state = s,
            None => return "(no explanation: the search's prefix does not replay)".to_string(),
        }
    }
    let mut done = vec![false; ops.len()];
    for &i in best {
        done[i] = true;
    }
    let state_text = model.describe_state(&state);
    let mut out = if best.is_empty() {
        format!("No operation can take effect first (the initial state is {state_text}).")
    } else {
        let seq: Vec<String> = best.iter().map(|&i| ops[i].id.to_string()).collect();
        format!(
            "The longest linearizable prefix has {} of {} operations: {}; the state after it is {state_text}.",
            best.len(),
            ops.len(),
            seq.join(", ")
        )
    };
    for (i, o) in ops.iter().enumerate() {
        if o.ret.is_some() && model.impossible(&o.op) {
            out.push_str(&format!(
                "\n{} can never succeed: no order of this key's operations produces its result.",
                label(i)
            ));
        }
    }
    let deadline = (0..ops.len())
        .filter(|&i| !done[i])
        .filter_map(|i| ops[i].ret.map(|r| (r, i)))
        .min();
    if let Some((ret, d)) = deadline {
        out.push_str(&format!(
            "\n{} must take effect before it returned at {ret}, but none of the operations that may come next fits:",
            label(d)
        ));
        for i in (0..ops.len()).filter(|&i| !done[i] && ops[i].call <= ret) {
            let why = match model.step(&state, &ops[i].op) {
                None => format!("impossible in state {state_text}"),
                Some(_) => {
                    "possible, but every order that continues with it fails later".to_string()
                }
            };
            out.push_str(&format!("\n  - {}: {why}", label(i)));
        }
    }
    out
}
