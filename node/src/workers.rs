//! A store's worker threads: they run its background [`Task`]s and send the results back.

use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use engine::Engines;
use raftstore::{StoreEvent, Task};

use crate::router::Msg;

/// The worker threads of one store.
#[derive(Debug)]
pub struct Workers {
    tx: Option<Sender<Task>>,
    threads: Vec<JoinHandle<()>>,
}

impl Workers {
    /// Starts `n` (at least one) threads running tasks over `engines`; each result goes to
    /// `store` as a [`StoreEvent::TaskDone`].
    pub fn start(
        store_id: u64,
        n: usize,
        engines: &Engines,
        store: Sender<Msg>,
    ) -> std::io::Result<Workers> {
        let (tx, rx) = crossbeam_channel::unbounded::<Task>();
        let mut threads = Vec::new();
        for i in 0..n.max(1) {
            let (rx, engines, store): (Receiver<Task>, _, _) =
                (rx.clone(), engines.clone(), store.clone());
            let thread = std::thread::Builder::new()
                .name(format!("store-{store_id}-worker-{i}"))
                .spawn(move || {
                    for task in rx {
                        let kind = task.kind();
                        let result = task.run(&engines);
                        if store
                            .send(Msg::Event(StoreEvent::TaskDone(result)))
                            .is_err()
                        {
                            tracing::debug!("store {store_id}: a {kind:?} result after the stop");
                        }
                    }
                })?;
            threads.push(thread);
        }
        Ok(Workers {
            tx: Some(tx),
            threads,
        })
    }

    /// Queues `task`.
    pub fn spawn(&self, task: Task) {
        if let Some(tx) = &self.tx {
            // The threads outlive the sender; a send fails only if every thread panicked.
            if tx.send(task).is_err() {
                tracing::error!("a task was dropped: every worker thread is gone");
            }
        }
    }

    /// Lets the queued tasks finish, then joins the threads.
    pub fn stop(mut self) {
        self.tx = None;
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                tracing::error!("a worker thread panicked");
            }
        }
    }
}
