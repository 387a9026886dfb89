//! Sending a snapshot file in chunks, and putting it back together on the other side.
//!
//! The sender wraps the `MsgSnapshot` and its generated file in an [`OutgoingSnapshot`] and
//! hands it to the transport, which reads it chunk by chunk ([`OutgoingSnapshot::chunk`]) and
//! reports back whether the stream got through. Every chunk carries the message, so the
//! receiver needs no order: [`SnapReceiver`] writes each chunk's bytes at its offset into a
//! temporary file, ignores duplicates, and once every byte is there verifies the file against
//! the checksums the message announced. Only a whole, verified file is renamed into place and
//! its message handed back to be stepped into raft; a corrupt, oversized or inconsistent one
//! is refused and deleted, and a reception that stalls is abandoned after
//! [`crate::Config::snap_receive_timeout`].
//!
//! Neither side holds more than one chunk of the file in memory.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use proto::eraftpb::MessageType;
use proto::raft_serverpb::{RaftMessage, RaftSnapshotData, SnapshotChunk};

use super::file::{self, io};
use super::{snapshot_data, SnapFileKind, SnapKey, SnapManager};
use crate::config::MAX_CHUNK;
use crate::{Error, Result};

/// A snapshot on its way out: the `MsgSnapshot` and the open file it announces.
pub struct OutgoingSnapshot {
    msg: RaftMessage,
    key: SnapKey,
    file: File,
    size: u64,
    chunk_size: usize,
}

impl std::fmt::Debug for OutgoingSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutgoingSnapshot")
            .field("key", &self.key)
            .field("size", &self.size)
            .field("chunks", &self.chunk_count())
            .finish()
    }
}

impl OutgoingSnapshot {
    /// Opens the file at `path` for sending with `msg` (a `MsgSnapshot`). The file is held
    /// open, so it can be read to the end even if a newer snapshot replaces it meanwhile.
    pub fn open(msg: RaftMessage, path: &Path, chunk_size: usize) -> Result<OutgoingSnapshot> {
        let snap = msg.get_message().get_snapshot();
        let data = snapshot_data(snap)?;
        let file = File::open(path).map_err(io(path))?;
        let len = file.metadata().map_err(io(path))?.len();
        if len != data.file_size {
            return Err(Error::other(format!(
                "snapshot file {} holds {len} bytes, the snapshot announces {}",
                path.display(),
                data.file_size
            )));
        }
        Ok(OutgoingSnapshot {
            key: SnapKey::of(msg.region_id, snap),
            msg,
            file,
            size: len,
            chunk_size: chunk_size.max(1),
        })
    }

    /// The `MsgSnapshot` this file belongs to.
    pub fn message(&self) -> &RaftMessage {
        &self.msg
    }

    /// The snapshot's key.
    pub fn key(&self) -> SnapKey {
        self.key
    }

    /// The file's size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// How many chunks the file takes (at least one: an empty file still sends its message).
    pub fn chunk_count(&self) -> u64 {
        self.size.div_ceil(self.chunk_size as u64).max(1)
    }

    /// Chunk `i` of [`OutgoingSnapshot::chunk_count`]: the message and the bytes at
    /// `i * chunk_size`. Reads the file (fails if it was truncated since).
    pub fn chunk(&self, i: u64) -> Result<SnapshotChunk> {
        let offset = i.saturating_mul(self.chunk_size as u64);
        let len = self.size.saturating_sub(offset).min(self.chunk_size as u64);
        let mut data = vec![0; len as usize];
        let mut f = &self.file;
        f.seek(SeekFrom::Start(offset))
            .and_then(|_| f.read_exact(&mut data))
            .map_err(|e| Error::other(format!("snapshot {}: reading chunk {i}: {e}", self.key)))?;
        let mut chunk = SnapshotChunk::default();
        chunk.set_message(self.msg.clone());
        chunk.data = data;
        chunk.offset = offset;
        Ok(chunk)
    }
}

/// Disjoint byte ranges `[start, end)` received so far, merged.
#[derive(Debug, Default)]
struct Ranges(BTreeMap<u64, u64>);

impl Ranges {
    fn insert(&mut self, mut start: u64, mut end: u64) {
        if start >= end {
            return;
        }
        // Merge with a range that starts before and reaches `start`.
        if let Some((&s, &e)) = self.0.range(..=start).next_back() {
            if e >= start {
                start = s;
                end = end.max(e);
                self.0.remove(&s);
            }
        }
        // Merge with every range that starts inside [start, end].
        while let Some((&s, &e)) = self.0.range(start..=end).next() {
            end = end.max(e);
            self.0.remove(&s);
        }
        self.0.insert(start, end);
    }

    fn covers(&self, size: u64) -> bool {
        size == 0 || self.0.get(&0) == Some(&size)
    }
}

/// A reception in progress.
#[derive(Debug)]
struct Incoming {
    msg: RaftMessage,
    data: RaftSnapshotData,
    file: File,
    received: Ranges,
    /// The tick of the last chunk.
    last_tick: u64,
}

/// What a chunk did.
#[derive(Debug)]
pub enum ChunkOutcome {
    /// Stored; more chunks are needed.
    Pending,
    /// The file is whole and verified, renamed to its final name: step this message.
    Complete(SnapKey, Box<RaftMessage>),
    /// A duplicate of a snapshot already received: nothing to do.
    Duplicate,
}

/// At most this many snapshots are received at once.
const MAX_INCOMING: usize = 16;

/// Puts snapshot files back together from their chunks (see the module docs).
#[derive(Debug)]
pub struct SnapReceiver {
    mgr: SnapManager,
    incoming: BTreeMap<SnapKey, Incoming>,
    finished: BTreeMap<SnapKey, u64>,
    timeout_ticks: u64,
}

impl SnapReceiver {
    /// A receiver writing into `mgr`'s directory that abandons a reception after
    /// `timeout_ticks` ticks without a chunk.
    pub fn new(mgr: SnapManager, timeout_ticks: u64) -> SnapReceiver {
        SnapReceiver {
            mgr,
            incoming: BTreeMap::new(),
            finished: BTreeMap::new(),
            timeout_ticks: timeout_ticks.max(1),
        }
    }

    /// How many receptions are in progress.
    pub fn in_progress(&self) -> usize {
        self.incoming.len()
    }

    /// Takes one chunk received at tick `now`. An error means the chunk (or the whole
    /// reception, if the file turned out corrupt) was refused; the caller logs it.
    pub fn on_chunk(&mut self, chunk: SnapshotChunk, now: u64) -> Result<ChunkOutcome> {
        let SnapshotChunk {
            message,
            data: bytes,
            offset,
            ..
        } = chunk;
        let msg = message
            .into_option()
            .ok_or_else(|| Error::other("a chunk without message"))?;
        let m = msg.get_message();
        if m.get_msg_type() != MessageType::MsgSnapshot || !m.has_snapshot() {
            return Err(Error::other(format!(
                "a snapshot chunk carries a {:?}",
                m.get_msg_type()
            )));
        }
        let snap = m.get_snapshot();
        let key = SnapKey::of(msg.region_id, snap);
        if self.finished.contains_key(&key) {
            return Ok(ChunkOutcome::Duplicate);
        }
        let end = offset
            .checked_add(bytes.len() as u64)
            .ok_or_else(|| Error::other("chunk offset overflows"))?;
        if bytes.len() > MAX_CHUNK {
            return Err(Error::other(format!(
                "snapshot {key}: a chunk of {} bytes",
                bytes.len()
            )));
        }
        if !self.incoming.contains_key(&key) {
            if self.incoming.len() >= MAX_INCOMING {
                return Err(Error::other(format!(
                    "snapshot {key}: already receiving {MAX_INCOMING} snapshots"
                )));
            }
            let data = snapshot_data(snap)?;
            file::check_meta(&data)?;
            if data.get_region().id != msg.region_id {
                return Err(Error::other(format!(
                    "snapshot {key} announces region {}",
                    data.get_region().id
                )));
            }
            let path = self.mgr.path(SnapFileKind::Receiving, &key);
            let file = OpenOptions::new()
                .create(true)
                .truncate(true)
                .read(true)
                .write(true)
                .open(&path)
                .map_err(io(&path))?;
            self.incoming.insert(
                key,
                Incoming {
                    msg: msg.clone(),
                    data,
                    file,
                    received: Ranges::default(),
                    last_tick: now,
                },
            );
        }
        let inc = self
            .incoming
            .get_mut(&key)
            .ok_or_else(|| Error::other("reception vanished"))?;
        if inc.msg.get_message().get_snapshot() != snap {
            return Err(Error::other(format!(
                "snapshot {key}: a chunk whose snapshot differs from the first chunk's"
            )));
        }
        if end > inc.data.file_size {
            return Err(Error::other(format!(
                "snapshot {key}: a chunk ends at {end}, past the announced {} bytes",
                inc.data.file_size
            )));
        }
        let mut f = &inc.file;
        f.seek(SeekFrom::Start(offset))
            .and_then(|_| f.write_all(&bytes))
            .map_err(|e| Error::other(format!("snapshot {key}: writing a chunk: {e}")))?;
        inc.received.insert(offset, end);
        inc.last_tick = now;
        if !inc.received.covers(inc.data.file_size) {
            return Ok(ChunkOutcome::Pending);
        }
        let Some(inc) = self.incoming.remove(&key) else {
            return Ok(ChunkOutcome::Pending);
        };
        self.finish(key, inc, now)
    }

    /// Verifies a whole file and moves it into place.
    fn finish(&mut self, key: SnapKey, inc: Incoming, now: u64) -> Result<ChunkOutcome> {
        let tmp = self.mgr.path(SnapFileKind::Receiving, &key);
        let checked = inc
            .file
            .sync_all()
            .map_err(io(&tmp))
            .and_then(|()| file::verify(&tmp, &inc.data));
        drop(inc.file);
        if let Err(e) = checked {
            self.mgr.delete(SnapFileKind::Receiving, &key);
            return Err(Error::other(format!("snapshot {key} refused: {e}")));
        }
        let done = self.mgr.path(SnapFileKind::Received, &key);
        std::fs::rename(&tmp, &done).map_err(io(&done))?;
        self.finished.insert(key, now);
        Ok(ChunkOutcome::Complete(key, Box::new(inc.msg)))
    }

    /// Forgets that snapshot `key` was received, so the same snapshot sent again is received
    /// afresh (after the store refused it, say: it may be acceptable later).
    pub fn forget(&mut self, key: &SnapKey) {
        self.finished.remove(key);
    }

    /// Abandons receptions that got no chunk for the timeout, and forgets old finished keys.
    pub fn on_tick(&mut self, now: u64) {
        let timeout = self.timeout_ticks;
        let stalled: Vec<SnapKey> = self
            .incoming
            .iter()
            .filter(|(_, inc)| now.saturating_sub(inc.last_tick) >= timeout)
            .map(|(k, _)| *k)
            .collect();
        for key in stalled {
            tracing::info!("snapshot {key}: no chunk for {timeout} ticks, reception abandoned");
            self.incoming.remove(&key);
            self.mgr.delete(SnapFileKind::Receiving, &key);
        }
        // A finished key is remembered as long as a reception may stall, to recognise the
        // late duplicates of its chunks; later, the same snapshot may be sent again on
        // purpose (say, after this store refused it) and must be received afresh.
        self.finished
            .retain(|_, &mut at| now.saturating_sub(at) < timeout);
    }
}

#[cfg(test)]
mod tests {
    use super::Ranges;

    #[test]
    fn ranges_merge_in_any_order() {
        let mut r = Ranges::default();
        r.insert(10, 20);
        r.insert(30, 40);
        assert!(!r.covers(40));
        r.insert(0, 10);
        r.insert(15, 35);
        assert!(r.covers(40));
        let mut r = Ranges::default();
        for (s, e) in [(5, 6), (0, 1), (3, 5), (1, 3), (6, 9), (2, 4)] {
            r.insert(s, e);
        }
        assert!(r.covers(9));
        assert!(!r.covers(10));
        assert!(Ranges::default().covers(0));
    }
}
