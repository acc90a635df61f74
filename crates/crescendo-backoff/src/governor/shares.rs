//! Splitting a fleet decision into per-agent adjustments.

use std::time::Duration;

use rand::Rng;
use rand::seq::SliceRandom;

use super::types::{FleetDecision, SCOUT_RATE};

/// One agent's part of a [`FleetDecision`].
#[derive(Debug, Clone, PartialEq)]
pub struct AgentAdjust {
    pub agent: String,
    /// This agent's maximum rate: its weight's share of the fleet rate.
    pub max_rate: f64,
    /// Pause from the decision's instant (`decision.at`); zero when there is no pause.
    /// Staggered: pause end plus this agent's offset in the resume spread.
    pub pause: Duration,
    /// `pause` replaces any pause the agent is in, a longer one included (zero ends it):
    /// the scout resumes early, or the whole fleet resumes once it got through.
    pub replace_pause: bool,
    /// The agent scouts for this long after its pause (see [`Scout`](super::Scout));
    /// zero for every other agent.
    pub scout_for: Duration,
}

/// Splits a decision between agents: `max_rate` in proportion to each weight (equal
/// shares when no weight is positive), and, when the decision pauses, resumes spread
/// evenly over `resume_spread`: agent `i` of `n` (in a random order, so no agent is
/// always first) resumes at `pause_until + resume_spread × (i + u) / n`, with one random
/// phase `u ∈ [0, 1)`. Every agent gets a distinct resume inside the spread. An
/// `interleave` decision spreads over at most `n / rate`, one agent's request interval,
/// so the agents' requests take turns. The decision's scout resumes at `scout.from`,
/// at most [`SCOUT_RATE`], and scouts until the last agent's resume; a `resume` decision
/// ends every agent's pause.
pub fn agent_shares(
    decision: &FleetDecision,
    agents: &[(String, f64)],
    rng: &mut impl Rng,
) -> Vec<AgentAdjust> {
    let weight = |w: f64| if w.is_finite() && w > 0.0 { w } else { 0.0 };
    let total: f64 = agents.iter().map(|(_, w)| weight(*w)).sum();
    let rate = decision.rate.max(0.0);
    let n = agents.len();

    let pause = decision
        .pause_until
        .map(|until| until.saturating_sub(decision.at))
        .filter(|p| !p.is_zero());
    let mut slots: Vec<usize> = (0..n).collect();
    slots.shuffle(rng);
    let phase: f64 = rng.random_range(0.0..1.0);
    let spread = if decision.interleave && rate > 0.0 {
        let interval = Duration::try_from_secs_f64(n as f64 / rate).unwrap_or(Duration::MAX);
        decision.resume_spread.min(interval)
    } else {
        decision.resume_spread
    };

    agents
        .iter()
        .zip(slots)
        .map(|((agent, w), slot)| {
            let share = if total > 0.0 {
                weight(*w) / total
            } else {
                1.0 / n as f64
            };
            let max_rate = rate * share;
            let scout = decision.scout.as_ref().filter(|s| &s.agent == agent);
            if let (Some(scout), Some(until)) = (scout, decision.pause_until) {
                let from = scout.from.max(decision.at);
                return AgentAdjust {
                    agent: agent.clone(),
                    max_rate: max_rate.min(SCOUT_RATE),
                    pause: from - decision.at,
                    replace_pause: true,
                    scout_for: until.saturating_add(spread).saturating_sub(from),
                };
            }
            let pause = pause.map_or(Duration::ZERO, |p| {
                let offset = spread.mul_f64((slot as f64 + phase) / n as f64);
                p.saturating_add(offset)
            });
            AgentAdjust {
                agent: agent.clone(),
                max_rate,
                pause,
                replace_pause: decision.resume,
                scout_for: Duration::ZERO,
            }
        })
        .collect()
}
