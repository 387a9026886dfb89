//! Sequential specifications: the [`Model`] trait and the key-value model [`KvModel`].

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::{self, Debug};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::{OpId, Operation, Time};

/// A sequential specification the checker linearizes histories against.
///
/// The checker never looks inside inputs, outputs or states: it asks the model to split the
/// history into independent partitions (P-compositionality), to step a state by an operation,
/// and to render things for reports. The key-value store is [`KvModel`]; a transactional model
/// (stage 4) implements the same trait.
pub trait Model {
    /// What a client asks, as recorded in the [`History`](super::History).
    type Input: Clone + Debug;
    /// What a client receives.
    type Output: Clone + Debug;
    /// Names a partition (for the key-value model, a key).
    type Key: Clone + Ord + Debug;
    /// An operation projected on one partition and prepared for fast stepping. It carries
    /// the expected result, or none if the outcome is unknown.
    type Op: Clone + Debug;
    /// The state of one partition. Equal states must have equal futures: the checker
    /// memoizes on them.
    type State: Clone + Eq + Hash + Debug;

    /// Look-ahead width: after each step the checker asks [`Model::may_precede`] about up to
    /// this many of the next pending operations. `0` (the default) disables look-ahead.
    const LOOKAHEAD: usize = 0;

    /// Splits a history into independent partitions: each returned entry names a partition
    /// and lists `(operation, projection)` pairs. An operation may appear in several
    /// partitions (a scan) or none. Operations without an output
    /// ([`Operation::output`] is `None`) have an unknown outcome: project them with no
    /// expected result. Operations marked not applied are never passed in.
    #[allow(clippy::type_complexity)]
    fn partition(
        &self,
        ops: &[&Operation<Self::Input, Self::Output>],
    ) -> Vec<(Self::Key, Vec<(OpId, Self::Op)>)>;

    /// The initial state of a partition.
    fn init(&self) -> Self::State;

    /// Applies `op` to `state`: the next state if `op`'s expected result (if any) is what the
    /// sequential specification answers in `state`, `None` otherwise. An operation with an
    /// unknown outcome must be accepted whenever its input is applicable.
    fn step(&self, state: &Self::State, op: &Self::Op) -> Option<Self::State>;

    /// Whether `op` never changes the state (an unknown read-only operation constrains
    /// nothing and is dropped before the search).
    fn is_read_only(&self, _op: &Self::Op) -> bool {
        false
    }

    /// A necessary condition for `later`, an operation with a known outcome still to be
    /// linearized, to succeed at some point after `state` was reached, provided none of its
    /// [enablers](Model::enablers) comes in between. Return `false` only if it certainly
    /// cannot; the default is `true`. Used for pruning (see [`Model::LOOKAHEAD`]): a state is
    /// abandoned when some pending operation may not follow it and all its enablers that may
    /// precede it are already linearized.
    fn may_precede(&self, _state: &Self::State, _later: &Self::Op) -> bool {
        true
    }

    /// For each operation of a partition, the operations that may make it possible again from
    /// any state (for the key-value model, the puts whose value is a prefix of a read's
    /// value). Only consulted when [`Model::may_precede`] says no; the default is none.
    fn enablers(&self, ops: &[&Self::Op]) -> Vec<Vec<usize>> {
        vec![Vec::new(); ops.len()]
    }

    /// Whether `op` (with a known outcome) cannot succeed in any state the partition's
    /// operations can produce, in any order; the checker then reports a violation without
    /// searching. Default `false`.
    fn impossible(&self, _op: &Self::Op) -> bool {
        false
    }

    /// Whether `reader`'s result was visibly built from `writer` (e.g. a read value contains
    /// an appended value, a successful compare-and-set found the value a put wrote). The
    /// minimizer never keeps an operation without the operations it depends on, directly or
    /// through others (a read of the value a compare-and-set wrote goes with the write that
    /// compare-and-set found), so a minimized history does not degenerate into "a read of a
    /// value never written" when the real problem was an ordering one. Only writers invoked
    /// before the reader returned are asked about: a later one cannot have produced its
    /// result. Default `false`.
    fn depends_on(&self, _reader: &Self::Op, _writer: &Self::Op) -> bool {
        false
    }

    /// Renders a partition key for reports.
    fn describe_key(&self, key: &Self::Key) -> String;

    /// Renders a projected operation with its result, e.g. `get -> "a"`.
    fn describe_op(&self, op: &Self::Op) -> String;

    /// Renders a state for reports.
    fn describe_state(&self, state: &Self::State) -> String;
}

// ---------------------------------------------------------------------------------------------
// Key-value model

/// A key-value client request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvInput {
    /// Read a key; a missing key reads as the empty value.
    Get {
        /// The key.
        key: Vec<u8>,
    },
    /// Overwrite a key.
    Put {
        /// The key.
        key: Vec<u8>,
        /// The new value.
        value: Vec<u8>,
    },
    /// Append to a key's value (a missing key counts as empty).
    Append {
        /// The key.
        key: Vec<u8>,
        /// The suffix.
        value: Vec<u8>,
    },
    /// Remove a key.
    Delete {
        /// The key.
        key: Vec<u8>,
    },
    /// Read the non-empty keys in `[start, end)` (an empty `end` is unbounded), as the
    /// course's `scan`. It is checked by projection: on every key of the history inside the
    /// range it is a read of the returned value (or of the empty value if the key is absent
    /// from the result). This checks each key, not that the scan was one atomic snapshot.
    Scan {
        /// First key, inclusive.
        start: Vec<u8>,
        /// Last key, exclusive; empty for unbounded.
        end: Vec<u8>,
    },
}

impl KvInput {
    /// `Get { key }`.
    pub fn get(key: impl AsRef<[u8]>) -> Self {
        KvInput::Get {
            key: key.as_ref().to_vec(),
        }
    }

    /// `Put { key, value }`.
    pub fn put(key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Self {
        KvInput::Put {
            key: key.as_ref().to_vec(),
            value: value.as_ref().to_vec(),
        }
    }

    /// `Append { key, value }`.
    pub fn append(key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Self {
        KvInput::Append {
            key: key.as_ref().to_vec(),
            value: value.as_ref().to_vec(),
        }
    }

    /// `Delete { key }`.
    pub fn delete(key: impl AsRef<[u8]>) -> Self {
        KvInput::Delete {
            key: key.as_ref().to_vec(),
        }
    }

    /// `Scan { start, end }`.
    pub fn scan(start: impl AsRef<[u8]>, end: impl AsRef<[u8]>) -> Self {
        KvInput::Scan {
            start: start.as_ref().to_vec(),
            end: end.as_ref().to_vec(),
        }
    }
}

/// A key-value reply.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvOutput {
    /// The value a get read (empty for a missing key).
    Value(Vec<u8>),
    /// A put, append or delete succeeded.
    Done,
    /// The `(key, value)` pairs a scan read, in key order.
    Pairs(Vec<(Vec<u8>, Vec<u8>)>),
}

impl KvOutput {
    /// `Value(value)`.
    pub fn value(value: impl AsRef<[u8]>) -> Self {
        KvOutput::Value(value.as_ref().to_vec())
    }

    /// `Pairs(pairs)`.
    pub fn pairs<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        KvOutput::Pairs(
            pairs
                .into_iter()
                .map(|(k, v)| (k.as_ref().to_vec(), v.as_ref().to_vec()))
                .collect(),
        )
    }
}

/// The key-value model: one register per key holding a byte string, with get (missing reads
/// as empty), put, append, delete and scan (projected per key).
#[derive(Clone, Copy, Debug, Default)]
pub struct KvModel;

/// Polynomial fingerprint modulo the Mersenne prime 2^61 - 1, with two bases.
type Fp = [u64; 2];
const MOD: u64 = (1 << 61) - 1;
const BASES: Fp = [0x0123_4567_89ab_cdef % MOD, 0x0fed_cba9_8765_4321 % MOD];

fn mulmod(a: u64, b: u64) -> u64 {
    let x = a as u128 * b as u128;
    let r = (x as u64 & MOD) + (x >> 61) as u64;
    if r >= MOD {
        r - MOD
    } else {
        r
    }
}

fn addmod(a: u64, b: u64) -> u64 {
    let r = a + b;
    if r >= MOD {
        r - MOD
    } else {
        r
    }
}

/// A byte string with its fingerprint and `BASE^len`, so concatenation is O(1).
#[derive(Clone)]
pub struct Fingerprinted {
    data: Arc<[u8]>,
    fp: Fp,
    pow: Fp,
}

impl Fingerprinted {
    fn new(data: &[u8]) -> Self {
        let mut fp = [0, 0];
        let mut pow = [1, 1];
        for &b in data {
            for i in 0..2 {
                fp[i] = addmod(mulmod(fp[i], BASES[i]), b as u64 + 1);
                pow[i] = mulmod(pow[i], BASES[i]);
            }
        }
        Fingerprinted {
            data: data.into(),
            fp,
            pow,
        }
    }
}

impl Fingerprinted {
    /// The bytes.
    pub fn data(&self) -> &[u8] {
        &self.data
    }
}

impl Debug for Fingerprinted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&render_bytes(&self.data))
    }
}

/// A key-value operation projected on one key.
#[derive(Clone, Debug)]
pub enum KvOp {
    /// A read; `expect` is `None` if its result is unknown.
    Get {
        /// The value read, if known.
        expect: Option<Fingerprinted>,
        /// Whether this read is the projection of a scan.
        from_scan: bool,
        /// Whether some sequence of the key's writes can produce the value at all (it is
        /// empty, or starts with a put or appended value and is a put value or ends with an
        /// appended value). A read of a value no write produced fails without a search.
        producible: bool,
    },
    /// An overwrite.
    Put(Fingerprinted),
    /// An append.
    Append(Fingerprinted),
    /// A removal.
    Delete,
}

/// The value of one key: its length and fingerprint (compared and hashed), plus the chain of
/// pieces it was built from (only read to render reports and to prune).
#[derive(Clone)]
pub struct KvState {
    len: u64,
    fp: Fp,
    chain: Option<Arc<Chain>>,
}

struct Chain {
    prev: Option<Arc<Chain>>,
    piece: Arc<[u8]>,
}

impl Drop for Chain {
    // Iterative, so that dropping a long chain of appends cannot overflow the stack.
    fn drop(&mut self) {
        let mut next = self.prev.take();
        while let Some(node) = next {
            match Arc::try_unwrap(node) {
                Ok(mut chain) => next = chain.prev.take(),
                Err(_) => break,
            }
        }
    }
}

impl KvState {
    /// The value's bytes.
    pub fn value(&self) -> Vec<u8> {
        let mut pieces = Vec::new();
        let mut node = self.chain.as_deref();
        while let Some(c) = node {
            pieces.push(&c.piece[..]);
            node = c.prev.as_deref();
        }
        pieces.reverse();
        pieces.concat()
    }
}

impl PartialEq for KvState {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.fp == other.fp
    }
}

impl Eq for KvState {}

impl Hash for KvState {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.len.hash(state);
        self.fp.hash(state);
    }
}

impl Debug for KvState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&render_bytes(&self.value()))
    }
}

/// An operation projected on a key, with its call and return times.
type Projected = (OpId, KvOp, Time, Option<Time>);

fn key_of(input: &KvInput) -> Option<&[u8]> {
    match input {
        KvInput::Get { key }
        | KvInput::Put { key, .. }
        | KvInput::Append { key, .. }
        | KvInput::Delete { key } => Some(key),
        KvInput::Scan { .. } => None,
    }
}

/// Finishes one key's operations: drops unobservable unknown writes and marks the reads that
/// look-ahead pruning applies to.
///
/// An unknown put or append whose (non-empty) value occurs in no known read of the key can be
/// assumed never applied: had it been applied, every value from then until the next put or
/// delete would contain it, so no known read can lie in that stretch, and after the next put
/// or delete the state is the same either way. Dropping such writes removes the exponential
/// "did it or didn't it" choices that timeouts otherwise add to the search.
fn prepare_key(ops: Vec<Projected>) -> Vec<(OpId, KvOp)> {
    // The maximal read values: every other read value is a prefix of one of them, so it
    // contains no substring they lack.
    let mut reads: Vec<&[u8]> = ops
        .iter()
        .filter_map(|(_, kv, _, _)| match kv {
            KvOp::Get {
                expect: Some(v), ..
            } => Some(&v.data[..]),
            _ => None,
        })
        .collect();
    reads.sort_unstable_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    reads.dedup();
    let mut maximal: Vec<&[u8]> = Vec::new();
    for r in reads {
        if !maximal.iter().any(|m| m.starts_with(r)) {
            maximal.push(r);
        }
    }
    let observed = |w: &[u8]| w.is_empty() || maximal.iter().any(|m| contains(m, w));
    let keep: Vec<bool> = ops
        .iter()
        .map(|(_, kv, _, ret)| match kv {
            KvOp::Put(w) | KvOp::Append(w) if ret.is_none() => observed(&w.data),
            _ => true,
        })
        .collect();
    let ops: Vec<_> = ops
        .into_iter()
        .zip(keep)
        .filter_map(|(op, keep)| keep.then_some(op))
        .collect();
    let mut puts: HashSet<&[u8]> = HashSet::new();
    let mut appends: HashSet<&[u8]> = HashSet::new();
    for (_, kv, _, _) in &ops {
        match kv {
            KvOp::Put(w) => {
                puts.insert(&w.data[..]);
            }
            KvOp::Append(w) if !w.data.is_empty() => {
                appends.insert(&w.data[..]);
            }
            _ => {}
        }
    }
    let put_lens: BTreeSet<usize> = puts.iter().map(|w| w.len()).collect();
    let append_lens: BTreeSet<usize> = appends.iter().map(|w| w.len()).collect();
    let producible = |v: &[u8]| {
        let starts = |set: &HashSet<&[u8]>, lens: &BTreeSet<usize>| {
            lens.range(..=v.len()).any(|&l| set.contains(&v[..l]))
        };
        let ends_with_append = append_lens
            .range(..=v.len())
            .any(|&l| appends.contains(&v[v.len() - l..]));
        v.is_empty()
            || ((starts(&puts, &put_lens) || starts(&appends, &append_lens))
                && (puts.contains(v) || ends_with_append))
    };
    let flags: Vec<bool> = ops
        .iter()
        .map(|(_, kv, _, _)| match kv {
            KvOp::Get {
                expect: Some(v), ..
            } => producible(&v.data),
            _ => true,
        })
        .collect();
    ops.into_iter()
        .zip(flags)
        .map(|((id, mut kv, _, _), ok)| {
            if let KvOp::Get { producible, .. } = &mut kv {
                *producible = ok;
            }
            (id, kv)
        })
        .collect()
}

/// Whether `needle` (non-empty) occurs in `hay`.
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    let first = needle[0];
    hay.len() >= needle.len()
        && (0..=hay.len() - needle.len())
            .any(|i| hay[i] == first && hay[i..i + needle.len()] == *needle)
}

fn in_range(key: &[u8], start: &[u8], end: &[u8]) -> bool {
    key >= start && (end.is_empty() || key < end)
}

impl Model for KvModel {
    type Input = KvInput;
    type Output = KvOutput;
    type Key = Vec<u8>;
    type Op = KvOp;
    type State = KvState;

    const LOOKAHEAD: usize = 24;

    fn partition(
        &self,
        ops: &[&Operation<KvInput, KvOutput>],
    ) -> Vec<(Vec<u8>, Vec<(OpId, KvOp)>)> {
        use std::collections::BTreeMap;
        // The key universe: every key operated on or returned by a scan.
        let mut keys: BTreeSet<Vec<u8>> = BTreeSet::new();
        for op in ops {
            if let Some(k) = key_of(&op.input) {
                keys.insert(k.to_vec());
            }
            if let Some(KvOutput::Pairs(pairs)) = op.output() {
                keys.extend(pairs.iter().map(|(k, _)| k.clone()));
            }
        }
        let mut parts: BTreeMap<Vec<u8>, Vec<Projected>> = BTreeMap::new();
        let get = |value: Option<&[u8]>, from_scan| KvOp::Get {
            expect: value.map(Fingerprinted::new),
            from_scan,
            producible: true,
        };
        for op in ops {
            let out = op.output();
            let ret = op.return_time();
            let mut push = |key: &[u8], kv: KvOp| {
                parts
                    .entry(key.to_vec())
                    .or_default()
                    .push((op.id, kv, op.call, ret));
            };
            match (&op.input, out) {
                (KvInput::Get { key }, None) => push(key, get(None, false)),
                (KvInput::Get { key }, Some(KvOutput::Value(v))) => {
                    push(key, get(Some(&v[..]), false))
                }
                (KvInput::Put { key, value }, None | Some(KvOutput::Done)) => {
                    push(key, KvOp::Put(Fingerprinted::new(value)))
                }
                (KvInput::Append { key, value }, None | Some(KvOutput::Done)) => {
                    push(key, KvOp::Append(Fingerprinted::new(value)))
                }
                (KvInput::Delete { key }, None | Some(KvOutput::Done)) => push(key, KvOp::Delete),
                (KvInput::Scan { .. }, None) => {} // an unknown read constrains nothing
                (KvInput::Scan { start, end }, Some(KvOutput::Pairs(pairs))) => {
                    for (k, v) in pairs {
                        push(k, get(Some(&v[..]), true));
                    }
                    // Every other key of the range read as absent. A store answers in key
                    // order, so one merge walk finds them; a set covers any other order.
                    let sorted = pairs.windows(2).all(|w| w[0].0 < w[1].0);
                    let unsorted: std::collections::HashSet<&[u8]> = if sorted {
                        Default::default()
                    } else {
                        pairs.iter().map(|(k, _)| &k[..]).collect()
                    };
                    let mut next_pair = pairs.iter().map(|(k, _)| &k[..]).peekable();
                    for k in keys.range(start.clone()..) {
                        if !in_range(k, start, end) {
                            break;
                        }
                        let returned = if sorted {
                            while next_pair.next_if(|pk| *pk < &k[..]).is_some() {}
                            next_pair.peek() == Some(&&k[..])
                        } else {
                            unsorted.contains(&k[..])
                        };
                        if !returned {
                            push(k, get(Some(&[]), true));
                        }
                    }
                }
                (input, Some(output)) => {
                    panic!(
                        "operation {}: output {output:?} does not fit input {input:?}",
                        op.id
                    )
                }
            }
        }
        parts
            .into_iter()
            .map(|(key, ops)| (key, prepare_key(ops)))
            .collect()
    }

    fn init(&self) -> KvState {
        KvState {
            len: 0,
            fp: [0, 0],
            chain: None,
        }
    }

    fn step(&self, state: &KvState, op: &KvOp) -> Option<KvState> {
        match op {
            KvOp::Get { expect: None, .. } => Some(state.clone()),
            KvOp::Get {
                expect: Some(v), ..
            } => (state.len == v.data.len() as u64 && state.fp == v.fp).then(|| state.clone()),
            KvOp::Put(v) => Some(KvState {
                len: v.data.len() as u64,
                fp: v.fp,
                chain: Some(Arc::new(Chain {
                    prev: None,
                    piece: v.data.clone(),
                })),
            }),
            KvOp::Append(v) => Some(KvState {
                len: state.len + v.data.len() as u64,
                fp: [
                    addmod(mulmod(state.fp[0], v.pow[0]), v.fp[0]),
                    addmod(mulmod(state.fp[1], v.pow[1]), v.fp[1]),
                ],
                chain: Some(Arc::new(Chain {
                    prev: state.chain.clone(),
                    piece: v.data.clone(),
                })),
            }),
            KvOp::Delete => Some(self.init()),
        }
    }

    fn is_read_only(&self, op: &KvOp) -> bool {
        matches!(op, KvOp::Get { .. })
    }

    fn impossible(&self, op: &KvOp) -> bool {
        matches!(
            op,
            KvOp::Get {
                expect: Some(_),
                producible: false,
                ..
            }
        )
    }

    fn may_precede(&self, state: &KvState, later: &KvOp) -> bool {
        // Without an enabler (a put whose value is a prefix of the read's value, or a delete
        // if that value is empty or starts with an appended value) only appends can lead to
        // it, so the state must be a prefix of that value. Checking the last piece is enough
        // for a necessary condition.
        let KvOp::Get {
            expect: Some(v), ..
        } = later
        else {
            return true;
        };
        let len = state.len as usize;
        if len > v.data.len() {
            return false;
        }
        match &state.chain {
            None => true,
            Some(c) => len >= c.piece.len() && v.data[len - c.piece.len()..len] == c.piece[..],
        }
    }

    fn enablers(&self, ops: &[&KvOp]) -> Vec<Vec<usize>> {
        let mut puts: HashMap<&[u8], Vec<usize>> = HashMap::new();
        let mut put_lens: BTreeSet<usize> = BTreeSet::new();
        let mut appends: HashSet<&[u8]> = HashSet::new();
        let mut append_lens: BTreeSet<usize> = BTreeSet::new();
        let mut deletes: Vec<usize> = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            match op {
                KvOp::Put(v) => {
                    puts.entry(&v.data[..]).or_default().push(i);
                    put_lens.insert(v.data.len());
                }
                KvOp::Append(v) if !v.data.is_empty() => {
                    appends.insert(&v.data[..]);
                    append_lens.insert(v.data.len());
                }
                KvOp::Delete => deletes.push(i),
                _ => {}
            }
        }
        ops.iter()
            .map(|op| {
                let KvOp::Get {
                    expect: Some(v), ..
                } = op
                else {
                    return Vec::new();
                };
                let v = &v.data[..];
                let mut list: Vec<usize> = put_lens
                    .range(..=v.len())
                    .filter_map(|&l| puts.get(&v[..l]))
                    .flatten()
                    .copied()
                    .collect();
                if v.is_empty()
                    || append_lens
                        .range(..=v.len())
                        .any(|&l| appends.contains(&v[..l]))
                {
                    list.extend(&deletes);
                }
                list
            })
            .collect()
    }

    fn depends_on(&self, reader: &KvOp, writer: &KvOp) -> bool {
        // A heuristic: a read may have been built on a put whose value starts its value, or on
        // an append whose value occurs in it.
        let KvOp::Get {
            expect: Some(v), ..
        } = reader
        else {
            return false;
        };
        match writer {
            KvOp::Put(w) => !w.data.is_empty() && v.data.starts_with(&w.data),
            KvOp::Append(w) => !w.data.is_empty() && contains(&v.data, &w.data),
            _ => false,
        }
    }

    fn describe_key(&self, key: &Vec<u8>) -> String {
        render_bytes(key)
    }

    fn describe_op(&self, op: &KvOp) -> String {
        match op {
            KvOp::Get {
                expect, from_scan, ..
            } => {
                let name = if *from_scan { "scan" } else { "get" };
                match expect {
                    Some(v) => format!("{name} -> {}", render_bytes(&v.data)),
                    None => format!("{name} -> ?"),
                }
            }
            KvOp::Put(v) => format!("put {}", render_bytes(&v.data)),
            KvOp::Append(v) => format!("append {}", render_bytes(&v.data)),
            KvOp::Delete => "delete".to_string(),
        }
    }

    fn describe_state(&self, state: &KvState) -> String {
        render_bytes(&state.value())
    }
}

/// Renders bytes as a quoted, escaped string; long values show their ends and length.
pub(crate) fn render_bytes(b: &[u8]) -> String {
    fn esc(b: &[u8]) -> String {
        b.iter()
            .flat_map(|&c| std::ascii::escape_default(c))
            .map(char::from)
            .collect()
    }
    const MAX: usize = 72;
    if b.len() <= MAX {
        format!("\"{}\"", esc(b))
    } else {
        format!(
            "\"{}...{}\" ({} bytes)",
            esc(&b[..MAX / 2 - 4]),
            esc(&b[b.len() - (MAX / 2 - 4)..]),
            b.len()
        )
    }
}
