//! A sender's gate, shared by the dispatchers of its priority lanes in one process: a submit
//! starts only once the gate grants it a permit ([`admission`] decides who, in lane order,
//! within the window and the sender's rate). The permit frees the window slot when dropped.
//! This is the thin async shell; decisions are the pure [`admission::Admission`]'s.

pub mod admission;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use admission::{Admission, Grant, Ticket};

/// One sender's gate.
#[derive(Debug)]
pub struct Gate {
    inner: Mutex<Inner>,
    started: Instant,
}

#[derive(Debug)]
struct Inner {
    admission: Admission,
    waiters: HashMap<Ticket, oneshot::Sender<Permit>>,
    /// A task sleeps until the rate lets the next waiter go.
    timer_armed: bool,
}

/// Leave to start one submit; frees its window slot when dropped.
#[derive(Debug)]
pub struct Permit {
    /// None once its slot was given back another way.
    gate: Option<Arc<Gate>>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(gate) = self.gate.take() {
            let mut inner = gate.lock();
            inner.admission.release();
            Gate::pump(&gate, &mut inner);
        }
    }
}

/// Takes a waiter out of line if its `acquire` is dropped before the grant.
struct Waiting<'a> {
    gate: &'a Arc<Gate>,
    ticket: Option<Ticket>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket {
            let mut inner = self.gate.lock();
            inner.admission.cancel(ticket);
            inner.waiters.remove(&ticket);
        }
    }
}

impl Gate {
    /// A gate for `lanes` lanes and `window` submits in flight, at `per_second` (None: no
    /// limit).
    pub fn new(lanes: usize, window: usize, per_second: Option<f64>) -> Arc<Self> {
        let mut admission = Admission::new(lanes, window);
        admission.set_rate(per_second);
        Arc::new(Gate {
            inner: Mutex::new(Inner {
                admission,
                waiters: HashMap::new(),
                timer_armed: false,
            }),
            started: Instant::now(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn now_us(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Change the rate (a new instance of the sender's dispatcher joined or left).
    pub fn set_rate(self: &Arc<Self>, per_second: Option<f64>) {
        let mut inner = self.lock();
        inner.admission.set_rate(per_second);
        Gate::pump(self, &mut inner);
    }

    /// Start no rate-limited submit for `wait` from now.
    pub fn hold_for(self: &Arc<Self>, wait: Duration) {
        let mut inner = self.lock();
        let until = self.now_us() + u64::try_from(wait.as_micros()).unwrap_or(u64::MAX / 2);
        inner.admission.hold_until(until);
        Gate::pump(self, &mut inner);
    }

    /// Submits started and not finished.
    pub fn in_flight(&self) -> usize {
        self.lock().admission.in_flight()
    }

    /// Wait for leave to submit from `lane` (0 = highest priority).
    pub async fn acquire(self: &Arc<Self>, lane: usize) -> Permit {
        let (tx, rx) = oneshot::channel();
        let ticket = {
            let mut inner = self.lock();
            let ticket = inner.admission.wait(lane);
            inner.waiters.insert(ticket, tx);
            Gate::pump(self, &mut inner);
            ticket
        };
        let mut waiting = Waiting {
            gate: self,
            ticket: Some(ticket),
        };
        // The sender side lives in `waiters` until granted, so this only fails if the gate
        // itself is gone, which an `Arc` held here rules out.
        let permit = rx.await.unwrap_or_else(|_| Permit {
            gate: Some(self.clone()),
        });
        waiting.ticket = None;
        permit
    }

    /// Grant every waiter that may go now; arm the timer for the next one the rate holds back.
    fn pump(gate: &Arc<Gate>, inner: &mut Inner) {
        loop {
            match inner.admission.grant(gate.now_us()) {
                Grant::Now(ticket) => {
                    let permit = Permit {
                        gate: Some(gate.clone()),
                    };
                    let unclaimed = match inner.waiters.remove(&ticket) {
                        Some(tx) => tx.send(permit).err(),
                        None => Some(permit),
                    };
                    if let Some(mut permit) = unclaimed {
                        // The waiter left: its slot is free again (here, not in the permit's
                        // drop, which would take the lock held now).
                        permit.gate = None;
                        inner.admission.release();
                    }
                }
                Grant::At(at_us) => {
                    if !inner.timer_armed {
                        inner.timer_armed = true;
                        let gate = gate.clone();
                        let wait = Duration::from_micros(at_us.saturating_sub(gate.now_us()));
                        tokio::spawn(async move {
                            tokio::time::sleep(wait).await;
                            let mut inner = gate.lock();
                            inner.timer_armed = false;
                            Gate::pump(&gate, &mut inner);
                        });
                    }
                    return;
                }
                Grant::Nothing => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_otp_waiting_behind_a_full_window_of_bulk_goes_first_when_a_slot_frees() {
        let gate = Gate::new(4, 1, None);
        let held = gate.acquire(2).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (name, lane) in [("bulk-1", 2), ("bulk-2", 2), ("otp", 0)] {
            let (gate, order) = (gate.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = gate.acquire(lane).await;
                order.lock().expect("order").push(name);
            }));
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            order.lock().expect("order").is_empty(),
            "the window is full"
        );
        drop(held);
        for task in tasks {
            task.await.expect("task");
        }
        assert_eq!(
            *order.lock().expect("order"),
            vec!["otp", "bulk-1", "bulk-2"]
        );
        assert_eq!(gate.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_dropped_acquire_frees_its_place_and_the_rate_spaces_permits() {
        let gate = Gate::new(1, 10, Some(50.0));
        let first = gate.acquire(0).await;
        // The rate holds the next one back for 20 ms; give up on it after 1 ms.
        let gave_up = tokio::time::timeout(Duration::from_millis(1), gate.acquire(0)).await;
        assert!(gave_up.is_err());
        let started = Instant::now();
        let second = gate.acquire(0).await;
        assert!(
            started.elapsed() >= Duration::from_millis(15),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(gate.in_flight(), 2, "the cancelled waiter holds nothing");
        drop((first, second));
        assert_eq!(gate.in_flight(), 0);
    }
}
