//! The state one run owns while its load goes ([`ActiveRun`]) and how each agent
//! message changes it. Only the run's actor touches it.

use std::collections::BTreeMap;
use std::time::Duration;

use crescendo_plan::{OnAgentLoss, Share, split_evenly};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::guard::{MAX_REJECTIONS, Rejection};
use super::request::{Member, StopCause};
use crate::aggregate::Aggregate;
use crate::fleet::{Adjustment, Fleet};
use crate::live::watch::RunWatch;
use crate::messages::{AgentTx, FromAgent, Stop, ToAgent};

/// What a run tells the registry.
#[derive(Debug)]
pub(crate) enum RunNews {
    /// The run is over: its agents are free again.
    Ended { run_id: String },
    /// This agent broke the protocol too often: drop its stream.
    Disconnect { agent: String },
}

/// What the registry tells a run about one of its agents.
#[derive(Debug)]
pub(crate) enum Seen {
    /// The agent (re)attached on a new stream.
    Attached {
        resume_run_id: String,
        tx: AgentTx,
    },
    Message(FromAgent),
    /// Its stream ended.
    Detached,
}

/// State of the run in progress.
#[derive(Debug)]
pub(crate) struct ActiveRun {
    pub(crate) run_id: String,
    pub(crate) members: BTreeMap<String, Member>,
    pub(crate) aggregate: Aggregate,
    pub(crate) started: Option<Instant>,
    pub(crate) load_end: Option<Instant>,
    pub(crate) stopped: Option<String>,
    pub(crate) stop_cause: Option<StopCause>,
    pub(crate) agent_errors: Vec<String>,
    pub(crate) throttle_reports: u64,
    /// Progress, live metrics and `abort_on_fail` (crate::live).
    pub(crate) watch: RunWatch,
    /// The governor, under the coordinated policy.
    pub(crate) fleet: Option<Fleet>,
    /// To the registry.
    pub(crate) news: mpsc::Sender<RunNews>,
    /// The plan's `on_agent_loss`.
    pub(crate) on_agent_loss: OnAgentLoss,
    /// How often a lost agent's share went to the survivors.
    pub(crate) redistributed: u32,
}

impl ActiveRun {
    /// Send to a member without ever blocking the run on a slow peer.
    pub(crate) fn send(&self, agent: &str, message: ToAgent) -> bool {
        let Some(tx) = self.members.get(agent).and_then(|m| m.tx.as_ref()) else {
            return false;
        };
        match tx.try_send(message) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(agent, "could not send to agent: {e}");
                false
            }
        }
    }

    /// Tell every member to stop (and, with `release`, that it may exit).
    pub(crate) fn send_stop(&self, reason: &str, release: bool) {
        for agent in self.members.keys() {
            let stop = Stop {
                run_id: self.run_id.clone(),
                reason: reason.to_owned(),
                release,
            };
            self.send(agent, ToAgent::Stop(stop));
        }
    }

    /// End the load early, everywhere, for `reason`.
    pub(crate) fn stop_fleet(&mut self, reason: &str, cause: StopCause) {
        self.stop_load(reason, cause);
        self.send_stop(reason, false);
    }

    /// The spread of the agents' starts, when at least two reported one.
    pub(crate) fn start_skew(&self) -> Option<Duration> {
        let starts: Vec<Instant> = self.members.values().filter_map(|m| m.started_at).collect();
        let (first, last) = (starts.iter().min()?, starts.iter().max()?);
        (starts.len() >= 2).then(|| last.saturating_duration_since(*first))
    }

    /// Time since the start barrier.
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.map_or(Duration::ZERO, |s| {
            Instant::now().saturating_duration_since(s)
        })
    }

    /// The shares of the agents still in the run.
    pub(crate) fn shares(&self) -> Vec<(String, Share)> {
        self.members
            .iter()
            .filter(|(_, m)| !m.lost)
            .map(|(a, m)| (a.clone(), m.share))
            .collect()
    }

    /// Members neither lost nor away.
    pub(crate) fn attached(&self) -> usize {
        self.members
            .values()
            .filter(|m| !m.lost && m.tx.is_some())
            .count()
    }

    /// Every agent finished with all its snapshots merged, or was lost.
    pub(crate) fn done(&self) -> bool {
        self.members.iter().all(|(agent, m)| {
            m.lost
                || m.finished
                    .as_ref()
                    .is_some_and(|f| self.aggregate.complete(agent, f.last_seq))
        })
    }

    /// The first cause to stop the load is the one reported.
    pub(crate) fn stop_load(&mut self, reason: &str, cause: StopCause) {
        if self.stopped.is_none() {
            self.stopped = Some(reason.to_owned());
            self.stop_cause = Some(cause);
        }
        let now = Instant::now();
        let end = self.load_end.map_or(now, |e| e.min(now));
        self.load_end = Some(self.started.map_or(end, |s| end.max(s)));
    }

    /// Count agents away `after` or longer as lost and apply the plan's
    /// `on_agent_loss` while the load runs.
    pub(crate) fn mark_lost(&mut self, after: Duration, load_running: bool) {
        let now = self.elapsed();
        let mut newly = Vec::new();
        for (agent, m) in &mut self.members {
            // An agent that finished (stopped by a signal, out of rows) may be gone.
            let finished = m.finished.is_some();
            if !m.lost && !finished && m.away_since.is_some_and(|t| t.elapsed() >= after) {
                tracing::warn!(agent = %agent, "agent lost: no word for {after:?}");
                m.mark_lost(now, format!("no word from it for {after:?}"));
                newly.push(agent.clone());
            }
        }
        if newly.is_empty() || !load_running {
            return;
        }
        self.on_departure(&newly.join(", "));
    }

    /// Agents left the load while it runs (lost, or stopped early on their own): apply
    /// the plan's `on_agent_loss`.
    fn on_departure(&mut self, agents: &str) {
        match self.on_agent_loss {
            OnAgentLoss::Continue => {}
            OnAgentLoss::Abort => {
                let reason = format!("agent {agents} left the run (on_agent_loss = \"abort\")");
                self.stop_fleet(&reason, StopCause::AgentLost);
            }
            OnAgentLoss::Redistribute => self.redistribute(),
        }
    }

    /// Give the survivors the whole fleet's load: rate fractions, VUs and the in-flight
    /// cap split evenly over them, turns renumbered; each gets a `Reshare`.
    fn redistribute(&mut self) {
        let total = |f: fn(&Share) -> u32| {
            self.members
                .values()
                .map(|m| u64::from(f(&m.share)))
                .sum::<u64>()
        };
        let (vus, in_flight) = (total(|s| s.vus), total(|s| s.max_in_flight));
        let mut survivors: Vec<&String> = self
            .members
            .iter()
            .filter(|(_, m)| !m.lost && m.finished.is_none())
            .map(|(a, _)| a)
            .collect();
        survivors.sort_by_key(|a| self.members[*a].share.index);
        let survivors: Vec<String> = survivors.into_iter().cloned().collect();
        let Ok(count) = u32::try_from(survivors.len()) else {
            return;
        };
        if count == 0 {
            return;
        }
        for (index, agent) in (0u32..).zip(&survivors) {
            let share = Share {
                index,
                count,
                rate_fraction: 1.0 / f64::from(count),
                vus: u32::try_from(split_evenly(vus, count, index)).unwrap_or(u32::MAX),
                max_in_flight: u32::try_from(split_evenly(in_flight, count, index))
                    .unwrap_or(u32::MAX)
                    .max(1),
            };
            tracing::info!(agent = %agent, ?share, "redistributing a lost agent's share");
            if let Some(m) = self.members.get_mut(agent) {
                m.share = share;
            }
            let reshare = ToAgent::Reshare {
                run_id: self.run_id.clone(),
                share,
            };
            self.send(agent, reshare);
        }
        self.redistributed += 1;
    }

    /// The governor's tick: periodic, and at the instants it asks for.
    pub(crate) fn tick_governor(&mut self) {
        let ok = self.aggregate.ok();
        let (now, shares) = (self.elapsed(), self.shares());
        if let Some(fleet) = &mut self.fleet {
            let adjustments = fleet.on_tick(now, ok, &shares, &self.run_id);
            self.adjust(adjustments);
        }
    }

    fn adjust(&self, adjustments: Vec<Adjustment>) {
        for (agent, adjust) in adjustments {
            self.send(&agent, ToAgent::Adjust(adjust));
        }
    }

    /// A member (re)attached, left, or said something during the load.
    pub(crate) fn on_seen(&mut self, agent: &str, seen: Seen) {
        let Some(member) = self.members.get_mut(agent) else {
            return;
        };
        match seen {
            Seen::Attached { resume_run_id, tx } => {
                if resume_run_id == self.run_id {
                    tracing::info!(
                        agent,
                        "agent reconnected; it resends what was not acknowledged"
                    );
                }
                if member.lost {
                    tracing::warn!(
                        agent,
                        "lost agent came back; its resent snapshots still count"
                    );
                }
                member.away_since = None;
                member.tx = Some(tx);
            }
            Seen::Detached => {
                let now = Instant::now();
                member.away_since = Some(now);
                member.detached_at = self.started.map(|s| now.saturating_duration_since(s));
                member.tx = None;
            }
            Seen::Message(message) if message.run_id() == Some(self.run_id.as_str()) => {
                self.on_message(agent, message);
            }
            Seen::Message(_) => {}
        }
    }

    fn on_message(&mut self, agent: &str, message: FromAgent) {
        match message {
            FromAgent::Snapshot(s) => {
                let checked = self
                    .members
                    .get(agent)
                    .map(|m| m.guard.check(&s, self.aggregate.merged_upto(agent)));
                if let Some(Err(why)) = checked {
                    self.refuse(agent, why, s.seq);
                    return;
                }
                if s.seq == 1
                    && let Some(m) = self.members.get_mut(agent)
                    && m.started_at.is_none()
                {
                    m.started_at = Instant::now().checked_sub(Duration::from_millis(s.end_ms));
                }
                match self.aggregate.merge(agent, &s) {
                    Ok(true) => self.watch.merged(&self.aggregate),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::error!(agent, seq = s.seq, "snapshot not merged: {e}");
                        self.refuse(agent, Rejection::Inconsistent, s.seq);
                        return;
                    }
                }
                self.ack(agent, s.seq);
            }
            FromAgent::Rejected { seq, error, .. } => {
                tracing::error!(agent, seq, "snapshot undecodable: {error}");
                self.refuse(agent, Rejection::Undecodable, seq);
            }
            FromAgent::Throttle(_) | FromAgent::Quota(_) if !self.report_fits(agent) => {}
            FromAgent::Throttle(t) => {
                self.throttle_reports += 1;
                let (now, shares) = (self.elapsed(), self.shares());
                if let Some(fleet) = &mut self.fleet {
                    let adjustments = fleet.on_throttle(now, agent, &t, &shares, &self.run_id);
                    self.adjust(adjustments);
                }
            }
            FromAgent::Quota(q) => {
                let (now, shares) = (self.elapsed(), self.shares());
                if let Some(fleet) = &mut self.fleet {
                    let adjustments = fleet.on_quota(now, agent, &q, &shares, &self.run_id);
                    self.adjust(adjustments);
                }
            }
            FromAgent::Opened(o) => {
                let (now, shares) = (self.elapsed(), self.shares());
                if let Some(fleet) = &mut self.fleet {
                    let adjustments = fleet.on_opened(now, agent, &o, &shares, &self.run_id);
                    self.adjust(adjustments);
                }
            }
            FromAgent::Finished(f) => {
                if !f.stopped_early.is_empty() && self.stopped.is_none() {
                    tracing::warn!(agent, reason = %f.stopped_early, "agent stopped its load early");
                    if let Some(m) = self.members.get_mut(agent) {
                        m.finished = Some(f.clone());
                    }
                    self.on_departure(agent);
                }
                if !f.error.is_empty() {
                    let message = format!("{agent}: {}", f.error);
                    if !self.agent_errors.contains(&message) {
                        self.agent_errors.push(message);
                    }
                    // An agent that aborts (e.g. a daily quota) stops the whole fleet.
                    if self.stopped.is_none() {
                        self.stop_fleet(&f.error, StopCause::AgentFailed);
                    }
                }
                if let Some(m) = self.members.get_mut(agent) {
                    m.finished = Some(f);
                }
            }
            FromAgent::Ready { .. } | FromAgent::Other => {}
        }
    }

    /// Count a refused snapshot (acknowledged, so the agent does not resend it, never
    /// merged); an agent that keeps sending them is disconnected and counted as lost.
    fn refuse(&mut self, agent: &str, why: Rejection, seq: u64) {
        self.aggregate.reject(why.name());
        tracing::warn!(agent, seq, reason = why.name(), "snapshot refused");
        self.ack(agent, seq);
        self.count_rejection(agent);
    }

    fn count_rejection(&mut self, agent: &str) {
        let at = self.elapsed();
        let Some(m) = self.members.get_mut(agent) else {
            return;
        };
        m.rejections += 1;
        if m.rejections == MAX_REJECTIONS {
            tracing::error!(
                agent,
                "disconnecting an agent that sent {MAX_REJECTIONS} invalid messages"
            );
            m.mark_lost(
                at,
                format!("disconnected after {MAX_REJECTIONS} invalid messages"),
            );
            m.tx = None;
            let _ = self.news.try_send(RunNews::Disconnect {
                agent: agent.to_owned(),
            });
        }
    }

    /// Whether a throttle or quota report fits the agent's budget (counted when not).
    fn report_fits(&mut self, agent: &str) -> bool {
        let fits = self
            .members
            .get_mut(agent)
            .is_some_and(|m| m.guard.take_report());
        if !fits {
            self.aggregate.reject(Rejection::RateLimited.name());
        }
        fits
    }

    fn ack(&self, agent: &str, seq: u64) {
        let ack = ToAgent::Ack {
            run_id: self.run_id.clone(),
            seq,
        };
        self.send(agent, ack);
    }
}
