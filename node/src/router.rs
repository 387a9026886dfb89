//! Where each running store's events go.

use std::collections::BTreeMap;
use std::sync::Arc;

use crossbeam_channel::Sender;
use parking_lot::RwLock;
use raftstore::StoreEvent;

use crate::error::{NodeError, Result};

/// What a store loop receives.
pub enum Msg {
    /// An event for the store.
    Event(StoreEvent),
    /// Events that arrived together (a client's batch): handed to the store in one batch.
    Events(Vec<StoreEvent>),
    /// Stop the loop (after the events queued before this one).
    Stop,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Msg::Event(ev) => write!(f, "Event({ev:?})"),
            Msg::Events(evs) => write!(f, "Events({} events)", evs.len()),
            Msg::Stop => f.write_str("Stop"),
        }
    }
}

/// The running stores' mailboxes, by store id; cheap to clone and shared by every store,
/// transport and client of the process.
#[derive(Clone, Default, Debug)]
pub struct Router {
    stores: Arc<RwLock<BTreeMap<u64, Sender<Msg>>>>,
}

impl Router {
    /// An empty router.
    pub fn new() -> Router {
        Router::default()
    }

    /// Routes store `id`'s events to `tx` from now on.
    pub fn register(&self, id: u64, tx: Sender<Msg>) {
        self.stores.write().insert(id, tx);
    }

    /// Stops routing to store `id` (it stopped or crashed).
    pub fn unregister(&self, id: u64) {
        self.stores.write().remove(&id);
    }

    /// Whether store `id` is running here.
    pub fn is_running(&self, id: u64) -> bool {
        self.stores.read().contains_key(&id)
    }

    /// Queues `events` for store `id` as one message, so the store takes them in one batch.
    pub fn send_batch(&self, id: u64, events: Vec<StoreEvent>) -> Result<()> {
        let stores = self.stores.read();
        let tx = stores.get(&id).ok_or(NodeError::StoreNotRunning(id))?;
        tx.send(Msg::Events(events))
            .map_err(|_| NodeError::StoreNotRunning(id))
    }

    /// Queues `ev` for store `id`.
    pub fn send(&self, id: u64, ev: StoreEvent) -> Result<()> {
        let stores = self.stores.read();
        let tx = stores.get(&id).ok_or(NodeError::StoreNotRunning(id))?;
        tx.send(Msg::Event(ev))
            .map_err(|_| NodeError::StoreNotRunning(id))
    }
}
