//! The store's configuration.

use std::time::Duration;

use crate::{Error, Result};

/// The smallest snapshot chunk a store sends (smaller chunks only multiply messages).
pub const MIN_CHUNK: usize = 256;
/// The largest snapshot chunk a store sends or accepts (what one chunk may cost in memory).
pub const MAX_CHUNK: usize = 16 << 20;

/// How a store paces its raft groups and background work. Intervals are whole multiples of
/// the base tick; [`Config::validate`] refuses one that would round down to zero ticks (in the
/// original, a too-short interval silently disabled its task).
#[derive(Debug, Clone)]
pub struct Config {
    /// The runtime delivers one tick to the store this often.
    pub raft_base_tick: Duration,
    /// Ticks between a leader's heartbeats.
    pub raft_heartbeat_ticks: usize,
    /// Base election timeout in ticks (randomised by raft to `[t, 2t)`).
    pub raft_election_timeout_ticks: usize,
    /// How often a leader reports its region to the scheduler.
    pub scheduler_heartbeat_interval: Duration,
    /// How often the store reports its statistics to the scheduler.
    pub scheduler_store_heartbeat_interval: Duration,
    /// How often the store syncs its kv engine. Applied data is written without a sync (the
    /// raft log can replay it), so this bounds how much a crash makes a store re-apply.
    pub kv_sync_interval: Duration,
    /// How often a leader checks whether its region's raft log should be compacted.
    pub raft_log_gc_tick_interval: Duration,
    /// A leader proposes `CompactLog` once at least this many applied entries sit in its log.
    pub raft_log_gc_count_limit: u64,
    /// ... or once the entries it appended since the last compaction hold about this many
    /// bytes (a few large commands should not wait for the count).
    pub raft_log_gc_size_limit: u64,
    /// Snapshot files travel between stores in chunks of at most this many bytes; what either
    /// side holds in memory for one snapshot is bounded by it, not by the region's size.
    pub snap_chunk_size: usize,
    /// A snapshot reception that got no chunk for this long is abandoned (its partial file
    /// deleted); the leader sends a fresh snapshot.
    pub snap_receive_timeout: Duration,
    /// Background tasks write the kv engine in batches of about this many bytes (snapshot
    /// ingest, range deletes): the memory a task holds, and the length of one simulated step.
    pub task_batch_bytes: usize,
    /// How often a leader checks whether its region has grown past [`Config::region_max_size`]
    /// (the split-check tick).
    pub split_region_check_tick_interval: Duration,
    /// A region whose data (key + value bytes of the default column family) exceeds this is
    /// split ...
    pub region_max_size: u64,
    /// ... at the first key where the running size exceeds this.
    pub region_split_size: u64,
    /// Seeds the election timeouts of this store's raft groups (a runtime sets it from its
    /// own seeded RNG so a simulated run replays exactly).
    pub seed: u64,
}

impl Default for Config {
    /// The original's default configuration (1 s base tick).
    fn default() -> Self {
        Config {
            raft_base_tick: Duration::from_secs(1),
            raft_heartbeat_ticks: 2,
            raft_election_timeout_ticks: 10,
            scheduler_heartbeat_interval: Duration::from_secs(10),
            scheduler_store_heartbeat_interval: Duration::from_secs(10),
            kv_sync_interval: Duration::from_secs(1),
            raft_log_gc_tick_interval: Duration::from_secs(10),
            raft_log_gc_count_limit: 128_000,
            raft_log_gc_size_limit: 72 << 20,
            snap_chunk_size: 1 << 20,
            snap_receive_timeout: Duration::from_secs(60),
            task_batch_bytes: 1 << 20,
            split_region_check_tick_interval: Duration::from_secs(10),
            region_max_size: 144 << 20,
            region_split_size: 96 << 20,
            seed: 0,
        }
    }
}

impl Config {
    /// The original's test configuration: 50 ms base tick, heartbeat every 2 ticks, election
    /// after 10 (to 19) ticks, region heartbeat every 100 ms, store heartbeat every 500 ms,
    /// raft-log GC checked every tick with the original's count limit of 128,000 entries,
    /// split check every 100 ms (regions of 144 MiB split at 96 MiB, as the original's).
    /// Snapshots travel in 16 KiB chunks (so the cluster suites' small regions still take
    /// several) and tasks write in 64 KiB batches.
    pub fn test() -> Self {
        Config {
            raft_base_tick: Duration::from_millis(50),
            raft_heartbeat_ticks: 2,
            raft_election_timeout_ticks: 10,
            scheduler_heartbeat_interval: Duration::from_millis(100),
            scheduler_store_heartbeat_interval: Duration::from_millis(500),
            kv_sync_interval: Duration::from_secs(1),
            raft_log_gc_tick_interval: Duration::from_millis(50),
            raft_log_gc_count_limit: 128_000,
            raft_log_gc_size_limit: 72 << 20,
            snap_chunk_size: 16 << 10,
            snap_receive_timeout: Duration::from_secs(5),
            task_batch_bytes: 64 << 10,
            split_region_check_tick_interval: Duration::from_millis(100),
            region_max_size: 144 << 20,
            region_split_size: 96 << 20,
            seed: 0,
        }
    }

    /// Checks the tick arithmetic.
    pub fn validate(&self) -> Result<()> {
        if self.raft_base_tick.is_zero() {
            return Err(Error::other("raft_base_tick must be positive"));
        }
        if self.raft_heartbeat_ticks == 0 {
            return Err(Error::other("raft_heartbeat_ticks must be positive"));
        }
        if self.raft_election_timeout_ticks <= self.raft_heartbeat_ticks {
            return Err(Error::other(
                "raft_election_timeout_ticks must exceed raft_heartbeat_ticks",
            ));
        }
        for (name, interval) in [
            (
                "scheduler_heartbeat_interval",
                self.scheduler_heartbeat_interval,
            ),
            (
                "scheduler_store_heartbeat_interval",
                self.scheduler_store_heartbeat_interval,
            ),
            ("kv_sync_interval", self.kv_sync_interval),
            ("raft_log_gc_tick_interval", self.raft_log_gc_tick_interval),
            ("snap_receive_timeout", self.snap_receive_timeout),
            (
                "split_region_check_tick_interval",
                self.split_region_check_tick_interval,
            ),
        ] {
            if interval < self.raft_base_tick {
                return Err(Error::other(format!(
                    "{name} ({interval:?}) is shorter than the base tick ({:?}) and would never fire",
                    self.raft_base_tick
                )));
            }
        }
        if self.raft_log_gc_count_limit == 0 {
            return Err(Error::other("raft_log_gc_count_limit must be positive"));
        }
        if !(MIN_CHUNK..=MAX_CHUNK).contains(&self.snap_chunk_size) {
            return Err(Error::other(format!(
                "snap_chunk_size ({}) must be between {MIN_CHUNK} and {MAX_CHUNK} bytes",
                self.snap_chunk_size
            )));
        }
        if self.region_split_size == 0 || self.region_split_size > self.region_max_size {
            return Err(Error::other(format!(
                "region_split_size ({}) must be positive and at most region_max_size ({})",
                self.region_split_size, self.region_max_size
            )));
        }
        if self.task_batch_bytes == 0 {
            return Err(Error::other("task_batch_bytes must be positive"));
        }
        Ok(())
    }

    /// How many base ticks make `interval` (at least one).
    pub fn ticks(&self, interval: Duration) -> u64 {
        let base = self.raft_base_tick.as_nanos().max(1);
        u64::try_from(interval.as_nanos() / base)
            .unwrap_or(u64::MAX)
            .max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_config_is_valid_and_ticks_divide() {
        let c = Config::test();
        c.validate().unwrap();
        assert_eq!(c.ticks(c.scheduler_heartbeat_interval), 2);
        assert_eq!(c.ticks(c.scheduler_store_heartbeat_interval), 10);
        Config::default().validate().unwrap();
    }

    #[test]
    fn an_interval_below_the_base_tick_is_refused() {
        let mut c = Config::test();
        c.scheduler_heartbeat_interval = Duration::from_millis(10);
        assert!(c.validate().unwrap_err().to_string().contains("never fire"));
        let mut c = Config::test();
        c.raft_election_timeout_ticks = 2;
        assert!(c.validate().is_err());
    }
}
