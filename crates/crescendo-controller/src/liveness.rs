//! One agent stream's liveness, shared by the edge (whose reader hears the agent)
//! and the registry (which decides whether a second `Hello` with the same id may take
//! the id over).
//!
//! An id belongs to its stream while that stream is alive: not ended, and heard from
//! (a heartbeat, any message) within the heartbeat timeout. A second stream for it is
//! refused until then ([`AttachRefused`]); once the old one is proved dead the new one
//! replaces it, and the old one is closed with `Aborted` so an old process that still
//! reads it stops.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// One stream's liveness; clones share it.
#[derive(Debug, Clone)]
pub(crate) struct StreamLife {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    born: Instant,
    /// Milliseconds after `born` the agent was last heard from.
    heard_ms: AtomicU64,
    /// The stream is over (either side ended it, or it fell silent).
    ended: CancellationToken,
    /// A newer stream took the id over: this one is closed with `Aborted`.
    replaced: CancellationToken,
}

impl StreamLife {
    pub(crate) fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                born: Instant::now(),
                heard_ms: AtomicU64::new(0),
                ended: CancellationToken::new(),
                replaced: CancellationToken::new(),
            }),
        }
    }

    /// The agent said something just now.
    pub(crate) fn heard(&self) {
        let ms = self.inner.born.elapsed().as_millis() as u64;
        self.inner.heard_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// How long since the agent last said something.
    pub(crate) fn silent_for(&self) -> Duration {
        let heard = Duration::from_millis(self.inner.heard_ms.load(Ordering::Relaxed));
        self.inner.born.elapsed().saturating_sub(heard)
    }

    /// Not ended and heard from within `timeout`.
    pub(crate) fn is_live(&self, timeout: Duration) -> bool {
        !self.inner.ended.is_cancelled() && self.silent_for() < timeout
    }

    /// Cancelled when the stream is over, whatever the reason.
    pub(crate) fn ended(&self) -> &CancellationToken {
        &self.inner.ended
    }

    /// Cancelled when a newer stream took the id over.
    pub(crate) fn replaced(&self) -> &CancellationToken {
        &self.inner.replaced
    }

    /// A newer stream takes the id over: close this one.
    pub(crate) fn replace(&self) {
        self.inner.replaced.cancel();
        self.inner.ended.cancel();
    }
}

/// Why the registry refused a stream's `Hello`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AttachRefused {
    #[error(
        "agent id {agent} is attached on a live stream (heard from {silent:?} ago, within the \
         heartbeat timeout of {timeout:?}): a second stream for it is refused until that one \
         is silent past the timeout"
    )]
    InUse {
        agent: String,
        silent: Duration,
        timeout: Duration,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_stream_is_live_until_silent_past_the_timeout_or_ended() {
        let timeout = Duration::from_secs(3);
        let life = StreamLife::new();
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(life.is_live(timeout));
        life.heard();
        tokio::time::advance(Duration::from_millis(2999)).await;
        assert!(life.is_live(timeout));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(!life.is_live(timeout), "silent for the whole timeout");
        life.heard();
        assert!(life.is_live(timeout));
        life.replace();
        assert!(!life.is_live(timeout) && life.replaced().is_cancelled());
    }
}
