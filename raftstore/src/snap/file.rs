//! The snapshot file format: one file per snapshot, one section per data column family.
//!
//! ```text
//!   file    = section(default) section(lock) section(write)
//!   section = record*
//!   record  = key_len: u16 BE | key | value_len: u32 BE | value
//! ```
//!
//! Each section's size and CRC-32 travel in the snapshot's [`SnapshotMeta`] (one
//! [`SnapshotCFFile`] per column family, in the order above), inside the
//! [`RaftSnapshotData`] that is the `data` of the raft snapshot; the region and the file's
//! total size travel there too. Nothing else is in the file, so the receiver checks a file
//! against the message that announced it before anything reaches raft.
//!
//! Every function here streams: generating, verifying and applying a snapshot hold one
//! buffered read or write and one batch of at most [`crate::Config::task_batch_bytes`] in
//! memory, whatever the region's size.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use engine::{Cf, Snapshot as EngineSnapshot};
use proto::metapb::Region;
use proto::raft_serverpb::{RaftSnapshotData, SnapshotCFFile, SnapshotMeta};

use crate::util::KeyRange;
use crate::{Error, Result};

/// Size of the read and write buffers.
const IO_BUF: usize = 64 << 10;

/// The column families a snapshot carries, in file order.
pub const SNAPSHOT_CFS: &[Cf] = Cf::DATA;

/// What [`write_region`] produced: the description of the file it wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct FileInfo {
    /// Per column family: size and checksum, in file order.
    pub meta: SnapshotMeta,
    /// The file's size in bytes.
    pub size: u64,
    /// How many key-value pairs the file holds.
    pub pairs: u64,
}

/// Writes every pair of `region`'s range in each data column family of `snap` to a new file
/// at `path` (replacing any), and describes it. The file is not synced: a generated snapshot
/// is only read by this process, and is regenerated after a restart.
pub fn write_region(snap: &EngineSnapshot, region: &Region, path: &Path) -> Result<FileInfo> {
    let range = KeyRange::of_region(region);
    let mut out = BufWriter::with_capacity(IO_BUF, File::create(path).map_err(io(path))?);
    let mut meta = SnapshotMeta::default();
    let (mut size, mut pairs) = (0u64, 0u64);
    for &cf in SNAPSHOT_CFS {
        let mut crc = crc32fast::Hasher::new();
        let mut section = 0u64;
        let mut it = snap.iter_cf(cf, &range.start, range.end_bound())?;
        it.seek_to_first();
        while let Some((key, value)) = it.item() {
            let key_len = u16::try_from(key.len())
                .map_err(|_| Error::other(format!("a key of {} bytes in {cf}", key.len())))?;
            let value_len = u32::try_from(value.len())
                .map_err(|_| Error::other(format!("a value of {} bytes in {cf}", value.len())))?;
            for part in [
                &key_len.to_be_bytes()[..],
                key,
                &value_len.to_be_bytes(),
                value,
            ] {
                crc.update(part);
                out.write_all(part).map_err(io(path))?;
            }
            section += 6 + key.len() as u64 + value.len() as u64;
            pairs += 1;
            it.next();
        }
        it.status()?;
        meta.mut_cf_files().push(SnapshotCFFile {
            cf: cf.name().to_owned(),
            size: section,
            checksum: crc.finalize(),
            ..Default::default()
        });
        size += section;
    }
    out.flush().map_err(io(path))?;
    Ok(FileInfo { meta, size, pairs })
}

/// The `data` of a raft snapshot: the region, the file's size and its sections.
pub fn snapshot_data(region: &Region, info: &FileInfo) -> RaftSnapshotData {
    let mut data = RaftSnapshotData::default();
    data.set_region(region.clone());
    data.file_size = info.size;
    data.set_meta(info.meta.clone());
    data
}

/// Checks that a snapshot's description is one this store can receive: the three column
/// families in file order, and section sizes that add up to the file size.
pub fn check_meta(data: &RaftSnapshotData) -> Result<()> {
    let files = data.get_meta().get_cf_files();
    let names: Vec<&str> = files.iter().map(|f| f.cf.as_str()).collect();
    let want: Vec<&str> = SNAPSHOT_CFS.iter().map(|cf| cf.name()).collect();
    if names != want {
        return Err(Error::other(format!(
            "snapshot sections {names:?}, expected {want:?}"
        )));
    }
    let total = files
        .iter()
        .try_fold(0u64, |acc, f| acc.checked_add(f.size))
        .ok_or_else(|| Error::other("snapshot section sizes overflow"))?;
    if total != data.file_size {
        return Err(Error::other(format!(
            "snapshot sections hold {total} bytes, the file {}",
            data.file_size
        )));
    }
    Ok(())
}

/// Reads a snapshot file's records in order, checking each section's size and CRC-32 against
/// `meta` as it goes (a section's checksum is checked when its last record has been read).
pub struct Records {
    reader: BufReader<File>,
    sections: Vec<SnapshotCFFile>,
    section: usize,
    left: u64,
    crc: crc32fast::Hasher,
    path: std::path::PathBuf,
}

impl std::fmt::Debug for Records {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Records")
            .field("path", &self.path)
            .field("section", &self.section)
            .finish()
    }
}

/// One record of a snapshot file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its column family.
    pub cf: Cf,
    /// The key.
    pub key: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
}

impl Records {
    /// Opens the file at `path`, described by `data`. Fails if the file's length is not the
    /// announced size.
    pub fn open(path: &Path, data: &RaftSnapshotData) -> Result<Records> {
        check_meta(data)?;
        let file = File::open(path).map_err(io(path))?;
        let len = file.metadata().map_err(io(path))?.len();
        if len != data.file_size {
            return Err(Error::other(format!(
                "snapshot file {} holds {len} bytes, {} announced",
                path.display(),
                data.file_size
            )));
        }
        let sections = data.get_meta().get_cf_files().to_vec();
        let left = sections.first().map_or(0, |s| s.size);
        Ok(Records {
            reader: BufReader::with_capacity(IO_BUF, file),
            sections,
            section: 0,
            left,
            crc: crc32fast::Hasher::new(),
            path: path.to_path_buf(),
        })
    }

    /// Ends the current section (checking its checksum) while it has no bytes left, moving to
    /// the next. Returns `false` once every section is done.
    fn settle(&mut self) -> Result<bool> {
        while self.left == 0 {
            let Some(done) = self.sections.get(self.section) else {
                return Ok(false);
            };
            let crc = std::mem::take(&mut self.crc).finalize();
            if crc != done.checksum {
                return Err(Error::other(format!(
                    "snapshot file {}: section {} has checksum {crc:08x}, {:08x} announced",
                    self.path.display(),
                    done.cf,
                    done.checksum
                )));
            }
            self.section += 1;
            match self.sections.get(self.section) {
                Some(next) => self.left = next.size,
                None => return Ok(false),
            }
        }
        Ok(true)
    }

    fn read_exact(&mut self, n: u64) -> Result<Vec<u8>> {
        if n > self.left {
            return Err(Error::other(format!(
                "snapshot file {}: a record runs past the end of section {}",
                self.path.display(),
                self.sections[self.section].cf
            )));
        }
        let mut buf = vec![0; n as usize];
        self.reader.read_exact(&mut buf).map_err(io(&self.path))?;
        self.crc.update(&buf);
        self.left -= n;
        Ok(buf)
    }

    /// The next record, `None` after the last one (every checksum verified by then).
    pub fn next_record(&mut self) -> Result<Option<Record>> {
        if !self.settle()? {
            return Ok(None);
        }
        let cf = SNAPSHOT_CFS[self.section];
        let key_len = u16::from_be_bytes(
            self.read_exact(2)?
                .try_into()
                .map_err(|_| Error::other("short key length"))?,
        );
        let key = self.read_exact(u64::from(key_len))?;
        let value_len = u32::from_be_bytes(
            self.read_exact(4)?
                .try_into()
                .map_err(|_| Error::other("short value length"))?,
        );
        let value = self.read_exact(u64::from(value_len))?;
        if key.is_empty() {
            return Err(Error::other(format!(
                "snapshot file {}: an empty key in {cf}",
                self.path.display()
            )));
        }
        Ok(Some(Record { cf, key, value }))
    }
}

/// Reads the whole file, checking every section's checksum and every record's framing.
/// Returns how many records it holds.
pub fn verify(path: &Path, data: &RaftSnapshotData) -> Result<u64> {
    let mut records = Records::open(path, data)?;
    let mut n = 0;
    while records.next_record()?.is_some() {
        n += 1;
    }
    Ok(n)
}

/// Maps an I/O error on `path` into the crate's error, naming the file.
pub(crate) fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::other(format!("{}: {e}", path.display()))
}
