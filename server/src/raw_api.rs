//! Stage 1: the raw key-value API (no transactions): get, put, delete and scan of one column
//! family. Handlers take and return the `kvrpcpb` messages so a gRPC layer can wrap them.
//!
//! Bad input (an unknown column family, an empty key) is an `Err`, never a panic. A missing
//! key is not an error: `raw_get` answers `not_found = true`.

use engine::Cf;
use proto::kvrpcpb::{
    KvPair, RawDeleteRequest, RawDeleteResponse, RawGetRequest, RawGetResponse, RawPutRequest,
    RawPutResponse, RawScanRequest, RawScanResponse,
};

use crate::storage::{Modify, Storage};
use crate::Result;

/// The KV service: request handlers over a [`Storage`].
#[derive(Debug)]
pub struct Server<S: Storage> {
    storage: S,
}

impl<S: Storage> Server<S> {
    /// A server over `storage`.
    pub fn new(storage: S) -> Self {
        Server { storage }
    }

    /// The storage behind the server.
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// Reads one key of one column family.
    pub fn raw_get(&self, req: &RawGetRequest) -> Result<RawGetResponse> {
        // lab:begin 1
        // lab:stub let _ = req;
        // lab:stub todo!("1: read the key through a storage reader; absent => not_found")
        let cf = Cf::from_client(&req.cf).map_err(crate::Error::from)?;
        let reader = self.storage.reader(req.get_context())?;
        let value = reader.get_cf(cf, &req.key)?;
        reader.close();
        let mut resp = RawGetResponse::new();
        match value {
            Some(v) => resp.value = v,
            None => resp.not_found = true,
        }
        Ok(resp)
        // lab:end 1
    }

    /// Writes one key of one column family.
    pub fn raw_put(&self, req: &RawPutRequest) -> Result<RawPutResponse> {
        // lab:begin 1
        // lab:stub let _ = req;
        // lab:stub todo!("1: write a one-element batch with a put")
        let cf = Cf::from_client(&req.cf).map_err(crate::Error::from)?;
        let put = Modify::Put {
            cf,
            key: req.key.clone(),
            value: req.value.clone(),
        };
        self.storage.write(req.get_context(), vec![put])?;
        Ok(RawPutResponse::new())
        // lab:end 1
    }

    /// Deletes one key of one column family (deleting an absent key succeeds).
    pub fn raw_delete(&self, req: &RawDeleteRequest) -> Result<RawDeleteResponse> {
        // lab:begin 1
        // lab:stub let _ = req;
        // lab:stub todo!("1: write a one-element batch with a delete")
        let cf = Cf::from_client(&req.cf).map_err(crate::Error::from)?;
        let delete = Modify::Delete {
            cf,
            key: req.key.clone(),
        };
        self.storage.write(req.get_context(), vec![delete])?;
        Ok(RawDeleteResponse::new())
        // lab:end 1
    }

    /// Returns up to `limit` pairs of one column family from `start_key` (inclusive) on, in
    /// ascending key order.
    pub fn raw_scan(&self, req: &RawScanRequest) -> Result<RawScanResponse> {
        // lab:begin 1
        // lab:stub let _ = req;
        // lab:stub todo!("1: iterate from start_key, collecting at most limit pairs")
        let cf = Cf::from_client(&req.cf).map_err(crate::Error::from)?;
        let reader = self.storage.reader(req.get_context())?;
        let mut it = reader.iter_cf(cf)?;
        it.seek(&req.start_key);
        let mut resp = RawScanResponse::new();
        for (key, value) in it.take_pairs(req.limit as usize)? {
            let mut pair = KvPair::new();
            pair.key = key;
            pair.value = value;
            resp.kvs.push(pair);
        }
        drop(it);
        reader.close();
        Ok(resp)
        // lab:end 1
    }
}
