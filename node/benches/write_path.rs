//! The write path measured against the disk: acknowledged puts/s of three stores in one
//! process (synced raft logs on real disks, 128 B values) beside the engine I/O floor of three
//! replicas, measured in the same run, for client batches of 1, 10 and 100 puts.
//!
//! - **raftstore**: a [`LocalCluster`] of 3 stores; one client sends B puts to the leader
//!   together (one message, as a batched RPC would) and waits for all B answers, round after
//!   round. Latency is per put.
//! - **floor**: 3 engine pairs, one thread each; a round is every thread writing B raft-log
//!   entries of the same size (one synced batch) and applying B puts (one buffered batch), no
//!   consensus, no network. Latency is per round.
//!
//! `cargo bench -p node --bench write_path` (add `-- --secs 5` for longer runs).

fn main() {
    // lab:needs 2aa..3c
    run();
    // lab:end-needs
}

// lab:needs 2aa..3c
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use engine::{keys, Cf, Durability, EngineOptions, Engines, WriteBatch};
use node::{ClusterOptions, LocalCluster};
use proto::eraftpb::Entry;
use protobuf::Message as _;
use raftstore::cmd::{new_put_cf_cmd, new_request};
use raftstore::CmdResponse;

const VALUE: usize = 128;
const BATCHES: [usize; 3] = [1, 10, 100];

fn run() {
    let secs = std::env::args()
        .skip_while(|a| a != "--secs")
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3u64);
    let run = Duration::from_secs(secs);
    println!(
        "write path: 3 replicas, synced raft log, {VALUE} B values, {secs} s per measurement\n"
    );
    println!(
        "{:>6} {:>14} {:>14} {:>7} {:>22} {:>22}",
        "batch",
        "floor puts/s",
        "store puts/s",
        "ratio",
        "floor p50/p99 (round)",
        "store p50/p99 (put)"
    );
    for b in BATCHES {
        let floor = floor(b, run);
        let store = raftstore_puts(b, run);
        println!(
            "{:>6} {:>14.0} {:>14.0} {:>6.2}x {:>10} / {:>9} {:>10} / {:>9}",
            b,
            floor.rate,
            store.rate,
            store.rate / floor.rate,
            fmt(floor.p50),
            fmt(floor.p99),
            fmt(store.p50),
            fmt(store.p99)
        );
    }
}

fn fmt(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

struct Measured {
    rate: f64,
    p50: Duration,
    p99: Duration,
}

fn measured(count: usize, elapsed: Duration, mut lat: Vec<Duration>) -> Measured {
    lat.sort();
    let at = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)];
    Measured {
        rate: count as f64 / elapsed.as_secs_f64(),
        p50: at(0.5),
        p99: at(0.99),
    }
}

fn key(i: u64) -> Vec<u8> {
    format!("key{i:012}").into_bytes()
}

/// The floor: 3 threads, each over its own engines, writing per round B entries (synced) and
/// B puts (buffered); a barrier ends each round.
fn floor(b: usize, run: Duration) -> Measured {
    let dir = tempfile::tempdir().expect("temp dir");
    let engines: Vec<Engines> = (0..3)
        .map(|i| {
            Engines::open(dir.path().join(format!("e{i}")), &EngineOptions::default())
                .expect("engines")
        })
        .collect();
    // An entry as big as the store's: a put command of one 128 B value.
    let cmd = new_request(
        1,
        Default::default(),
        vec![new_put_cf_cmd("default", &key(0), &[7; VALUE])],
    );
    let data = cmd.write_to_bytes().expect("encode");
    let barrier = Arc::new(Barrier::new(4));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let threads: Vec<_> = engines
        .into_iter()
        .map(|e| {
            let (barrier, stop, data) = (barrier.clone(), stop.clone(), data.clone());
            std::thread::spawn(move || {
                let mut index = 0u64;
                loop {
                    barrier.wait();
                    if stop.load(std::sync::atomic::Ordering::SeqCst) {
                        break;
                    }
                    let mut raft = WriteBatch::new();
                    let mut kv = WriteBatch::new();
                    for _ in 0..b {
                        index += 1;
                        let mut entry = Entry::new();
                        entry.index = index;
                        entry.term = 1;
                        entry.data = data.clone().into();
                        let buf = entry.write_to_bytes().expect("encode");
                        raft.put_cf(Cf::Raft, &keys::raft_log_key(1, index), &buf)
                            .expect("put");
                        kv.put_cf(Cf::Default, &key(index), &[7; VALUE])
                            .expect("put");
                    }
                    e.raft.write(raft, Durability::Sync).expect("raft write");
                    e.kv.write(kv, Durability::Buffered).expect("kv write");
                    barrier.wait();
                }
            })
        })
        .collect();
    let start = Instant::now();
    let mut lat = Vec::new();
    while start.elapsed() < run {
        let t = Instant::now();
        barrier.wait();
        barrier.wait();
        lat.push(t.elapsed());
    }
    let elapsed = start.elapsed();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    barrier.wait();
    for t in threads {
        t.join().expect("floor thread");
    }
    measured(lat.len() * b, elapsed, lat)
}

/// The raftstore: B puts sent to the leader at once, all answers awaited, per round.
fn raftstore_puts(b: usize, run: Duration) -> Measured {
    let dir = tempfile::tempdir().expect("temp dir");
    let cluster = LocalCluster::bootstrap(dir.path(), ClusterOptions::new(3)).expect("cluster");
    let client = cluster.client();
    // Warm up: a leader, known to the scheduler.
    client.put(b"warm", b"up").expect("first put");
    let mut next = 0u64;
    let mut lat = Vec::new();
    let mut acked = 0usize;
    let start = Instant::now();
    while start.elapsed() < run {
        let Some((region, Some(leader))) = client_region(&cluster) else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let reqs: Vec<_> = (0..b)
            .map(|_| {
                next += 1;
                let mut req = new_request(
                    region.id,
                    region.get_region_epoch().clone(),
                    vec![new_put_cf_cmd("default", &key(next), &[7; VALUE])],
                );
                req.mut_header().set_peer(leader.clone());
                req
            })
            .collect();
        let t = Instant::now();
        let sent = client
            .send_commands(leader.store_id, reqs)
            .expect("send")
            .into_iter()
            .map(|rx| (t, rx));
        for (t, rx) in sent {
            let resp: CmdResponse = rx.recv_timeout(Duration::from_secs(5)).expect("an answer");
            if !resp.resp.get_header().has_error() {
                acked += 1;
                lat.push(t.elapsed());
            }
        }
    }
    let elapsed = start.elapsed();
    measured(acked, elapsed, lat)
}

fn client_region(
    cluster: &LocalCluster,
) -> Option<(proto::metapb::Region, Option<proto::metapb::Peer>)> {
    cluster.scheduler().service().get_region(b"key")
}
// lab:end-needs
