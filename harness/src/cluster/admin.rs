//! Admin operations on a [`Cluster`] (stage 3b), shaped after the original harness's
//! `TransferLeader`, `MustTransferLeader`, `MustAddPeer`, `MustRemovePeer`, `MustHavePeer`,
//! `MustNonePeer` and `AllocPeer` (`harness-api.md` §2), plus [`Cluster::split_region`], which
//! asks a region's leader to split at a given key.
//!
//! Like the client helpers of [`super::client`], they run the simulator until what they wait
//! for happens, so every timeout is virtual time, and a helper that gives up fails the test
//! with the seed and the story of the run. Membership changes go through the scheduler,
//! as in the original: a test schedules an operator, the scheduler carries it out through its
//! heartbeat responses to the region's leader (the mock attaches the operator's step to every
//! one until it sees the change), and the helper polls the scheduler's copy of the region.
//!
//! Differences from the original, on purpose:
//! - [`Cluster::must_transfer_leader`] pauses 10 ms between two `TransferLeader` commands
//!   (the original re-sends at once, in real time; in virtual time that would be a burst of
//!   commands with no time passing in between).
//! - A missing or wrong answer to `TransferLeader` fails the test with a message; the
//!   original crashes on the missing response.
//! - A region id the scheduler does not know is not silently replaced by the first region
//!   (see [`crate::scheduler::mock`]): the pollers keep waiting for it, and fail naming it.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use proto::metapb;
use proto::raft_cmdpb::{AdminCmdType, AdminRequest, RaftCmdRequest};
use raftstore::{CmdResponse, StoreEvent};

use super::describe::{short_key, Lazy};
use super::request::{new_request, LEADER_INTERVAL, LEADER_POLLS, REQUEST_TIMEOUT};
use super::{deliver, Cluster, Slot};
use crate::sim::Label;

/// How long [`Cluster::must_transfer_leader`] tries.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long [`Cluster::split_region`] waits for one split request to show in the scheduler
/// before it sends the request again.
const SPLIT_ATTEMPT: Duration = Duration::from_secs(1);
/// After an error answer, how long [`Cluster::split_region`] waits before trying again.
const SPLIT_BACKOFF: Duration = Duration::from_millis(100);
/// How long [`Cluster::split_region`] tries in all.
const SPLIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the split helper looks at the scheduler.
const SPLIT_POLL: Duration = Duration::from_millis(10);

/// A command carrying `admin` for `region_id` at `epoch`.
pub fn new_admin_request(
    region_id: u64,
    epoch: metapb::RegionEpoch,
    admin: AdminRequest,
) -> RaftCmdRequest {
    let mut req = new_request(region_id, epoch, Vec::new());
    req.set_admin_request(admin);
    req
}

/// An admin request moving the region's leadership to `peer`.
pub fn new_transfer_leader_cmd(peer: metapb::Peer) -> AdminRequest {
    let mut admin = AdminRequest::new();
    admin.set_cmd_type(AdminCmdType::TransferLeader);
    admin.mut_transfer_leader().set_peer(peer);
    admin
}

/// The peer `(store_id, peer_id)`.
pub fn new_peer(store_id: u64, peer_id: u64) -> metapb::Peer {
    raftstore::util::new_peer(store_id, peer_id)
}

fn fmt_peer(p: &metapb::Peer) -> String {
    format!("(store {}, peer {})", p.store_id, p.id)
}

fn fmt_region(r: &metapb::Region) -> String {
    let peers: Vec<String> = r.get_peers().iter().map(fmt_peer).collect();
    format!(
        "region {} [{}, {}) epoch (conf_ver {}, version {}) peers [{}]",
        r.id,
        short_key(r.get_start_key()),
        short_key(r.get_end_key()),
        r.get_region_epoch().conf_ver,
        r.get_region_epoch().version,
        peers.join(", ")
    )
}

impl Cluster {
    /// The scheduler's copy of region `region_id` and its last reported leader; `None` if the
    /// scheduler does not know the region (yet, or any more).
    pub fn get_region_by_id(
        &self,
        region_id: u64,
    ) -> Option<(metapb::Region, Option<metapb::Peer>)> {
        self.world().scheduler.get_region_by_id(region_id)
    }

    /// A new peer on `store_id` with a fresh id from the scheduler.
    pub fn alloc_peer(&mut self, store_id: u64) -> metapb::Peer {
        let id = self.world_mut().scheduler.alloc_id();
        new_peer(store_id, id)
    }

    /// Sends one `TransferLeader{peer}` admin command to the region's leader (with the
    /// scheduler's epoch of the region, following `NotLeader` hints for up to 5 s) and checks
    /// the answer: it must come, and be a `TransferLeader` admin response. The transfer itself
    /// may or may not happen; [`Cluster::must_transfer_leader`] waits for it.
    pub fn transfer_leader(&mut self, region_id: u64, peer: &metapb::Peer) {
        let Some((region, _)) = self.get_region_by_id(region_id) else {
            self.fail(&format!(
                "transfer_leader: the scheduler knows no region {region_id}"
            ));
        };
        let req = new_admin_request(
            region_id,
            region.get_region_epoch().clone(),
            new_transfer_leader_cmd(peer.clone()),
        );
        let Some(resp) = self.call_command_on_leader(req, REQUEST_TIMEOUT) else {
            self.fail(&format!(
                "transfer_leader: no answer to TransferLeader {} of {} within {REQUEST_TIMEOUT:?} (the store must answer a TransferLeader command at once)",
                fmt_peer(peer),
                fmt_region(&region)
            ));
        };
        let admin = resp.resp.get_admin_response();
        if resp.resp.get_header().has_error()
            || admin.get_cmd_type() != AdminCmdType::TransferLeader
        {
            self.fail(&format!(
                "transfer_leader: TransferLeader {} of region {region_id} was answered with admin response type {:?} and header {:?}; expected a TransferLeader response",
                fmt_peer(peer),
                admin.get_cmd_type(),
                resp.resp.get_header()
            ));
        }
    }

    /// Repeats [`Cluster::transfer_leader`] until the scheduler reports `peer` (same id, same
    /// store) as the region's leader; fails the test after 5 s of virtual time.
    pub fn must_transfer_leader(&mut self, region_id: u64, peer: &metapb::Peer) {
        let start = self.sim().now();
        loop {
            let Some(leader) = self.leader_of_region(region_id) else {
                self.fail(&format!(
                    "must_transfer_leader: the scheduler knows no leader of region {region_id}"
                ));
            };
            if leader.id == peer.id && leader.store_id == peer.store_id {
                return;
            }
            if self.sim().now().since(start) > TRANSFER_TIMEOUT {
                self.fail(&format!(
                    "must_transfer_leader: region {region_id} is still led by {} after {TRANSFER_TIMEOUT:?}, not by {}",
                    fmt_peer(&leader),
                    fmt_peer(peer)
                ));
            }
            self.transfer_leader(region_id, peer);
            self.run_for(LEADER_INTERVAL);
        }
    }

    /// Schedules adding `peer` to the region, then waits until the scheduler's region lists it
    /// ([`Cluster::must_have_peer`]).
    pub fn must_add_peer(&mut self, region_id: u64, peer: &metapb::Peer) {
        self.world_mut().scheduler.add_peer(region_id, peer.clone());
        self.must_have_peer(region_id, peer);
    }

    /// Schedules removing `peer` from the region, then waits until the scheduler's region no
    /// longer lists it ([`Cluster::must_none_peer`]).
    pub fn must_remove_peer(&mut self, region_id: u64, peer: &metapb::Peer) {
        self.world_mut()
            .scheduler
            .remove_peer(region_id, peer.clone());
        self.must_none_peer(region_id, peer);
    }

    /// Waits (500 × 10 ms of virtual time) until the scheduler's copy of the region has a peer
    /// on `peer`'s store with `peer`'s id; fails the test otherwise.
    pub fn must_have_peer(&mut self, region_id: u64, peer: &metapb::Peer) {
        self.poll_peer(region_id, peer, true);
    }

    /// Waits (500 × 10 ms of virtual time) until the scheduler's copy of the region has no
    /// peer on `peer`'s store, or one with another id; fails the test otherwise.
    pub fn must_none_peer(&mut self, region_id: u64, peer: &metapb::Peer) {
        self.poll_peer(region_id, peer, false);
    }

    fn poll_peer(&mut self, region_id: u64, peer: &metapb::Peer, present: bool) {
        let mut last = None;
        for _ in 0..LEADER_POLLS {
            if let Some((region, _)) = self.get_region_by_id(region_id) {
                let has = region
                    .get_peers()
                    .iter()
                    .any(|p| p.store_id == peer.store_id && p.id == peer.id);
                if has == present {
                    return;
                }
                last = Some(region);
            }
            self.run_for(LEADER_INTERVAL);
        }
        let waited = LEADER_INTERVAL * LEADER_POLLS;
        let seen = last.as_ref().map_or_else(
            || format!("the scheduler does not know region {region_id}"),
            |r| format!("the scheduler has {}", fmt_region(r)),
        );
        let seen = match self.world().scheduler.operator(region_id) {
            Some(op) => format!("{seen}; its operator: {op}"),
            None => format!("{seen}; no operator"),
        };
        if present {
            self.fail(&format!(
                "must_have_peer: no peer {} in region {region_id} after {waited:?}; {seen}",
                fmt_peer(peer)
            ))
        } else {
            self.fail(&format!(
                "must_none_peer: region {region_id} still has peer {} after {waited:?}; {seen}",
                fmt_peer(peer)
            ))
        }
    }

    /// Splits `region` at `split_key`: asks the store of the region's leader (as the
    /// scheduler knows it) to split, as the split checker would ([`StoreEvent::SplitRegion`]),
    /// and waits until the scheduler's region containing `split_key` starts at `split_key`.
    /// A request that shows no effect within 1 s (or is refused) is sent again, with the
    /// scheduler's current copy of the region; fails the test after 10 s of virtual time, with
    /// the last answer the store gave.
    pub fn split_region(&mut self, region: &metapb::Region, split_key: &[u8]) {
        if split_key.is_empty()
            || split_key == region.get_start_key()
            || !raftstore::util::region_contains_key(region, split_key)
        {
            self.fail(&format!(
                "split_region: {} does not lie strictly inside {}",
                short_key(split_key),
                fmt_region(region)
            ));
        }
        let start = self.sim().now();
        let mut target = region.clone();
        let mut last_answer: Option<String> = None;
        loop {
            if self.split_visible(split_key) {
                return;
            }
            if self.sim().now().since(start) >= SPLIT_TIMEOUT {
                let seen = self.world().scheduler.get_region(split_key).map_or_else(
                    || "knows no region containing it".to_owned(),
                    |(r, _)| format!("has {}", fmt_region(&r)),
                );
                self.fail(&format!(
                    "split_region: {} was not split at {} within {SPLIT_TIMEOUT:?}; the scheduler {seen}; the last answer to a split request: {}",
                    fmt_region(region),
                    short_key(split_key),
                    last_answer.as_deref().unwrap_or("none")
                ));
            }
            let Some(leader) = self.leader_of_region(target.id) else {
                self.fail(&format!(
                    "split_region: the scheduler knows no leader of region {}",
                    target.id
                ));
            };
            let answer = self.send_split(&target, &leader, split_key);
            let attempt_start = self.sim().now();
            loop {
                self.run_for(SPLIT_POLL);
                if self.split_visible(split_key) {
                    return;
                }
                let waited = self.sim().now().since(attempt_start);
                if let Some(resp) = answer.lock().as_ref() {
                    if resp.resp.get_header().has_error() {
                        last_answer = Some(format!("{:?}", resp.resp.get_header().get_error()));
                        if waited >= SPLIT_BACKOFF {
                            break;
                        }
                    } else {
                        last_answer = Some(format!("{:?}", resp.resp.get_admin_response()));
                    }
                }
                if waited >= SPLIT_ATTEMPT {
                    break;
                }
            }
            // Try again with the scheduler's current copy of the region holding the key.
            if let Some((r, _)) = self.world().scheduler.get_region(split_key) {
                target = r;
            }
        }
    }

    /// Whether the scheduler's region containing `split_key` starts at it.
    fn split_visible(&self, split_key: &[u8]) -> bool {
        self.world()
            .scheduler
            .get_region(split_key)
            .is_some_and(|(r, _)| r.get_start_key() == split_key)
    }

    /// Sends a [`StoreEvent::SplitRegion`] for `region` to `leader`'s store; the answer lands
    /// in the returned slot.
    fn send_split(
        &mut self,
        region: &metapb::Region,
        leader: &metapb::Peer,
        split_key: &[u8],
    ) -> Slot<CmdResponse> {
        let slot: Slot<CmdResponse> = Arc::new(Mutex::new(None));
        let fill = Arc::clone(&slot);
        let ev = StoreEvent::SplitRegion {
            region_id: region.id,
            region_epoch: region.get_region_epoch().clone(),
            split_key: split_key.to_vec(),
            cb: Some(Box::new(move |resp: CmdResponse| *fill.lock() = Some(resp))),
        };
        let (region_id, store_id, key) = (region.id, leader.store_id, short_key(split_key));
        let label = Label::new(
            "split request",
            Lazy(move |f| write!(f, "region {region_id} at {key} to store {store_id}")),
        );
        let (w, c) = self.sim().parts();
        let latency = w.config().client_latency;
        deliver(w, c, store_id, latency, label, ev);
        slot
    }
}

// lab:needs 2aa..3b
#[cfg(test)]
mod tests {
    use std::panic::{catch_unwind, AssertUnwindSafe};

    use proto::schedulerpb::RegionHeartbeatRequest;

    use super::*;
    use crate::cluster::ClusterConfig;
    use crate::scheduler::mock_factory;

    fn failure_of(f: impl FnOnce()) -> String {
        let panic = catch_unwind(AssertUnwindSafe(f)).expect_err("the helper fails the test");
        panic.downcast_ref::<String>().cloned().unwrap_or_default()
    }

    #[test]
    fn admin_requests_carry_their_command() {
        let req = new_admin_request(
            7,
            metapb::RegionEpoch {
                conf_ver: 2,
                version: 3,
                ..Default::default()
            },
            new_transfer_leader_cmd(new_peer(4, 9)),
        );
        assert_eq!(req.get_header().region_id, 7);
        assert_eq!(req.get_header().get_region_epoch().version, 3);
        assert!(req.get_requests().is_empty());
        let admin = req.get_admin_request();
        assert_eq!(admin.get_cmd_type(), AdminCmdType::TransferLeader);
        assert_eq!(admin.get_transfer_leader().get_peer(), &new_peer(4, 9));
    }

    #[test]
    fn alloc_peer_takes_fresh_ids_after_the_bootstrap_ones() {
        let mut c = Cluster::new("alloc_peer", 1, ClusterConfig::new(3));
        let a = c.alloc_peer(2);
        let b = c.alloc_peer(2);
        assert_eq!((a.store_id, b.store_id), (2, 2));
        assert!(a.id > 3 && b.id > a.id, "{a:?} {b:?}");
    }

    /// Without a store that carries the operator out, the pollers give up after 5 s of
    /// virtual time and name the peer and what the scheduler has instead.
    #[test]
    fn peer_pollers_fail_with_the_schedulers_region() {
        let mut c = Cluster::new("peer_pollers", 2, ClusterConfig::new(3));
        let region = c.get_region(b"");
        let start = c.sim().now();
        let msg = failure_of(|| c.must_have_peer(region.id, &new_peer(3, 42)));
        assert!(
            msg.starts_with("must_have_peer: no peer (store 3, peer 42) in region 1"),
            "{msg}"
        );
        assert!(msg.contains("the scheduler has region 1"), "{msg}");
        assert!(msg.contains("LABS_SEED=2"), "{msg}");
        let took = c.sim().now().since(start);
        assert!(
            took >= Duration::from_secs(5) && took < Duration::from_millis(5_100),
            "{took:?}"
        );
        // Present peers are found at once; an unknown region is named.
        c.must_have_peer(region.id, &new_peer(3, 3));
        c.must_none_peer(region.id, &new_peer(3, 42));
        let msg = failure_of(|| c.must_have_peer(99, &new_peer(3, 3)));
        assert!(msg.contains("does not know region 99"), "{msg}");
    }

    #[test]
    fn split_region_refuses_a_key_outside_the_region() {
        let mut c = Cluster::new("split_outside", 3, ClusterConfig::new(3));
        let region = c.get_region(b"");
        let msg = failure_of(|| c.split_region(&region, b""));
        assert!(msg.contains("does not lie strictly inside"), "{msg}");
    }

    /// A heartbeat that breaks the mock scheduler's rules fails the run at the next store
    /// event, with the rule and the seed (a violation is recorded, not panicked, inside the
    /// scheduler).
    #[test]
    fn a_scheduler_violation_fails_the_run_with_its_seed() {
        let cfg = ClusterConfig::new(3).with_scheduler(mock_factory());
        let mut c = Cluster::new("scheduler_violation", 4, cfg);
        let mut region = c.get_region(b"");
        // Two conf changes in one heartbeat: conf_ver + 2, one peer fewer.
        region.mut_region_epoch().conf_ver += 2;
        region.mut_peers().pop();
        let mut hb = RegionHeartbeatRequest::default();
        hb.set_leader(region.get_peers()[0].clone());
        hb.set_region(region);
        let now = c.sim().now().as_duration();
        assert!(c.world_mut().scheduler.region_heartbeat(&hb, now).is_err());
        let msg = failure_of(|| c.run_for(Duration::from_secs(1)));
        assert!(
            msg.starts_with("scheduler: region 1 heartbeat is not one conf change"),
            "{msg}"
        );
        assert!(msg.contains("unmatched conf version"), "{msg}");
        assert!(
            msg.ends_with("scheduler_violation failed: replay with LABS_SEED=4"),
            "{msg}"
        );
    }

    /// A store added at run time joins like the first ones: the scheduler knows it, a peer of
    /// region 1 moves to it by two conf changes (it gets the data by snapshot), it leads,
    /// serves, crashes and restarts under the apply oracle, and it takes part in the
    /// replica comparison.
    #[test]
    fn a_store_added_at_run_time_takes_over_a_peer() {
        let mut c = Cluster::new("add_store", 5, ClusterConfig::new(3));
        c.must_put(b"k1", b"v1");
        let id = c.add_store();
        assert_eq!(id, 4);
        assert_eq!(c.store_ids(), vec![1, 2, 3, 4]);
        assert!(c.is_running(4));
        assert_eq!(c.world().config().stores, 4);
        assert_eq!(
            c.world().scheduler.get_store(4).map(|s| s.address),
            Some("store-4".to_owned())
        );
        assert!(c.regions_on(4).is_empty(), "a new store holds no region");

        let peer = c.alloc_peer(4);
        c.must_add_peer(1, &peer);
        c.must_get_equal(4, b"k1", b"v1");
        c.must_remove_peer(1, &new_peer(1, 1));
        c.must_put(b"k2", b"v2");
        c.must_get_equal(4, b"k2", b"v2");
        c.must_get_none(1, b"k1");

        c.crash_store(4);
        c.run_for(Duration::from_millis(300));
        c.start_store(4);
        c.must_transfer_leader(1, &peer);
        c.must_put(b"k3", b"v3");
        c.must_get(b"k2", b"v2");
        c.must_get_equal(4, b"k3", b"v3");
        c.must_replicas_converge();
        assert_eq!(c.add_store(), 5, "ids keep counting up");
        c.must_put(b"k4", b"v4");
    }
}
// lab:end-needs
