//! `cargo bench`: 3-node in-memory cluster, 10,000 proposals of 128 bytes, our raft vs
//! raft-rs 0.7 in the same harness and run.
//!
//! First an interleaved comparison (ours, theirs, theirs, ours, ... for `ROUNDS` rounds after
//! one warm-up each, so background load hits both alike), printing median entries/s and the
//! ratio ours/theirs — once as the process starts (glibc's default heap trimming) and once
//! with a steady heap (see `steady_heap`); then criterion's own measurement of the same two
//! runs (skipped with `RAFT_BENCH_SKIP_CRITERION=1`). Env: `RAFT_BENCH_ROUNDS` (default 20),
//! `RAFT_BENCH_WINDOW` (proposals in flight, default 256), `RAFT_BENCH_ENTRIES` (default 10000);
//! `RAFT_BENCH_PROFILE=ours|theirs` runs only that library `RAFT_BENCH_ROUNDS` times (for perf;
//! add `RAFT_BENCH_STEADY_HEAP=1` for the steady heap); `RAFT_BENCH_THEIRS_BATCH_APPEND=0`
//! runs raft-rs with its default `batch_append = false`.
//! Without `--bench` (e.g. `cargo test --benches`) it runs one round each as a smoke test.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput};
use raft_bench::ours_impl::OursNode;
use raft_bench::theirs_impl::TheirsNode;
use raft_bench::{proposals, Cluster, Node, RunStats, PAYLOAD_LEN};

const NODES: u64 = 3;

/// The system allocator, counting allocations (relaxed atomics: the same small cost for both
/// libraries) so the summary can report allocations per entry.
struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static ALLOC_BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call unchanged to `System`, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        ALLOC_BYTES.fetch_add(l.size() as u64, Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` came from `System` with layout `l`.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        ALLOC_BYTES.fetch_add(new as u64, Relaxed);
        // SAFETY: `p` came from `System` with layout `l`.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocation calls and bytes requested during one timed run.
#[derive(Clone, Copy, Debug, Default)]
struct Allocs {
    calls: u64,
    bytes: u64,
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One timed run on a fresh, elected cluster. Building and electing are not timed.
fn timed_run<N: Node>(entries: u64, window: u64) -> (Duration, RunStats, Allocs) {
    let mut cluster = Cluster::<N>::elected(NODES);
    let props = proposals(entries);
    let (a0, b0) = (ALLOCS.load(Relaxed), ALLOC_BYTES.load(Relaxed));
    let start = Instant::now();
    let stats = cluster.run(props, window);
    let elapsed = start.elapsed();
    let allocs = Allocs {
        calls: ALLOCS.load(Relaxed) - a0,
        bytes: ALLOC_BYTES.load(Relaxed) - b0,
    };
    drop(cluster);
    (elapsed, stats, allocs)
}

fn describe(name: &str, entries: u64, s: &RunStats, a: &Allocs) {
    const TYPES: [&str; 24] = [
        "Hup",
        "Beat",
        "Propose",
        "Append",
        "AppendResp",
        "Vote",
        "VoteResp",
        "Snapshot",
        "Heartbeat",
        "HeartbeatResp",
        "Unreachable",
        "SnapStatus",
        "CheckQuorum",
        "TransferLeader",
        "TimeoutNow",
        "ReadIndex",
        "ReadIndexResp",
        "PreVote",
        "PreVoteResp",
        "?19",
        "?20",
        "?21",
        "?22",
        "?23",
    ];
    let types: Vec<String> = s
        .by_type
        .iter()
        .enumerate()
        .filter(|(_, &n)| n > 0)
        .map(|(i, n)| format!("{}={n}", TYPES[i]))
        .collect();
    println!(
        "  {name:<11} {} loop iterations, {} messages ({}), {} stalls; {:.1} allocations and {:.0} B allocated per entry",
        s.iterations,
        s.messages,
        types.join(" "),
        s.stalls,
        a.calls as f64 / entries as f64,
        a.bytes as f64 / entries as f64,
    );
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    }
}

fn per_sec(entries: u64, d: Duration) -> f64 {
    entries as f64 / d.as_secs_f64()
}

/// Makes glibc keep freed memory instead of returning it to the kernel between runs: one
/// freed allocation just under glibc's 32 MiB mmap-threshold cap raises the dynamic mmap and
/// trim thresholds, so later runs reuse the heap instead of page-faulting it in afresh (with
/// the default thresholds, each run re-faults the multi-MiB logs it grows, which weighs on
/// whichever library holds more memory). Irreversible for the process.
fn steady_heap() {
    let v: Vec<u8> = Vec::with_capacity(30 << 20);
    drop(std::hint::black_box(v));
}

fn summary(label: &str, entries: u64, window: u64, rounds: u64) -> f64 {
    println!(
        "raft throughput [{label}]: {NODES} nodes, in-memory, {entries} proposals x {PAYLOAD_LEN} B, \
         window {window} in flight, {rounds} interleaved rounds (+1 warm-up each)"
    );
    println!(
        "  raft-rs config: max_size_per_msg 1 MiB, max_inflight_msgs 256, batch_append {}; \
         ours: defaults (no flow-control knobs, always batches appends)",
        raft_bench::theirs_impl::batch_append()
    );
    // Warm-up (allocator, caches), not counted.
    let _ = timed_run::<OursNode>(entries, window);
    let _ = timed_run::<TheirsNode>(entries, window);
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    let mut ours_stats = None;
    let mut theirs_stats = None;
    for r in 0..rounds {
        // Alternate which goes first so neither always runs on a "warmer" machine.
        let (o, t) = if r % 2 == 0 {
            let o = timed_run::<OursNode>(entries, window);
            let t = timed_run::<TheirsNode>(entries, window);
            (o, t)
        } else {
            let t = timed_run::<TheirsNode>(entries, window);
            let o = timed_run::<OursNode>(entries, window);
            (o, t)
        };
        println!(
            "  round {:>2}: ours {:>8.2} ms ({:>9.0} entries/s)   raft-rs {:>8.2} ms ({:>9.0} entries/s)",
            r + 1,
            o.0.as_secs_f64() * 1e3,
            per_sec(entries, o.0),
            t.0.as_secs_f64() * 1e3,
            per_sec(entries, t.0),
        );
        ours.push(o.0);
        theirs.push(t.0);
        ours_stats = Some((o.1, o.2));
        theirs_stats = Some((t.1, t.2));
    }
    let mut per_round: Vec<f64> = ours
        .iter()
        .zip(&theirs)
        .map(|(o, t)| t.as_secs_f64() / o.as_secs_f64())
        .collect();
    per_round.sort_by(|a, b| a.total_cmp(b));
    let round_ratio = if per_round.len() % 2 == 1 {
        per_round[per_round.len() / 2]
    } else {
        (per_round[per_round.len() / 2 - 1] + per_round[per_round.len() / 2]) / 2.0
    };
    let (om, tm) = (median(&mut ours), median(&mut theirs));
    let (ot, tt) = (per_sec(entries, om), per_sec(entries, tm));
    let ratio = ot / tt;
    if let (Some(o), Some(t)) = (ours_stats, theirs_stats) {
        println!("  last round:");
        describe("ours", entries, &o.0, &o.1);
        describe("raft-rs 0.7", entries, &t.0, &t.1);
    }
    println!(
        "RESULT [{label}] ours {:.0} entries/s (median {:.2} ms), raft-rs 0.7 {:.0} entries/s \
         (median {:.2} ms), ours/theirs throughput ratio {:.3} (goal >= 1.0; median of \
         per-round ratios {:.3}) over {} rounds",
        ot,
        om.as_secs_f64() * 1e3,
        tt,
        tm.as_secs_f64() * 1e3,
        ratio,
        round_ratio,
        rounds
    );
    ratio
}

fn criterion_bench(entries: u64, window: u64) {
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    let mut g = c.benchmark_group(format!("raft_3node_{entries}x{PAYLOAD_LEN}B"));
    g.throughput(Throughput::Elements(entries));
    g.bench_function("ours", |b| {
        b.iter_batched(
            || (Cluster::<OursNode>::elected(NODES), proposals(entries)),
            |(mut c, p)| {
                c.run(p, window);
                c
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("raft-rs-0.7", |b| {
        b.iter_batched(
            || (Cluster::<TheirsNode>::elected(NODES), proposals(entries)),
            |(mut c, p)| {
                c.run(p, window);
                c
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
    c.final_summary();
}

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let entries = env_u64("RAFT_BENCH_ENTRIES", 10_000);
    let window = env_u64("RAFT_BENCH_WINDOW", 256).max(1);
    if !bench_mode {
        // `cargo test --benches`: a correctness smoke run of each, no timing claims.
        timed_run::<OursNode>(entries, window);
        timed_run::<TheirsNode>(entries, window);
        println!("raft throughput harness: smoke run of ours and raft-rs passed");
        return;
    }
    let rounds = env_u64("RAFT_BENCH_ROUNDS", 20).max(1);
    if std::env::var_os("RAFT_BENCH_STEADY_HEAP").is_some() {
        steady_heap();
    }
    if let Ok(which) = std::env::var("RAFT_BENCH_PROFILE") {
        // For `perf record`: only one library, `rounds` runs, nothing else.
        let mut total = Duration::ZERO;
        for _ in 0..rounds {
            let (d, s, a) = match which.as_str() {
                "ours" => timed_run::<OursNode>(entries, window),
                _ => timed_run::<TheirsNode>(entries, window),
            };
            total += d;
            if total == d {
                describe(&which, entries, &s, &a);
            }
        }
        println!(
            "profile {which}: {rounds} runs, {:.0} entries/s",
            per_sec(entries * rounds, total)
        );
        return;
    }
    // Headline: the process as it starts (glibc's default heap trimming), then the same
    // comparison with a steady heap (see `steady_heap`); criterion measures the latter.
    let cold = summary("default heap", entries, window, rounds);
    steady_heap();
    let steady = summary("steady heap", entries, window, rounds);
    if std::env::var_os("RAFT_BENCH_SKIP_CRITERION").is_none() {
        criterion_bench(entries, window);
        println!(
            "(interleaved summaries above: ours/theirs = {cold:.3} with the default heap, \
             {steady:.3} with a steady heap; criterion ran with the steady heap)"
        );
    }
}
