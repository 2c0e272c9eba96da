//! The submit window (pure): at most `capacity` unanswered submit_sm, each with a sequence
//! number and a deadline. A submit whose deadline passes leaves the window as *ambiguous*: the
//! SMSC may or may not have taken it, so it is never resent (decision 0017); the session keeps
//! its sequence number so a late response still reconciles it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Sequence numbers run 1..=0x7FFF_FFFF (SMPP 3.4 §5.1.4), then wrap.
#[derive(Debug, Clone)]
pub struct Sequence {
    next: u32,
}

impl Default for Sequence {
    fn default() -> Self {
        Sequence { next: 1 }
    }
}

impl Sequence {
    /// The next sequence number.
    pub fn allocate(&mut self) -> u32 {
        let n = self.next;
        self.next = if n >= 0x7FFF_FFFF { 1 } else { n + 1 };
        n
    }
}

/// The window is full: wait for a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the submit window is full ({0} unanswered)")]
pub struct WindowFull(pub usize);

/// Unanswered submits, by sequence number.
#[derive(Debug)]
pub struct Window<T> {
    capacity: usize,
    timeout: Duration,
    in_flight: BTreeMap<u32, (T, Instant)>,
}

impl<T> Window<T> {
    pub fn new(capacity: usize, timeout: Duration) -> Self {
        Window {
            capacity: capacity.max(1),
            timeout,
            in_flight: BTreeMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.in_flight.len()
    }

    pub fn is_empty(&self) -> bool {
        self.in_flight.is_empty()
    }

    pub fn has_room(&self) -> bool {
        self.in_flight.len() < self.capacity
    }

    /// Record `item` as sent under `seq` at `now`.
    pub fn open(&mut self, seq: u32, item: T, now: Instant) -> Result<(), WindowFull> {
        if !self.has_room() {
            return Err(WindowFull(self.in_flight.len()));
        }
        self.in_flight.insert(seq, (item, now + self.timeout));
        Ok(())
    }

    /// The response for `seq` came: its item, if it was still waiting.
    pub fn close(&mut self, seq: u32) -> Option<T> {
        self.in_flight.remove(&seq).map(|(item, _)| item)
    }

    /// Remove and return every submit whose deadline is at or before `now`.
    pub fn expire(&mut self, now: Instant) -> Vec<(u32, T)> {
        let due: Vec<u32> = self
            .in_flight
            .iter()
            .filter(|(_, (_, deadline))| *deadline <= now)
            .map(|(seq, _)| *seq)
            .collect();
        due.into_iter()
            .filter_map(|seq| self.in_flight.remove(&seq).map(|(item, _)| (seq, item)))
            .collect()
    }

    /// The earliest deadline, for the session's timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.in_flight.values().map(|(_, d)| *d).min()
    }

    /// The connection is gone: everything in flight, in sequence order.
    pub fn drain(&mut self) -> Vec<(u32, T)> {
        std::mem::take(&mut self.in_flight)
            .into_iter()
            .map(|(seq, (item, _))| (seq, item))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_capacity_in_flight() {
        let now = Instant::now();
        let mut w = Window::new(2, Duration::from_secs(5));
        assert!(w.open(1, "a", now).is_ok());
        assert!(w.open(2, "b", now).is_ok());
        assert_eq!(w.open(3, "c", now), Err(WindowFull(2)));
        assert_eq!(w.close(1), Some("a"));
        assert_eq!(w.close(1), None);
        assert!(w.open(3, "c", now).is_ok());
        assert_eq!(w.len(), 2);
    }

    #[test]
    fn deadlines_expire_in_order() {
        let t0 = Instant::now();
        let mut w = Window::new(10, Duration::from_secs(5));
        w.open(1, "a", t0).expect("room");
        w.open(2, "b", t0 + Duration::from_secs(2)).expect("room");
        assert_eq!(w.next_deadline(), Some(t0 + Duration::from_secs(5)));
        assert!(w.expire(t0 + Duration::from_secs(4)).is_empty());
        assert_eq!(w.expire(t0 + Duration::from_secs(5)), vec![(1, "a")]);
        assert_eq!(w.drain(), vec![(2, "b")]);
        assert!(w.is_empty());
    }

    #[test]
    fn sequence_wraps_before_the_sign_bit() {
        let mut s = Sequence { next: 0x7FFF_FFFF };
        assert_eq!(s.allocate(), 0x7FFF_FFFF);
        assert_eq!(s.allocate(), 1);
    }
}
