//! What happened to one attempt, and counters by outcome.

use serde::Serialize;

/// The outcome of one HTTP attempt. Every attempt has exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// An expected status.
    Ok,
    /// 429, or 503 with Retry-After.
    Throttled,
    /// Another 4xx, or an unexpected non-error status.
    ClientError,
    /// Another 5xx.
    ServerError,
    /// No answer within the target's timeout.
    Timeout,
    /// The connection failed or broke.
    ConnectError,
    /// An expected status whose body failed one of the step's checks.
    CheckFailed,
}

impl Outcome {
    /// The outcomes counted among errors (every one but `Ok` and `Throttled`).
    pub const ERRORS: [Outcome; 5] = [
        Outcome::ClientError,
        Outcome::ServerError,
        Outcome::Timeout,
        Outcome::ConnectError,
        Outcome::CheckFailed,
    ];

    /// The name in reports: `ok`, `throttled`, `client_error`, `server_error`,
    /// `timeout`, `connect_error`, `check_failed`.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Throttled => "throttled",
            Outcome::ClientError => "client_error",
            Outcome::ServerError => "server_error",
            Outcome::Timeout => "timeout",
            Outcome::ConnectError => "connect_error",
            Outcome::CheckFailed => "check_failed",
        }
    }

    /// Whether this outcome counts among errors.
    pub fn is_error(self) -> bool {
        !matches!(self, Outcome::Ok | Outcome::Throttled)
    }
}

/// Counters by outcome. `requests` is the sum of the seven outcome counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    pub requests: u64,
    pub ok: u64,
    pub throttled: u64,
    pub client_errors: u64,
    pub server_errors: u64,
    pub timeouts: u64,
    pub connect_errors: u64,
    /// Expected statuses whose body failed a check.
    pub check_failed: u64,
    /// Attempts that retried an earlier attempt (a subset of `requests`).
    pub retries: u64,
    /// Iterations due but never sent because the in-flight cap was reached.
    pub dropped: u64,
    /// Iterations due before the plan's end but never sent because the agent fell
    /// behind its schedule (no request is sent after the plan's end).
    pub missed: u64,
    /// Time spent paused by backoff, summed over agents.
    pub paused_ms: u64,
    /// 401 answers that made an agent refresh its token and resend once (not attempts
    /// with an outcome: the resent attempt has one).
    pub auth_refreshes: u64,
}

impl Counters {
    /// Count one attempt.
    pub fn count(&mut self, outcome: Outcome, retry: bool) {
        self.requests += 1;
        self.retries += u64::from(retry);
        match outcome {
            Outcome::Ok => self.ok += 1,
            Outcome::Throttled => self.throttled += 1,
            Outcome::ClientError => self.client_errors += 1,
            Outcome::ServerError => self.server_errors += 1,
            Outcome::Timeout => self.timeouts += 1,
            Outcome::ConnectError => self.connect_errors += 1,
            Outcome::CheckFailed => self.check_failed += 1,
        }
    }

    /// The counter of one outcome.
    pub fn of(&self, outcome: Outcome) -> u64 {
        match outcome {
            Outcome::Ok => self.ok,
            Outcome::Throttled => self.throttled,
            Outcome::ClientError => self.client_errors,
            Outcome::ServerError => self.server_errors,
            Outcome::Timeout => self.timeouts,
            Outcome::ConnectError => self.connect_errors,
            Outcome::CheckFailed => self.check_failed,
        }
    }

    /// Every failed attempt that was not a throttle.
    pub fn errors(&self) -> u64 {
        // Saturating: the counters come from the network and may be hostile.
        [
            self.server_errors,
            self.timeouts,
            self.connect_errors,
            self.check_failed,
        ]
        .iter()
        .fold(self.client_errors, |sum, n| sum.saturating_add(*n))
    }

    /// Add another set of counters (saturating, so hostile input cannot overflow).
    pub fn add(&mut self, other: &Counters) {
        let Counters {
            requests,
            ok,
            throttled,
            client_errors,
            server_errors,
            timeouts,
            connect_errors,
            check_failed,
            retries,
            dropped,
            missed,
            paused_ms,
            auth_refreshes,
        } = other;
        self.requests = self.requests.saturating_add(*requests);
        self.ok = self.ok.saturating_add(*ok);
        self.throttled = self.throttled.saturating_add(*throttled);
        self.client_errors = self.client_errors.saturating_add(*client_errors);
        self.server_errors = self.server_errors.saturating_add(*server_errors);
        self.timeouts = self.timeouts.saturating_add(*timeouts);
        self.connect_errors = self.connect_errors.saturating_add(*connect_errors);
        self.retries = self.retries.saturating_add(*retries);
        self.dropped = self.dropped.saturating_add(*dropped);
        self.missed = self.missed.saturating_add(*missed);
        self.paused_ms = self.paused_ms.saturating_add(*paused_ms);
        self.check_failed = self.check_failed.saturating_add(*check_failed);
        self.auth_refreshes = self.auth_refreshes.saturating_add(*auth_refreshes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_saturate_on_hostile_counts() {
        let c = Counters {
            client_errors: u64::MAX,
            server_errors: 1,
            check_failed: u64::MAX,
            ..Counters::default()
        };
        assert_eq!(c.errors(), u64::MAX);
        let c = Counters {
            client_errors: 1,
            timeouts: 2,
            connect_errors: 3,
            check_failed: 4,
            server_errors: 5,
            ..Counters::default()
        };
        assert_eq!(c.errors(), 15);
    }
}
