//! Message classification and validation shared by the state machine and `RawNode`.

use crate::eraftpb::{Message, MessageType};
use crate::errors::{Error, Result};

/// Whether a message type is one the application generates locally (never sent over the
/// network).
pub fn is_local_msg(t: MessageType) -> bool {
    matches!(
        t,
        MessageType::MsgHup
            | MessageType::MsgBeat
            | MessageType::MsgUnreachable
            | MessageType::MsgSnapStatus
            | MessageType::MsgCheckQuorum
    )
}

/// Whether a message type is a response to a message this node sent.
pub fn is_response_msg(t: MessageType) -> bool {
    matches!(
        t,
        MessageType::MsgAppendResponse
            | MessageType::MsgRequestVoteResponse
            | MessageType::MsgHeartbeatResponse
            | MessageType::MsgUnreachable
            | MessageType::MsgRequestPreVoteResponse
    )
}

// The largest log index a message may introduce; keeps `index + 1` arithmetic safe.
const MAX_INDEX: u64 = u64::MAX / 4;

// Rejects messages that cannot be handled safely, before any state changes.
pub(crate) fn validate_message(m: &Message) -> Result<()> {
    match m.msg_type {
        MessageType::MsgHup
        | MessageType::MsgBeat
        | MessageType::MsgAppendResponse
        | MessageType::MsgRequestVote
        | MessageType::MsgRequestVoteResponse
        | MessageType::MsgHeartbeat
        | MessageType::MsgHeartbeatResponse
        | MessageType::MsgTransferLeader
        | MessageType::MsgTimeoutNow => Ok(()),
        MessageType::MsgSnapshot => validate_snapshot(m),
        MessageType::MsgAppend => validate_append(m),
        MessageType::MsgPropose => {
            if m.entries.is_empty() {
                Err(Error::InvalidMessage("proposal without entries".to_owned()))
            } else {
                Ok(())
            }
        }
        t => Err(Error::InvalidMessage(format!(
            "unsupported message type {t:?}"
        ))),
    }
}

// The entries of an append must follow its previous index one by one, with terms between the
// previous entry's and the message's.
pub(crate) fn validate_append(m: &Message) -> Result<()> {
    for (i, e) in m.entries.iter().enumerate() {
        let want = m.index.checked_add(i as u64 + 1);
        if want != Some(e.index) || e.index > MAX_INDEX {
            return Err(Error::InvalidMessage(format!(
                "append entries not contiguous: entry {i} has index {}, prev index {}",
                e.index, m.index
            )));
        }
        if e.term < m.log_term || (m.term != 0 && e.term > m.term) {
            return Err(Error::InvalidMessage(format!(
                "append entry {} has term {} outside [{}, {}]",
                e.index, e.term, m.log_term, m.term
            )));
        }
    }
    Ok(())
}

pub(crate) fn validate_snapshot(m: &Message) -> Result<()> {
    let index = m.get_snapshot().get_metadata().index;
    if index > MAX_INDEX {
        return Err(Error::InvalidMessage(format!(
            "snapshot index {index} is out of range"
        )));
    }
    Ok(())
}
