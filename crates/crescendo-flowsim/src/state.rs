//! Everything the handlers share, behind one `Arc`: configuration, the clock, the
//! limiters, counters, flows and the stall switch. No lock in here is held across an
//! `.await`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::Rng;
use tokio_util::sync::CancellationToken;

use crate::admission::{Admission, Clock};
use crate::auth::{Auth, ClientSpec};
use crate::config::Config;
use crate::flows::{Flows, Missing};
use crate::stats::{Stats, StatusCounts};

/// Shared simulator state.
#[derive(Debug)]
pub(crate) struct App {
    pub(crate) config: Config,
    pub(crate) clock: Clock,
    pub(crate) admission: Admission,
    /// OAuth clients and issued tokens (off when no client is configured).
    pub(crate) auth: Auth,
    pub(crate) statuses: StatusCounts,
    pub(crate) flows: Flows,
    pub(crate) stall: Stall,
    /// Cancels latency and stall waits so shutdown is prompt.
    pub(crate) shutdown: CancellationToken,
}

impl App {
    /// `clients` are the configured OAuth clients, already loaded
    /// ([`crate::auth::AuthConfig::load_clients`]).
    pub(crate) fn new(
        config: Config,
        clients: Vec<ClientSpec>,
        shutdown: CancellationToken,
    ) -> Self {
        let flows = Flows::new();
        flows.seed(config.flows);
        Self {
            clock: Clock::start(),
            admission: Admission::new(&config),
            auth: Auth::new(&config, clients),
            statuses: StatusCounts::new(),
            flows,
            stall: Stall::default(),
            shutdown,
            config,
        }
    }

    pub(crate) fn missing(&self) -> Missing {
        if self.config.auto_create {
            Missing::Create
        } else {
            Missing::NotFound
        }
    }

    pub(crate) fn stats(&self) -> Stats {
        let keys = self.admission.snapshot();
        let mut stats = Stats {
            accepted: keys.values().map(|k| k.accepted).sum(),
            throttled: keys.values().map(|k| k.throttled).sum(),
            keys,
            stalled: self.stall.holding(),
            ..Stats::default()
        };
        self.statuses.fill(&mut stats);
        stats
    }

    pub(crate) fn reset(&self) {
        self.admission.reset();
        self.statuses.reset();
        self.stall.clear();
    }

    /// Holds an API response for the configured latency plus jitter, then for as long as
    /// a stall lasts.
    pub(crate) async fn delay(&self) {
        let mut wait = self.config.latency;
        if !self.config.jitter.is_zero() {
            let max = u64::try_from(self.config.jitter.as_nanos()).unwrap_or(u64::MAX);
            wait += Duration::from_nanos(rand::rng().random_range(0..=max));
        }
        if !wait.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.shutdown.cancelled() => return,
            }
        }
        self.stall.hold(&self.clock, &self.shutdown).await;
    }
}

/// `POST /__sim/stall`: responses are held until `until` (ns on the sim clock; 0 = none).
#[derive(Debug, Default)]
pub(crate) struct Stall {
    until_ns: AtomicU64,
    /// Responses waiting in [`Stall::hold`] right now, so tests can see a stall land.
    holding: AtomicU64,
}

/// Counts one response in [`Stall::holding`] for as long as it lives (a response whose
/// client went away is dropped mid-wait).
struct Holding<'a>(&'a AtomicU64);

impl Drop for Holding<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Stall {
    /// Holds responses for `d` from now (extends, never shortens, a running stall).
    pub(crate) fn start(&self, clock: &Clock, d: Duration) {
        let until = u64::try_from((clock.now() + d).as_nanos()).unwrap_or(u64::MAX);
        self.until_ns.fetch_max(until, Ordering::AcqRel);
    }

    pub(crate) fn clear(&self) {
        self.until_ns.store(0, Ordering::Release);
    }

    /// Responses a stall is holding right now.
    pub(crate) fn holding(&self) -> u64 {
        self.holding.load(Ordering::Acquire)
    }

    /// Waits until no stall is in force (a stall extended meanwhile is waited out too).
    pub(crate) async fn hold(&self, clock: &Clock, shutdown: &CancellationToken) {
        let mut held = None;
        loop {
            let until = Duration::from_nanos(self.until_ns.load(Ordering::Acquire));
            let now = clock.now();
            if now >= until {
                return;
            }
            if held.is_none() {
                self.holding.fetch_add(1, Ordering::AcqRel);
                held = Some(Holding(&self.holding));
            }
            tokio::select! {
                () = tokio::time::sleep(until - now) => {}
                () = shutdown.cancelled() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn stall_holds_until_its_end_and_can_be_extended() {
        let clock = Clock::start();
        let stall = Stall::default();
        let token = CancellationToken::new();
        stall.start(&clock, Duration::from_secs(1));
        stall.start(&clock, Duration::from_millis(10)); // does not shorten
        let t0 = tokio::time::Instant::now();
        stall.hold(&clock, &token).await;
        assert_eq!(t0.elapsed(), Duration::from_secs(1));
        // no stall: returns at once
        stall.hold(&clock, &token).await;
        assert_eq!(t0.elapsed(), Duration::from_secs(1));
        stall.start(&clock, Duration::from_secs(5));
        stall.clear();
        stall.hold(&clock, &token).await;
        assert_eq!(t0.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn holding_counts_the_responses_a_stall_holds_now() {
        let clock = Clock::start();
        let stall = Stall::default();
        let token = CancellationToken::new();
        stall.hold(&clock, &token).await;
        assert_eq!(stall.holding(), 0, "no stall holds nothing");
        stall.start(&clock, Duration::from_secs(1));
        let mut first = Box::pin(stall.hold(&clock, &token));
        let mut second = Box::pin(stall.hold(&clock, &token));
        assert!(futures_poll(&mut first).is_pending());
        assert!(futures_poll(&mut second).is_pending());
        assert_eq!(stall.holding(), 2);
        drop(second); // a client that went away
        assert_eq!(stall.holding(), 1);
        first.await;
        assert_eq!(stall.holding(), 0);
    }

    /// Polls `f` once.
    fn futures_poll<F: Future + Unpin>(f: &mut F) -> std::task::Poll<F::Output> {
        let waker = std::task::Waker::noop();
        std::pin::Pin::new(f).poll(&mut std::task::Context::from_waker(waker))
    }

    #[tokio::test(start_paused = true)]
    async fn latency_and_jitter_bounds() {
        let config = Config {
            latency: Duration::from_millis(50),
            jitter: Duration::from_millis(20),
            ..Config::default()
        };
        let app = App::new(config, Vec::new(), CancellationToken::new());
        for _ in 0..20 {
            let t0 = tokio::time::Instant::now();
            app.delay().await;
            let took = t0.elapsed();
            assert!(
                took >= Duration::from_millis(50) && took <= Duration::from_millis(71),
                "{took:?}"
            );
        }
    }
}
