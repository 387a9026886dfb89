//! Builders of client commands: a `RaftCmdRequest` for a region and the requests in it.
//! Shared by every client of a store (the harness's, the threaded runtime's, the servers').

use proto::metapb;
use proto::raft_cmdpb::{CmdType, RaftCmdRequest, Request};

/// A command with its header filled for `region_id` at `epoch`.
pub fn new_request(
    region_id: u64,
    epoch: metapb::RegionEpoch,
    reqs: Vec<Request>,
) -> RaftCmdRequest {
    let mut req = RaftCmdRequest::new();
    req.mut_header().region_id = region_id;
    req.mut_header().set_region_epoch(epoch);
    req.set_requests(reqs.into());
    req
}

/// A put of `key` → `value` in column family `cf`.
pub fn new_put_cf_cmd(cf: &str, key: &[u8], value: &[u8]) -> Request {
    let mut r = Request::new();
    r.set_cmd_type(CmdType::Put);
    r.mut_put().cf = cf.to_owned();
    r.mut_put().key = key.to_vec();
    r.mut_put().value = value.to_vec();
    r
}

/// A get of `key` in `cf`.
pub fn new_get_cf_cmd(cf: &str, key: &[u8]) -> Request {
    let mut r = Request::new();
    r.set_cmd_type(CmdType::Get);
    r.mut_get().cf = cf.to_owned();
    r.mut_get().key = key.to_vec();
    r
}

/// A delete of `key` in `cf`.
pub fn new_delete_cf_cmd(cf: &str, key: &[u8]) -> Request {
    let mut r = Request::new();
    r.set_cmd_type(CmdType::Delete);
    r.mut_delete().cf = cf.to_owned();
    r.mut_delete().key = key.to_vec();
    r
}

/// A request for a read snapshot of the region.
pub fn new_snap_cmd() -> Request {
    let mut r = Request::new();
    r.set_cmd_type(CmdType::Snap);
    r.mut_snap();
    r
}
