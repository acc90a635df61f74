//! The limiters the simulation runs against, on a grid of windows from a server clock
//! that is out of phase with the run: a fixed window, and a sliding window counter as
//! flowsim implements it (`prev·(1 − elapsed/W) + current ≤ L`); and, for debugging
//! short windows, a fixed window anchored at the first request as flowsim's is.

use std::time::Duration;

/// How the limiter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Fixed,
    Sliding,
    /// A fixed window that opens with the first request after the previous one closed
    /// (a Redis `INCR` + `EXPIRE` limiter, and flowsim's fixed window): idling after a
    /// reset delays the next window instead of wasting it.
    Anchored,
}

#[derive(Debug)]
pub(super) struct Limiter {
    pub(super) kind: Kind,
    pub(super) limit: u64,
    pub(super) window: Duration,
    /// Server clock = run clock + phase: the run does not start on a window boundary.
    pub(super) phase: Duration,
    pub(super) round_down: bool,
    pub(super) index: u64,
    /// Admitted in the previous and the current grid window.
    pub(super) prev: u64,
    pub(super) used: u64,
    /// Time into the current window, as of the last `at`.
    pub(super) elapsed: Duration,
    /// Anchored: when the current window opened (`None`: closed, opens on a request).
    pub(super) opened: Option<Duration>,
    pub(super) now: Duration,
}

impl Limiter {
    pub(super) fn new(kind: Kind, limit: u64, window: Duration, round_down: bool) -> Self {
        Self {
            kind,
            limit,
            window,
            // Off the simulation's 10 ms grid: no request lands exactly on a boundary.
            phase: window.mul_f64(0.37) + Duration::from_micros(3_300),
            round_down,
            index: u64::MAX,
            prev: 0,
            used: 0,
            elapsed: Duration::ZERO,
            opened: None,
            now: Duration::ZERO,
        }
    }

    /// Whole seconds, rounded as the server does.
    fn whole(&self, d: Duration) -> Duration {
        let up = !self.round_down && d.subsec_nanos() > 0;
        Duration::from_secs(d.as_secs() + u64::from(up))
    }

    /// Window index, and reset as the server sends it.
    pub(super) fn at(&mut self, now: Duration) -> (u64, Duration) {
        if self.kind == Kind::Anchored {
            self.now = now;
            if self.opened.is_some_and(|o| now >= o + self.window) {
                self.opened = None;
            }
            let left = self.opened.map_or(self.window, |o| o + self.window - now);
            // Goodput is counted per slot of run time, not per window.
            let slot = (now.as_secs_f64() / self.window.as_secs_f64()) as u64;
            return (slot, self.whole(left));
        }
        let server = now + self.phase;
        let index = (server.as_secs_f64() / self.window.as_secs_f64()) as u64;
        if index != self.index {
            self.prev = if index == self.index.wrapping_add(1) {
                self.used
            } else {
                0
            };
            self.index = index;
            self.used = 0;
        }
        self.elapsed = server - self.window * index as u32;
        let left = self.window * (index as u32 + 1) - server;
        (index, self.whole(left))
    }

    /// Admits one request at the instant of the last `at`: `Ok(remaining)`, or
    /// `Err(retry_after)` as the server sends it.
    pub(super) fn admit(&mut self) -> Result<f64, Duration> {
        let w = self.window.as_secs_f64();
        let left = w - self.elapsed.as_secs_f64();
        let (limit, prev, used) = (self.limit as f64, self.prev as f64, self.used as f64);
        if self.kind == Kind::Anchored && self.opened.is_none() {
            self.opened = Some(self.now);
            self.used = 0;
        }
        let left = match (self.kind, self.opened) {
            (Kind::Anchored, Some(o)) => (o + self.window - self.now).as_secs_f64(),
            _ => left,
        };
        match self.kind {
            Kind::Fixed | Kind::Anchored if self.used < self.limit => {
                self.used += 1;
                Ok((self.limit - self.used) as f64)
            }
            Kind::Fixed | Kind::Anchored => Err(self.whole(Duration::from_secs_f64(left))),
            Kind::Sliding => {
                let weighted = prev * left / w;
                if weighted + used + 1.0 <= limit + 1e-9 {
                    self.used += 1;
                    return Ok((limit - weighted - used - 1.0).max(0.0).floor());
                }
                let wait = if used < limit {
                    // The previous window's weight must decay far enough.
                    (weighted + used + 1.0 - limit) * w / prev.max(1.0)
                } else {
                    left + (used + 1.0 - limit) * w / used
                };
                Err(self
                    .whole(Duration::from_secs_f64(wait))
                    .max(Duration::from_secs(u64::from(!self.round_down))))
            }
        }
    }
}
