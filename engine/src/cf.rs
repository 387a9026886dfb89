//! Column families.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// A column family: an independent ordered key space inside one engine.
///
/// `Default`, `Lock` and `Write` are the course's data column families (stage 4's Percolator
/// uses all three; stages 1–3 use `Default`). `Raft` is internal: it holds the local state keys
/// of [`crate::keys`] so they can never collide with user keys. Clients cannot name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cf {
    /// User values (and, in stage 4, transaction values).
    Default,
    /// Stage 4 transaction locks.
    Lock,
    /// Stage 4 commit records.
    Write,
    /// Local raft state: raft log, raft/apply/region state.
    Raft,
}

impl Cf {
    /// The column families a client may name, in order.
    pub const DATA: &'static [Cf] = &[Cf::Default, Cf::Lock, Cf::Write];
    /// Every column family a store's kv engine opens.
    pub const KV_ENGINE: &'static [Cf] = &[Cf::Default, Cf::Lock, Cf::Write, Cf::Raft];
    /// The column families of a store's raft engine.
    pub const RAFT_ENGINE: &'static [Cf] = &[Cf::Raft];

    /// The on-disk name of the column family.
    pub fn name(self) -> &'static str {
        match self {
            Cf::Default => "default",
            Cf::Lock => "lock",
            Cf::Write => "write",
            Cf::Raft => "raft",
        }
    }

    /// Parses a column family named by a client request. Only data column families are
    /// accepted; anything else (including the internal `raft`) is [`Error::UnknownCf`].
    pub fn from_client(name: &str) -> Result<Cf> {
        match name {
            "default" => Ok(Cf::Default),
            "lock" => Ok(Cf::Lock),
            "write" => Ok(Cf::Write),
            other => Err(Error::UnknownCf(other.to_owned())),
        }
    }

    pub(crate) fn slot(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Cf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Cf {
    type Err = Error;

    /// Parses any column family name, including the internal `raft`.
    fn from_str(s: &str) -> Result<Cf> {
        match s {
            "raft" => Ok(Cf::Raft),
            other => Cf::from_client(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for &cf in Cf::KV_ENGINE {
            assert_eq!(cf.name().parse::<Cf>().unwrap(), cf);
        }
    }

    #[test]
    fn clients_cannot_name_internal_or_unknown_cfs() {
        assert!(matches!(Cf::from_client("raft"), Err(Error::UnknownCf(n)) if n == "raft"));
        assert!(matches!(
            Cf::from_client("Default"),
            Err(Error::UnknownCf(_))
        ));
        assert!(matches!(Cf::from_client(""), Err(Error::UnknownCf(_))));
        assert_eq!(Cf::from_client("write").unwrap(), Cf::Write);
    }
}
