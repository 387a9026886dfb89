//! Beyond the original: randomized safety runs of raft groups (proptest).
//!
//! Each case is a random sequence of operations on a 3- or 5-node group: ticks, proposals,
//! message delivery in random order, drops, duplicates, partitions, restarts (from what the
//! node persisted) and, from stage 2C on, log compaction with snapshots. After every
//! operation the run checks the safety properties of the Raft paper (§5.2–5.4):
//! election safety (at most one leader a term), log matching, leader completeness, and
//! state-machine safety (every node applies a prefix of one common sequence), plus the log
//! invariants `applied <= committed <= last index`. A failing case is shrunk to a short
//! operation list and printed with the seed (`LABS_SEED`) that replays it.
//!
//! Stage 2AB drives `Raft` directly (persisting like the `next_ents` helper does), so it needs
//! nothing beyond 2A; stage 2C drives `RawNode` and its `Ready`s, with snapshots; stage 3A
//! adds leader transfers. Like a transport, the network reports every `MsgSnapshot` to its
//! sender: `Failure` when it is lost (dropped, or across a partition), `Finish` once
//! delivered.

// Each stage feature uses a part of this module.
#![cfg_attr(
    not(all(feature = "2ab", feature = "2c", feature = "3a")),
    allow(dead_code)
)]

use std::cell::Cell;
use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, RngSeed, TestCaseError, TestError, TestRunner};
use raft::{SnapshotStatus, Storage};

use crate::raft_common::*;

/// One step of a run. Node and message positions are taken modulo the group size and the
/// number of messages in flight.
#[derive(Debug, Clone)]
enum Op {
    /// Tick one node.
    Tick(usize),
    /// Tick every node once.
    TickAll,
    /// Propose a fresh value at one node.
    Propose(usize),
    /// Deliver one message in flight (any of them: the network reorders).
    Deliver(usize),
    /// Deliver up to 64 messages in FIFO order.
    DeliverSome,
    /// Lose one message in flight.
    Drop(usize),
    /// Duplicate one message in flight.
    Duplicate(usize),
    /// Split the nodes in two groups by the bits of the mask; messages across are lost.
    Partition(u8),
    /// Remove the partition.
    Heal,
    /// Restart a node from its storage (volatile state lost).
    Restart(usize),
    /// Snapshot a node's state machine at its applied index and compact its storage (2C).
    Compact(usize),
    /// Ask a node to hand leadership to another (3A).
    Transfer(usize, usize),
}

/// What a run exercises, by stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `Raft` driven directly, no compaction (2AB).
    Bare,
    /// `RawNode` with compaction and snapshots (2C).
    Snapshots,
    /// As `Snapshots`, plus leader transfers (3A).
    Transfers,
}

impl Mode {
    fn raw(self) -> bool {
        self != Mode::Bare
    }
}

fn op_strategy(n: usize, mode: Mode) -> BoxedStrategy<Op> {
    let base = prop_oneof![
        10 => (0..n).prop_map(Op::Tick),
        25 => Just(Op::TickAll),
        12 => (0..n).prop_map(Op::Propose),
        25 => any::<usize>().prop_map(Op::Deliver),
        15 => Just(Op::DeliverSome),
        5 => any::<usize>().prop_map(Op::Drop),
        3 => any::<usize>().prop_map(Op::Duplicate),
        5 => any::<u8>().prop_map(Op::Partition),
        4 => Just(Op::Heal),
        3 => (0..n).prop_map(Op::Restart),
    ];
    match mode {
        Mode::Bare => base.boxed(),
        Mode::Snapshots => prop_oneof![12 => base, 1 => (0..n).prop_map(Op::Compact)].boxed(),
        Mode::Transfers => prop_oneof![
            24 => base,
            2 => (0..n).prop_map(Op::Compact),
            1 => (0..n, 0..n).prop_map(|(i, t)| Op::Transfer(i, t)),
        ]
        .boxed(),
    }
}

/// How a node is driven.
enum Driver {
    /// `Raft` directly (2AB).
    Bare(Box<TestRaft>),
    /// `RawNode` and its `Ready`s (2C).
    Raw(Box<RawNode<MemStorage>>),
}

struct SimNode {
    id: u64,
    driver: Driver,
    storage: MemStorage,
    /// The state machine: every applied entry, from index 1.
    sm: Vec<Entry>,
}

impl SimNode {
    fn raft(&self) -> &TestRaft {
        match &self.driver {
            Driver::Bare(r) => r,
            Driver::Raw(n) => &n.raft,
        }
    }
}

/// Encodes a state machine as snapshot data: per entry its term, data length and data.
fn encode_sm(sm: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in sm {
        out.extend_from_slice(&e.term.to_le_bytes());
        out.extend_from_slice(&(e.data.len() as u64).to_le_bytes());
        out.extend_from_slice(&e.data);
    }
    out
}

fn decode_sm(mut data: &[u8]) -> Result<Vec<Entry>, String> {
    let mut sm = Vec::new();
    let word = |d: &mut &[u8]| -> Result<u64, String> {
        if d.len() < 8 {
            return Err("truncated snapshot data".to_string());
        }
        let (w, rest) = d.split_at(8);
        *d = rest;
        Ok(u64::from_le_bytes(w.try_into().expect("8 bytes")))
    };
    while !data.is_empty() {
        let term = word(&mut data)?;
        let len = word(&mut data)? as usize;
        if data.len() < len {
            return Err("truncated snapshot data".to_string());
        }
        let (d, rest) = data.split_at(len);
        data = rest;
        sm.push(new_entry(sm.len() as u64 + 1, term, d));
    }
    Ok(sm)
}

/// The entry at `idx` among a log's in-memory entries, if it is there.
fn entry_at(entries: &[Entry], idx: u64) -> Option<&Entry> {
    let first = entries.first()?.index;
    if idx < first {
        return None;
    }
    entries.get((idx - first) as usize)
}

struct Cluster {
    nodes: Vec<SimNode>,
    inflight: Vec<Message>,
    group: Vec<u8>,
    next_value: u64,
    raw: bool,
    /// term -> the one leader seen in it.
    leaders: BTreeMap<u64, u64>,
    /// Committed entries seen anywhere, by index from 1, with the lowest term of a node that
    /// knew them committed.
    committed: Vec<(Entry, u64)>,
    /// The longest applied sequence seen anywhere.
    applied: Vec<Entry>,
    /// Snapshots installed by any node.
    snapshots: u32,
}

type Check = Result<(), String>;

impl Cluster {
    fn new(n: usize, raw: bool) -> Cluster {
        let peers = ids(n as u64);
        let mut nodes = Vec::new();
        for &id in &peers {
            let storage = MemStorage::new_with_conf_state(peers.clone());
            let driver = Self::build(id, &storage, 0, raw);
            nodes.push(SimNode {
                id,
                driver,
                storage,
                sm: Vec::new(),
            });
        }
        Cluster {
            nodes,
            inflight: Vec::new(),
            group: vec![0; n],
            next_value: 0,
            raw,
            leaders: BTreeMap::new(),
            committed: Vec::new(),
            applied: Vec::new(),
            snapshots: 0,
        }
    }

    fn build(id: u64, storage: &MemStorage, applied: u64, raw: bool) -> Driver {
        let mut c = new_test_config(id, 10, 1);
        c.applied = applied;
        if raw {
            let node = RawNode::new(&c, storage.clone())
                .unwrap_or_else(|e| panic!("RawNode::new for node {id} failed: {e}"));
            Driver::Raw(Box::new(node))
        } else {
            Driver::Bare(Box::new(new_test_raft_with_config(&c, storage.clone())))
        }
    }

    /// Applies `ents` to node `i`'s state machine, checking state-machine safety.
    fn apply(&mut self, i: usize, ents: &[Entry]) -> Check {
        for e in ents {
            let node = &mut self.nodes[i];
            let len = node.sm.len() as u64;
            if e.index <= len {
                let had = &node.sm[(e.index - 1) as usize];
                if (had.term, &had.data) != (e.term, &e.data) {
                    return Err(format!(
                        "node {} applied {e:?} at an index where it had applied {had:?}",
                        node.id
                    ));
                }
                continue;
            }
            if e.index != len + 1 {
                return Err(format!(
                    "node {} applied index {} right after index {len}",
                    node.id, e.index
                ));
            }
            node.sm.push(e.clone());
            let pos = (e.index - 1) as usize;
            match self.applied.get(pos) {
                Some(g) if (g.term, &g.data) != (e.term, &e.data) => {
                    return Err(format!(
                        "state machine safety: node {} applied {e:?} where another node applied {g:?}",
                        self.nodes[i].id
                    ));
                }
                Some(_) => {}
                None => self.applied.push(e.clone()),
            }
        }
        Ok(())
    }

    /// Persists, sends and applies what node `i` produced.
    fn process(&mut self, i: usize) -> Check {
        if self.raw {
            return self.process_ready(i);
        }
        let id = self.nodes[i].id;
        let storage = self.nodes[i].storage.clone();
        let Driver::Bare(r) = &mut self.nodes[i].driver else {
            unreachable!("bare cluster")
        };
        let unstable = r.raft_log.unstable_entries().to_vec();
        storage
            .wl()
            .append(&unstable)
            .map_err(|e| format!("node {id}: persisting unstable entries: {e}"))?;
        r.raft_log.stabled = r.raft_log.last_index();
        storage.wl().set_hard_state(r.hard_state());
        let msgs = r.read_messages();
        let applied = r.raft_log.next_ents();
        r.raft_log.applied = r.raft_log.committed;
        self.inflight.extend(msgs);
        self.apply(i, &applied)
    }

    /// `process` for a `RawNode`: handle every ready the way an application must.
    fn process_ready(&mut self, i: usize) -> Check {
        let id = self.nodes[i].id;
        let storage = self.nodes[i].storage.clone();
        for _ in 0..100 {
            let rd = {
                let Driver::Raw(node) = &mut self.nodes[i].driver else {
                    unreachable!("raw cluster")
                };
                if !node.has_ready() {
                    return Ok(());
                }
                node.ready()
            };
            if let Some(snap) = rd.snapshot.as_ref().filter(|s| !s.is_empty()) {
                storage
                    .wl()
                    .apply_snapshot(snap.clone())
                    .map_err(|e| format!("node {id}: applying the ready's snapshot: {e}"))?;
            }
            storage
                .wl()
                .append(&rd.entries)
                .map_err(|e| format!("node {id}: persisting ready entries: {e}"))?;
            if let Some(hs) = &rd.hard_state {
                storage.wl().set_hard_state(hs.clone());
            }
            self.inflight.extend(rd.messages.iter().cloned());
            if let Some(snap) = rd.snapshot.as_ref().filter(|s| !s.is_empty()) {
                // A snapshot replaces the state machine before later entries apply.
                let sm = decode_sm(&snap.data)?;
                let index = snap.get_metadata().index;
                if sm.len() as u64 != index {
                    return Err(format!(
                        "node {id}: snapshot at index {index} carries {} entries",
                        sm.len()
                    ));
                }
                if index < self.nodes[i].sm.len() as u64 {
                    return Err(format!(
                        "node {id}: installed a snapshot at {index} below its applied index {}",
                        self.nodes[i].sm.len()
                    ));
                }
                self.apply(i, &sm)?;
                self.snapshots += 1;
            }
            self.apply(i, &rd.committed_entries)?;
            let Driver::Raw(node) = &mut self.nodes[i].driver else {
                unreachable!("raw cluster")
            };
            node.advance(rd);
        }
        Err(format!(
            "node {id}: has_ready() stays true after 100 advances"
        ))
    }

    fn step(&mut self, i: usize, m: Message) {
        // Errors (dropped proposals, unknown peers) are part of the protocol here.
        let _ = match &mut self.nodes[i].driver {
            Driver::Bare(r) => r.step(m),
            Driver::Raw(n) => n.step(m),
        };
    }

    fn tick(&mut self, i: usize) -> Check {
        match &mut self.nodes[i].driver {
            Driver::Bare(r) => r.tick(),
            Driver::Raw(n) => n.tick(),
        }
        self.process(i)
    }

    fn deliver(&mut self, pos: usize) -> Check {
        let m = self.inflight.remove(pos);
        let (from, to) = (m.from as usize, m.to as usize);
        if from == 0 || to == 0 || from > self.nodes.len() || to > self.nodes.len() {
            return Err(format!("a node sent a message with bad addresses: {m:?}"));
        }
        let snapshot = m.msg_type == MsgSnapshot;
        if self.group[from - 1] != self.group[to - 1] {
            if snapshot {
                return self.report_snapshot(from - 1, m.to, SnapshotStatus::Failure);
            }
            return Ok(());
        }
        self.step(to - 1, m);
        self.process(to - 1)?;
        if snapshot {
            self.report_snapshot(from - 1, to as u64, SnapshotStatus::Finish)?;
        }
        Ok(())
    }

    /// Loses the message in flight at `pos`; a lost snapshot is reported to its sender.
    fn lose(&mut self, pos: usize) -> Check {
        let m = self.inflight.remove(pos);
        let from = m.from as usize;
        if m.msg_type == MsgSnapshot && (1..=self.nodes.len()).contains(&from) {
            return self.report_snapshot(from - 1, m.to, SnapshotStatus::Failure);
        }
        Ok(())
    }

    /// Tells node `i` how its snapshot to `to` went, as a transport does, then processes
    /// what the report produced.
    fn report_snapshot(&mut self, i: usize, to: u64, status: SnapshotStatus) -> Check {
        match &mut self.nodes[i].driver {
            Driver::Bare(r) => r.report_snapshot(to, status),
            Driver::Raw(n) => n.report_snapshot(to, status),
        }
        self.process(i)
    }

    fn run(&mut self, op: &Op) -> Check {
        let n = self.nodes.len();
        match *op {
            Op::Tick(i) => self.tick(i)?,
            Op::TickAll => {
                for i in 0..n {
                    self.tick(i)?;
                }
            }
            Op::Propose(i) => {
                self.next_value += 1;
                let data = format!("v{}", self.next_value).into_bytes();
                let id = self.nodes[i].id;
                match &mut self.nodes[i].driver {
                    Driver::Bare(r) => {
                        let _ = r.step(propose(id, id, &data));
                    }
                    Driver::Raw(node) => {
                        let _ = node.propose(data);
                    }
                }
                self.process(i)?;
            }
            Op::Deliver(k) => {
                if !self.inflight.is_empty() {
                    let pos = k % self.inflight.len();
                    self.deliver(pos)?;
                }
            }
            Op::DeliverSome => {
                let k = self.inflight.len().min(64);
                for _ in 0..k {
                    self.deliver(0)?;
                }
            }
            Op::Drop(k) => {
                if !self.inflight.is_empty() {
                    let pos = k % self.inflight.len();
                    self.lose(pos)?;
                }
            }
            Op::Duplicate(k) => {
                if !self.inflight.is_empty() {
                    let m = self.inflight[k % self.inflight.len()].clone();
                    self.inflight.push(m);
                }
            }
            Op::Partition(mask) => {
                for (i, g) in self.group.iter_mut().enumerate() {
                    *g = (mask >> i) & 1;
                }
            }
            Op::Heal => self.group.iter_mut().for_each(|g| *g = 0),
            Op::Restart(i) => {
                let node = &self.nodes[i];
                let driver = Self::build(node.id, &node.storage, node.sm.len() as u64, self.raw);
                self.nodes[i].driver = driver;
                self.process(i)?;
            }
            Op::Compact(i) => self.compact(i)?,
            Op::Transfer(i, t) => {
                let transferee = self.nodes[t].id;
                match &mut self.nodes[i].driver {
                    Driver::Raw(node) => node.transfer_leader(transferee),
                    Driver::Bare(r) => {
                        let to = r.id;
                        let _ = r.step(new_message(transferee, to, MsgTransferLeader, 0));
                    }
                }
                self.process(i)?;
            }
        }
        self.check()
    }

    fn compact(&mut self, i: usize) -> Check {
        let n = self.nodes.len() as u64;
        let node = &mut self.nodes[i];
        let applied = node.sm.len() as u64;
        let first = node.storage.first_index().map_err(|e| e.to_string())?;
        if applied < first {
            return Ok(());
        }
        {
            let mut core = node.storage.wl();
            if core
                .create_snapshot(applied, Some(conf_state(&ids(n))), encode_sm(&node.sm))
                .is_err()
            {
                return Ok(());
            }
            core.compact(applied)
                .map_err(|e| format!("node {}: compacting storage to {applied}: {e}", node.id))?;
        }
        if let Driver::Raw(raw) = &mut node.driver {
            raw.raft.raft_log.maybe_compact();
        }
        Ok(())
    }

    /// The safety properties, checked after every operation.
    fn check(&mut self) -> Check {
        // Election safety.
        for node in &self.nodes {
            let r = node.raft();
            if r.state == Leader {
                let prev = *self.leaders.entry(r.term).or_insert(node.id);
                if prev != node.id {
                    return Err(format!(
                        "election safety: nodes {prev} and {} both led term {}",
                        node.id, r.term
                    ));
                }
            }
        }
        // Log invariants, committed entries agree, leader completeness.
        for node in &self.nodes {
            let r = node.raft();
            let log = &r.raft_log;
            let last = log.last_index();
            if log.applied > log.committed || log.committed > last {
                return Err(format!(
                    "node {}: applied {} committed {} last index {}: want applied <= committed <= last",
                    node.id, log.applied, log.committed, last
                ));
            }
            let ents = &log.entries;
            let first = ents.first().map_or(last + 1, |e| e.index);
            for idx in first..=log.committed {
                let Some(e) = entry_at(ents, idx) else {
                    return Err(format!(
                        "node {}: committed index {idx} is not in its log",
                        node.id
                    ));
                };
                let pos = (idx - 1) as usize;
                if let Some((g, seen)) = self.committed.get_mut(pos) {
                    if (g.term, &g.data) != (e.term, &e.data) {
                        return Err(format!(
                            "committed entries differ at {idx}: node {} has {e:?}, another node committed {g:?}",
                            node.id
                        ));
                    }
                    *seen = (*seen).min(r.term);
                } else if pos == self.committed.len() {
                    self.committed.push((e.clone(), r.term));
                }
            }
            if r.state == Leader {
                for (pos, (g, seen)) in self.committed.iter().enumerate() {
                    let idx = pos as u64 + 1;
                    if *seen >= r.term || idx < first {
                        continue;
                    }
                    match entry_at(ents, idx) {
                        Some(e) if e.term == g.term && e.data == g.data => {}
                        other => {
                            return Err(format!(
                                "leader completeness: leader {} of term {} has {other:?} at {idx}, \
                                 but {g:?} was committed by term {seen}",
                                node.id, r.term
                            ))
                        }
                    }
                }
            }
        }
        // Log matching: same index and term => same entries up to there.
        for a in 0..self.nodes.len() {
            for b in a + 1..self.nodes.len() {
                let ea = &self.nodes[a].raft().raft_log.entries;
                let eb = &self.nodes[b].raft().raft_log.entries;
                let (Some(fa), Some(fb)) = (ea.first(), eb.first()) else {
                    continue;
                };
                let lo = fa.index.max(fb.index);
                let hi = ea
                    .last()
                    .map_or(0, |e| e.index)
                    .min(eb.last().map_or(0, |e| e.index));
                let mut matched = false;
                for idx in (lo..=hi).rev() {
                    let (x, y) = (entry_at(ea, idx), entry_at(eb, idx));
                    let (Some(x), Some(y)) = (x, y) else { continue };
                    if matched || x.term == y.term {
                        matched = true;
                        if x.term != y.term || x.data != y.data || x.entry_type != y.entry_type {
                            return Err(format!(
                                "log matching: nodes {} and {} agree on a later entry but differ at {idx}: {x:?} vs {y:?}",
                                a + 1,
                                b + 1
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// While alive, panics on this thread print nothing (proptest reports them itself, once, and
/// would otherwise print one backtrace per shrinking step). Other threads are unaffected.
struct QuietPanics;

impl QuietPanics {
    fn new() -> QuietPanics {
        static HOOK: std::sync::Once = std::sync::Once::new();
        HOOK.call_once(|| {
            let prev = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                if !QUIET.with(|q| q.get()) {
                    prev(info);
                }
            }));
        });
        QUIET.with(|q| q.set(true));
        QuietPanics
    }
}

impl Drop for QuietPanics {
    fn drop(&mut self) {
        QUIET.with(|q| q.set(false));
    }
}

/// Runs `cases` random operation sequences (`PROPTEST_CASES` overrides the count) of up to
/// `max_ops` operations on an `n`-node group and fails with a shrunk counterexample.
fn run_safety(n: usize, mode: Mode, default_cases: u32, max_ops: usize) {
    let raw = mode.raw();
    let seed = labs_seed();
    let _report = SeedReport::new(seed);
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_cases);
    let config = PtConfig {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(seed),
        max_shrink_iters: 2048,
        ..PtConfig::default()
    };
    let mut runner = TestRunner::new(config);
    let strategy = proptest::collection::vec(op_strategy(n, mode), 1..=max_ops);
    let with_commits = Cell::new(0u32);
    let snapshots = Cell::new(0u32);
    let terms = Cell::new(0usize);
    let quiet = QuietPanics::new();
    let result = runner.run(&strategy, |ops| {
        let mut cluster = Cluster::new(n, raw);
        for (k, op) in ops.iter().enumerate() {
            cluster
                .run(op)
                .map_err(|e| TestCaseError::fail(format!("after op #{k} {op:?}: {e}")))?;
        }
        if !cluster.applied.is_empty() {
            with_commits.set(with_commits.get() + 1);
        }
        snapshots.set(snapshots.get() + cluster.snapshots);
        terms.set(terms.get() + cluster.leaders.len());
        Ok(())
    });
    drop(quiet);
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, ops)) => panic!(
            "{n}-node safety run failed (replay with LABS_SEED={seed}): {reason}\n\
             minimal failing sequence ({} ops): {ops:?}",
            ops.len()
        ),
        Err(e) => panic!("{n}-node safety run aborted (LABS_SEED={seed}): {e}"),
    }
    eprintln!(
        "{n}-node safety run: {cases} cases, {} of them applied entries; {} leaders elected, {} snapshots installed",
        with_commits.get(),
        terms.get(),
        snapshots.get()
    );
    // Guard against a vacuous run: most cases must get values committed and applied.
    assert!(
        with_commits.get() * 4 >= cases,
        "only {} of {cases} cases applied any entry: the runs exercise too little",
        with_commits.get()
    );
    if raw {
        assert!(
            snapshots.get() > 0,
            "no case installed a snapshot: the runs exercise too little"
        );
    }
}

/// Election safety, log matching, leader completeness and state-machine safety hold on a
/// 3-node group under random schedules, drops, partitions and restarts.
#[cfg(feature = "2ab")]
#[test]
fn safety_3_nodes_2ab() {
    run_safety(3, Mode::Bare, 256, 500);
}

/// As `safety_3_nodes_2ab`, on a 5-node group.
#[cfg(feature = "2ab")]
#[test]
fn safety_5_nodes_2ab() {
    run_safety(5, Mode::Bare, 192, 500);
}

/// As the 2AB runs, driven through `RawNode`/`Ready`, with log compaction and snapshots.
#[cfg(feature = "2c")]
#[test]
fn safety_with_snapshots_3_nodes_2c() {
    run_safety(3, Mode::Snapshots, 256, 500);
}

/// As `safety_with_snapshots_3_nodes_2c`, on a 5-node group.
#[cfg(feature = "2c")]
#[test]
fn safety_with_snapshots_5_nodes_2c() {
    run_safety(5, Mode::Snapshots, 192, 500);
}

/// As the 2C runs, with leader transfers requested at random nodes (`MsgTimeoutNow`
/// elections among them).
#[cfg(feature = "3a")]
#[test]
fn safety_with_transfers_3_nodes_3a() {
    run_safety(3, Mode::Transfers, 256, 500);
}

/// As `safety_with_transfers_3_nodes_3a`, on a 5-node group.
#[cfg(feature = "3a")]
#[test]
fn safety_with_transfers_5_nodes_3a() {
    run_safety(5, Mode::Transfers, 192, 500);
}

/// Drives a healthy group until it has a leader and every node applied a proposal.
#[cfg(feature = "2ab")]
fn settled_cluster(n: usize) -> Cluster {
    let mut c = Cluster::new(n, false);
    // Bounded: a node that answers every message with more messages (a storm) must fail
    // this test, not hang it. A healthy group settles in a few dozen rounds.
    let mut rounds = 0;
    for _ in 0..200 {
        c.run(&Op::TickAll).expect("a healthy run is safe");
        while !c.inflight.is_empty() {
            rounds += 1;
            assert!(
                rounds <= 2_000 && c.inflight.len() <= 1_000,
                "the group never goes quiet: after {rounds} rounds of deliveries {} messages are \
                 still in flight; does a node answer every message with new ones?",
                c.inflight.len()
            );
            c.run(&Op::DeliverSome).expect("a healthy run is safe");
        }
        if c.nodes.iter().any(|nd| nd.raft().state == Leader) {
            break;
        }
    }
    let leader = (0..n)
        .find(|&i| c.nodes[i].raft().state == Leader)
        .expect("a leader within 200 ticks");
    c.run(&Op::Propose(leader)).expect("a healthy run is safe");
    for _ in 0..5 {
        c.run(&Op::DeliverSome).expect("a healthy run is safe");
        c.run(&Op::TickAll).expect("a healthy run is safe");
    }
    assert!(
        c.nodes.iter().all(|nd| nd.sm.len() >= 2),
        "every node applies the no-op and the proposal"
    );
    c
}

/// The safety checker itself catches each kind of violation (so a green run means something).
#[cfg(feature = "2ab")]
#[test]
fn safety_checker_detects_violations_2ab() {
    // Two leaders in one term.
    let mut c = settled_cluster(3);
    let leader = (0..3).find(|&i| c.nodes[i].raft().state == Leader).unwrap();
    let other = (leader + 1) % 3;
    let term = c.nodes[leader].raft().term;
    if let Driver::Bare(r) = &mut c.nodes[other].driver {
        r.state = Leader;
        r.term = term;
    }
    let err = c.check().expect_err("two leaders of one term");
    assert!(err.contains("election safety"), "{err}");

    // A committed entry rewritten on one node.
    let mut c = settled_cluster(3);
    if let Driver::Bare(r) = &mut c.nodes[1].driver {
        let last = r.raft_log.entries.last_mut().expect("entries");
        last.data = b"forged".to_vec().into();
    }
    let err = c.check().expect_err("a rewritten committed entry");
    assert!(err.contains("committed entries differ"), "{err}");

    // Logs that agree on a later entry but differ before it.
    let mut c = settled_cluster(3);
    for i in 0..3 {
        if let Driver::Bare(r) = &mut c.nodes[i].driver {
            r.raft_log.committed = 0;
            r.raft_log.applied = 0;
            if i == 2 {
                r.raft_log.entries[0].data = b"forged".to_vec().into();
            }
        }
    }
    c.committed.clear();
    let err = c.check().expect_err("logs that break log matching");
    assert!(err.contains("log matching"), "{err}");

    // A leader missing a committed entry of an earlier term.
    let mut c = settled_cluster(3);
    let leader = (0..3).find(|&i| c.nodes[i].raft().state == Leader).unwrap();
    if let Driver::Bare(r) = &mut c.nodes[leader].driver {
        r.term += 1;
        r.raft_log.committed = 0;
        r.raft_log.applied = 0;
        r.raft_log.entries.truncate(1);
    }
    let err = c.check().expect_err("an incomplete leader");
    assert!(err.contains("leader completeness"), "{err}");

    // Two state machines applying different values at one index.
    let mut c = settled_cluster(3);
    c.nodes[2].sm.truncate(1);
    let forged = new_entry(2, c.applied[1].term, b"forged");
    let err = c.apply(2, &[forged]).expect_err("divergent state machines");
    assert!(err.contains("state machine safety"), "{err}");
}
