//! The running operators, one per region, and how each heartbeat moves them on.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::time::Duration;

use proto::eraftpb::ConfChangeType;
use proto::schedulerpb::{ChangePeer, RegionHeartbeatResponse, TransferLeader};

use super::{OpKind, OpStep, Operator};
use crate::config::ScheduleConfig;
use crate::core::RegionInfo;
use crate::error::{Error, Result};

/// How an operator ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperatorOutcome {
    /// A heartbeat showed every step done.
    Finished,
    /// It ran longer than its kind allows.
    TimedOut,
    /// The region changed under it (split, or a membership change it did not make), or a step
    /// could not be expressed any more.
    Cancelled(String),
    /// An administrator's operator took its place.
    Replaced,
}

/// An operator that ended, for logs and tests.
#[derive(Debug, Clone, PartialEq)]
pub struct OperatorRecord {
    /// The operator as it ended.
    pub op: Operator,
    /// How it ended.
    pub outcome: OperatorOutcome,
    /// When.
    pub at: Duration,
}

impl fmt::Display for OperatorRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} at {:?}: {}", self.outcome, self.at, self.op)
    }
}

/// How many ended operators the controller remembers.
const HISTORY_LEN: usize = 256;

/// The running operators (see the module docs).
#[derive(Debug, Default)]
pub struct OperatorController {
    ops: BTreeMap<u64, Operator>,
    history: VecDeque<OperatorRecord>,
    finished: u64,
}

impl OperatorController {
    /// No operators.
    pub fn new() -> OperatorController {
        OperatorController::default()
    }

    /// Starts `op` at `now`. A region runs one operator at a time: an administrator's operator
    /// replaces the running one, any other is refused while one runs.
    pub fn add(&mut self, mut op: Operator, now: Duration) -> Result<()> {
        if op.is_empty() {
            return Err(Error::Operator(format!(
                "operator for region {} has no steps",
                op.region_id()
            )));
        }
        let region_id = op.region_id();
        if let Some(old) = self.ops.get(&region_id) {
            if !op.kind().contains(OpKind::ADMIN) {
                return Err(Error::Operator(format!(
                    "region {region_id} already runs {old}"
                )));
            }
            if let Some(old) = self.ops.remove(&region_id) {
                self.record(old, OperatorOutcome::Replaced, now);
            }
        }
        op.start(now);
        tracing::debug!("scheduler: start {op}");
        self.ops.insert(region_id, op);
        Ok(())
    }

    /// The operator running on the region.
    pub fn get(&self, region_id: u64) -> Option<&Operator> {
        self.ops.get(&region_id)
    }

    /// Every running operator, by region id.
    pub fn operators(&self) -> impl Iterator<Item = &Operator> + '_ {
        self.ops.values()
    }

    /// How many running operators have every flag of `kind`.
    pub fn count(&self, kind: OpKind) -> usize {
        self.ops
            .values()
            .filter(|o| o.kind().contains(kind))
            .count()
    }

    /// How many operators finished since the start.
    pub fn finished_count(&self) -> u64 {
        self.finished
    }

    /// The most recent ended operators, oldest first.
    pub fn history(&self) -> impl Iterator<Item = &OperatorRecord> + '_ {
        self.history.iter()
    }

    /// Stops the region's operator, if any.
    pub fn cancel(&mut self, region_id: u64, why: &str, now: Duration) {
        if let Some(op) = self.ops.remove(&region_id) {
            self.record(op, OperatorOutcome::Cancelled(why.to_string()), now);
        }
    }

    /// Ends every operator that ran out of time at `now`.
    pub fn remove_timed_out(&mut self, now: Duration, cfg: &ScheduleConfig) {
        let late: Vec<u64> = self
            .ops
            .values()
            .filter(|o| o.is_timed_out(now, cfg))
            .map(Operator::region_id)
            .collect();
        for id in late {
            if let Some(op) = self.ops.remove(&id) {
                self.record(op, OperatorOutcome::TimedOut, now);
            }
        }
    }

    /// Moves the region's operator on with what a heartbeat showed: finished steps are
    /// skipped; an operator the region outgrew is cancelled. Returns the response carrying the
    /// step the leader should take now, if there is one to send.
    pub fn dispatch(
        &mut self,
        region: &RegionInfo,
        now: Duration,
        cfg: &ScheduleConfig,
    ) -> Option<RegionHeartbeatResponse> {
        let id = region.id();
        let op = self.ops.get_mut(&id)?;
        if region.epoch().version != op.epoch().version {
            let why = format!(
                "region {id} version moved from {} to {}",
                op.epoch().version,
                region.epoch().version
            );
            self.cancel(id, &why, now);
            return None;
        }
        let step = op.check(region);
        let expected = op.epoch().conf_ver + op.conf_ver_changed(region);
        if region.epoch().conf_ver > expected {
            let why = format!(
                "region {id} conf_ver {} is past the {expected} this operator accounts for",
                region.epoch().conf_ver
            );
            self.cancel(id, &why, now);
            return None;
        }
        let Some(step) = step else {
            if let Some(op) = self.ops.remove(&id) {
                self.finished += 1;
                tracing::debug!("scheduler: finished {op}");
                self.record(op, OperatorOutcome::Finished, now);
            }
            return None;
        };
        if op.is_timed_out(now, cfg) {
            if let Some(op) = self.ops.remove(&id) {
                self.record(op, OperatorOutcome::TimedOut, now);
            }
            return None;
        }
        match step_response(region, step) {
            Ok(resp) => resp,
            Err(why) => {
                self.cancel(id, &why, now);
                None
            }
        }
    }

    fn record(&mut self, op: Operator, outcome: OperatorOutcome, at: Duration) {
        if outcome != OperatorOutcome::Finished {
            tracing::debug!("scheduler: {outcome:?}: {op}");
        }
        if self.history.len() == HISTORY_LEN {
            self.history.pop_front();
        }
        self.history.push_back(OperatorRecord { op, outcome, at });
    }
}

/// The heartbeat response carrying `step` for `region`'s leader. `Ok(None)` when the step is
/// under way and there is nothing to repeat (an added peer that is still catching up).
fn step_response(
    region: &RegionInfo,
    step: OpStep,
) -> std::result::Result<Option<RegionHeartbeatResponse>, String> {
    let mut resp = RegionHeartbeatResponse::new();
    resp.region_id = region.id();
    resp.set_region_epoch(region.epoch().clone());
    if let Some(leader) = &region.leader {
        resp.set_target_peer(leader.clone());
    }
    match step {
        OpStep::AddPeer { to_store, peer_id } => {
            if let Some(p) = region.store_peer(to_store) {
                if p.id == peer_id {
                    return Ok(None);
                }
                return Err(format!(
                    "store {to_store} holds peer {} of region {}, not the peer {peer_id} to add",
                    p.id,
                    region.id()
                ));
            }
            let mut change = ChangePeer::new();
            change.change_type = ConfChangeType::AddNode;
            change.mut_peer().id = peer_id;
            change.mut_peer().store_id = to_store;
            resp.set_change_peer(change);
        }
        OpStep::RemovePeer { from_store } => {
            let Some(p) = region.store_peer(from_store) else {
                return Ok(None);
            };
            let mut change = ChangePeer::new();
            change.change_type = ConfChangeType::RemoveNode;
            change.set_peer(p.clone());
            resp.set_change_peer(change);
        }
        OpStep::TransferLeader { to_store, .. } => {
            let Some(p) = region.store_peer(to_store) else {
                return Err(format!(
                    "region {} has no peer on store {to_store} to lead",
                    region.id()
                ));
            };
            let mut t = TransferLeader::new();
            t.set_peer(p.clone());
            resp.set_transfer_leader(t);
        }
    }
    Ok(Some(resp))
}
