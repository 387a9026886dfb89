//! [`FileMeta`]: `tinykv-scheduler`'s [`MetaStore`], one small protobuf file in its data
//! directory, replaced whole and synced at every change (changes are rare: a store
//! registering, the bootstrap, every thousandth id).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use proto::adminpb::SchedulerMeta;
use proto::metapb::Store;
use protobuf::Message;
use scheduler::{MetaStore, SavedMeta};

/// The file's name inside the data directory.
const FILE: &str = "scheduler-meta";

/// Why a data directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// The directory or file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// What went wrong.
        source: io::Error,
    },
    /// The file is not a saved scheduler state.
    #[error("{path} is not a scheduler's state: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the decoder said.
        reason: String,
    },
    /// The directory belongs to another cluster.
    #[error("{path} holds the state of cluster {found}, not of cluster {wanted}")]
    OtherCluster {
        /// The file.
        path: PathBuf,
        /// The cluster it belongs to.
        found: u64,
        /// The cluster asked for.
        wanted: u64,
    },
}

/// A scheduler's saved state in a file (see the module docs).
pub struct FileMeta {
    dir: PathBuf,
    state: Mutex<SchedulerMeta>,
}

impl std::fmt::Debug for FileMeta {
    /// The file's path: what an error about it must name.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.dir.join(FILE).display())
    }
}

impl FileMeta {
    /// Opens (or creates) the state of cluster `cluster_id` in `dir`; returns it and what
    /// was saved there before (nothing, for a new directory).
    pub fn open(dir: &Path, cluster_id: u64) -> Result<(FileMeta, SavedMeta), MetaError> {
        let io_err = |path: &Path| {
            let path = path.to_owned();
            move |source| MetaError::Io { path, source }
        };
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let path = dir.join(FILE);
        let state = match fs::read(&path) {
            Ok(bytes) => {
                let state =
                    SchedulerMeta::parse_from_bytes(&bytes).map_err(|e| MetaError::Corrupt {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                if state.cluster_id != cluster_id {
                    return Err(MetaError::OtherCluster {
                        path,
                        found: state.cluster_id,
                        wanted: cluster_id,
                    });
                }
                state
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => SchedulerMeta {
                cluster_id,
                ..Default::default()
            },
            Err(e) => return Err(io_err(&path)(e)),
        };
        let saved = SavedMeta {
            bootstrapped: state.bootstrapped,
            id_limit: state.id_limit,
            stores: state.stores.to_vec(),
        };
        let meta = FileMeta {
            dir: dir.to_owned(),
            state: Mutex::new(state),
        };
        meta.write(&meta.state.lock()).map_err(io_err(&path))?;
        Ok((meta, saved))
    }

    /// Changes the state and replaces the file: a new file is written and synced, renamed
    /// over the old one, and the directory synced, so a crash leaves the old state or the
    /// new one, never a mix.
    fn update(&self, change: impl FnOnce(&mut SchedulerMeta)) -> io::Result<()> {
        let mut state = self.state.lock();
        let mut next = state.clone();
        change(&mut next);
        self.write(&next)?;
        *state = next;
        Ok(())
    }

    fn write(&self, state: &SchedulerMeta) -> io::Result<()> {
        let bytes = state.write_to_bytes().map_err(io::Error::other)?;
        let tmp = self.dir.join(format!("{FILE}.tmp"));
        let mut f = File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, self.dir.join(FILE))?;
        File::open(&self.dir)?.sync_all()
    }
}

impl MetaStore for FileMeta {
    fn save_id_limit(&self, limit: u64) -> io::Result<()> {
        self.update(|s| s.id_limit = s.id_limit.max(limit))
    }

    fn save_bootstrapped(&self) -> io::Result<()> {
        self.update(|s| s.bootstrapped = true)
    }

    fn save_store(&self, store: &Store) -> io::Result<()> {
        self.update(
            |s| match s.stores.iter_mut().find(|old| old.id == store.id) {
                Some(old) => *old = store.clone(),
                None => s.stores.push(store.clone()),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(id: u64, addr: &str) -> Store {
        Store {
            id,
            address: addr.into(),
            ..Default::default()
        }
    }

    #[test]
    fn state_survives_reopening_and_stays_with_its_cluster() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("sched");
        let (meta, saved) = FileMeta::open(&path, 7).expect("a new directory");
        assert_eq!(saved, SavedMeta::default());
        meta.save_id_limit(2000).expect("save");
        meta.save_id_limit(1000)
            .expect("an older limit never lowers it");
        meta.save_bootstrapped().expect("save");
        meta.save_store(&store(1, "a:1")).expect("save");
        meta.save_store(&store(2, "b:2")).expect("save");
        meta.save_store(&store(1, "a:9")).expect("save");
        drop(meta);

        let (_, saved) = FileMeta::open(&path, 7).expect("reopened");
        assert_eq!(
            saved,
            SavedMeta {
                bootstrapped: true,
                id_limit: 2000,
                stores: vec![store(1, "a:9"), store(2, "b:2")],
            }
        );
        let err = FileMeta::open(&path, 8).expect_err("another cluster's directory");
        assert!(
            err.to_string().contains("cluster 7, not of cluster 8"),
            "{err}"
        );
        assert!(
            !path.join(format!("{FILE}.tmp")).exists(),
            "the new file replaced the old"
        );
    }

    #[test]
    fn a_damaged_file_is_an_error_not_a_fresh_start() {
        let dir = tempfile::tempdir().expect("dir");
        fs::write(dir.path().join(FILE), b"\xff\xff\xff garbage").expect("write");
        let err = FileMeta::open(dir.path(), 1).expect_err("corrupt");
        assert!(matches!(err, MetaError::Corrupt { .. }), "{err}");
    }
}
