//! The stores' `tracing` logs in a test's output, when asked for.
//!
//! Tests are quiet by default. With `RUST_LOG` set (`RUST_LOG=raftstore=info`, say: target=level
//! pairs, no regular expressions), the first
//! cluster a test process builds installs a subscriber that writes through the test harness's
//! output capture, so `cargo test <name> -- --nocapture` shows what the stores did, in event
//! order (the simulator runs one event at a time on one thread).

use std::sync::Once;

/// Installs the log subscriber once per process if `RUST_LOG` is set; does nothing otherwise.
pub fn init_from_env() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        use tracing_subscriber::layer::SubscriberExt as _;
        use tracing_subscriber::util::SubscriberInitExt as _;
        let Ok(spec) = std::env::var("RUST_LOG") else {
            return;
        };
        // `target=level` pairs and a bare default level, as `RUST_LOG` usually holds.
        let filter: tracing_subscriber::filter::Targets = match spec.parse() {
            Ok(filter) => filter,
            Err(e) => {
                eprintln!("RUST_LOG={spec:?} is not a list of target=level pairs: {e}");
                return;
            }
        };
        let fmt = tracing_subscriber::fmt::layer()
            .with_test_writer()
            .with_ansi(false)
            .without_time();
        let _ = tracing_subscriber::registry()
            .with(fmt)
            .with(filter)
            .try_init();
    });
}
