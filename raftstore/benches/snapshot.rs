//! Snapshot throughput and memory: generating a region's snapshot file, sending it in chunks
//! to a receiver that verifies it, and applying it to an empty store, for regions of 16 MiB
//! and 64 MiB.
//!
//! Each phase reports its throughput (MiB of keys and values per second) and its **peak heap
//! above the heap at the phase's start**, from a counting global allocator. The snapshot code
//! streams (one buffered read or write, one chunk, one batch at a time), so its peak must not
//! grow with the region: the run ends with each phase's peak at 64 MiB over its peak at
//! 16 MiB, which should stay close to 1.
//!
//! Baselines measured in the same run, on the same data (DESIGN §7):
//! - **scan**: every pair of the region read with the engine's iterator, for *generate*;
//! - **raw write**: the same pairs written into a fresh engine in batches of
//!   `task_batch_bytes`, then synced, for *apply*.
//!
//! The counting allocator sees every thread, fjall's included. Two of fjall's memories show:
//! - its block cache, filled by reads of on-disk tables: bounded by `cache_bytes`, kept small
//!   here ([`CACHE_BYTES`]) so that a filling cache cannot pass for growth;
//! - its memtables, which keep every pair written until they are flushed (fjall's default
//!   `max_memtable_size` is 64 MiB per column family, which `EngineOptions` does not set), so
//!   the peaks of *apply* and *raw write* both grow by the region's size. That is the engine's
//!   memory, not the snapshot code's. To show the code's own part, the bench prints apply's
//!   peak over the raw write's (≈ 1.00 at both sizes), and runs one more application (and raw
//!   write) with each step measured on its own: the most one step holds above its start is
//!   one batch, at both sizes.
//!
//! Times and peaks are medians of interleaved rounds (fewer at 64 MiB), with the largest
//! peak of any round beside them. Every round checks the applied target against the source
//! (pair count and a CRC of every pair, and the region `Normal`), so a wrong answer fails the
//! bench instead of reporting a speed.
//!
//! `cargo bench -p raftstore --bench snapshot` (about 25 s on two cores).

use std::alloc::System;
use std::hint::black_box;
use std::time::{Duration, Instant};

use engine::{keys, Cf, Durability, EngineOptions, Engines, WriteBatch};
use peakmem_alloc::{PeakMemAlloc, PeakMemAllocTrait, INSTRUMENTED_SYSTEM};
use proto::eraftpb::{MessageType, Snapshot};
use proto::metapb::{Peer, Region};
use proto::raft_serverpb::{PeerState, RaftApplyState, RaftMessage, RegionLocalState};
use raftstore::meta;
use raftstore::snap::region_task::{ApplySnapTask, GenSnapTask};
use raftstore::snap::transfer::{ChunkOutcome, OutgoingSnapshot, SnapReceiver};
use raftstore::snap::{snapshot_data, SnapFileKind, SnapKey, SnapManager};
use raftstore::Config;

// The workspace forbids `unsafe_code`, which a `GlobalAlloc` implementation needs, so the
// counting wrapper of `System` comes from `peakmem-alloc`: an atomic count of live bytes and
// its maximum since the last reset.
#[global_allocator]
static GLOBAL: &PeakMemAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The engines' block cache: small, so that a cache filling up cannot pass for growth.
const CACHE_BYTES: u64 = 4 << 20;
/// Value size; keys are `k{i:08}`.
const VALUE_LEN: usize = 1024;
const REGION_ID: u64 = 1;
const INDEX: u64 = 10;
const TERM: u64 = 7;
const MIB: f64 = (1 << 20) as f64;

/// (region size in MiB, rounds)
const SIZES: [(usize, usize); 2] = [(16, 7), (64, 5)];

fn engine_options() -> EngineOptions {
    EngineOptions {
        cache_bytes: CACHE_BYTES,
        ..EngineOptions::default()
    }
}

/// The region `["", "")` with one peer.
fn region() -> Region {
    let mut r = Region {
        id: REGION_ID,
        ..Default::default()
    };
    r.mut_peers().push(Peer {
        id: 1,
        store_id: 1,
        ..Default::default()
    });
    r.mut_region_epoch().conf_ver = 1;
    r.mut_region_epoch().version = 1;
    r
}

/// A region's pairs in snapshot-file order (column family by column family, keys in order):
/// pair `i` has key `k{i:08}`, goes to column family `i % 3`, and its value is pseudo-random
/// (so that block compression flatters nothing).
type Pairs = Vec<(Cf, Vec<u8>, Vec<u8>)>;

fn make_pairs(n: usize) -> Pairs {
    let mut pairs = Vec::with_capacity(n);
    for (c, &cf) in Cf::DATA.iter().enumerate() {
        for i in (c..n).step_by(Cf::DATA.len()) {
            let mut value = vec![0u8; VALUE_LEN];
            let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            for word in value.chunks_exact_mut(8) {
                // xorshift64*
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                word.copy_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
            }
            pairs.push((cf, format!("k{i:08}").into_bytes(), value));
        }
    }
    pairs
}

/// Writes pairs into an engine in batches of about `batch_bytes` (buffered), one batch a
/// step, like the raw-write baseline does.
struct RawWriter<'a> {
    pairs: &'a [(Cf, Vec<u8>, Vec<u8>)],
    next: usize,
    batch_bytes: usize,
    bytes: u64,
}

impl<'a> RawWriter<'a> {
    fn new(pairs: &'a [(Cf, Vec<u8>, Vec<u8>)], batch_bytes: usize) -> Self {
        RawWriter {
            pairs,
            next: 0,
            batch_bytes,
            bytes: 0,
        }
    }

    /// Writes one batch; `false` once every pair is written.
    fn step(&mut self, engines: &Engines) -> bool {
        let mut wb = WriteBatch::new();
        while wb.data_size() < self.batch_bytes {
            let Some((cf, k, v)) = self.pairs.get(self.next) else {
                break;
            };
            wb.put_cf(*cf, k, v).expect("put");
            self.bytes += (k.len() + v.len()) as u64;
            self.next += 1;
        }
        engines.kv.write(wb, Durability::Buffered).expect("write");
        self.next < self.pairs.len()
    }
}

/// Pairs and a CRC-32 of every (column family, key, value), in file order.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Digest {
    pairs: u64,
    crc: u32,
}

struct Digester(Digest, crc32fast::Hasher);

impl Digester {
    fn new() -> Self {
        Digester(Digest::default(), crc32fast::Hasher::new())
    }

    fn add(&mut self, cf: Cf, k: &[u8], v: &[u8]) {
        let crc = &mut self.1;
        crc.update(cf.name().as_bytes());
        crc.update(&(k.len() as u32).to_be_bytes());
        crc.update(k);
        crc.update(&(v.len() as u32).to_be_bytes());
        crc.update(v);
        self.0.pairs += 1;
    }

    fn finish(self) -> Digest {
        Digest {
            crc: self.1.finalize(),
            ..self.0
        }
    }
}

/// The digest of what an engine's data column families hold.
fn digest_engine(engines: &Engines) -> Digest {
    let snap = engines.kv.snapshot().expect("snapshot");
    let mut d = Digester::new();
    for &cf in Cf::DATA {
        snap.scan_cf(cf, b"", None, |k, v| {
            d.add(cf, k, v);
            true
        })
        .expect("scan");
    }
    d.finish()
}

fn message_for(snap: &Snapshot) -> RaftMessage {
    let mut m = RaftMessage {
        region_id: REGION_ID,
        ..Default::default()
    };
    m.mut_from_peer().id = 1;
    m.mut_from_peer().store_id = 1;
    m.mut_to_peer().id = 2;
    m.mut_to_peer().store_id = 2;
    m.mut_message().set_msg_type(MessageType::MsgSnapshot);
    m.mut_message().set_snapshot(snap.clone());
    m
}

/// The source store: the region's pairs, its apply state and its region state, written as
/// the store writes them, then compacted to disk (a live region's data mostly sits in tables,
/// and reading them is what a snapshot costs). It keeps the pairs in memory too, for the
/// raw-write baseline (which then measures the engine alone) and for checking.
struct Source {
    _dir: tempfile::TempDir,
    engines: Engines,
    mgr: SnapManager,
    pairs: Pairs,
    bytes: u64,
    digest: Digest,
}

impl Source {
    fn new(region_mib: usize, batch_bytes: usize) -> Source {
        let dir = tempfile::tempdir().expect("tempdir");
        let engines = Engines::open(dir.path().join("db"), &engine_options()).expect("open");
        let mgr = SnapManager::new(dir.path().join("snap")).expect("snap dir");
        let pairs = make_pairs((region_mib << 20) / VALUE_LEN);
        let mut w = RawWriter::new(&pairs, batch_bytes);
        while w.step(&engines) {}
        let bytes = w.bytes;
        let mut wb = WriteBatch::new();
        let mut apply = RaftApplyState {
            applied_index: INDEX,
            ..Default::default()
        };
        apply.mut_truncated_state().index = 5;
        apply.mut_truncated_state().term = 5;
        meta::write_apply_state(&mut wb, REGION_ID, &apply).expect("apply state");
        meta::write_region_state(&mut wb, &region(), PeerState::Normal).expect("region state");
        engines.kv.write(wb, Durability::Sync).expect("write");
        for &cf in Cf::KV_ENGINE {
            engines.kv.compact_cf(cf).expect("compact");
        }
        let mut d = Digester::new();
        for (cf, k, v) in &pairs {
            d.add(*cf, k, v);
        }
        let digest = d.finish();
        assert_eq!(
            digest_engine(&engines),
            digest,
            "the source holds every pair"
        );
        Source {
            _dir: dir,
            engines,
            mgr,
            pairs,
            bytes,
            digest,
        }
    }

    fn key(&self, snap: &Snapshot) -> SnapKey {
        SnapKey::of(REGION_ID, snap)
    }
}

/// A fresh, empty store (engines and snapshot directory).
struct Target {
    _dir: tempfile::TempDir,
    engines: Engines,
    mgr: SnapManager,
}

impl Target {
    fn new() -> Target {
        let dir = tempfile::tempdir().expect("tempdir");
        let engines = Engines::open(dir.path().join("db"), &engine_options()).expect("open");
        let mgr = SnapManager::new(dir.path().join("snap")).expect("snap dir");
        Target {
            _dir: dir,
            engines,
            mgr,
        }
    }

    /// Marks the region `Applying`, as `PeerStorage::apply_snapshot` leaves it.
    fn applying(self) -> Target {
        let mut wb = WriteBatch::new();
        meta::write_region_state(&mut wb, &region(), PeerState::Applying).expect("state");
        self.engines.kv.write(wb, Durability::Sync).expect("write");
        self
    }

    /// Fails unless the target holds exactly the source's pairs and its region is Normal: a
    /// benchmark that gives a wrong answer must not report a speed.
    fn check_applied(&self, src: &Source, what: &str) {
        assert_eq!(
            digest_engine(&self.engines),
            src.digest,
            "{what}: the target must hold exactly the source's pairs"
        );
        let state: RegionLocalState = self
            .engines
            .kv
            .get_msg_cf(Cf::Raft, &keys::region_state_key(REGION_ID))
            .expect("read region state")
            .expect("a region state");
        assert_eq!(state.get_state(), PeerState::Normal, "{what}: region state");
    }
}

/// One phase's time and peak heap above the heap at its start.
#[derive(Clone, Copy)]
struct Sample {
    time: Duration,
    peak: usize,
}

/// Runs `f` as a measured phase.
fn measure<T>(f: impl FnOnce() -> T) -> (T, Sample) {
    GLOBAL.reset_peak_memory();
    let start = Instant::now();
    let out = f();
    let time = start.elapsed();
    let peak = GLOBAL.get_peak_memory();
    (out, Sample { time, peak })
}

/// Runs `step` until it returns `false`, measuring each step on its own: returns the steps
/// and the largest peak heap above a step's start.
fn per_step(mut step: impl FnMut() -> bool) -> (u64, usize) {
    let (mut steps, mut peak) = (0, 0);
    loop {
        GLOBAL.reset_peak_memory();
        let more = step();
        peak = peak.max(GLOBAL.get_peak_memory());
        steps += 1;
        if !more {
            return (steps, peak);
        }
    }
}

const PHASES: [&str; 5] = ["scan", "generate", "transfer", "raw write", "apply"];
const SCAN: usize = 0;
const GENERATE: usize = 1;
const TRANSFER: usize = 2;
const RAW_WRITE: usize = 3;
const APPLY: usize = 4;

/// Baseline of *generate*: every pair of the region read with the engine's iterator.
fn scan(src: &Source) -> u64 {
    let snap = src.engines.kv.snapshot().expect("snapshot");
    let mut bytes = 0u64;
    for &cf in Cf::DATA {
        let mut it = snap.iter_cf(cf, b"", None).expect("iter");
        it.seek_to_first();
        while let Some((k, v)) = it.item() {
            bytes += (k.len() + v.len()) as u64;
            it.next();
        }
        it.status().expect("scan");
    }
    black_box(bytes)
}

fn generate(src: &Source) -> Snapshot {
    GenSnapTask {
        region_id: REGION_ID,
        index: INDEX,
        term: TERM,
        kv_snap: src.engines.kv.snapshot().expect("snapshot"),
        mgr: src.mgr.clone(),
    }
    .run()
    .expect("generate")
}

/// Sends every chunk of the generated file, in order, to a receiver writing into `to`'s
/// directory; returns how many chunks.
fn transfer(src: &Source, snap: &Snapshot, to: &SnapManager, chunk_size: usize) -> u64 {
    let key = src.key(snap);
    let out = OutgoingSnapshot::open(
        message_for(snap),
        &src.mgr.path(SnapFileKind::Generated, &key),
        chunk_size,
    )
    .expect("open outgoing");
    let mut rx = SnapReceiver::new(to.clone(), 100);
    let n = out.chunk_count();
    for i in 0..n {
        let outcome = rx
            .on_chunk(out.chunk(i).expect("chunk"), 0)
            .expect("receive");
        match outcome {
            ChunkOutcome::Pending => assert!(i + 1 < n, "the last chunk completes the file"),
            ChunkOutcome::Complete(k, _) => {
                assert_eq!(
                    (k, i + 1),
                    (key, n),
                    "only the last chunk completes the file"
                )
            }
            ChunkOutcome::Duplicate => panic!("chunk {i} taken for a duplicate"),
        }
    }
    n
}

/// The task applying the received file to `target`.
fn apply_task(src: &Source, snap: &Snapshot, target: &Target, batch: usize) -> Box<ApplySnapTask> {
    let data = snapshot_data(snap).expect("snapshot data");
    ApplySnapTask::new(src.key(snap), data, &target.mgr, batch)
}

/// Steps the task to completion; returns the steps.
fn apply(mut task: Box<ApplySnapTask>, target: &Target) -> u64 {
    let mut steps = 1;
    while let Some(next) = task.step(&target.engines).expect("apply step") {
        task = next;
        steps += 1;
    }
    steps
}

/// Baseline of *apply*: the same pairs written into an empty engine in batches of the same
/// size, then synced (as applying ends with a synced write).
fn raw_write(src: &Source, target: &Target, batch_bytes: usize) -> u64 {
    let mut w = RawWriter::new(&src.pairs, batch_bytes);
    while w.step(&target.engines) {}
    target.engines.kv.sync().expect("sync");
    w.bytes
}

fn median<T: Ord + Copy>(mut v: Vec<T>) -> T {
    v.sort();
    v[v.len() / 2]
}

/// A size for people: KiB under a MiB, else MiB.
fn size(bytes: usize) -> String {
    if bytes < 1 << 20 {
        format!("{:.0} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{:.2} MiB", bytes as f64 / MIB)
    }
}

/// What one region size measured.
struct Measured {
    region_mib: usize,
    bytes: u64,
    samples: [Vec<Sample>; 5],
    /// The largest peak of one step of apply / one batch of the raw write.
    step_peak_apply: usize,
    step_peak_raw: usize,
}

impl Measured {
    fn time(&self, phase: usize) -> Duration {
        median(self.samples[phase].iter().map(|s| s.time).collect())
    }

    fn rate(&self, phase: usize) -> f64 {
        self.bytes as f64 / MIB / self.time(phase).as_secs_f64()
    }

    fn peak(&self, phase: usize) -> usize {
        median(self.samples[phase].iter().map(|s| s.peak).collect())
    }

    fn max_peak(&self, phase: usize) -> usize {
        self.samples[phase]
            .iter()
            .map(|s| s.peak)
            .max()
            .unwrap_or(0)
    }
}

fn run_size(region_mib: usize, rounds: usize, cfg: &Config) -> Measured {
    let build = Instant::now();
    let src = Source::new(region_mib, cfg.task_batch_bytes);
    println!(
        "\nregion of {region_mib} MiB: {} pairs of {VALUE_LEN} B values over 3 column families, \
         {:.1} MiB of keys and values (loaded and compacted in {:.1} s), {rounds} rounds",
        src.pairs.len(),
        src.bytes as f64 / MIB,
        build.elapsed().as_secs_f64()
    );
    let mut samples: [Vec<Sample>; 5] = Default::default();
    let (mut file_size, mut chunks, mut steps) = (0, 0, 0);
    let mut snap = Snapshot::default();
    for round in 0..rounds {
        // Each baseline runs before its phase in even rounds and after it in odd ones, so
        // neither side always finds the warmer cache.
        let first = round % 2 == 0;
        let run_scan = |samples: &mut [Vec<Sample>; 5]| {
            let (bytes, s) = measure(|| scan(&src));
            assert_eq!(bytes, src.bytes, "the scan reads every pair");
            samples[SCAN].push(s);
        };
        let run_raw = |samples: &mut [Vec<Sample>; 5]| {
            let raw = Target::new();
            let (bytes, s) = measure(|| raw_write(&src, &raw, cfg.task_batch_bytes));
            assert_eq!(bytes, src.bytes, "the raw write writes every pair");
            samples[RAW_WRITE].push(s);
        };

        if first {
            run_scan(&mut samples);
        }
        let s;
        (snap, s) = measure(|| generate(&src));
        samples[GENERATE].push(s);
        if !first {
            run_scan(&mut samples);
        }
        file_size = snapshot_data(&snap).expect("snapshot data").file_size;

        let target = Target::new();
        let (n, s) = measure(|| transfer(&src, &snap, &target.mgr, cfg.snap_chunk_size));
        samples[TRANSFER].push(s);
        chunks = n;

        let target = target.applying();
        if first {
            run_raw(&mut samples);
        }
        let task = apply_task(&src, &snap, &target, cfg.task_batch_bytes);
        let (n, s) = measure(|| apply(task, &target));
        samples[APPLY].push(s);
        steps = n;
        if !first {
            run_raw(&mut samples);
        }
        target.check_applied(&src, &format!("round {round}"));
    }

    // One more application and raw write, each step measured on its own: what the code holds
    // at once, apart from what the engine keeps of the batches before (its memtables).
    let target = Target::new();
    transfer(&src, &snap, &target.mgr, cfg.snap_chunk_size);
    let target = target.applying();
    let mut task = Some(apply_task(&src, &snap, &target, cfg.task_batch_bytes));
    let (_, step_peak_apply) = per_step(|| {
        let t = task.take().expect("a task");
        task = t.step(&target.engines).expect("apply step");
        task.is_some()
    });
    target.check_applied(&src, "stepwise application");
    drop(target);
    let raw = Target::new();
    let mut w = RawWriter::new(&src.pairs, cfg.task_batch_bytes);
    let (_, step_peak_raw) = per_step(|| w.step(&raw.engines));
    drop(raw);

    println!(
        "  snapshot file {:.1} MiB, sent in {chunks} chunks of {} KiB, applied in {steps} steps \
         (batches of {} KiB); each round's target checked: {} pairs, CRC {:08x}",
        file_size as f64 / MIB,
        cfg.snap_chunk_size >> 10,
        cfg.task_batch_bytes >> 10,
        src.digest.pairs,
        src.digest.crc,
    );
    let m = Measured {
        region_mib,
        bytes: src.bytes,
        samples,
        step_peak_apply,
        step_peak_raw,
    };
    println!(
        "  {:<10} {:>8} {:>8}   {:>13} {:>11}",
        "phase", "MiB/s", "time", "peak heap", "(max round)"
    );
    for (phase, name) in PHASES.iter().enumerate() {
        println!(
            "  {name:<10} {:>8.0} {:>6.0}ms   {:>13} {:>11}",
            m.rate(phase),
            m.time(phase).as_secs_f64() * 1e3,
            size(m.peak(phase)),
            format!("({})", size(m.max_peak(phase))),
        );
    }
    println!(
        "  generate / scan {:.2}, apply / raw write {:.2} (throughput); apply / raw write {:.3} \
         (peak heap)",
        m.rate(GENERATE) / m.rate(SCAN),
        m.rate(APPLY) / m.rate(RAW_WRITE),
        m.peak(APPLY) as f64 / m.peak(RAW_WRITE) as f64,
    );
    println!(
        "  largest single step: apply {}, raw write batch {}",
        size(m.step_peak_apply),
        size(m.step_peak_raw)
    );
    m
}

fn main() {
    // `cargo bench` passes `--bench`; nothing here takes arguments.
    let cfg = Config::default();
    let total = Instant::now();
    println!(
        "snapshot: generate, transfer ({} KiB chunks), apply ({} KiB batches); medians of \
         interleaved rounds. Peak heap = most bytes live above the phase's start, all threads \
         (fjall's too; block cache {} MiB).",
        cfg.snap_chunk_size >> 10,
        cfg.task_batch_bytes >> 10,
        CACHE_BYTES >> 20
    );
    let results: Vec<Measured> = SIZES
        .iter()
        .map(|&(mib, rounds)| run_size(mib, rounds, &cfg))
        .collect();
    let [small, large] = &results[..] else {
        unreachable!("two sizes")
    };
    let ratio = |a: usize, b: usize| a as f64 / (b as f64).max(1.0);
    let row = |name: &str, a: usize, b: usize, note: &str| {
        println!(
            "  {name:<18} {:>10} / {:>10} = {:>5.2}{note}",
            size(a),
            size(b),
            ratio(a, b)
        );
    };
    println!(
        "\npeak heap, {} MiB region / {} MiB region (the region is {}×; memory bounded by the \
         chunk and batch size gives ≈ 1)",
        large.region_mib,
        small.region_mib,
        large.region_mib / small.region_mib
    );
    for (phase, name) in PHASES.iter().enumerate() {
        let note = match phase {
            RAW_WRITE | APPLY => "  fjall's memtables keep every pair written",
            _ => "",
        };
        row(name, large.peak(phase), small.peak(phase), note);
    }
    row(
        "apply, one step",
        large.step_peak_apply,
        small.step_peak_apply,
        "",
    );
    row(
        "raw write, 1 batch",
        large.step_peak_raw,
        small.step_peak_raw,
        "",
    );
    println!(
        "  (apply's peak over the raw write's: {:.3} at {} MiB, {:.3} at {} MiB)",
        large.peak(APPLY) as f64 / large.peak(RAW_WRITE) as f64,
        large.region_mib,
        small.peak(APPLY) as f64 / small.peak(RAW_WRITE) as f64,
        small.region_mib,
    );
    println!("\ntotal {:.1} s", total.elapsed().as_secs_f64());
}
