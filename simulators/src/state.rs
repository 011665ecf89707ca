//! Shared simulator state: config, fault queue, recorded requests, counters and the stop signal.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;

use crate::{Fault, RecordedRequest, SimConfig};

#[derive(Default)]
struct Faults {
    queue: VecDeque<Fault>,
    sticky: Option<Fault>,
}

/// Responses remembered for `previous_response_id` (oldest dropped first).
const STORED_RESPONSES: usize = 256;

/// The conversations of stored Responses API answers: input and output items, oldest first.
#[derive(Default)]
struct StoredResponses {
    items: HashMap<String, Arc<Vec<Value>>>,
    order: VecDeque<String>,
}

/// State shared by every request of one simulator; [`crate::app`] serves it.
pub struct SimState {
    config: SimConfig,
    faults: Mutex<Faults>,
    // Lets the hot path skip the fault lock when no fault was ever configured.
    faults_armed: AtomicBool,
    requests: Mutex<Vec<RecordedRequest>>,
    request_count: AtomicUsize,
    /// Model-list requests (a gateway's discovery), kept apart from the requests tests count.
    list_count: AtomicUsize,
    cancelled: AtomicUsize,
    responses: Mutex<StoredResponses>,
    shutdown: watch::Sender<bool>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks cannot leave the data inconsistent, so ignore poison.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SimState {
    /// Creates the state for one simulator.
    pub fn new(config: SimConfig) -> Arc<SimState> {
        let (shutdown, _) = watch::channel(false);
        Arc::new(SimState {
            config,
            faults: Mutex::new(Faults::default()),
            faults_armed: AtomicBool::new(false),
            requests: Mutex::new(Vec::new()),
            request_count: AtomicUsize::new(0),
            list_count: AtomicUsize::new(0),
            cancelled: AtomicUsize::new(0),
            responses: Mutex::new(StoredResponses::default()),
            shutdown,
        })
    }

    /// The simulator's configuration.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Queues a fault for the next request only.
    pub fn push_fault(&self, fault: Fault) {
        lock(&self.faults).queue.push_back(fault);
        self.faults_armed.store(true, Ordering::Release);
    }

    /// Applies a fault to every request until cleared; queued faults take precedence.
    pub fn set_fault(&self, fault: Option<Fault>) {
        lock(&self.faults).sticky = fault;
        self.faults_armed.store(true, Ordering::Release);
    }

    /// The fault for the request being handled now, if any.
    pub(crate) fn take_fault(&self) -> Option<Fault> {
        if !self.faults_armed.load(Ordering::Acquire) {
            return None;
        }
        let mut faults = lock(&self.faults);
        match faults.queue.pop_front() {
            Some(fault) => Some(fault),
            None => faults.sticky.clone(),
        }
    }

    /// Counts a request and keeps it if recording is on.
    pub(crate) fn record(&self, request: impl FnOnce() -> RecordedRequest) {
        self.request_count.fetch_add(1, Ordering::Relaxed);
        if self.config.record_requests {
            let request = request();
            lock(&self.requests).push(request);
        }
    }

    /// Counts a model-list request (not recorded with the others).
    pub(crate) fn record_list(&self) {
        self.list_count.fetch_add(1, Ordering::Relaxed);
    }

    /// Model-list requests received.
    pub fn list_count(&self) -> usize {
        self.list_count.load(Ordering::Relaxed)
    }

    /// Every request received so far (empty when recording is off).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.requests).clone()
    }

    /// Number of requests received.
    pub fn request_count(&self) -> usize {
        self.request_count.load(Ordering::Relaxed)
    }

    /// Requests whose client went away before the simulator finished sending.
    pub fn cancelled_count(&self) -> usize {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// Remembers the whole conversation of a Responses answer (its context, input and output
    /// items) under its id, forgetting the oldest beyond a fixed number.
    pub(crate) fn store_response(&self, id: &str, items: Vec<Value>) {
        let mut stored = lock(&self.responses);
        if stored
            .items
            .insert(id.to_string(), Arc::new(items))
            .is_none()
        {
            stored.order.push_back(id.to_string());
        }
        while stored.order.len() > STORED_RESPONSES {
            if let Some(oldest) = stored.order.pop_front() {
                stored.items.remove(&oldest);
            }
        }
    }

    /// The conversation stored for a Responses answer id, if it is still remembered.
    pub(crate) fn stored_response(&self, id: &str) -> Option<Arc<Vec<Value>>> {
        lock(&self.responses).items.get(id).cloned()
    }

    /// Asks the server and every open stream to stop.
    pub fn trigger_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// A receiver that becomes `true` when the simulator stops.
    pub(crate) fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Sleeps for `duration`, or less if the simulator stops first. Returns false on stop.
    pub(crate) async fn sleep(&self, duration: Duration) -> bool {
        if duration.is_zero() {
            return true;
        }
        let mut stop = self.shutdown_signal();
        tokio::select! {
            _ = tokio::time::sleep(duration) => true,
            _ = stop.wait_for(|stopped| *stopped) => false,
        }
    }

    /// Waits until the simulator stops.
    pub(crate) async fn stopped(&self) {
        let mut stop = self.shutdown_signal();
        let _ = stop.wait_for(|stopped| *stopped).await;
    }
}

/// Counts a request as cancelled if it is dropped before [`CancelGuard::finish`] is called,
/// which is what happens when hyper drops the handler future or the body stream because the
/// client went away.
pub(crate) struct CancelGuard {
    state: Arc<SimState>,
    finished: bool,
}

impl CancelGuard {
    pub(crate) fn new(state: Arc<SimState>) -> CancelGuard {
        CancelGuard {
            state,
            finished: false,
        }
    }

    /// Marks the answer as fully sent (or ended on purpose by a fault or shutdown).
    pub(crate) fn finish(&mut self) {
        self.finished = true;
    }

    pub(crate) fn state(&self) -> &Arc<SimState> {
        &self.state
    }
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if !self.finished {
            self.state.cancelled.fetch_add(1, Ordering::Relaxed);
        }
    }
}
