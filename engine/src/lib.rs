//! The storage engine of tinykv-rs.
//!
//! Every byte the course persists goes through this crate, and this crate is the only one that
//! talks to [fjall](https://docs.rs/fjall) (a pure-Rust LSM tree; the original course used
//! Badger, which has no Rust port). Keeping the API small keeps the engine replaceable.
//!
//! - [`Engine`]: one fjall database with a fixed set of column families ([`Cf`]), point reads,
//!   atomic [`WriteBatch`]es across column families with a chosen [`Durability`],
//!   point-in-time [`Snapshot`]s, ordered and bounded [`DbIterator`]s, and range deletes.
//! - [`Engines`]: the pair every store owns: `kv` (user data in `default`/`lock`/`write`, plus
//!   apply and region state in the internal `raft` column family) and `raft` (raft log and raft
//!   state).
//! - [`keys`]: the byte layout of the course's local keys (raft log entries by region and
//!   index, raft/apply/region state), built so that byte order is numeric order.
//!
//! **Simulated durability.** The simulator crashes a store by dropping its in-memory state
//! and handing the same open engines to the restarted store, so the engines themselves must
//! forget what a real crash would lose. Opened with [`EngineOptions::for_simulation`] (or
//! [`EngineOptions::simulated_durability`] set), an engine remembers, for every
//! [`Durability::Buffered`] batch no sync point has covered yet, what the batch overwrote;
//! [`Engine::simulate_crash`] (or [`Engines::simulate_crash`]) rolls the engine back to its
//! last [`Durability::Sync`] write or [`Engine::sync`], so a missing sync fails a test
//! instead of hiding. A [`WriteFuse`] armed on a store's engines crashes it *between* two of
//! its writes: every write from the one it picks on is lost to the crash and unseen by
//! [`WriteObserver`]s. The mode never fsyncs (it models durability instead), so its files on
//! disk are not crash-safe; outside it the engine behaves and costs exactly as before.
//!
//! ```
//! use engine::{Cf, Durability, Engine, EngineOptions, WriteBatch};
//!
//! let dir = tempfile::tempdir()?;
//! let engine = Engine::open(dir.path(), Cf::DATA, &EngineOptions::for_tests())?;
//! let mut wb = WriteBatch::new();
//! wb.put_cf(Cf::Default, b"k1", b"v1")?;
//! wb.put_cf(Cf::Write, b"k1", b"w1")?;
//! engine.write(wb, Durability::Sync)?;
//!
//! let snap = engine.snapshot()?;
//! engine.delete_cf(Cf::Default, b"k1")?;
//! assert_eq!(snap.get_cf(Cf::Default, b"k1")?.as_deref(), Some(&b"v1"[..]));
//! assert_eq!(engine.get_cf(Cf::Default, b"k1")?, None);
//! # Ok::<(), engine::Error>(())
//! ```
#![deny(missing_docs)]

mod cf;
mod db;
mod engines;
mod error;
mod fuse;
mod iterator;
pub mod keys;
mod observer;
mod sim;
mod snapshot;
mod write_batch;

pub use cf::Cf;
pub use db::{Durability, Engine, EngineOptions, Value};
pub use engines::{CrashLoss, Engines};
pub use error::{Error, Result};
pub use fuse::{EngineKind, FuseBlow, FuseTrigger, WriteFuse};
pub use iterator::DbIterator;
pub use observer::{BatchOp, WriteObserver};
pub use snapshot::Snapshot;
pub use write_batch::WriteBatch;
