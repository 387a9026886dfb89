//! A client of a [`crate::LocalCluster`]: finds a key's region and leader through the
//! scheduler and retries as a real client does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;
use proto::metapb;
use proto::raft_cmdpb::{CmdType, RaftCmdRequest, Request};
use raftstore::cmd::{new_delete_cf_cmd, new_get_cf_cmd, new_put_cf_cmd, new_request};
use raftstore::{CmdResponse, StoreEvent};
use scheduler::SchedulerService;

use crate::error::{NodeError, Result};
use crate::router::Router;

/// How long a client waits between two looks at the scheduler or two tries of a store.
const RETRY_PAUSE: Duration = Duration::from_millis(10);

/// A client; cheap to clone, usable from any thread.
#[derive(Debug, Clone)]
pub struct Client {
    router: Router,
    scheduler: Arc<SchedulerService>,
    /// The patience of one request, retries included.
    pub timeout: Duration,
    /// How long one attempt waits for its store's answer.
    pub attempt_timeout: Duration,
}

impl Client {
    /// A client of the stores behind `router` and of `scheduler`.
    pub fn new(router: Router, scheduler: Arc<SchedulerService>) -> Client {
        Client {
            router,
            scheduler,
            timeout: Duration::from_secs(10),
            attempt_timeout: Duration::from_secs(2),
        }
    }

    /// Writes `key` → `value` in `default`.
    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.request(key, vec![new_put_cf_cmd("default", key, value)])
            .map(|_| ())
    }

    /// Reads `key` from `default` (empty if absent).
    pub fn get(&self, key: &[u8]) -> Result<Vec<u8>> {
        let resp = self.request(key, vec![new_get_cf_cmd("default", key)])?;
        match resp.resp.get_responses() {
            [r] if r.get_cmd_type() == CmdType::Get => Ok(r.get_get().value.clone()),
            other => Err(NodeError::Refused(format!("a get answered {other:?}"))),
        }
    }

    /// Deletes `key` from `default`.
    pub fn delete(&self, key: &[u8]) -> Result<()> {
        self.request(key, vec![new_delete_cf_cmd("default", key)])
            .map(|_| ())
    }

    /// Hands `req` to store `store_id` and returns where its answer will arrive.
    pub fn send_command(
        &self,
        store_id: u64,
        req: RaftCmdRequest,
    ) -> Result<crossbeam_channel::Receiver<CmdResponse>> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let cb = Box::new(move |resp: CmdResponse| {
            let _ = tx.send(resp);
        });
        self.router
            .send(store_id, StoreEvent::Command { req, cb })?;
        Ok(rx)
    }

    /// Hands `reqs` to store `store_id` together (the store takes them in one batch) and
    /// returns where each answer will arrive, in order.
    pub fn send_commands(
        &self,
        store_id: u64,
        reqs: Vec<RaftCmdRequest>,
    ) -> Result<Vec<crossbeam_channel::Receiver<CmdResponse>>> {
        let mut rxs = Vec::with_capacity(reqs.len());
        let events = reqs
            .into_iter()
            .map(|req| {
                let (tx, rx) = crossbeam_channel::bounded(1);
                rxs.push(rx);
                let cb = Box::new(move |resp: CmdResponse| {
                    let _ = tx.send(resp);
                });
                StoreEvent::Command { req, cb }
            })
            .collect();
        self.router.send_batch(store_id, events)?;
        Ok(rxs)
    }

    /// Runs `reqs` on the region of `key`: looks the region and its leader up at the
    /// scheduler, sends, and on `NotLeader` follows the hint, on a stale epoch, a missing
    /// region, a stale command, a stopped store or silence tries again (the region looked up
    /// afresh) until [`Client::timeout`].
    pub fn request(&self, key: &[u8], reqs: Vec<Request>) -> Result<CmdResponse> {
        let deadline = Instant::now() + self.timeout;
        let mut hint: Option<metapb::Peer> = None;
        let mut turn = 0usize;
        let mut last = String::from("no region known for the key");
        while Instant::now() < deadline {
            let Some((region, leader)) = self.scheduler.get_region(key) else {
                std::thread::sleep(RETRY_PAUSE);
                continue;
            };
            let peers = region.get_peers();
            if peers.is_empty() {
                std::thread::sleep(RETRY_PAUSE);
                continue;
            }
            // The hint, else the scheduler's leader, else each peer in turn.
            let target = hint
                .take()
                .filter(|h| peers.iter().any(|p| p == h))
                .or_else(|| leader.filter(|_| turn == 0))
                .unwrap_or_else(|| peers[turn % peers.len()].clone());
            turn += 1;
            let mut req = new_request(region.id, region.get_region_epoch().clone(), reqs.clone());
            req.mut_header().set_peer(target.clone());
            let rx = match self.send_command(target.store_id, req) {
                Ok(rx) => rx,
                Err(e) => {
                    last = e.to_string();
                    continue;
                }
            };
            let wait = self
                .attempt_timeout
                .min(deadline.saturating_duration_since(Instant::now()));
            let resp = match rx.recv_timeout(wait) {
                Ok(resp) => resp,
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    last = format!("store {} did not answer", target.store_id);
                    continue;
                }
            };
            let header = resp.resp.get_header();
            if !header.has_error() {
                return Ok(resp);
            }
            let err = header.get_error();
            last = format!("{err:?}");
            if err.has_not_leader() {
                let nl = err.get_not_leader();
                hint = nl.has_leader().then(|| nl.get_leader().clone());
                if hint.is_none() {
                    std::thread::sleep(RETRY_PAUSE);
                }
            } else if err.has_epoch_not_match()
                || err.has_region_not_found()
                || err.has_key_not_in_region()
                || err.has_stale_command()
                || err.has_store_not_match()
            {
                turn = 0;
                std::thread::sleep(RETRY_PAUSE);
            } else {
                return Err(NodeError::Refused(err.message.clone()));
            }
        }
        Err(NodeError::Timeout(self.timeout, last))
    }
}
