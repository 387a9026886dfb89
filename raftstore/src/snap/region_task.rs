//! The region worker's two jobs, as tasks: generating a snapshot of a region, and applying a
//! received one.
//!
//! Both run outside the store's event handling (see [`crate::task`]): generation reads an
//! engine snapshot taken when raft asked for a snapshot, so the store goes on applying
//! meanwhile; application writes the region's range while the peer waits (a peer applying a
//! snapshot processes no `Ready`, so it neither applies later entries nor answers reads
//! before the data is there). Application proceeds in steps of one bounded batch, so the
//! simulator can interleave other events, or crash the store, between two of them.

use std::path::PathBuf;

use engine::{keys, Cf, Durability, Engines, Snapshot as EngineSnapshot, WriteBatch};
use proto::eraftpb::{Snapshot, SnapshotMetadata};
use proto::metapb::Region;
use proto::raft_serverpb::{PeerState, RaftApplyState, RaftSnapshotData, RegionLocalState};
use protobuf::Message as _;

use super::file::{self, Records, SNAPSHOT_CFS};
use super::{SnapFileKind, SnapKey, SnapManager};
use crate::meta::write_region_state;
use crate::util::{conf_state_from_region, KeyRange};
use crate::{Error, Result};

/// Generates the snapshot of a region at the applied index of an engine snapshot.
pub struct GenSnapTask {
    /// The region.
    pub region_id: u64,
    /// The applied index the engine snapshot was taken at.
    pub index: u64,
    /// The term of the entry at `index`.
    pub term: u64,
    /// The kv engine as of `index`.
    pub kv_snap: EngineSnapshot,
    /// Where the file goes.
    pub mgr: SnapManager,
}

impl std::fmt::Debug for GenSnapTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "GenSnapTask(region {} at {}/{})",
            self.region_id, self.index, self.term
        )
    }
}

impl GenSnapTask {
    /// Writes the region's data to `gen_R_T_I.snap` and returns the raft snapshot describing
    /// it. The region and the applied index come from the engine snapshot itself, so data,
    /// region and index always agree.
    pub fn run(self) -> Result<Snapshot> {
        let GenSnapTask {
            region_id,
            index,
            term,
            kv_snap,
            mgr,
        } = self;
        let apply: RaftApplyState = kv_snap
            .get_msg_cf(Cf::Raft, &keys::apply_state_key(region_id))?
            .ok_or_else(|| Error::other(format!("region {region_id} has no apply state")))?;
        if apply.applied_index != index {
            return Err(Error::other(format!(
                "region {region_id}: the engine snapshot is at applied index {}, not {index}",
                apply.applied_index
            )));
        }
        let state: RegionLocalState = kv_snap
            .get_msg_cf(Cf::Raft, &keys::region_state_key(region_id))?
            .ok_or_else(|| Error::other(format!("region {region_id} has no region state")))?;
        let region = state.get_region();
        let key = SnapKey {
            region_id,
            term,
            index,
        };
        let tmp = mgr.path(SnapFileKind::Generating, &key);
        let info = file::write_region(&kv_snap, region, &tmp)?;
        let path = mgr.path(SnapFileKind::Generated, &key);
        // Renamed into place: a stream still reading an older file with this name keeps it.
        std::fs::rename(&tmp, &path).map_err(file::io(&path))?;
        mgr.delete_generated_except(region_id, &key)?;
        let data = file::snapshot_data(region, &info)
            .write_to_bytes()
            .map_err(|e| Error::other(format!("encoding snapshot data: {e}")))?;
        let mut meta = SnapshotMetadata {
            index,
            term,
            ..Default::default()
        };
        meta.set_conf_state(conf_state_from_region(region));
        let mut snap = Snapshot::default();
        snap.set_metadata(meta);
        snap.data = data.into();
        tracing::debug!(
            "region {region_id}: generated snapshot {key}: {} pairs, {} bytes",
            info.pairs,
            info.size
        );
        Ok(snap)
    }
}

/// Where an application stands.
enum Phase {
    /// Deleting what the range holds, column family `cf` from key `from` on.
    Clear { cf: usize, from: Vec<u8> },
    /// Writing the file's records.
    Ingest(Box<Records>),
    /// Marking the region Normal.
    Finish,
}

/// Applies a received snapshot file to a region whose state is already `Applying` (with the
/// snapshot's region, apply state and raft state written by `PeerStorage::apply_snapshot`):
/// deletes everything in the region's range, writes the file's pairs, and marks the region
/// `Normal`, durably. A store that crashes before the end finds the region `Applying` when it
/// restarts and runs the task again from the start (which is why the range is cleared first).
pub struct ApplySnapTask {
    /// The region.
    pub region_id: u64,
    /// The snapshot.
    pub key: SnapKey,
    region: Region,
    data: RaftSnapshotData,
    path: PathBuf,
    batch_bytes: usize,
    phase: Phase,
    applied_pairs: u64,
}

impl std::fmt::Debug for ApplySnapTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let phase = match &self.phase {
            Phase::Clear { cf, .. } => format!("clearing {}", SNAPSHOT_CFS[*cf]),
            Phase::Ingest(_) => "ingesting".to_owned(),
            Phase::Finish => "finishing".to_owned(),
        };
        write!(f, "ApplySnapTask({} {phase})", self.key)
    }
}

impl ApplySnapTask {
    /// A task applying the received file of snapshot `key` (described by `data`) from `mgr`,
    /// writing batches of about `batch_bytes`.
    pub fn new(
        key: SnapKey,
        data: RaftSnapshotData,
        mgr: &SnapManager,
        batch_bytes: usize,
    ) -> Box<ApplySnapTask> {
        let start = data.get_region().get_start_key().to_vec();
        Box::new(ApplySnapTask {
            region_id: key.region_id,
            key,
            region: data.get_region().clone(),
            path: mgr.path(SnapFileKind::Received, &key),
            data,
            batch_bytes: batch_bytes.max(1),
            phase: Phase::Clear { cf: 0, from: start },
            applied_pairs: 0,
        })
    }

    /// Does one bounded batch of work. `Ok(Some(task))`: more to do; `Ok(None)`: the region
    /// is `Normal` with the snapshot's data.
    pub fn step(mut self: Box<Self>, engines: &Engines) -> Result<Option<Box<ApplySnapTask>>> {
        match std::mem::replace(&mut self.phase, Phase::Finish) {
            Phase::Clear { cf, from } => {
                let range = KeyRange::of_region(&self.region);
                let next = delete_some(
                    engines,
                    SNAPSHOT_CFS[cf],
                    &from,
                    range.end_bound(),
                    self.batch_bytes,
                )?;
                self.phase = match next {
                    Some(from) => Phase::Clear { cf, from },
                    None if cf + 1 < SNAPSHOT_CFS.len() => Phase::Clear {
                        cf: cf + 1,
                        from: range.start,
                    },
                    None => Phase::Ingest(Box::new(Records::open(&self.path, &self.data)?)),
                };
            }
            Phase::Ingest(mut records) => {
                let mut wb = WriteBatch::new();
                let mut done = false;
                while wb.data_size() < self.batch_bytes {
                    match records.next_record()? {
                        Some(r) => {
                            if !crate::util::region_contains_key(&self.region, &r.key) {
                                return Err(Error::other(format!(
                                    "snapshot {}: key {:02x?} is outside the region",
                                    self.key, r.key
                                )));
                            }
                            wb.put_cf(r.cf, &r.key, &r.value)?;
                            self.applied_pairs += 1;
                        }
                        None => {
                            done = true;
                            break;
                        }
                    }
                }
                engines.kv.write(wb, Durability::Buffered)?;
                self.phase = if done {
                    Phase::Finish
                } else {
                    Phase::Ingest(records)
                };
            }
            Phase::Finish => {
                let mut wb = WriteBatch::new();
                write_region_state(&mut wb, &self.region, PeerState::Normal)?;
                // Synced: the data written before becomes durable with it.
                engines.kv.write(wb, Durability::Sync)?;
                tracing::debug!(
                    "region {}: applied snapshot {} ({} pairs)",
                    self.region_id,
                    self.key,
                    self.applied_pairs
                );
                return Ok(None);
            }
        }
        Ok(Some(self))
    }
}

/// Deletes the keys of `cf` in `[from, end)` of the kv engine, up to about `batch_bytes` of
/// keys in one buffered batch. Returns where to go on, or `None` when the range is empty.
pub(crate) fn delete_some(
    engines: &Engines,
    cf: Cf,
    from: &[u8],
    end: Option<&[u8]>,
    batch_bytes: usize,
) -> Result<Option<Vec<u8>>> {
    let mut it = engines.kv.iter_cf(cf, from, end)?;
    it.seek_to_first();
    let mut wb = WriteBatch::new();
    let mut next = None;
    while let Some(key) = it.key() {
        if wb.data_size() >= batch_bytes {
            next = Some(key.to_vec());
            break;
        }
        wb.delete_cf(cf, key)?;
        it.next();
    }
    it.status()?;
    engines.kv.write(wb, Durability::Buffered)?;
    Ok(next)
}
