//! The pair of engines every store owns.

use std::path::{Path, PathBuf};

use crate::{Cf, Engine, EngineOptions, Result};

/// A store's two engines, as in the original course: `kv` holds user data (`default`, `lock`,
/// `write`) and the apply and region state (in [`Cf::Raft`]); `raft` holds the raft log and
/// the raft state. They live in `<path>/kv` and `<path>/raft`.
#[derive(Clone, Debug)]
pub struct Engines {
    /// User data and apply/region state.
    pub kv: Engine,
    /// Raft log and raft state.
    pub raft: Engine,
    path: PathBuf,
}

impl Engines {
    /// Opens (or creates) both engines under `path`.
    pub fn open(path: impl AsRef<Path>, opts: &EngineOptions) -> Result<Engines> {
        let path = path.as_ref().to_path_buf();
        let kv = Engine::open(path.join("kv"), Cf::KV_ENGINE, opts)?;
        let raft = Engine::open(path.join("raft"), Cf::RAFT_ENGINE, opts)?;
        Ok(Engines { kv, raft, path })
    }

    /// The directory holding both engines.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes everything written to both engines durable.
    pub fn sync(&self) -> Result<()> {
        self.kv.sync()?;
        self.raft.sync()
    }

    /// Closes both engines (flushing them); further use returns [`crate::Error::Closed`].
    pub fn close(&self) -> Result<()> {
        self.kv.close()?;
        self.raft.close()
    }

    /// Closes both engines and deletes their files. Other handles to these engines keep
    /// working only until they touch the engine again (they get [`crate::Error::Closed`]).
    pub fn destroy(self) -> Result<()> {
        self.close()?;
        let path = self.path.clone();
        drop(self);
        match std::fs::remove_dir_all(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
