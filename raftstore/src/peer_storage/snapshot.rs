//! The peer storage's side of snapshots: generating one for raft to send (asynchronously),
//! and taking one in from raft's `Ready` (stage 2C).

use engine::{keys, Cf, WriteBatch};
use proto::eraftpb::Snapshot;
use proto::metapb::Region;
use proto::raft_serverpb::{PeerState, RaftSnapshotData};
use raft::StorageError;

use super::PeerStorage;
use crate::meta;
use crate::snap::{snapshot_data, SnapKey};
use crate::util::KeyRange;
use crate::{Error, Result};

/// After this many generated snapshots in a row turn out invalid, raft gets an error instead
/// of "temporarily unavailable" (the original's limit).
const MAX_GEN_TRIES: u32 = 5;

/// Where the generation of a snapshot stands.
#[derive(Debug, Default)]
pub(crate) struct GenState {
    phase: GenPhase,
    /// Generations in a row whose result was unusable.
    tries: u32,
}

#[derive(Debug, Default)]
enum GenPhase {
    /// Nothing asked for.
    #[default]
    Idle,
    /// Raft asked; the handler has not spawned the task yet.
    Requested,
    /// The task runs.
    Running,
    /// The task finished; handed to raft at its next ask if still valid.
    Done(Box<Snapshot>),
}

/// What [`PeerStorage::apply_snapshot`] changed: the handler applies the data with it.
#[derive(Debug, Clone)]
pub struct ApplySnapResult {
    /// The region before the snapshot.
    pub prev_region: Region,
    /// The region the snapshot describes (now the peer's).
    pub region: Region,
    /// The snapshot.
    pub key: SnapKey,
    /// The snapshot's description of its file.
    pub data: RaftSnapshotData,
}

impl PeerStorage {
    /// Raft's [`raft::Storage::snapshot`]: a generated snapshot if one is ready and still
    /// usable, else "temporarily unavailable" (asking for a generation if none is under way).
    pub(super) fn poll_generated_snapshot(&self) -> raft::Result<Snapshot> {
        let mut gen = self.gen.borrow_mut();
        match std::mem::take(&mut gen.phase) {
            GenPhase::Requested => gen.phase = GenPhase::Requested,
            GenPhase::Running => gen.phase = GenPhase::Running,
            GenPhase::Done(snap) => {
                if self.is_usable(&snap) {
                    gen.tries = 0;
                    return Ok(*snap);
                }
                gen.tries += 1;
                tracing::info!(
                    tag = %self.tag,
                    index = snap.get_metadata().index,
                    truncated = self.truncated_index(),
                    "a generated snapshot is stale, generating another"
                );
                if gen.tries >= MAX_GEN_TRIES {
                    gen.tries = 0;
                    return Err(StorageError::Other(format!(
                        "{}: {MAX_GEN_TRIES} generated snapshots in a row were stale",
                        self.tag
                    ))
                    .into());
                }
                gen.phase = GenPhase::Requested;
            }
            GenPhase::Idle => gen.phase = GenPhase::Requested,
        }
        Err(StorageError::SnapshotTemporarilyUnavailable.into())
    }

    /// A generated snapshot may be sent if the log still holds every entry after it (its
    /// index is not below the truncated index) and its region's epoch is not older than the
    /// region's (neither its membership nor its range: a snapshot from before a split would
    /// cover the other half too).
    fn is_usable(&self, snap: &Snapshot) -> bool {
        let Ok(data) = snapshot_data(snap) else {
            return false;
        };
        snap.get_metadata().index >= self.truncated_index()
            && !crate::util::is_epoch_stale(
                data.get_region().get_region_epoch(),
                self.region.get_region_epoch(),
            )
    }

    /// If raft asked for a snapshot since the last call, marks the generation as running and
    /// returns the index and term to generate it at (the applied index: the kv engine holds
    /// exactly the data up to it now).
    pub fn take_gen_request(&mut self) -> Result<Option<(u64, u64)>> {
        let gen = self.gen.get_mut();
        if !matches!(gen.phase, GenPhase::Requested) {
            return Ok(None);
        }
        let index = self.apply_state.applied_index;
        let term = raft::Storage::term(self, index)?;
        self.gen.get_mut().phase = GenPhase::Running;
        Ok(Some((index, term)))
    }

    /// Takes a generation's result (a failed one counts as a try, and raft asks again).
    pub fn on_snapshot_generated(&mut self, result: Result<Snapshot>) {
        let gen = self.gen.get_mut();
        match result {
            Ok(snap) => gen.phase = GenPhase::Done(Box::new(snap)),
            Err(e) => {
                tracing::warn!(tag = %self.tag, "snapshot generation failed: {e}");
                gen.tries += 1;
                gen.phase = GenPhase::Idle;
            }
        }
    }

    /// Takes in a snapshot from raft's `Ready`: every old log entry goes, the raft state and
    /// the apply state jump to the snapshot's (index, term), the data the old region held
    /// outside the new range is deleted, and the region state becomes `Applying` with the
    /// snapshot's region (the region's data in its range is replaced by the snapshot file's
    /// afterwards, by a task, see [`crate::task::ApplySnapTask`]). Writes go into the batches;
    /// the caches are updated. The hard state is the `Ready`'s business.
    pub fn apply_snapshot(
        &mut self,
        snap: &Snapshot,
        kv_wb: &mut WriteBatch,
        raft_wb: &mut WriteBatch,
    ) -> Result<ApplySnapResult> {
        // lab:begin 2c
        // lab:stub let _ = (snap, kv_wb, raft_wb);
        // lab:stub todo!("2c: reset the log, the raft and apply states and the region to the snapshot's")
        let data = snapshot_data(snap)?;
        let region = data.get_region().clone();
        if region.id != self.region.id {
            return Err(Error::other(format!(
                "{}: a snapshot of region {}",
                self.tag, region.id
            )));
        }
        let meta = snap.get_metadata();
        let region_id = self.region.id;
        for index in self.first_index()..=self.last_index() {
            raft_wb.delete_cf(Cf::Raft, &keys::raft_log_key(region_id, index))?;
        }
        for range in self.clear_extra_data_ranges(&region) {
            clear_range_to_batch(&self.engines.kv, &range, kv_wb)?;
        }
        self.raft_state.last_index = meta.index;
        self.raft_state.last_term = meta.term;
        self.apply_state.applied_index = meta.index;
        let truncated = self.apply_state.mut_truncated_state();
        truncated.index = meta.index;
        truncated.term = meta.term;
        meta::write_apply_state(kv_wb, region_id, &self.apply_state)?;
        meta::write_region_state(kv_wb, &region, PeerState::Applying)?;
        let prev_region = std::mem::replace(&mut self.region, region.clone());
        Ok(ApplySnapResult {
            prev_region,
            region,
            key: SnapKey::of(region_id, snap),
            data,
        })
        // lab:end 2c
    }
}

/// Adds the deletion of every key of every data column family in `range` to `wb`.
pub fn clear_range_to_batch(
    kv: &engine::Engine,
    range: &KeyRange,
    wb: &mut WriteBatch,
) -> Result<()> {
    for &cf in Cf::DATA {
        let mut it = kv.iter_cf(cf, &range.start, range.end_bound())?;
        it.seek_to_first();
        while let Some(key) = it.key() {
            wb.delete_cf(cf, key)?;
            it.next();
        }
        it.status()?;
    }
    Ok(())
}
