//! What the binaries (`tinykv-server`, `tinykv-scheduler`, `tinykv-ctl`) share.

use std::net::{SocketAddr, ToSocketAddrs};

/// Installs a log subscriber on stderr whose levels come from `RUST_LOG` (`target=level`
/// pairs and a bare default level, e.g. `info,raftstore=debug`); `default` when unset.
pub fn init_logging(default: &str) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let spec = std::env::var("RUST_LOG").unwrap_or_else(|_| default.to_owned());
    let filter: tracing_subscriber::filter::Targets = match spec.parse() {
        Ok(filter) => filter,
        Err(e) => {
            eprintln!(
                "RUST_LOG={spec:?} is not a list of target=level pairs ({e}); using {default}"
            );
            default.parse().unwrap_or_default()
        }
    };
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(filter)
        .try_init();
}

/// `addr` (`host:port`) resolved to a socket address to listen on, or a message that says
/// what is wrong with it.
pub fn listen_addr(flag: &str, addr: &str) -> Result<SocketAddr, String> {
    addr.to_socket_addrs()
        .map_err(|e| format!("{flag} {addr:?} is not a host:port address: {e}"))?
        .next()
        .ok_or_else(|| format!("{flag} {addr:?} resolves to no address"))
}

/// The exit code of a binary's run, its error printed as `name: error`.
pub fn exit(name: &str, result: Result<(), String>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The process's tokio runtime (two workers: the gRPC services and clients run there, the
/// stores on threads of their own).
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

/// Blocks the calling thread until the process is killed.
pub fn park_forever() -> ! {
    loop {
        std::thread::park();
    }
}
