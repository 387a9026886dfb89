//! The storage of a server whose data lives in a raft group: every write is a command
//! proposed to the region's peer on this store, every read a snapshot taken through the log.
//!
//! The request's [`Context`] names the region, its epoch and the peer the client believes
//! leads it, as the original's clients fill it from the scheduler. A command this store
//! cannot serve (not the leader, a stale epoch, a key outside the region, no such region)
//! fails with [`Error::Region`], which the service returns in the response's `region_error`
//! so the client refreshes its view and retries elsewhere.

use std::time::Duration;

use engine::{Cf, DbIterator};
use proto::errorpb;
use proto::kvrpcpb::Context;
use proto::raft_cmdpb::Request;
use raftstore::cmd::{new_delete_cf_cmd, new_put_cf_cmd, new_request, new_snap_cmd};
use raftstore::{CmdResponse, RegionSnapshot, StoreEvent};

use crate::storage::{Modify, Storage, StorageReader};
use crate::{Error, Result};

/// How long a command waits for its store's answer before the client is told to retry.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// A [`Storage`] over the raft groups of one store (see the module docs).
#[derive(Debug, Clone)]
pub struct RaftStorage {
    router: node::Router,
    store_id: u64,
}

impl RaftStorage {
    /// The storage of store `store_id`, reached through `router`.
    pub fn new(router: node::Router, store_id: u64) -> RaftStorage {
        RaftStorage { router, store_id }
    }

    fn call(&self, ctx: &Context, reqs: Vec<Request>) -> Result<CmdResponse> {
        let mut req = new_request(ctx.region_id, ctx.get_region_epoch().clone(), reqs);
        req.mut_header().set_peer(ctx.get_peer().clone());
        let (tx, rx) = crossbeam_channel::bounded(1);
        let cb = Box::new(move |resp: CmdResponse| {
            let _ = tx.send(resp);
        });
        self.router
            .send(self.store_id, StoreEvent::Command { req, cb })
            .map_err(|_| Error::Stopped)?;
        let resp = rx
            .recv_timeout(COMMAND_TIMEOUT)
            .map_err(|_| region_error(format!("no answer within {COMMAND_TIMEOUT:?}")))?;
        if resp.resp.get_header().has_error() {
            let err = resp.resp.get_header().get_error().clone();
            return Err(Error::Region(Box::new(err)));
        }
        Ok(resp)
    }
}

fn region_error(message: String) -> Error {
    let mut err = errorpb::Error::new();
    err.message = message;
    Error::Region(Box::new(err))
}

impl Storage for RaftStorage {
    fn write(&self, ctx: &Context, batch: Vec<Modify>) -> Result<()> {
        let reqs = batch
            .iter()
            .map(|m| match m {
                Modify::Put { cf, key, value } => new_put_cf_cmd(cf.name(), key, value),
                Modify::Delete { cf, key } => new_delete_cf_cmd(cf.name(), key),
            })
            .collect();
        self.call(ctx, reqs).map(|_| ())
    }

    fn reader(&self, ctx: &Context) -> Result<Box<dyn StorageReader>> {
        let resp = self.call(ctx, vec![new_snap_cmd()])?;
        let snap = resp
            .snap
            .ok_or_else(|| region_error("a snap command answered without a snapshot".into()))?;
        Ok(Box::new(RegionReader { snap }))
    }

    fn stop(&self) -> Result<()> {
        Ok(())
    }
}

/// A read view of one region: reads outside its range are region errors.
struct RegionReader {
    snap: RegionSnapshot,
}

fn from_store(e: raftstore::Error) -> Error {
    match e {
        raftstore::Error::Engine(e) => Error::Engine(e),
        other => Error::Region(Box::new((&other).into())),
    }
}

impl StorageReader for RegionReader {
    fn get_cf(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.snap.get_cf(cf, key).map_err(from_store)
    }

    fn iter_cf(&self, cf: Cf) -> Result<DbIterator> {
        self.snap.iter_cf(cf, &[]).map_err(from_store)
    }
}
