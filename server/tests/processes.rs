//! The real thing: `tinykv-scheduler` and three `tinykv-server`s as child processes on
//! loopback, clients writing and reading through `ClusterClient` meanwhile, the leader's
//! process killed with SIGKILL and restarted, then a follower's. Afterwards every
//! acknowledged write is read back and the clients' history must be linearizable. Real
//! clock, bounded waits; every process started is killed when the test ends, pass or fail.

// lab:needs 2aa..3c
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::linearizability::{check, History, KvInput, KvOutput};
use parking_lot::Mutex;
use server::grpc::{ClientConfig, ClusterClient};

/// A child process, killed (SIGKILL) and reaped when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_addr() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("a free port");
    l.local_addr().expect("its address").to_string()
}

fn spawn(bin: &str, args: &[&str], log: &Path) -> Proc {
    let log = std::fs::File::create(log).expect("log file");
    let child = Command::new(bin)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
    Proc(child)
}

struct Cluster {
    dir: tempfile::TempDir,
    scheduler: String,
    addrs: BTreeMap<u64, String>,
    servers: BTreeMap<u64, Proc>,
    _sched: Option<Proc>,
}

impl Cluster {
    /// Starts the stores first and the scheduler after them: processes of a cluster may
    /// start in any order (a server keeps dialling the scheduler for a while).
    fn start() -> Cluster {
        let dir = tempfile::tempdir().expect("dir");
        let mut c = Cluster {
            scheduler: free_addr(),
            addrs: (1..=3).map(|id| (id, free_addr())).collect(),
            servers: BTreeMap::new(),
            _sched: None,
            dir,
        };
        for id in 1..=3 {
            c.start_server(id);
        }
        c._sched = Some(spawn(
            env!("CARGO_BIN_EXE_tinykv-scheduler"),
            &["--addr", &c.scheduler, "--no-balance"],
            &c.dir.path().join("scheduler.log"),
        ));
        c
    }

    fn start_server(&mut self, id: u64) {
        let path = self.dir.path().join(format!("store-{id}"));
        let log = self.dir.path().join(format!("store-{id}.log"));
        let proc = spawn(
            env!("CARGO_BIN_EXE_tinykv-server"),
            &[
                "--store-id",
                &id.to_string(),
                "--addr",
                &self.addrs[&id],
                "--scheduler",
                &self.scheduler,
                "--path",
                path.to_str().expect("a UTF-8 path"),
                "--tick-ms",
                "50",
            ],
            &log,
        );
        self.servers.insert(id, proc);
    }

    fn kill(&mut self, id: u64) {
        drop(self.servers.remove(&id));
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        for name in ["scheduler", "store-1", "store-2", "store-3"] {
            let text = std::fs::read_to_string(self.dir.path().join(format!("{name}.log")))
                .unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            out += &format!("--- {name}.log (last lines)\n");
            for l in tail.into_iter().rev() {
                out += l;
                out += "\n";
            }
        }
        out
    }
}

fn client(addr: &str) -> ClusterClient {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let cfg = ClientConfig {
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_millis(500),
            ..ClientConfig::default()
        };
        match ClusterClient::connect(addr, cfg) {
            Ok(c) => return c,
            Err(e) if Instant::now() > deadline => panic!("the scheduler never came up: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn wait_until(c: &Cluster, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            c.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn servers_survive_sigkill_of_the_leader_and_a_follower_and_stay_linearizable() {
    let mut c = Cluster::start();
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
// lab:end-needs
