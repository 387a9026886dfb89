//! Configuration of a KV server.

use std::path::{Path, PathBuf};

use engine::EngineOptions;

/// Where and how a server keeps its data.
#[derive(Debug, Clone)]
pub struct Config {
    /// Directory of the server's engines.
    pub db_path: PathBuf,
    /// Engine knobs (cache size, background threads).
    pub engine: EngineOptions,
}

impl Config {
    /// A server storing under `db_path` with default engine options.
    pub fn new(db_path: impl AsRef<Path>) -> Self {
        Config {
            db_path: db_path.as_ref().to_path_buf(),
            engine: EngineOptions::default(),
        }
    }

    /// The configuration the graded suites use: small caches, one engine thread.
    pub fn test(db_path: impl AsRef<Path>) -> Self {
        Config {
            db_path: db_path.as_ref().to_path_buf(),
            engine: EngineOptions::for_tests(),
        }
    }
}
