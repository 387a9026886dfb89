//! Operators: what the scheduler asks a region to do, as a list of steps (add a peer, remove a
//! peer, transfer leadership) carried out one at a time. A step is handed to the region's
//! leader in heartbeat responses until a later heartbeat shows it done.

mod controller;

use std::fmt;
use std::ops::BitOr;
use std::time::Duration;

use proto::metapb::RegionEpoch;

use crate::cluster::RaftCluster;
use crate::config::ScheduleConfig;
use crate::core::RegionInfo;
use crate::error::{Error, Result};

pub use controller::{OperatorController, OperatorOutcome, OperatorRecord};

/// One step of an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpStep {
    /// Add peer `peer_id` on `to_store`.
    AddPeer {
        /// Where the new peer goes.
        to_store: u64,
        /// Its id (allocated when the operator was built).
        peer_id: u64,
    },
    /// Remove the region's peer on `from_store`.
    RemovePeer {
        /// The store that loses its peer.
        from_store: u64,
    },
    /// Move leadership from `from_store` to `to_store`.
    TransferLeader {
        /// The leader's store.
        from_store: u64,
        /// The store of the peer that should lead.
        to_store: u64,
    },
}

impl OpStep {
    /// Whether `region` shows the step done. An added peer is done once it is in the region
    /// with the expected id and no longer pending.
    pub fn is_finished(&self, region: &RegionInfo) -> bool {
        match *self {
            OpStep::AddPeer { to_store, peer_id } => region
                .store_peer(to_store)
                .is_some_and(|p| p.id == peer_id && region.pending_peer(p.id).is_none()),
            OpStep::RemovePeer { from_store } => region.store_peer(from_store).is_none(),
            OpStep::TransferLeader { to_store, .. } => region.leader_store_id() == Some(to_store),
        }
    }

    /// Whether the step has taken effect on the region's membership (bumped its conf_ver).
    pub fn conf_ver_changed(&self, region: &RegionInfo) -> bool {
        match *self {
            OpStep::AddPeer { to_store, peer_id } => {
                region.store_peer(to_store).is_some_and(|p| p.id == peer_id)
            }
            OpStep::RemovePeer { from_store } => region.store_peer(from_store).is_none(),
            OpStep::TransferLeader { .. } => false,
        }
    }
}

impl fmt::Display for OpStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpStep::AddPeer { to_store, peer_id } => {
                write!(f, "add peer {peer_id} on store {to_store}")
            }
            OpStep::RemovePeer { from_store } => write!(f, "remove peer on store {from_store}"),
            OpStep::TransferLeader {
                from_store,
                to_store,
            } => write!(
                f,
                "transfer leader from store {from_store} to store {to_store}"
            ),
        }
    }
}

/// What an operator does and who asked for it, as a set of flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpKind(u32);

impl OpKind {
    /// Moves leadership.
    pub const LEADER: OpKind = OpKind(1);
    /// Adds or removes peers.
    pub const REGION: OpKind = OpKind(1 << 1);
    /// Asked for by an administrator or a test; replaces any other operator of the region.
    pub const ADMIN: OpKind = OpKind(1 << 2);
    /// Built by a balance scheduler.
    pub const BALANCE: OpKind = OpKind(1 << 3);
    /// Built by the replica checker to restore the replica count.
    pub const REPLICA: OpKind = OpKind(1 << 4);

    /// Whether every flag of `other` is set.
    pub fn contains(self, other: OpKind) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for OpKind {
    type Output = OpKind;
    fn bitor(self, rhs: OpKind) -> OpKind {
        OpKind(self.0 | rhs.0)
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (OpKind::LEADER, "leader"),
            (OpKind::REGION, "region"),
            (OpKind::ADMIN, "admin"),
            (OpKind::BALANCE, "balance"),
            (OpKind::REPLICA, "replica"),
        ];
        let set: Vec<&str> = names
            .iter()
            .filter(|(k, _)| self.contains(*k))
            .map(|(_, n)| *n)
            .collect();
        write!(f, "{}", set.join(","))
    }
}

/// A list of steps for one region, built against the region's epoch at that time.
#[derive(Debug, Clone, PartialEq)]
pub struct Operator {
    desc: String,
    region_id: u64,
    epoch: RegionEpoch,
    kind: OpKind,
    steps: Vec<OpStep>,
    current: usize,
    started_at: Option<Duration>,
}

impl Operator {
    /// An operator for `region_id` whose steps were planned against `epoch`.
    pub fn new(
        desc: impl Into<String>,
        region_id: u64,
        epoch: RegionEpoch,
        kind: OpKind,
        steps: Vec<OpStep>,
    ) -> Operator {
        Operator {
            desc: desc.into(),
            region_id,
            epoch,
            kind,
            steps,
            current: 0,
            started_at: None,
        }
    }

    /// Who built it and why.
    pub fn desc(&self) -> &str {
        &self.desc
    }

    /// The region it acts on.
    pub fn region_id(&self) -> u64 {
        self.region_id
    }

    /// The region's epoch when the operator was built.
    pub fn epoch(&self) -> &RegionEpoch {
        &self.epoch
    }

    /// Its kind flags.
    pub fn kind(&self) -> OpKind {
        self.kind
    }

    /// All its steps.
    pub fn steps(&self) -> &[OpStep] {
        &self.steps
    }

    /// The number of steps.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether it has no steps.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The step `i`.
    pub fn step(&self, i: usize) -> Option<&OpStep> {
        self.steps.get(i)
    }

    /// Marks the operator started at `now` (when it is added to the controller).
    pub fn start(&mut self, now: Duration) {
        self.started_at = Some(now);
    }

    /// Skips the steps `region` shows done; returns the first step not done yet (`None`: the
    /// operator is finished).
    pub fn check(&mut self, region: &RegionInfo) -> Option<OpStep> {
        while let Some(step) = self.steps.get(self.current) {
            if step.is_finished(region) {
                self.current += 1;
            } else {
                return Some(*step);
            }
        }
        None
    }

    /// Whether every step is done (as of the last [`Operator::check`]).
    pub fn is_finished(&self) -> bool {
        self.current >= self.steps.len()
    }

    /// How many conf changes the steps so far (including the current one) account for.
    pub fn conf_ver_changed(&self, region: &RegionInfo) -> u64 {
        let upto = (self.current + 1).min(self.steps.len());
        self.steps[..upto]
            .iter()
            .filter(|s| s.conf_ver_changed(region))
            .count() as u64
    }

    /// Whether the operator has run for longer than its kind allows at `now`.
    pub fn is_timed_out(&self, now: Duration, cfg: &ScheduleConfig) -> bool {
        let Some(start) = self.started_at else {
            return false;
        };
        if self.is_finished() {
            return false;
        }
        let limit = if self.kind.contains(OpKind::REGION) {
            cfg.region_operator_wait_time
        } else {
            cfg.leader_operator_wait_time
        };
        now.saturating_sub(start) > limit
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let steps: Vec<String> = self.steps.iter().map(ToString::to_string).collect();
        write!(
            f,
            "{} (kind {}, region {} at conf_ver {} version {}, step {}/{}: [{}])",
            self.desc,
            self.kind,
            self.region_id,
            self.epoch.conf_ver,
            self.epoch.version,
            self.current,
            self.steps.len(),
            steps.join(", ")
        )
    }
}

/// An operator adding peer `peer_id` on `to_store`.
pub fn create_add_peer_operator(
    desc: &str,
    region: &RegionInfo,
    peer_id: u64,
    to_store: u64,
    kind: OpKind,
) -> Operator {
    Operator::new(
        desc,
        region.id(),
        region.epoch().clone(),
        kind | OpKind::REGION,
        vec![OpStep::AddPeer { to_store, peer_id }],
    )
}

/// An operator moving leadership from `from_store` to `to_store`.
pub fn create_transfer_leader_operator(
    desc: &str,
    region: &RegionInfo,
    from_store: u64,
    to_store: u64,
    kind: OpKind,
) -> Operator {
    Operator::new(
        desc,
        region.id(),
        region.epoch().clone(),
        kind | OpKind::LEADER,
        vec![OpStep::TransferLeader {
            from_store,
            to_store,
        }],
    )
}

/// An operator removing the region's peer on `store_id`; if that peer leads, leadership is
/// first moved to a follower.
pub fn create_remove_peer_operator(
    desc: &str,
    cluster: &RaftCluster,
    kind: OpKind,
    region: &RegionInfo,
    store_id: u64,
) -> Result<Operator> {
    let followers: Vec<u64> = region.follower_store_ids().into_iter().collect();
    let (k, steps) = remove_peer_steps(cluster, region, store_id, &followers)?;
    Ok(Operator::new(
        desc,
        region.id(),
        region.epoch().clone(),
        kind | k,
        steps,
    ))
}

/// An operator replacing the region's peer on `old_store` by peer `peer_id` on `new_store`:
/// add the new peer, move leadership away from the old one if it leads (to a follower if one
/// is on a known store, else to the new peer), then remove it. The region never has fewer
/// replicas than before.
pub fn create_move_peer_operator(
    desc: &str,
    cluster: &RaftCluster,
    region: &RegionInfo,
    kind: OpKind,
    old_store: u64,
    new_store: u64,
    peer_id: u64,
) -> Result<Operator> {
    if region.store_peer(old_store).is_none() {
        return Err(Error::Operator(format!(
            "region {} has no peer on store {old_store}",
            region.id()
        )));
    }
    if region.store_peer(new_store).is_some() {
        return Err(Error::Operator(format!(
            "region {} already has a peer on store {new_store}",
            region.id()
        )));
    }
    let mut candidates: Vec<u64> = region
        .follower_store_ids()
        .into_iter()
        .filter(|&s| s != old_store && !region.is_pending_on(s))
        .collect();
    candidates.push(new_store);
    let (k, remove) = remove_peer_steps(cluster, region, old_store, &candidates)?;
    let mut steps = vec![OpStep::AddPeer {
        to_store: new_store,
        peer_id,
    }];
    steps.extend(remove);
    Ok(Operator::new(
        desc,
        region.id(),
        region.epoch().clone(),
        kind | k | OpKind::REGION,
        steps,
    ))
}

/// The steps removing the peer on `store_id`, with a leader transfer to the first known store
/// of `candidates` first if that peer leads.
fn remove_peer_steps(
    cluster: &RaftCluster,
    region: &RegionInfo,
    store_id: u64,
    candidates: &[u64],
) -> Result<(OpKind, Vec<OpStep>)> {
    let mut kind = OpKind::REGION;
    let mut steps = Vec::new();
    if region.leader_store_id() == Some(store_id) {
        let to = candidates
            .iter()
            .copied()
            .find(|&s| s != store_id && cluster.get_store(s).is_some())
            .ok_or_else(|| {
                Error::Operator(format!(
                    "region {}: no store to take over leadership from store {store_id}",
                    region.id()
                ))
            })?;
        steps.push(OpStep::TransferLeader {
            from_store: store_id,
            to_store: to,
        });
        kind = kind | OpKind::LEADER;
    }
    steps.push(OpStep::RemovePeer {
        from_store: store_id,
    });
    Ok((kind, steps))
}
