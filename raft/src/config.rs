//! [`Config`]: the parameters a raft node is created with.

use crate::errors::{Error, Result};

/// The parameters of one raft node.
///
/// ```
/// let mut c = raft::Config::new(1);
/// c.peers = vec![1, 2, 3];
/// assert!(c.validate().is_ok());
/// ```
#[derive(Clone, Debug)]
pub struct Config {
    /// This node's id; must not be 0.
    pub id: u64,
    /// Initial membership of a brand-new group (tests only). When empty, the membership
    /// comes from the storage's [`ConfState`](crate::eraftpb::ConfState).
    pub peers: Vec<u64>,
    /// Ticks without hearing from a leader before a follower campaigns. The actual timeout
    /// is drawn at random from `[election_tick, 2 * election_tick)`.
    pub election_tick: usize,
    /// Ticks between two rounds of leader heartbeats.
    pub heartbeat_tick: usize,
    /// The last applied index when restarting; entries up to it are never handed out again.
    pub applied: u64,
    /// Seeds the election-timeout RNG (mixed with `id`, so nodes differ but a run replays).
    pub seed: u64,
}

impl Config {
    /// A config for node `id`: election 10 ticks, heartbeat 1 tick, no peers, applied 0,
    /// seed 0.
    pub fn new(id: u64) -> Config {
        Config {
            id,
            peers: Vec::new(),
            election_tick: 10,
            heartbeat_tick: 1,
            applied: 0,
            seed: 0,
        }
    }

    /// Checks the config: `id != 0`, `heartbeat_tick > 0`, `election_tick > heartbeat_tick`.
    pub fn validate(&self) -> Result<()> {
        if self.id == 0 {
            return Err(Error::ConfigInvalid("id must not be 0".to_owned()));
        }
        if self.heartbeat_tick == 0 {
            return Err(Error::ConfigInvalid(
                "heartbeat tick must be greater than 0".to_owned(),
            ));
        }
        if self.election_tick <= self.heartbeat_tick {
            return Err(Error::ConfigInvalid(
                "election tick must be greater than heartbeat tick".to_owned(),
            ));
        }
        Ok(())
    }
}
