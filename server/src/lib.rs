//! The tinykv-rs key-value service.
//!
//! Stage 1 of the course lives here: the [`Storage`] abstraction every KV service sits on,
//! [`StandaloneStorage`] (one local engine, no replication) and the raw API handlers of
//! [`Server`] (`raw_get`, `raw_put`, `raw_delete`, `raw_scan`). Later stages add a raft-backed
//! storage (stage 2b) and the Percolator transaction handlers (stage 4); the handlers are
//! plain functions over protobuf requests so each of those is an addition. The gRPC front end
//! that real nodes serve and call ([`grpc`]) wraps them the same way.
// lab:needs 1
//!
//! ```
//! use proto::kvrpcpb::{RawGetRequest, RawPutRequest};
//! use server::{Config, Server, StandaloneStorage};
//!
//! let dir = tempfile::tempdir()?;
//! let server = Server::new(StandaloneStorage::new(&Config::test(dir.path()))?);
//! let mut put = RawPutRequest::new();
//! put.key = b"k".to_vec();
//! put.value = b"v".to_vec();
//! put.cf = "default".into();
//! server.raw_put(&put)?;
//! let mut get = RawGetRequest::new();
//! get.key = b"k".to_vec();
//! get.cf = "default".into();
//! assert_eq!(server.raw_get(&get)?.value, b"v");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
// lab:end-needs
#![deny(missing_docs)]

pub mod cli;
mod config;
mod error;
pub mod grpc;
pub mod raft_storage;
pub mod raw_api;
pub mod scheduler_meta;
mod standalone_storage;
pub mod storage;

pub use config::Config;
pub use error::{Error, Result};
pub use raft_storage::RaftStorage;
pub use raw_api::Server;
pub use standalone_storage::StandaloneStorage;
pub use storage::{Modify, Storage, StorageReader};
