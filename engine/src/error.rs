//! The engine's error type.

use crate::Cf;

/// Everything that can go wrong in the engine. None of these is a panic: bad input from a
/// client or a corrupted value on disk reaches the caller as one of these.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A column family name that is not one of the course's.
    #[error("unknown column family {0:?} (expected one of default, lock, write)")]
    UnknownCf(String),
    /// The column family exists in the course but this engine was not opened with it.
    #[error("column family {0} is not open in this engine")]
    CfNotOpen(Cf),
    /// Keys must be non-empty.
    #[error("empty key")]
    EmptyKey,
    /// Keys are limited to 65,535 bytes by the LSM tree.
    #[error("key of {0} bytes is longer than the 65535-byte limit")]
    KeyTooLarge(usize),
    /// Values are limited to 4 GiB by the LSM tree.
    #[error("value of {0} bytes is larger than the 4 GiB limit")]
    ValueTooLarge(usize),
    /// The engine was closed; no further reads or writes are accepted.
    #[error("engine is closed")]
    Closed,
    /// [`crate::Engine::simulate_crash`] on an engine that was not opened with
    /// [`crate::EngineOptions::simulated_durability`]: a real engine cannot unwrite.
    #[error("engine is not in simulated-durability mode, so it cannot simulate a crash")]
    NotSimulated,
    /// [`crate::Engine::set_write_observer`] on an engine that already has an observer.
    #[error("a write observer is already installed on this engine")]
    ObserverInstalled,
    /// A stored value failed to decode as the expected protobuf message.
    #[error("value under key {key:02x?} is not a valid {message}: {source}")]
    Decode {
        /// The key whose value is corrupt.
        key: Vec<u8>,
        /// The message type that was expected.
        message: &'static str,
        /// What the decoder said.
        #[source]
        source: protobuf::ProtobufError,
    },
    /// A message failed to encode (only on messages the protobuf library rejects).
    #[error("failed to encode {message}: {source}")]
    Encode {
        /// The message type that failed.
        message: &'static str,
        /// What the encoder said.
        #[source]
        source: protobuf::ProtobufError,
    },
    /// The underlying fjall database failed (I/O, corruption, a locked directory, ...).
    #[error("storage engine: {0}")]
    Fjall(#[from] fjall::Error),
    /// A file-system operation around the engine failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// The engine's result alias.
pub type Result<T> = std::result::Result<T, Error>;

/// Rejects keys the LSM tree would refuse (it asserts on oversized keys).
pub(crate) fn check_key(key: &[u8]) -> Result<()> {
    if key.is_empty() {
        return Err(Error::EmptyKey);
    }
    if key.len() > u16::MAX as usize {
        return Err(Error::KeyTooLarge(key.len()));
    }
    Ok(())
}

/// Rejects values the LSM tree cannot store.
pub(crate) fn check_value(value: &[u8]) -> Result<()> {
    if u32::try_from(value.len()).is_err() {
        return Err(Error::ValueTooLarge(value.len()));
    }
    Ok(())
}
