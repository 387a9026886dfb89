//! Stage 2b: a fault-tolerant key-value store on Raft, on a simulated 5-store cluster.
//!
//! Every test runs in virtual time on the deterministic simulator: the original's fixed
//! sleeps (about three minutes for this stage) cost only the events they contain, and a
//! failure prints `LABS_SEED=<n>`, which replays the same run exactly
//! (`LABS_SEED=<n> cargo test -p labs --features 2b <name>`). `LABS_SEEDS=<k>` runs each test
//! under `k` seeds.
//!
//! Beyond answers, every test is watched by two oracles outside the stores: the apply oracle
//! (`harness::cluster::apply_oracle`) fails the run inside the event where a store applies a
//! committed command twice, out of order, in part, or writes data no committed entry holds;
//! and the mock scheduler fails it on a heartbeat that breaks its rules. The original sees
//! neither: its clients' idempotent puts hide a duplicate apply.

use std::time::Duration;

use engine::Cf;
use harness::cluster::client::{
    new_delete_cf_cmd, new_get_cf_cmd, new_put_cf_cmd, new_request, new_snap_cmd,
};
use harness::cluster::generic::{generic_test, GenericParams};
use harness::cluster::{Cluster, ClusterConfig};
use harness::seeds::run_seeded;
use harness::sim::net::Filter;
use proto::raft_cmdpb::RaftCmdRequest;
use rand::Rng;

fn cluster(name: &str, seed: u64) -> Cluster {
    Cluster::new(name, seed, ClusterConfig::new(5))
}

/// One client, no faults.
#[test]
fn basic_2b() {
    run_seeded("basic_2b", |seed| {
        generic_test(
            "basic_2b",
            seed,
            GenericParams {
                clients: 1,
                ..Default::default()
            },
        )
    });
}

/// One client while the stores are repartitioned into two random groups every ~0.6 s.
#[test]
fn many_partitions_one_client_2b() {
    run_seeded("many_partitions_one_client_2b", |seed| {
        generic_test(
            "many_partitions_one_client_2b",
            seed,
            GenericParams {
                clients: 1,
                partitions: true,
                ..Default::default()
            },
        )
    });
}

/// One client; every store crashes and restarts between iterations.
#[test]
fn persist_one_client_2b() {
    run_seeded("persist_one_client_2b", |seed| {
        generic_test(
            "persist_one_client_2b",
            seed,
            GenericParams {
                clients: 1,
                crash: true,
                ..Default::default()
            },
        )
    });
}

/// Five clients, no faults.
#[test]
fn concurrent_2b() {
    run_seeded("concurrent_2b", |seed| {
        generic_test(
            "concurrent_2b",
            seed,
            GenericParams {
                clients: 5,
                ..Default::default()
            },
        )
    });
}

/// Five clients while the network drops about 10% of messages.
#[test]
fn unreliable_2b() {
    run_seeded("unreliable_2b", |seed| {
        generic_test(
            "unreliable_2b",
            seed,
            GenericParams {
                clients: 5,
                unreliable: true,
                ..Default::default()
            },
        )
    });
}

/// Five clients while the stores are repartitioned into two random groups every ~0.6 s.
#[test]
fn many_partitions_many_clients_2b() {
    run_seeded("many_partitions_many_clients_2b", |seed| {
        generic_test(
            "many_partitions_many_clients_2b",
            seed,
            GenericParams {
                clients: 5,
                partitions: true,
                ..Default::default()
            },
        )
    });
}

/// Five clients; every store crashes and restarts between iterations.
#[test]
fn persist_concurrent_2b() {
    run_seeded("persist_concurrent_2b", |seed| {
        generic_test(
            "persist_concurrent_2b",
            seed,
            GenericParams {
                clients: 5,
                crash: true,
                ..Default::default()
            },
        )
    });
}

/// Five clients, message loss, and crashes between iterations.
#[test]
fn persist_concurrent_unreliable_2b() {
    run_seeded("persist_concurrent_unreliable_2b", |seed| {
        generic_test(
            "persist_concurrent_unreliable_2b",
            seed,
            GenericParams {
                clients: 5,
                unreliable: true,
                crash: true,
                ..Default::default()
            },
        )
    });
}

/// Five clients, partitions, and crashes between iterations.
#[test]
fn persist_partition_2b() {
    run_seeded("persist_partition_2b", |seed| {
        generic_test(
            "persist_partition_2b",
            seed,
            GenericParams {
                clients: 5,
                crash: true,
                partitions: true,
                ..Default::default()
            },
        )
    });
}

/// Five clients, message loss, partitions, and crashes between iterations.
#[test]
fn persist_partition_unreliable_2b() {
    run_seeded("persist_partition_unreliable_2b", |seed| {
        generic_test(
            "persist_partition_unreliable_2b",
            seed,
            GenericParams {
                clients: 5,
                unreliable: true,
                crash: true,
                partitions: true,
                ..Default::default()
            },
        )
    });
}

/// Beyond the original: five clients while a random store crashes (losing its unsynced
/// writes) and restarts every 1–3 s for about 15 s. Afterwards every acknowledged put must be
/// readable, exactly once and in order, and the whole client history (including the final
/// scans) must be linearizable.
#[test]
fn crash_heavy_no_acked_write_lost_2b() {
    run_seeded("crash_heavy_no_acked_write_lost_2b", |seed| {
        let mut c = cluster("crash_heavy_no_acked_write_lost_2b", seed);
        c.run_for(Duration::from_secs(1));
        c.install_workload(5);
        c.start_clients();
        let start = c.sim().now();
        while c.sim().now().since(start) < Duration::from_secs(15) {
            let wait = c.sim().core().rng().gen_range(1000..3000);
            c.run_clients_for(Duration::from_millis(wait));
            let victim = c.sim().core().rng().gen_range(1..=5u64);
            c.crash_store(victim);
            let down = c.sim().core().rng().gen_range(0..500);
            c.run_clients_for(Duration::from_millis(down));
            c.start_store(victim);
        }
        c.stop_and_check_clients();
    });
}

/// The leader keeps serving in the majority; when it ends up in a minority, reads and writes
/// go through the new majority leader, and the old leader's stale state is overwritten once
/// the partition heals. Unlike the original, the minority's engines are checked after the
/// majority has certainly applied the write (the original's check passes at once if absent).
#[test]
fn one_partition_2b() {
    run_seeded("one_partition_2b", |seed| {
        let mut c = cluster("one_partition_2b", seed);
        let region = c.get_region(b"");
        let Some(leader) = c.leader_of_region(region.id) else {
            c.fail("no leader for region 1")
        };
        let mut s1 = vec![leader.store_id];
        let mut s2 = vec![];
        for p in region.get_peers() {
            if p.store_id == leader.store_id {
                continue;
            }
            if s1.len() < 3 {
                s1.push(p.store_id);
            } else {
                s2.push(p.store_id);
            }
        }
        c.add_filter(Filter::partition(&s1, &s2));
        c.must_put(b"k1", b"v1");
        c.must_get(b"k1", b"v1");
        for &s in &s1 {
            c.must_get_equal(s, b"k1", b"v1");
        }
        for &s in &s2 {
            c.must_get_none(s, b"k1");
        }

        c.clear_filters();
        let moved = s1.pop().unwrap_or_else(|| c.fail("s1 is empty"));
        s2.push(moved);
        c.add_filter(Filter::partition(&s1, &s2));
        c.must_get(b"k1", b"v1");
        c.must_put(b"k1", b"changed");
        for &s in &s2 {
            c.must_get_equal(s, b"k1", b"changed");
        }
        for &s in &s1 {
            c.must_get_equal(s, b"k1", b"v1");
        }

        c.clear_filters();
        c.must_put(b"k2", b"v2");
        c.must_get_equal(s1[0], b"k2", b"v2");
        c.must_get_equal(s1[0], b"k1", b"changed");
    });
}

/// Beyond the original: the same seed replays the same run event for event. A busy run
/// (partitions, message loss, crashes, client traffic) is run twice and the hashes of the
/// full event traces are compared; a different seed gives a different run.
#[test]
fn replay_is_deterministic_2b() {
    fn busy(seed: u64) -> (u64, u64) {
        let mut c = cluster("replay_is_deterministic_2b", seed);
        for i in 0..60u32 {
            let key = format!("k{}", i % 7);
            c.must_put(key.as_bytes(), format!("v{i}").as_bytes());
            match i % 10 {
                3 => c.add_filter(Filter::DropRate(0.1)),
                5 => c.add_filter(Filter::partition(&[1, 2], &[3, 4, 5])),
                7 => c.clear_filters(),
                8 => {
                    let victim = 1 + u64::from(i) % 5;
                    c.crash_store(victim);
                    c.run_for(Duration::from_millis(300));
                    c.start_store(victim);
                }
                _ => {}
            }
        }
        c.must_get(b"k2", b"v58");
        // Idle cluster life: ticks, heartbeats, scheduler reports.
        c.run_for(Duration::from_secs(5));
        (c.sim().trace_hash(), c.sim().events_executed())
    }
    run_seeded("replay_is_deterministic_2b", |seed| {
        let first = busy(seed);
        assert!(first.1 > 1000, "the scenario is busy: {} events", first.1);
        assert_eq!(first, busy(seed), "two runs with seed {seed} diverged");
        assert_ne!(
            first.0,
            busy(seed ^ 1).0,
            "a different seed gave the same run"
        );
    });
}

fn leader_request(
    c: &mut Cluster,
    key: &[u8],
    reqs: Vec<proto::raft_cmdpb::Request>,
) -> RaftCmdRequest {
    let region = c.get_region(key);
    let Some(leader) = c.leader_of_region(region.id) else {
        c.fail("no leader")
    };
    let mut req = new_request(region.id, region.get_region_epoch().clone(), reqs);
    req.mut_header().set_peer(leader);
    req
}

fn error_of(c: &mut Cluster, req: RaftCmdRequest) -> proto::errorpb::Error {
    match c.call_command(req, Duration::from_secs(3)) {
        Some(resp) => resp.resp.get_header().get_error().clone(),
        None => c.fail("the store did not answer a bad request (it must answer with an error)"),
    }
}

/// An error that is not a region error (no retry hint) and reads `invalid request: ...what...`.
fn assert_invalid(err: &proto::errorpb::Error, what: &str) {
    let hint = err.has_not_leader()
        || err.has_region_not_found()
        || err.has_key_not_in_region()
        || err.has_epoch_not_match()
        || err.has_stale_command()
        || err.has_store_not_match();
    assert!(
        !hint && err.message.starts_with("invalid request: ") && err.message.contains(what),
        "expected an invalid request about {what}, got {err:?}"
    );
}

/// Beyond the original: bad requests get the matching error, never a panic or a hang.
#[test]
fn bad_requests_get_errors_2b() {
    run_seeded("bad_requests_get_errors_2b", |seed| {
        let mut c = cluster("bad_requests_get_errors_2b", seed);
        c.must_put(b"k", b"v");

        // Unknown region.
        let mut req = leader_request(&mut c, b"k", vec![new_get_cf_cmd("default", b"k")]);
        req.mut_header().region_id = 99;
        let err = error_of(&mut c, req);
        assert!(err.has_region_not_found(), "unknown region: {err:?}");
        assert_eq!(err.get_region_not_found().region_id, 99);

        // Wrong epoch: the answer carries the region as it is, for the client to refresh.
        let region = c.get_region(b"k");
        let mut req = leader_request(&mut c, b"k", vec![new_get_cf_cmd("default", b"k")]);
        req.mut_header().mut_region_epoch().version += 5;
        let err = error_of(&mut c, req);
        assert!(err.has_epoch_not_match(), "wrong epoch: {err:?}");
        assert_eq!(
            err.get_epoch_not_match().get_current_regions(),
            &[region][..],
            "wrong epoch: {err:?}"
        );

        // A term far older than the leader's: the command is stale.
        let mut req = leader_request(&mut c, b"k", vec![new_get_cf_cmd("default", b"k")]);
        req.mut_header().term = 1;
        let err = error_of(&mut c, req);
        assert!(err.has_stale_command(), "stale term: {err:?}");

        // A command with no requests, an unknown column family, an empty key, a request
        // without a type: each is an invalid request (no region error: retrying elsewhere
        // cannot help), and says what is wrong.
        let req = leader_request(&mut c, b"k", vec![]);
        assert_invalid(&error_of(&mut c, req), "empty command");
        let req = leader_request(&mut c, b"k", vec![new_put_cf_cmd("nope", b"k", b"v")]);
        assert_invalid(&error_of(&mut c, req), "\"nope\"");
        let req = leader_request(&mut c, b"k", vec![new_put_cf_cmd("raft", b"k", b"v")]);
        assert_invalid(&error_of(&mut c, req), "\"raft\"");
        let req = leader_request(&mut c, b"k", vec![new_put_cf_cmd("default", b"", b"v")]);
        assert_invalid(&error_of(&mut c, req), "empty key");
        let req = leader_request(&mut c, b"k", vec![proto::raft_cmdpb::Request::default()]);
        assert_invalid(&error_of(&mut c, req), "no request type");

        // Sent to a follower: NotLeader with the leader as hint.
        let mut req = leader_request(&mut c, b"k", vec![new_get_cf_cmd("default", b"k")]);
        let leader = req.get_header().get_peer().clone();
        let follower = c
            .get_region(b"k")
            .get_peers()
            .iter()
            .find(|p| p.id != leader.id)
            .cloned()
            .unwrap_or_else(|| c.fail("no follower"));
        req.mut_header().set_peer(follower);
        let err = error_of(&mut c, req);
        assert!(err.has_not_leader(), "follower: {err:?}");
        assert_eq!(err.get_not_leader().get_leader(), &leader);

        // The leader's peer id on another store: that store's peer is a follower.
        let mut req = leader_request(&mut c, b"k", vec![new_snap_cmd()]);
        let mut wrong = req.get_header().get_peer().clone();
        wrong.store_id = if wrong.store_id == 1 { 2 } else { 1 };
        req.mut_header().set_peer(wrong);
        let err = error_of(&mut c, req);
        assert!(err.has_not_leader(), "misaddressed: {err:?}");

        // None of that disturbed the data or the cluster.
        c.must_get(b"k", b"v");
        for store in c.store_ids() {
            c.must_get_cf_equal(store, Cf::Default, b"k", b"v");
        }
    });
}

/// Beyond the original: eight clients contend on two shared keys (puts of unique values and
/// scans over them) under message loss, and the whole history must be linearizable. The
/// generic test writes each key once per iteration, so a store that serves a stale read can
/// pass it; contention on shared keys makes it visible, and at the end every replica must
/// hold exactly the same data.
#[test]
fn shared_keys_linearizable_2b() {
    use harness::cluster::workload::OpSpec;
    const CLIENTS: usize = 8;
    const OPS: usize = 45;
    run_seeded("shared_keys_linearizable_2b", |seed| {
        let mut c = cluster("shared_keys_linearizable_2b", seed);
        c.install_workload(CLIENTS);
        c.add_filter(Filter::DropRate(0.05));
        let scripts: Vec<Vec<OpSpec>> = (0..CLIENTS)
            .map(|client| {
                (0..OPS)
                    .map(|i| {
                        if i % 3 == 2 {
                            OpSpec::Scan {
                                start: b"shared ".to_vec(),
                                end: b"shared~".to_vec(),
                            }
                        } else {
                            OpSpec::Put {
                                key: format!("shared {}", (client + i) % 2).into_bytes(),
                                value: format!("c{client} i{i}").into_bytes(),
                            }
                        }
                    })
                    .collect()
            })
            .collect();
        let results = c.run_scripts(scripts, Duration::from_secs(300));
        assert!(
            results.iter().all(|r| r.len() == OPS),
            "every operation was answered"
        );
        let recorded = c.workload().history().len();
        assert!(
            recorded >= CLIENTS * OPS,
            "the history holds the run: {recorded} operations"
        );
        c.check_linearizable();
    });
}

// -------------------------------------------------------------------------------------------
// Beyond the original: rules of proposing, applying and answering that its workloads cannot
// see. Each test names the student mistake it catches.

/// The peer of region 1 that leads it with the highest term, as the stores themselves see it
/// (the scheduler's view lags), with that term.
fn raft_leader(c: &Cluster) -> Option<(proto::metapb::Peer, u64)> {
    c.world()
        .stores
        .values()
        .filter_map(|n| n.store.as_ref()?.peer(1))
        .filter(|p| p.is_leader())
        .map(|p| (p.meta.clone(), p.term()))
        .max_by_key(|(_, term)| *term)
}

/// A command for region 1 addressed to `peer`, whatever the scheduler thinks of it.
fn command_to(
    c: &mut Cluster,
    peer: &proto::metapb::Peer,
    reqs: Vec<proto::raft_cmdpb::Request>,
) -> RaftCmdRequest {
    let region = c.get_region(b"");
    let mut req = new_request(region.id, region.get_region_epoch().clone(), reqs);
    req.mut_header().set_peer(peer.clone());
    req
}

/// Runs until a leader other than `old` leads region 1 in a newer term than `term`.
fn wait_new_leader(c: &mut Cluster, old: &proto::metapb::Peer, term: u64) -> proto::metapb::Peer {
    let found = c.sim().run_until_true(Duration::from_secs(5), |w| {
        w.stores.values().any(|n| {
            n.store
                .as_ref()
                .and_then(|s| s.peer(1))
                .is_some_and(|p| p.is_leader() && p.meta.id != old.id && p.term() > term)
        })
    });
    match raft_leader(c) {
        Some((p, t)) if found && p.id != old.id && t > term => p,
        _ => c.fail("the majority elected no new leader within 5 s"),
    }
}

/// Column families are separate namespaces on a cluster too: the same key holds a different
/// value in `default`, `lock` and `write`; a get reads the family it names; a delete in one
/// family leaves the others alone, on every replica.
///
/// Catches an apply that reads or deletes in `default` whatever the request's `cf` says. The
/// original's stage 2b workloads use `default` only (stage 2c's `TestOneSnapshot2C` uses
/// `lock`, too late for a stage 2b mistake).
#[test]
fn column_families_are_separate_namespaces_2b() {
    const NAME: &str = "column_families_are_separate_namespaces_2b";
    run_seeded(NAME, |seed| {
        let mut c = cluster(NAME, seed);
        let cfs = [
            ("default", Cf::Default),
            ("lock", Cf::Lock),
            ("write", Cf::Write),
        ];
        for (name, _) in cfs {
            c.must_put_cf(name, b"k", name.as_bytes());
        }
        for (name, _) in cfs {
            let got = c.get_cf(name, b"k");
            assert_eq!(
                got,
                name.as_bytes(),
                "a get of k in {name} must read {name}, but it answered {:?}",
                String::from_utf8_lossy(&got)
            );
        }
        c.must_delete_cf("lock", b"k");
        assert_eq!(c.get_cf("lock", b"k"), b"", "k was deleted from lock");
        assert_eq!(
            c.get_cf("default", b"k"),
            b"default",
            "a delete in lock must leave k in default alone"
        );
        assert_eq!(
            c.get_cf("write", b"k"),
            b"write",
            "a delete in lock must leave k in write alone"
        );
        for store in c.store_ids() {
            c.must_get_cf_none(store, Cf::Lock, b"k");
            c.must_get_cf_equal(store, Cf::Default, b"k", b"default");
            c.must_get_cf_equal(store, Cf::Write, b"k", b"write");
        }
    });
}

/// Sends `first` and then `second` (two commands, as from two clients) to region 1's leader
/// while it is cut off from its followers, so that both are proposed but neither commits,
/// then reconnects it: one append carries both entries and they commit, and are applied, in
/// one batch. Returns both answers.
fn commit_together(
    c: &mut Cluster,
    first: proto::raft_cmdpb::Request,
    second: proto::raft_cmdpb::Request,
) -> (raftstore::CmdResponse, raftstore::CmdResponse) {
    let Some((leader, _)) = raft_leader(c) else {
        c.fail("region 1 has no leader")
    };
    c.add_filter(Filter::Isolate(leader.store_id));
    let cmd = command_to(c, &leader, vec![first]);
    let a = c.send_command(cmd);
    c.run_for(Duration::from_millis(5));
    let cmd = command_to(c, &leader, vec![second]);
    let b = c.send_command(cmd);
    c.run_for(Duration::from_millis(20));
    assert!(
        !a.is_answered() && !b.is_answered(),
        "a leader cut off from every follower cannot commit"
    );
    c.clear_filters();
    let answered = c.sim().run_until_true(Duration::from_secs(3), |_| {
        a.is_answered() && b.is_answered()
    });
    assert!(
        answered,
        "the leader answered both commands once it was reconnected"
    );
    let (Some(a), Some(b)) = (a.take(), b.take()) else {
        c.fail("answers vanished")
    };
    for r in [&a, &b] {
        assert!(
            !r.resp.get_header().has_error(),
            "a command failed: {:?}",
            r.resp.get_header().get_error()
        );
    }
    (a, b)
}

/// A read sees every write ordered before it in the log, even one applied in the same batch:
/// a put and a get (then a delete and a snap) from two clients that commit together (the
/// leader was cut off while it proposed them, and one append carries both afterwards) are
/// applied in log order, so the get reads the put and the snapshot misses the deleted key.
///
/// Catches an apply that collects a batch's writes in a write batch and reads the engine
/// before writing it (a Get or Snap that misses the writes before it in the same `Ready`).
/// Linearizability alone cannot see it (the write and the read overlap in time), but the
/// state machine is the log: entry `i + 1` reads the state after entry `i`. The original's
/// clients never have two commands in one batch on the same key.
#[test]
fn reads_see_the_writes_before_them_in_the_log_2b() {
    const NAME: &str = "reads_see_the_writes_before_them_in_the_log_2b";
    run_seeded(NAME, |seed| {
        let mut c = cluster(NAME, seed);
        c.must_put(b"k", b"v1");
        let (_, get) = commit_together(
            &mut c,
            new_put_cf_cmd("default", b"k", b"v2"),
            new_get_cf_cmd("default", b"k"),
        );
        assert_eq!(
            String::from_utf8_lossy(&get.resp.get_responses()[0].get_get().value),
            "v2",
            "a get committed right after a put of v2 (both applied in one batch) must read v2"
        );
        let (_, snap) = commit_together(&mut c, new_delete_cf_cmd("default", b"k"), new_snap_cmd());
        let Some(snap) = snap.snap else {
            c.fail("a snap answered without a read view")
        };
        assert_eq!(
            snap.get_cf(Cf::Default, b"k")
                .ok()
                .flatten()
                .map(|v| String::from_utf8_lossy(&v).into_owned()),
            None,
            "a snapshot committed right after a delete of k (both applied in one batch) must not hold k"
        );
    });
}

/// A Snap response names the region its snapshot was taken on, in the protobuf response as
/// in the read view, as the scheduler knows the region.
///
/// Catches a Snap response without its region (a server builds its region reader from it).
/// The harness's own scans read the region from the read view, so no other test sees it.
#[test]
fn snap_response_names_its_region_2b() {
    const NAME: &str = "snap_response_names_its_region_2b";
    run_seeded(NAME, |seed| {
        let mut c = cluster(NAME, seed);
        c.must_put(b"k", b"v");
        let region = c.get_region(b"k");
        let resp = c.request(b"k", vec![new_snap_cmd()], Duration::from_secs(5));
        let responses = resp.resp.get_responses();
        assert_eq!(
            responses.len(),
            1,
            "one response per request: {responses:?}"
        );
        assert_eq!(
            responses[0].get_snap().get_region(),
            &region,
            "the Snap response names the region it was taken on"
        );
        let Some(snap) = resp.snap else {
            c.fail("a snap answered without a read view")
        };
        assert_eq!(snap.region, region, "the read view's region");
        assert_eq!(
            snap.get_cf(Cf::Default, b"k").ok().flatten(),
            Some(b"v".to_vec())
        );
    });
}

/// When a leader is deposed with proposals in its log that the new leader never got, those
/// entries are overwritten. Once the old leader applies the entries that overwrote them, it
/// must answer each such proposal with an error (StaleCommand), at once and never as a
/// success: the commands were not applied.
///
/// Catches a store that matches a proposal to an applied entry by index alone (it answers
/// success for another client's command: a lost write acknowledged), and one that drops an
/// overwritten proposal's callback without answering (its client hangs until its timeout).
/// The original's clients retry after a 1 s timeout with the same idempotent put, which hides
/// both.
#[test]
fn overwritten_proposals_are_answered_stale_2b() {
    const NAME: &str = "overwritten_proposals_are_answered_stale_2b";
    run_seeded(NAME, |seed| {
        let mut c = cluster(NAME, seed);
        c.must_put(b"before", b"1");
        let Some((old, term)) = raft_leader(&c) else {
            c.fail("region 1 has no leader")
        };
        c.add_filter(Filter::Isolate(old.store_id));
        // The cut-off leader proposes two writes in its term; nobody else sees them.
        let cmd = command_to(
            &mut c,
            &old,
            vec![new_put_cf_cmd("default", b"lost 1", b"x")],
        );
        let lost1 = c.send_command(cmd);
        let cmd = command_to(
            &mut c,
            &old,
            vec![new_put_cf_cmd("default", b"lost 2", b"x")],
        );
        let lost2 = c.send_command(cmd);
        c.run_for(Duration::from_millis(100));
        assert!(
            !lost1.is_answered() && !lost2.is_answered(),
            "a leader cut off from every follower cannot commit"
        );
        // The others elect a new leader and write at the indexes of the two proposals.
        let new = wait_new_leader(&mut c, &old, term);
        for i in 0..3 {
            let key = format!("new {i}");
            let cmd = command_to(
                &mut c,
                &new,
                vec![new_put_cf_cmd("default", key.as_bytes(), b"y")],
            );
            match c.call_command(cmd, Duration::from_secs(2)) {
                Some(r) if !r.resp.get_header().has_error() => {}
                other => c.fail(&format!("the new leader did not take a write: {other:?}")),
            }
        }
        // Reconnected, the old leader's log is overwritten and it applies the new entries.
        c.clear_filters();
        let answered = c.sim().run_until_true(Duration::from_secs(2), |_| {
            lost1.is_answered() && lost2.is_answered()
        });
        assert!(
            answered,
            "2 s after it reconnected, the old leader (peer {}) has applied the entries that overwrote its two proposals but answered {} of them: their clients wait for their timeouts",
            old.id,
            u8::from(lost1.is_answered()) + u8::from(lost2.is_answered())
        );
        for (key, answer) in [("lost 1", &lost1), ("lost 2", &lost2)] {
            let Some(r) = answer.take() else {
                c.fail("an answer vanished")
            };
            assert!(
                r.resp.get_header().has_error(),
                "the put of {key:?} was overwritten by the new leader's entries, yet the old leader answered it as a success: {:?}",
                r.resp
            );
        }
        for key in ["lost 1", "lost 2"] {
            c.must_get(key.as_bytes(), b"");
        }
    });
}

/// A leader cut off in a minority is deposed without knowing it; a read it is asked for
/// afterwards must not be answered from its own state, which misses the writes the new
/// majority leader acknowledged. It must go through the log (and so never be answered while
/// the old leader is cut off) or be refused.
///
/// Catches reads served from the leader's engine without a round through raft. The
/// original's `TestOnePartition2B` reads through the new leader only, and the generic test
/// catches a stale read only when its client happens to ask the old leader.
#[test]
fn deposed_leader_serves_no_stale_reads_2b() {
    const NAME: &str = "deposed_leader_serves_no_stale_reads_2b";
    run_seeded(NAME, |seed| {
        let mut c = cluster(NAME, seed);
        c.must_put(b"k", b"old");
        let Some((old, term)) = raft_leader(&c) else {
            c.fail("region 1 has no leader")
        };
        c.add_filter(Filter::Isolate(old.store_id));
        let new = wait_new_leader(&mut c, &old, term);
        let cmd = command_to(&mut c, &new, vec![new_put_cf_cmd("default", b"k", b"new")]);
        match c.call_command(cmd, Duration::from_secs(2)) {
            Some(r) if !r.resp.get_header().has_error() => {}
            other => c.fail(&format!("the new leader did not take the write: {other:?}")),
        }
        // Still cut off, the old leader is asked to read k.
        let cmd = command_to(&mut c, &old, vec![new_snap_cmd()]);
        let snap = c.send_command(cmd);
        let cmd = command_to(&mut c, &old, vec![new_get_cf_cmd("default", b"k")]);
        let get = c.send_command(cmd);
        c.run_for(Duration::from_millis(500));
        if let Some(r) = snap.take() {
            if !r.resp.get_header().has_error() {
                let held = r
                    .snap
                    .and_then(|s| s.get_cf(Cf::Default, b"k").ok().flatten());
                assert_eq!(
                    held.as_deref(),
                    Some(&b"new"[..]),
                    "the deposed leader (peer {}) answered a Snap from its own state, which misses the write of k the new leader acknowledged",
                    old.id
                );
            }
        }
        if let Some(r) = get.take() {
            if !r.resp.get_header().has_error() {
                assert_eq!(
                    r.resp.get_responses()[0].get_get().value,
                    b"new",
                    "the deposed leader (peer {}) answered a Get from its own state, which misses the write of k the new leader acknowledged",
                    old.id
                );
            }
        }
        c.clear_filters();
        c.must_get(b"k", b"new");
    });
}
