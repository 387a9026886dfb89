//! One store on its own thread: events and base ticks in, batches handed to the store.
//!
//! Batching is per peer: every event queued meanwhile goes to [`Store::handle_batch`],
//! which steps all of them first and then processes each touched peer's ready once, so a
//! burst of proposals to one region costs one synced raft-log write. Readies of different
//! peers are still written and synced one by one, as TinyKV's raft worker does (each peer's
//! `HandleRaftReady` writes its own batch). One sync for several peers would need the
//! student's 2b code split in two (persist every ready into a shared batch, then send,
//! apply and advance each), a different API from the course's `save_ready_state`; and a
//! framework that held messages back until one late sync would hide the persist-before-send
//! rule the 2b suite checks. A design proposal, not a gap in this runtime.

use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{select, Receiver, Sender};
use raftstore::{Effects, SchedulerClient, Store, StoreEvent, Transport};

use crate::error::Result;
use crate::router::{Msg, Router};
use crate::workers::Workers;

/// How a store loop runs.
#[derive(Debug, Clone)]
pub struct LoopConfig {
    /// The most events handed to the store in one batch (one ready per touched peer each).
    pub max_batch: usize,
    /// Worker threads for the store's background tasks.
    pub workers: usize,
}

impl Default for LoopConfig {
    fn default() -> Self {
        LoopConfig {
            max_batch: 1024,
            workers: 2,
        }
    }
}

/// A running store: its thread, registered in the router under its id.
#[derive(Debug)]
pub struct StoreLoop {
    id: u64,
    router: Router,
    tx: Sender<Msg>,
    thread: Option<JoinHandle<()>>,
}

impl StoreLoop {
    /// Starts `store` on its own thread, ticking every `base_tick` of the real clock, with
    /// its events routed to it by `router` from now on.
    pub fn start(
        store: Store,
        base_tick: Duration,
        router: &Router,
        transport: Box<dyn Transport + Send>,
        scheduler: Box<dyn SchedulerClient + Send>,
        cfg: &LoopConfig,
    ) -> Result<StoreLoop> {
        let id = store.id();
        let (tx, rx) = crossbeam_channel::unbounded();
        let workers = Workers::start(id, cfg.workers, store.engines(), tx.clone())?;
        let max_batch = cfg.max_batch.max(1);
        let thread = std::thread::Builder::new()
            .name(format!("store-{id}"))
            .spawn(move || {
                run(
                    store, rx, base_tick, transport, scheduler, &workers, max_batch,
                );
                workers.stop();
            })?;
        router.register(id, tx.clone());
        Ok(StoreLoop {
            id,
            router: router.clone(),
            tx,
            thread: Some(thread),
        })
    }

    /// The store's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Stops the store after the events already queued, waits for its thread and workers,
    /// and closes its engines (when the last handle to them goes). What the store did not
    /// sync is as a crash would leave it: a stop is a crash the store survives by design.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.router.unregister(self.id);
        let _ = self.tx.send(Msg::Stop);
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("store {}: its thread panicked", self.id);
            }
        }
    }
}

impl Drop for StoreLoop {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn run(
    mut store: Store,
    rx: Receiver<Msg>,
    base_tick: Duration,
    mut transport: Box<dyn Transport + Send>,
    mut scheduler: Box<dyn SchedulerClient + Send>,
    workers: &Workers,
    max_batch: usize,
) {
    let ticker = crossbeam_channel::tick(base_tick);
    let mut tasks = Vec::new();
    let mut batch = Vec::with_capacity(max_batch);
    loop {
        match select! {
            recv(rx) -> msg => msg.unwrap_or(Msg::Stop),
            recv(ticker) -> _ => Msg::Event(StoreEvent::Tick),
        } {
            Msg::Event(ev) => batch.push(ev),
            Msg::Events(evs) => batch.extend(evs),
            Msg::Stop => break,
        }
        let mut stop = false;
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(Msg::Event(ev)) => batch.push(ev),
                Ok(Msg::Events(evs)) => batch.extend(evs),
                Ok(Msg::Stop) => {
                    stop = true;
                    break;
                }
                Err(_) => break,
            }
        }
        store.handle_batch(
            batch.drain(..),
            Effects {
                transport: transport.as_mut(),
                scheduler: scheduler.as_mut(),
                tasks: &mut tasks,
            },
        );
        for task in tasks.drain(..) {
            workers.spawn(task);
        }
        if stop {
            break;
        }
    }
    tracing::debug!("store {}: stopped", store.id());
}
