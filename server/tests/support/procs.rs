//! A cluster of real processes on loopback for tests and benches: `tinykv-scheduler` and
//! `tinykv-server`s as children (killed when dropped), each store behind a TCP proxy it
//! advertises (so a test can cut it off the network), and `tinykv-ctl` runs. Included with
//! `#[path]` by `tests/processes.rs` and `benches/grpc_puts.rs`.

use std::collections::BTreeMap;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use server::grpc::{ClientConfig, ClusterClient};

/// A child process, killed (SIGKILL) and reaped when dropped.
pub struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback address for a child to listen on, free when chosen. The port comes from below
/// Linux's ephemeral range (32768 and up), not from the kernel's port 0: a port the kernel
/// hands out is one it also picks for outbound connections, and one of those (a client's,
/// a store's) may take it before the child binds it, or while a restarted child is down.
pub fn free_addr() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    // Ports handed out by this process, which its children may not have bound yet.
    static TAKEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id()) << 32;
    for _ in 0..1000 {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        // A multiplicative hash spreads concurrent test binaries over the range.
        let mixed = (seed ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
        let port = 20_000 + (mixed % 12_000) as u16;
        let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
        if !taken.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            taken.insert(port);
            return format!("127.0.0.1:{port}");
        }
    }
    panic!("no free port below the ephemeral range");
}

pub fn spawn(bin: &str, args: &[&str], log: &Path) -> Proc {
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

/// A TCP proxy in front of one store: the address the store advertises, forwarding every
/// connection to where it listens. [`Proxy::cut`] is a network partition of that store's
/// inbound side (other stores' raft traffic and clients): open connections are shut down
/// and new ones closed on arrival until [`Proxy::heal`].
pub struct Proxy {
    pub addr: String,
    blocked: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    /// Connections closed on arrival while cut.
    pub refused: Arc<AtomicU64>,
}

impl Proxy {
    pub fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a proxy port");
        let addr = listener.local_addr().expect("its address").to_string();
        let blocked = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(Mutex::new(Vec::<TcpStream>::new()));
        let refused = Arc::new(AtomicU64::new(0));
        let (b, c, r) = (blocked.clone(), conns.clone(), refused.clone());
        // Lives as long as the test binary; a dead target only means refused connections.
        std::thread::spawn(move || {
            for inbound in listener.incoming() {
                let Ok(inbound) = inbound else { continue };
                if b.load(Ordering::SeqCst) {
                    r.fetch_add(1, Ordering::SeqCst);
                    continue; // dropped: closed on arrival
                }
                let Ok(outbound) = TcpStream::connect(&target) else {
                    continue;
                };
                let pipe = |mut from: TcpStream, mut to: TcpStream| {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = from.shutdown(Shutdown::Both);
                        let _ = to.shutdown(Shutdown::Both);
                    });
                };
                let clones = (inbound.try_clone(), outbound.try_clone());
                let (Ok(in2), Ok(out2)) = clones else {
                    continue;
                };
                c.lock()
                    .extend([in2.try_clone(), out2.try_clone()].into_iter().flatten());
                pipe(inbound, out2);
                pipe(outbound, in2);
            }
        });
        Proxy {
            addr,
            blocked,
            conns,
            refused,
        }
    }

    pub fn cut(&self) {
        self.blocked.store(true, Ordering::SeqCst);
        for s in self.conns.lock().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    pub fn heal(&self) {
        self.blocked.store(false, Ordering::SeqCst);
    }
}

/// A scheduler and three stores as child processes (see the module docs).
pub struct Cluster {
    dir: tempfile::TempDir,
    pub scheduler: String,
    /// Where each store listens.
    addrs: BTreeMap<u64, String>,
    /// What each store advertises: its proxy.
    pub proxies: BTreeMap<u64, Proxy>,
    servers: BTreeMap<u64, Proc>,
    _sched: Option<Proc>,
    sched_args: Vec<String>,
}

impl Cluster {
    /// Starts the stores first and the scheduler (with `scheduler_args`) after them:
    /// processes of a cluster may start in any order (a server keeps dialling the scheduler
    /// for a while). With `proxies`, each store advertises a [`Proxy`] in front of it.
    pub fn start(scheduler_args: &[&str], proxies: bool) -> Cluster {
        let dir = tempfile::tempdir().expect("dir");
        let addrs: BTreeMap<u64, String> = (1..=3).map(|id| (id, free_addr())).collect();
        let mut c = Cluster {
            scheduler: free_addr(),
            proxies: addrs
                .iter()
                .filter(|_| proxies)
                .map(|(&id, a)| (id, Proxy::start(a.clone())))
                .collect(),
            addrs,
            servers: BTreeMap::new(),
            _sched: None,
            sched_args: Vec::new(),
            dir,
        };
        for id in 1..=3 {
            c.start_server(id);
        }
        c.sched_args = scheduler_args.iter().map(|a| a.to_string()).collect();
        c.start_scheduler();
        c
    }

    /// Starts (or restarts) the scheduler, on its address and data directory.
    pub fn start_scheduler(&mut self) {
        let data = self.dir.path().join("scheduler");
        let mut args = vec![
            "--addr",
            &self.scheduler,
            "--data-dir",
            data.to_str().expect("a UTF-8 path"),
        ];
        args.extend(self.sched_args.iter().map(String::as_str));
        self._sched = None; // a restart: the old process is gone first
        self._sched = Some(spawn(
            env!("CARGO_BIN_EXE_tinykv-scheduler"),
            &args,
            &self.dir.path().join("scheduler.log"),
        ));
    }

    pub fn start_server(&mut self, id: u64) {
        let path = self.dir.path().join(format!("store-{id}"));
        let log = self.dir.path().join(format!("store-{id}.log"));
        let advertise = self.proxies.get(&id).map_or(&self.addrs[&id], |p| &p.addr);
        let proc = spawn(
            env!("CARGO_BIN_EXE_tinykv-server"),
            &[
                "--store-id",
                &id.to_string(),
                "--addr",
                &self.addrs[&id],
                "--advertise-addr",
                advertise,
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

    pub fn kill(&mut self, id: u64) {
        drop(self.servers.remove(&id));
    }

    /// Runs `tinykv-ctl` with `args` against this cluster's scheduler: its exit code,
    /// stdout and stderr.
    pub fn ctl(&self, args: &[&str]) -> (i32, String, String) {
        ctl_at(&self.scheduler, args)
    }

    /// Runs `tinykv-ctl` and expects it to succeed; its stdout.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.ctl(args);
        assert_eq!(
            code,
            0,
            "tinykv-ctl {args:?} failed:\n{out}{err}\n{}",
            self.logs()
        );
        out
    }

    /// Runs `tinykv-ctl` and expects it to fail with a message containing `expect`.
    pub fn ctl_err(&self, args: &[&str], expect: &str) {
        let (code, out, err) = self.ctl(args);
        assert!(
            code != 0 && err.contains(expect),
            "tinykv-ctl {args:?} should fail with {expect:?}; exit {code}:\n{out}{err}"
        );
    }

    pub fn logs(&self) -> String {
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

/// Runs `tinykv-ctl` with `args` against the scheduler at `scheduler`: its exit code,
/// stdout and stderr.
pub fn ctl_at(scheduler: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tinykv-ctl"))
        .args(["--scheduler", scheduler, "--timeout", "20"])
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("tinykv-ctl runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn client(addr: &str) -> ClusterClient {
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

pub fn wait_until(c: &Cluster, what: &str, mut cond: impl FnMut() -> bool) {
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
