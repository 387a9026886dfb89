//! The pair of engines every store owns.

use std::path::{Path, PathBuf};

use crate::{Cf, Engine, EngineKind, EngineOptions, Result, WriteFuse};

/// What a simulated crash of a store lost: the unsynced batches each engine dropped (see
/// [`Engines::simulate_crash`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CrashLoss {
    /// Batches the kv engine lost.
    pub kv: usize,
    /// Batches the raft engine lost.
    pub raft: usize,
}

impl CrashLoss {
    /// Batches lost by both engines together.
    pub fn total(&self) -> usize {
        self.kv + self.raft
    }
}

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

    /// Simulates a crash of the store's machine: each engine rolls back to its own last sync
    /// point (they have separate journals, so each loses its own unsynced tail). Both engines
    /// stay open for the restarted store. See [`Engine::simulate_crash`].
    ///
    /// Errors with [`crate::Error::NotSimulated`] unless the engines were opened with
    /// [`EngineOptions::simulated_durability`]; nothing is rolled back then.
    pub fn simulate_crash(&self) -> Result<CrashLoss> {
        if !self.kv.is_simulated() || !self.raft.is_simulated() {
            return Err(crate::Error::NotSimulated);
        }
        let kv = self.kv.simulate_crash()?;
        let raft = self.raft.simulate_crash()?;
        Ok(CrashLoss { kv, raft })
    }

    /// Arms `fuse` on both engines, so that it counts the store's writes to either and the
    /// crash it plans cuts both at one point (see [`WriteFuse`]). Replaces any fuse armed
    /// before.
    ///
    /// Errors with [`crate::Error::NotSimulated`] (arming nothing) unless both engines were
    /// opened with [`EngineOptions::simulated_durability`].
    pub fn arm_write_fuse(&self, fuse: &WriteFuse) -> Result<()> {
        if !self.kv.is_simulated() || !self.raft.is_simulated() {
            return Err(crate::Error::NotSimulated);
        }
        self.kv.arm_write_fuse(fuse.clone(), EngineKind::Kv)?;
        self.raft.arm_write_fuse(fuse.clone(), EngineKind::Raft)
    }

    /// Removes the fuse from both engines (see [`Engine::disarm_write_fuse`]).
    pub fn disarm_write_fuse(&self) {
        self.kv.disarm_write_fuse();
        self.raft.disarm_write_fuse();
    }

    /// Whether the fuse armed on these engines has blown.
    pub fn write_fuse_blown(&self) -> bool {
        self.kv.write_fuse_blown() || self.raft.write_fuse_blown()
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
