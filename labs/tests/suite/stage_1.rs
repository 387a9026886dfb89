//! Stage 1: standalone storage and the raw API.
//!
//! Every test of the original (`kv/server/server_test.go`) plus bad input and edge cases the
//! original leaves open. Where the original ignores a returned error (e.g. `TestRawPut1`'s put),
//! these tests assert it is `Ok`.

use engine::{Cf, DbIterator};
use proto::kvrpcpb::{Context, RawDeleteRequest, RawGetRequest, RawPutRequest, RawScanRequest};
use server::{Config, Modify, Server, StandaloneStorage, Storage};

/// A server on a fresh standalone storage in its own temporary directory, stopped and
/// deleted when dropped.
struct Fixture {
    server: Server<StandaloneStorage>,
    _dir: tempfile::TempDir,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.server.storage().stop();
    }
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = StandaloneStorage::new(&Config::test(dir.path())).expect("open storage");
    Fixture {
        server: Server::new(storage),
        _dir: dir,
    }
}

impl Fixture {
    /// Writes through the storage directly, bypassing the server.
    fn set(&self, cf: Cf, key: &[u8], value: &[u8]) {
        let put = Modify::Put {
            cf,
            key: key.to_vec(),
            value: value.to_vec(),
        };
        self.server
            .storage()
            .write(&Context::new(), vec![put])
            .expect("storage write");
    }

    /// Reads through a storage reader directly; a missing key is `None` without an error.
    fn get(&self, cf: Cf, key: &[u8]) -> Option<Vec<u8>> {
        let reader = self
            .server
            .storage()
            .reader(&Context::new())
            .expect("reader");
        reader.get_cf(cf, key).expect("reader get")
    }

    fn iter(&self, cf: Cf) -> DbIterator {
        let reader = self
            .server
            .storage()
            .reader(&Context::new())
            .expect("reader");
        reader.iter_cf(cf).expect("iterator")
    }

    fn raw_get(&self, cf: &str, key: &[u8]) -> server::Result<proto::kvrpcpb::RawGetResponse> {
        let mut req = RawGetRequest::new();
        req.key = key.to_vec();
        req.cf = cf.to_owned();
        self.server.raw_get(&req)
    }

    fn raw_put(&self, cf: &str, key: &[u8], value: &[u8]) -> server::Result<()> {
        let mut req = RawPutRequest::new();
        req.key = key.to_vec();
        req.value = value.to_vec();
        req.cf = cf.to_owned();
        self.server.raw_put(&req).map(|_| ())
    }

    fn raw_delete(&self, cf: &str, key: &[u8]) -> server::Result<()> {
        let mut req = RawDeleteRequest::new();
        req.key = key.to_vec();
        req.cf = cf.to_owned();
        self.server.raw_delete(&req).map(|_| ())
    }

    fn raw_scan(
        &self,
        cf: &str,
        start: &[u8],
        limit: u32,
    ) -> server::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut req = RawScanRequest::new();
        req.start_key = start.to_vec();
        req.limit = limit;
        req.cf = cf.to_owned();
        let resp = self.server.raw_scan(&req)?;
        Ok(resp
            .kvs
            .iter()
            .map(|p| (p.key.clone(), p.value.clone()))
            .collect())
    }

    /// Keys [1]..=[n] in `default` with values [233, k].
    fn fill(&self, n: u8) {
        for k in 1..=n {
            self.set(Cf::Default, &[k], &[233, k]);
        }
    }
}

fn pairs(keys: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    keys.iter().map(|&k| (vec![k], vec![233, k])).collect()
}

// ---- The original's ten tests ----

#[test]
fn raw_get_1() {
    let f = fixture();
    f.set(Cf::Default, &[99], &[42]);
    let resp = f.raw_get("default", &[99]).unwrap();
    assert_eq!(resp.value, vec![42]);
    assert!(!resp.not_found);
}

#[test]
fn raw_get_not_found_1() {
    let f = fixture();
    let resp = f.raw_get("default", &[99]).unwrap();
    assert!(
        resp.not_found,
        "a missing key answers not_found, not an error"
    );
    assert!(resp.value.is_empty());
}

#[test]
fn raw_put_1() {
    let f = fixture();
    f.raw_put("default", &[99], &[42]).unwrap();
    assert_eq!(f.get(Cf::Default, &[99]), Some(vec![42]));
}

#[test]
fn raw_get_after_raw_put_1() {
    let f = fixture();
    f.raw_put("default", &[99], &[42]).unwrap();
    f.raw_put("write", &[99], &[44]).unwrap();
    assert_eq!(f.raw_get("default", &[99]).unwrap().value, vec![42]);
    assert_eq!(f.raw_get("write", &[99]).unwrap().value, vec![44]);
}

#[test]
fn raw_get_after_raw_delete_1() {
    let f = fixture();
    f.set(Cf::Default, &[99], &[42]);
    f.raw_delete("default", &[99]).unwrap();
    assert!(f.raw_get("default", &[99]).unwrap().not_found);
}

#[test]
fn raw_delete_1() {
    let f = fixture();
    f.set(Cf::Default, &[99], &[42]);
    f.raw_delete("default", &[99]).unwrap();
    assert_eq!(f.get(Cf::Default, &[99]), None);
}

#[test]
fn raw_scan_1() {
    let f = fixture();
    f.fill(5);
    assert_eq!(f.raw_scan("default", &[1], 3).unwrap(), pairs(&[1, 2, 3]));
}

#[test]
fn raw_scan_after_raw_put_1() {
    let f = fixture();
    f.fill(4);
    f.raw_put("default", &[5], &[233, 5]).unwrap();
    assert_eq!(
        f.raw_scan("default", &[1], 10).unwrap(),
        pairs(&[1, 2, 3, 4, 5])
    );
}

#[test]
fn raw_scan_after_raw_delete_1() {
    let f = fixture();
    f.fill(4);
    f.raw_delete("default", &[3]).unwrap();
    assert_eq!(f.raw_scan("default", &[1], 10).unwrap(), pairs(&[1, 2, 4]));
}

/// A reader is a point-in-time snapshot: an iterator opened before a delete still yields the
/// deleted key. Unlike the original, this checks every key and value and that the iteration
/// ends after the fourth pair.
#[test]
fn iter_with_raw_delete_1() {
    let f = fixture();
    f.fill(4);
    let mut it = f.iter(Cf::Default);
    f.raw_delete("default", &[3]).unwrap();
    it.seek(&[1]);
    let mut seen = vec![];
    while let Some((k, v)) = it.item() {
        seen.push((k.to_vec(), v.to_vec()));
        it.next();
    }
    it.status().unwrap();
    assert_eq!(seen, pairs(&[1, 2, 3, 4]));
    assert_eq!(
        f.get(Cf::Default, &[3]),
        None,
        "the live storage saw the delete"
    );
}

// ---- Beyond the original: bad input and edge cases ----

#[test]
fn unknown_cf_is_an_error_for_every_call_1() {
    let f = fixture();
    f.set(Cf::Default, &[1], &[1]);
    for cf in ["nope", "", "Default", "raft"] {
        assert!(f.raw_get(cf, &[1]).is_err(), "get with cf {cf:?}");
        assert!(f.raw_put(cf, &[1], &[2]).is_err(), "put with cf {cf:?}");
        assert!(f.raw_delete(cf, &[1]).is_err(), "delete with cf {cf:?}");
        assert!(f.raw_scan(cf, &[1], 10).is_err(), "scan with cf {cf:?}");
    }
    let errors = [
        ("get", f.raw_get("nope", &[1]).map(drop)),
        ("put", f.raw_put("nope", &[1], &[2]).map(drop)),
        ("delete", f.raw_delete("nope", &[1]).map(drop)),
        ("scan", f.raw_scan("nope", &[1], 10).map(drop)),
    ];
    for (call, result) in errors {
        let err = result.map_or_else(|e| e.to_string(), |()| String::new());
        assert!(
            err.contains("nope"),
            "the error of a {call} names the bad column family \"nope\": {err:?}"
        );
    }
    assert_eq!(
        f.get(Cf::Default, &[1]),
        Some(vec![1]),
        "nothing was changed"
    );
}

#[test]
fn empty_key_is_an_error_not_a_panic_1() {
    let f = fixture();
    assert!(f.raw_put("default", b"", b"v").is_err());
    assert!(f.raw_get("default", b"").is_err());
    assert!(f.raw_delete("default", b"").is_err());
    // An empty start key is valid for a scan: it means "from the first key".
    f.fill(2);
    assert_eq!(f.raw_scan("default", b"", 10).unwrap(), pairs(&[1, 2]));
}

#[test]
fn oversized_key_is_an_error_not_a_panic_1() {
    let f = fixture();
    let key = vec![1u8; 70_000];
    assert!(f.raw_put("default", &key, b"v").is_err());
    assert!(f.raw_get("default", &key).is_err());
}

#[test]
fn scan_with_limit_zero_returns_nothing_1() {
    let f = fixture();
    f.fill(3);
    assert_eq!(f.raw_scan("default", &[1], 0).unwrap(), vec![]);
}

#[test]
fn scan_past_the_end_returns_nothing_1() {
    let f = fixture();
    f.fill(3);
    assert_eq!(f.raw_scan("default", &[4], 10).unwrap(), vec![]);
    assert_eq!(f.raw_scan("default", &[255, 255], 10).unwrap(), vec![]);
    let empty = fixture();
    assert_eq!(empty.raw_scan("default", b"", 10).unwrap(), vec![]);
}

#[test]
fn scan_starting_between_keys_1() {
    let f = fixture();
    for k in [10u8, 20, 30] {
        f.set(Cf::Default, &[k], &[233, k]);
    }
    assert_eq!(f.raw_scan("default", &[15], 10).unwrap(), pairs(&[20, 30]));
    assert_eq!(f.raw_scan("default", &[10, 0], 1).unwrap(), pairs(&[20]));
}

#[test]
fn scan_sees_only_its_cf_1() {
    let f = fixture();
    f.fill(3);
    f.set(Cf::Write, &[2], b"w");
    f.set(Cf::Lock, &[9], b"l");
    assert_eq!(
        f.raw_scan("write", b"", 10).unwrap(),
        vec![(vec![2], b"w".to_vec())]
    );
    assert_eq!(
        f.raw_scan("lock", b"", 10).unwrap(),
        vec![(vec![9], b"l".to_vec())]
    );
    assert_eq!(f.raw_scan("default", b"", 10).unwrap(), pairs(&[1, 2, 3]));
}

#[test]
fn reads_after_delete_and_rewrite_1() {
    let f = fixture();
    f.raw_put("default", b"k", b"v1").unwrap();
    f.raw_delete("default", b"k").unwrap();
    assert!(f.raw_get("default", b"k").unwrap().not_found);
    assert_eq!(f.raw_scan("default", b"", 10).unwrap(), vec![]);
    f.raw_put("default", b"k", b"v2").unwrap();
    assert_eq!(f.raw_get("default", b"k").unwrap().value, b"v2");
    // Deleting twice, or deleting a key that never existed, succeeds.
    f.raw_delete("default", b"k").unwrap();
    f.raw_delete("default", b"k").unwrap();
    f.raw_delete("default", b"never").unwrap();
    assert!(f.raw_get("default", b"k").unwrap().not_found);
}

#[test]
fn empty_value_is_a_value_not_a_miss_1() {
    let f = fixture();
    f.raw_put("default", b"k", b"").unwrap();
    let resp = f.raw_get("default", b"k").unwrap();
    assert!(!resp.not_found, "an empty value is present");
    assert!(resp.value.is_empty());
    assert_eq!(
        f.raw_scan("default", b"", 10).unwrap(),
        vec![(b"k".to_vec(), vec![])]
    );
}

#[test]
fn overwrite_keeps_the_last_value_1() {
    let f = fixture();
    for v in 0u8..10 {
        f.raw_put("default", b"k", &[v]).unwrap();
    }
    assert_eq!(f.raw_get("default", b"k").unwrap().value, vec![9]);
    assert_eq!(f.raw_scan("default", b"", 10).unwrap().len(), 1);
}

/// A batch is atomic: when one of its changes is invalid, none of them is applied.
#[test]
fn write_batch_is_all_or_nothing_1() {
    let f = fixture();
    let batch = vec![
        Modify::Put {
            cf: Cf::Default,
            key: b"a".to_vec(),
            value: b"1".to_vec(),
        },
        Modify::Put {
            cf: Cf::Write,
            key: b"a".to_vec(),
            value: b"2".to_vec(),
        },
        Modify::Put {
            cf: Cf::Default,
            key: vec![],
            value: b"bad".to_vec(),
        },
    ];
    assert!(f.server.storage().write(&Context::new(), batch).is_err());
    assert_eq!(f.get(Cf::Default, b"a"), None);
    assert_eq!(f.get(Cf::Write, b"a"), None);

    let batch = vec![
        Modify::Put {
            cf: Cf::Default,
            key: b"a".to_vec(),
            value: b"1".to_vec(),
        },
        Modify::Put {
            cf: Cf::Lock,
            key: b"a".to_vec(),
            value: b"2".to_vec(),
        },
        Modify::Delete {
            cf: Cf::Default,
            key: b"b".to_vec(),
        },
    ];
    f.server.storage().write(&Context::new(), batch).unwrap();
    assert_eq!(f.get(Cf::Default, b"a"), Some(b"1".to_vec()));
    assert_eq!(f.get(Cf::Lock, b"a"), Some(b"2".to_vec()));
}

#[test]
fn data_survives_stop_and_reopen_1() {
    let dir = tempfile::tempdir().unwrap();
    {
        let server = Server::new(StandaloneStorage::new(&Config::test(dir.path())).unwrap());
        let mut req = RawPutRequest::new();
        req.key = b"durable".to_vec();
        req.value = b"yes".to_vec();
        req.cf = "default".into();
        server.raw_put(&req).unwrap();
        server.storage().stop().unwrap();
    }
    let server = Server::new(StandaloneStorage::new(&Config::test(dir.path())).unwrap());
    let mut req = RawGetRequest::new();
    req.key = b"durable".to_vec();
    req.cf = "default".into();
    assert_eq!(server.raw_get(&req).unwrap().value, b"yes");
}

#[test]
fn a_stopped_storage_answers_errors_1() {
    let f = fixture();
    f.raw_put("default", b"k", b"v").unwrap();
    f.server.storage().stop().unwrap();
    assert!(f.raw_get("default", b"k").is_err());
    assert!(f.raw_put("default", b"k", b"v").is_err());
    assert!(f.raw_scan("default", b"", 1).is_err());
}

/// A delete removes the key from the column family it names and from no other: the same user
/// key in the other column families keeps its value.
///
/// Catches a `raw_delete` that deletes from `default` whatever the request's `cf` says. The
/// original deletes only in `default`, where that mistake is invisible.
#[test]
fn raw_delete_removes_only_its_cf_1() {
    let f = fixture();
    for cf in [Cf::Default, Cf::Lock, Cf::Write] {
        f.set(cf, b"k", cf.name().as_bytes());
    }
    f.raw_delete("write", b"k").unwrap();
    assert_eq!(
        f.get(Cf::Write, b"k"),
        None,
        "a delete in write removes the key from write"
    );
    assert_eq!(
        f.get(Cf::Default, b"k"),
        Some(b"default".to_vec()),
        "a delete in write leaves the key in default alone"
    );
    assert_eq!(
        f.get(Cf::Lock, b"k"),
        Some(b"lock".to_vec()),
        "a delete in write leaves the key in lock alone"
    );
    f.raw_delete("lock", b"k").unwrap();
    assert_eq!(
        f.get(Cf::Lock, b"k"),
        None,
        "a delete in lock removes the key from lock"
    );
    assert_eq!(
        f.raw_get("default", b"k").unwrap().value,
        b"default",
        "deletes in lock and write leave the key in default alone"
    );
}

/// A reader is a point-in-time view of the storage as it was when the reader was opened:
/// writes made after that are invisible to its point reads and to the iterators it opens
/// later, while a new reader sees them.
///
/// Catches a reader that reads the live engine (or takes a fresh snapshot per call). The
/// original's `TestIterWithRawDelete1` opens its iterator *before* the delete, so a reader
/// whose iterators snapshot the engine when they are created passes it, and it never reads
/// through the reader with `get`; here the writes come between opening the reader and
/// reading through it.
#[test]
fn reader_sees_the_storage_as_it_was_when_opened_1() {
    let f = fixture();
    f.fill(3);
    let reader = f.server.storage().reader(&Context::new()).expect("reader");
    f.raw_put("default", &[1], b"new").unwrap();
    f.raw_delete("default", &[2]).unwrap();
    f.raw_put("default", &[4], &[233, 4]).unwrap();

    assert_eq!(
        reader.get_cf(Cf::Default, &[1]).unwrap(),
        Some(vec![233, 1]),
        "the reader's get sees the value from before the overwrite"
    );
    assert_eq!(
        reader.get_cf(Cf::Default, &[2]).unwrap(),
        Some(vec![233, 2]),
        "the reader's get still sees a key deleted after it was opened"
    );
    assert_eq!(
        reader.get_cf(Cf::Default, &[4]).unwrap(),
        None,
        "the reader's get does not see a key written after it was opened"
    );
    let mut it = reader.iter_cf(Cf::Default).expect("iterator");
    it.seek(b"");
    let mut seen = vec![];
    while let Some((k, v)) = it.item() {
        seen.push((k.to_vec(), v.to_vec()));
        it.next();
    }
    it.status().unwrap();
    assert_eq!(
        seen,
        pairs(&[1, 2, 3]),
        "an iterator opened on the reader after the writes sees the storage as it was when the reader was opened"
    );
    drop(it);
    reader.close();

    // A new reader sees every write.
    assert_eq!(f.get(Cf::Default, &[1]), Some(b"new".to_vec()));
    assert_eq!(f.get(Cf::Default, &[2]), None);
    assert_eq!(f.get(Cf::Default, &[4]), Some(vec![233, 4]));
}
