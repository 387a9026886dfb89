//! The real thing: `tinykv-scheduler` and three `tinykv-server`s as child processes on
//! loopback, each store behind a TCP proxy it advertises. Clients write and read through
//! `ClusterClient` while the leader's process is killed with SIGKILL and restarted, then a
//! follower's, then another follower is cut off the network at its proxy and healed.
//! Afterwards every acknowledged write is read back and the clients' history must be
//! linearizable. A second test drives `tinykv-ctl`'s administration. Real clock, bounded
//! waits; every process started is killed when the test ends, pass or fail.

// lab:needs 2aa..3c
#[path = "support/procs.rs"]
mod procs;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::linearizability::{check, History, KvInput, KvOutput};
use parking_lot::Mutex;
use procs::{client, ctl_at, free_addr, wait_until, Cluster};
#[test]
fn servers_survive_sigkill_of_the_leader_and_a_follower_and_stay_linearizable() {
    let mut c = Cluster::start(&["--no-balance"], true);
    let admin = client(&c.scheduler);
    wait_until(&c, "a first write", || {
        admin.put("default", b"k", b"0").is_ok()
    });
    wait_until(&c, "the region on three stores", || {
        admin
            .region(b"k")
            .ok()
            .flatten()
            .is_some_and(|(r, _)| r.get_peers().len() == 3)
    });

    let start = Instant::now();
    let now = move || start.elapsed().as_micros() as u64;
    let history = Arc::new(Mutex::new(History::<KvInput, KvOutput>::new()));
    // Per key, its writes in order (one client per key) and whether each was acknowledged.
    let writes = Arc::new(Mutex::new(BTreeMap::<Vec<u8>, Vec<(Vec<u8>, bool)>>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4u64)
        .map(|t| {
            let (history, writes, stop) = (history.clone(), writes.clone(), stop.clone());
            let kv = client(&c.scheduler);
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    i += 1;
                    // Each client owns its keys; a few keys, many writes each.
                    let key = format!("c{t}-k{}", i % 5).into_bytes();
                    if i.is_multiple_of(3) {
                        let op = history
                            .lock()
                            .invoke(t, KvInput::Get { key: key.clone() }, now());
                        match kv.get("default", &key) {
                            Ok(v) => history.lock().complete(
                                op,
                                KvOutput::Value(v.unwrap_or_default()),
                                now(),
                            ),
                            Err(_) => history.lock().timeout(op),
                        }
                    } else {
                        let value = format!("v{i}").into_bytes();
                        let input = KvInput::Put {
                            key: key.clone(),
                            value: value.clone(),
                        };
                        let op = history.lock().invoke(t, input, now());
                        let done = kv.put("default", &key, &value).is_ok();
                        if done {
                            history.lock().complete(op, KvOutput::Done, now());
                        } else {
                            history.lock().timeout(op);
                        }
                        writes.lock().entry(key).or_default().push((value, done));
                    }
                }
            })
        })
        .collect();

    let leader = || {
        admin
            .region(b"k")
            .ok()
            .flatten()
            .and_then(|(_, l)| l)
            .map_or(1, |p| p.store_id)
    };
    std::thread::sleep(Duration::from_millis(800));
    let first = leader();
    c.kill(first);
    std::thread::sleep(Duration::from_millis(1500));
    c.start_server(first);
    std::thread::sleep(Duration::from_millis(1000));
    let current = leader();
    let follower = (1..=3).find(|&s| s != current).unwrap_or(1);
    c.kill(follower);
    std::thread::sleep(Duration::from_millis(1500));
    c.start_server(follower);
    std::thread::sleep(Duration::from_millis(800));
    // A network partition: another follower's inbound side (raft traffic and clients) goes
    // dark for a while, then heals. Its elections disrupt the others meanwhile (no pre-vote);
    // after the heal it catches up.
    let current = leader();
    let cut = (1..=3)
        .find(|&s| s != current && s != follower)
        .unwrap_or(1);
    c.proxies[&cut].cut();
    std::thread::sleep(Duration::from_millis(1500));
    c.proxies[&cut].heal();
    assert!(
        c.proxies[&cut].refused.load(Ordering::SeqCst) > 0,
        "nobody tried to reach store {cut} during its partition"
    );
    std::thread::sleep(Duration::from_millis(1000));
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().expect("a client thread");
    }

    // Every key reads back as its last acknowledged write, or as a later write whose answer
    // was lost; the read-backs join the history.
    let writes = writes.lock().clone();
    let acked = writes.values().flatten().filter(|(_, done)| *done).count();
    assert!(
        acked >= 10,
        "only {acked} writes got through:\n{}",
        c.logs()
    );
    for (key, ws) in &writes {
        let Some(last) = ws.iter().rposition(|(_, done)| *done) else {
            continue;
        };
        let op = history
            .lock()
            .invoke(99, KvInput::Get { key: key.clone() }, now());
        let got = admin
            .get("default", key)
            .unwrap_or_else(|e| panic!("read back: {e}\n{}", c.logs()))
            .unwrap_or_default();
        history
            .lock()
            .complete(op, KvOutput::Value(got.clone()), now());
        assert!(
            ws[last..].iter().any(|(v, _)| *v == got),
            "{} reads {:?}, not its last acknowledged value {:?} or a later one\n{}",
            String::from_utf8_lossy(key),
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&ws[last].0),
            c.logs()
        );
    }
    let history = history.lock();
    let result = check(&history);
    assert!(
        result.is_ok(),
        "{result}\n{} operations\n{}",
        history.len(),
        c.logs()
    );
}

/// `tinykv-ctl`'s administration on a live cluster of processes. With the replica checker
/// off, the region stays on the store that bootstrapped it until the tool grows it (two
/// add-peers, each new peer catching up through a snapshot), moves its leadership, removes
/// the old leader's peer and splits it; data written before stays readable on both sides of
/// the split. Refusals come back at once with the reason: a peer that is not there, a store
/// the scheduler does not know, a key that already starts a region, no scheduler.
#[test]
fn ctl_grows_moves_shrinks_and_splits_a_region() {
    let mut c = Cluster::start(&["--no-balance", "--no-replica-checker"], true);
    let admin = client(&c.scheduler);
    wait_until(&c, "a first write", || {
        admin.put("default", b"a", b"1").is_ok()
    });
    c.ctl_ok(&["put", "z", "26"]);
    let (region, _) = admin
        .region(b"a")
        .expect("the scheduler answers")
        .expect("the region");
    let rid = region.id.to_string();
    let first = region.get_peers()[0].store_id;
    let others: Vec<u64> = (1..=3).filter(|&s| s != first).collect();
    let peers_on = |stores: &[u64]| {
        let (r, _) = admin.region(b"a").ok().flatten().expect("the region");
        let mut on: Vec<u64> = r.get_peers().iter().map(|p| p.store_id).collect();
        on.sort_unstable();
        assert_eq!(on, stores, "the region's stores");
    };
    assert_eq!(region.get_peers().len(), 1, "no replica checker: one peer");

    for s in &others {
        let out = c.ctl_ok(&["add-peer", &rid, &s.to_string()]);
        assert!(out.contains(&format!("on store {s} done")), "{out}");
    }
    peers_on(&[1, 2, 3]);
    let to = others[0];
    let out = c.ctl_ok(&["transfer-leader", &rid, &to.to_string()]);
    assert!(
        out.contains(&format!("on store {to} (leader)")),
        "the region as printed shows the new leader:\n{out}"
    );
    let out = c.ctl_ok(&["remove-peer", &rid, &first.to_string()]);
    assert!(!out.contains(&format!("on store {first}\n")), "{out}");
    peers_on(&others);
    c.ctl_err(
        &["remove-peer", &rid, &first.to_string()],
        &format!("has no peer on store {first}"),
    );
    c.ctl_err(&["add-peer", &rid, "9"], "store 9 not found");
    c.ctl_err(&["transfer-leader", "777", "1"], "region 777 not found");

    let out = c.ctl_ok(&["split", "m"]);
    assert!(
        out.contains(r#"["", "m")"#) && out.contains(r#"["m", "")"#),
        "both halves printed:\n{out}"
    );
    assert_eq!(c.ctl_ok(&["get", "a"]), "1\n");
    assert_eq!(c.ctl_ok(&["get", "z"]), "26\n");
    let right = c.ctl_ok(&["region", "z"]);
    assert!(right.contains(r#"["m", "")"#), "{right}");
    c.ctl_err(&["split", "m"], "starts already");
    assert_eq!(c.ctl_ok(&["scan"]), "a\t1\nz\t26\n");

    // A restarted scheduler still knows the cluster (its stores, that it is bootstrapped,
    // how far its ids got) and relearns the regions from heartbeats: the next split gets
    // ids it never handed out before.
    let (left, right) = admin.split(b"t").expect("a split before the restart");
    let before: Vec<u64> = [&left, &right]
        .iter()
        .flat_map(|r| std::iter::once(r.id).chain(r.get_peers().iter().map(|p| p.id)))
        .collect();
    c.start_scheduler();
    let admin = client(&c.scheduler);
    wait_until(
        &c,
        "the regions again after the scheduler's restart",
        || admin.region(b"z").ok().flatten().is_some(),
    );
    assert_eq!(c.ctl_ok(&["get", "z"]), "26\n");
    let (_, newest) = admin.split(b"x").expect("a split after the restart");
    let max_before = before.iter().max().copied().unwrap_or_default();
    assert!(
        newest.id > max_before && newest.get_peers().iter().all(|p| p.id > max_before),
        "ids repeat after a restart: {newest:?} vs {before:?}"
    );

    let dead = free_addr();
    let (code, _, err) = ctl_at(&dead, &["get", "a"]);
    assert!(
        code != 0 && err.contains("cannot reach the scheduler"),
        "{code}: {err}"
    );
}
// lab:end-needs
