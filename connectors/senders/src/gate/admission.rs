//! Who may submit next to a sender (pure, no I/O; decision 0023): at most `window` submits in
//! flight, started no faster than the sender's rate (evenly spaced, no burst), and among those
//! waiting always the highest priority lane first, oldest first within a lane. A lower lane
//! waits while a higher lane has anyone waiting (strict priority).

use std::collections::VecDeque;

/// A waiter's place, handed out by [`Admission::wait`].
pub type Ticket = u64;

/// What the admission says now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// This waiter may submit now (it is counted in flight from here).
    Now(Ticket),
    /// Someone may submit at this time (µs), not before: the rate holds them back.
    At(u64),
    /// Nobody can go: nobody waits, or the window is full.
    Nothing,
}

/// One sender's admission: window, rate and lanes.
#[derive(Debug)]
pub struct Admission {
    window: usize,
    in_flight: usize,
    /// µs between two submit starts; None = no rate limit.
    spacing_us: Option<u64>,
    /// The earliest the next submit may start (µs).
    next_at: u64,
    /// Waiters per lane, highest priority first.
    lanes: Vec<VecDeque<Ticket>>,
    next_ticket: Ticket,
}

impl Admission {
    /// `lanes` lanes, at most `window` (≥ 1) in flight, no rate limit.
    pub fn new(lanes: usize, window: usize) -> Self {
        Admission {
            window: window.max(1),
            in_flight: 0,
            spacing_us: None,
            next_at: 0,
            lanes: vec![VecDeque::new(); lanes.max(1)],
            next_ticket: 0,
        }
    }

    /// Limit submit starts to `per_second` (None or ≤ 0: no limit).
    pub fn set_rate(&mut self, per_second: Option<f64>) {
        self.spacing_us = per_second
            .filter(|r| *r > 0.0 && r.is_finite())
            .map(|r| ((1_000_000.0 / r).round() as u64).max(1));
    }

    /// Start nothing before `at_us` while a rate is set (a new instance waits until the
    /// others have counted it before taking its share).
    pub fn hold_until(&mut self, at_us: u64) {
        self.next_at = self.next_at.max(at_us);
    }

    /// µs between two submit starts now (None: no limit).
    pub fn spacing_us(&self) -> Option<u64> {
        self.spacing_us
    }

    /// Queue a waiter in `lane` (0 = highest; out-of-range lanes go last).
    pub fn wait(&mut self, lane: usize) -> Ticket {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        let lane = lane.min(self.lanes.len() - 1);
        self.lanes[lane].push_back(ticket);
        ticket
    }

    /// Take a waiter out of line (it gave up before its grant).
    pub fn cancel(&mut self, ticket: Ticket) {
        for lane in &mut self.lanes {
            lane.retain(|t| *t != ticket);
        }
    }

    /// Who may go at `now` (µs): the head of the highest non-empty lane, if the window has
    /// room and the rate allows it.
    pub fn grant(&mut self, now: u64) -> Grant {
        if self.in_flight >= self.window {
            return Grant::Nothing;
        }
        let Some(lane) = self.lanes.iter_mut().find(|l| !l.is_empty()) else {
            return Grant::Nothing;
        };
        if let Some(spacing) = self.spacing_us {
            if now < self.next_at {
                return Grant::At(self.next_at);
            }
            // Spaced from the later of the last start's slot and now: idle time builds no burst.
            self.next_at = self.next_at.max(now) + spacing;
        }
        let Some(ticket) = lane.pop_front() else {
            return Grant::Nothing;
        };
        self.in_flight += 1;
        Grant::Now(ticket)
    }

    /// A granted submit finished: its window slot is free.
    pub fn release(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// Submits in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Waiters per lane, highest first.
    pub fn waiting(&self) -> Vec<usize> {
        self.lanes.iter().map(VecDeque::len).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(a: &mut Admission, now: u64) -> Vec<Ticket> {
        let mut out = Vec::new();
        while let Grant::Now(t) = a.grant(now) {
            out.push(t);
        }
        out
    }

    #[test]
    fn the_highest_lane_goes_first_and_the_window_bounds_what_is_in_flight() {
        let mut a = Admission::new(4, 2);
        let bulk: Vec<Ticket> = (0..5).map(|_| a.wait(2)).collect();
        let otp = a.wait(0);
        let normal = a.wait(1);
        assert_eq!(grants(&mut a, 0), vec![otp, normal], "the window holds two");
        assert_eq!(a.grant(0), Grant::Nothing);
        a.release();
        let late_otp = a.wait(0);
        assert_eq!(
            grants(&mut a, 0),
            vec![late_otp],
            "an OTP overtakes every bulk waiter"
        );
        a.release();
        a.release();
        assert_eq!(grants(&mut a, 0), bulk[..2].to_vec(), "bulk in its order");
        assert_eq!(a.waiting(), vec![0, 0, 3, 0]);
    }

    #[test]
    fn the_rate_spaces_starts_evenly_and_idle_time_builds_no_burst() {
        let mut a = Admission::new(1, 100);
        a.set_rate(Some(100.0)); // 10 ms apart
        for _ in 0..5 {
            a.wait(0);
        }
        assert_eq!(grants(&mut a, 0).len(), 1);
        assert_eq!(a.grant(5_000), Grant::At(10_000));
        assert_eq!(grants(&mut a, 10_000).len(), 1);
        assert_eq!(a.grant(10_000), Grant::At(20_000));
        // A long pause, then: one at once, the next a full spacing later (no catching up).
        assert_eq!(grants(&mut a, 1_000_000).len(), 1);
        assert_eq!(a.grant(1_000_000), Grant::At(1_010_000));
        a.hold_until(2_000_000);
        assert_eq!(a.grant(1_500_000), Grant::At(2_000_000));
        // 100/s over one simulated second: 100 starts, never more.
        let mut b = Admission::new(1, 1_000);
        b.set_rate(Some(100.0));
        for _ in 0..1_000 {
            b.wait(0);
        }
        let started = (0..1_000_000u64)
            .step_by(1_000)
            .map(|now| grants(&mut b, now).len())
            .sum::<usize>();
        assert_eq!(started, 100);
    }

    #[test]
    fn a_cancelled_waiter_is_skipped_and_no_rate_means_no_spacing() {
        let mut a = Admission::new(2, 10);
        let gone = a.wait(0);
        let stays = a.wait(1);
        a.cancel(gone);
        assert_eq!(grants(&mut a, 0), vec![stays]);
        a.set_rate(Some(0.0));
        assert_eq!(a.spacing_us(), None);
        assert_eq!(a.in_flight(), 1);
    }
}
