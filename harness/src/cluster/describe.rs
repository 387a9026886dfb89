//! What the trace says about each cluster event: small `Copy`-ish descriptions taken when an
//! event is scheduled and formatted only if a failure prints the trace
//! ([`crate::sim::Label`]).

use std::fmt;

use proto::eraftpb::MessageType;
use proto::raft_cmdpb::{AdminCmdType, CmdType, RaftCmdRequest};
use proto::raft_serverpb::RaftMessage;

/// A raft message between stores.
pub(crate) struct MsgDesc {
    ty: MessageType,
    from: (u64, u64),
    to: (u64, u64),
    region: u64,
    term: u64,
    log_term: u64,
    index: u64,
    entries: Option<(u64, u64)>,
    commit: u64,
    reject: bool,
    snapshot: Option<u64>,
}

impl MsgDesc {
    pub(crate) fn of(m: &RaftMessage) -> MsgDesc {
        let msg = m.get_message();
        MsgDesc {
            ty: msg.get_msg_type(),
            from: (m.get_from_peer().store_id, m.get_from_peer().id),
            to: (m.get_to_peer().store_id, m.get_to_peer().id),
            region: m.region_id,
            term: msg.term,
            log_term: msg.log_term,
            index: msg.index,
            entries: msg
                .entries
                .first()
                .zip(msg.entries.last())
                .map(|(a, b)| (a.index, b.index)),
            commit: msg.commit,
            reject: msg.reject,
            snapshot: msg
                .snapshot
                .as_ref()
                .map(|s| s.get_metadata().index)
                .filter(|&i| i > 0),
        }
    }
}

impl fmt::Display for MsgDesc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ty = format!("{:?}", self.ty);
        write!(
            f,
            "{} store {} (peer {}) → store {} (peer {}), region {}, term {}",
            ty.trim_start_matches("Msg"),
            self.from.0,
            self.from.1,
            self.to.0,
            self.to.1,
            self.region,
            self.term
        )?;
        match self.ty {
            MessageType::MsgAppend => {
                write!(f, ", after {}/{}", self.index, self.log_term)?;
                match self.entries {
                    Some((a, b)) => write!(f, ", entries {a}..={b}")?,
                    None => f.write_str(", no entries")?,
                }
                write!(f, ", commit {}", self.commit)
            }
            MessageType::MsgAppendResponse if self.reject => {
                write!(f, ", REJECT at {}", self.index)
            }
            MessageType::MsgAppendResponse => write!(f, ", index {}", self.index),
            MessageType::MsgRequestVote => {
                write!(f, ", last {}/{}", self.index, self.log_term)
            }
            MessageType::MsgRequestVoteResponse => f.write_str(if self.reject {
                ", rejected"
            } else {
                ", granted"
            }),
            MessageType::MsgHeartbeat => write!(f, ", commit {}", self.commit),
            MessageType::MsgSnapshot => match self.snapshot {
                Some(i) => write!(f, ", snapshot at {i}"),
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }
}

/// A client command sent to a store.
pub(crate) struct CmdDesc {
    /// The simulated client that sent it.
    client: Option<usize>,
    store: u64,
    region: u64,
    admin: Option<AdminCmdType>,
    /// The first request's type and key, and how many requests there are.
    first: Option<(CmdType, Vec<u8>)>,
    requests: usize,
}

impl CmdDesc {
    pub(crate) fn of(req: &RaftCmdRequest) -> CmdDesc {
        let first = req.get_requests().first().map(|r| {
            let key = match r.get_cmd_type() {
                CmdType::Put => r.get_put().get_key(),
                CmdType::Delete => r.get_delete().get_key(),
                CmdType::Get => r.get_get().get_key(),
                CmdType::Snap | CmdType::Invalid => &[],
            };
            (r.get_cmd_type(), key[..key.len().min(24)].to_vec())
        });
        CmdDesc {
            client: None,
            store: req.get_header().get_peer().store_id,
            region: req.get_header().region_id,
            admin: req
                .has_admin_request()
                .then(|| req.get_admin_request().get_cmd_type()),
            first,
            requests: req.get_requests().len(),
        }
    }

    /// Sent by simulated client `client`, if any.
    pub(crate) fn by_client(mut self, client: Option<usize>) -> CmdDesc {
        self.client = client;
        self
    }
}

impl fmt::Display for CmdDesc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(client) = self.client {
            write!(f, "client {client}: ")?;
        }
        match (&self.admin, &self.first) {
            (Some(admin), _) => write!(f, "{admin:?}")?,
            (None, Some((CmdType::Snap, _))) => f.write_str("snap")?,
            (None, Some((ty, key))) => write!(f, "{ty:?} {}", short_key(key))?,
            (None, None) => f.write_str("(no requests)")?,
        }
        if self.requests > 1 {
            write!(f, " (+{} more)", self.requests - 1)?;
        }
        write!(f, " to store {}, region {}", self.store, self.region)
    }
}

/// A key as a short printable string.
pub(crate) fn short_key(key: &[u8]) -> String {
    let shown = &key[..key.len().min(24)];
    let mut s = format!("{:?}", String::from_utf8_lossy(shown));
    if key.len() > shown.len() {
        s.push('…');
    }
    s
}

/// Any formatting closure, for one-off details.
pub(crate) struct Lazy<F: Fn(&mut fmt::Formatter<'_>) -> fmt::Result>(pub(crate) F);

impl<F: Fn(&mut fmt::Formatter<'_>) -> fmt::Result> fmt::Display for Lazy<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (self.0)(f)
    }
}
