//! A discrete-time simulation of a fleet against a fixed-window limiter of `L` per `W`:
//! the benchmark targets checked on a fake clock, without sockets.
//!
//! Each agent paces its share of the fleet rate, stops at once on its own 429 for the
//! Retry-After, retries throttled requests `coordinated`-style (Retry-After plus up to
//! 20 % / 1 s of jitter, at most 3 times, outside its pacing), sends throttle reports and,
//! when the API sends quota headers, a quota report every 250 ms. Every message between
//! agents and the governor takes 30 ms. Resets and Retry-After are whole seconds
//! (rounded up), as the Genesys API sends them.

use std::collections::VecDeque;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

const STEP: Duration = Duration::from_millis(10);
const LATENCY: Duration = Duration::from_millis(30);

#[derive(Debug, Clone, Copy)]
struct Scenario {
    limit: u64,
    window: Duration,
    agents: usize,
    /// Fleet plan rate as a multiple of `L / W`.
    overload: f64,
    quota_headers: bool,
    windows: u32,
}

#[derive(Debug)]
struct Outcome {
    /// Accepted per full window (the first, partial one excluded), as a fraction of `L`.
    goodput: f64,
    /// Throttled responses over all attempts.
    throttled: f64,
}

#[derive(Debug, Default)]
struct Agent {
    rate: f64,
    credit: f64,
    paused_until: Duration,
    retries: Vec<(Duration, u32)>,
    /// Quota headers of the latest success: remaining, reset, arrival.
    last_quota: Option<(f64, Duration, Duration)>,
}

#[derive(Debug)]
enum Message {
    Throttle(ThrottleReport),
    Quota(QuotaReport),
}

fn whole_secs(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs() + u64::from(d.subsec_nanos() > 0))
}

fn simulate(s: Scenario, seed: u64) -> Outcome {
    let mut rng = StdRng::seed_from_u64(seed);
    let w = s.window.as_secs_f64();
    let plan = s.overload * s.limit as f64 / w;
    let phase = s.window.mul_f64(0.37);
    let mut governor = Governor::new(GovernorConfig::new(plan));
    let mut agents: Vec<Agent> = (0..s.agents)
        .map(|_| Agent {
            rate: plan / s.agents as f64,
            ..Agent::default()
        })
        .collect();
    let ids: Vec<(String, f64)> = (0..s.agents).map(|i| (format!("agent-{i}"), 1.0)).collect();
    let mut to_governor: VecDeque<(Duration, Message)> = VecDeque::new();
    let mut to_agents: VecDeque<(Duration, Vec<AgentAdjust>, Duration)> = VecDeque::new();
    let (mut window_index, mut used) = (u64::MAX, 0u64);
    let (mut attempts, mut throttled) = (0u64, 0u64);
    let mut accepted_per_window = vec![0u64; s.windows as usize + 2];
    let mut accepted_since_tick = 0u64;
    let end = s.window * s.windows;
    let mut now = Duration::ZERO;

    while now < end {
        // The limiter's window at `now`.
        let server_t = now + phase;
        let index = (server_t.as_secs_f64() / w) as u64;
        if index != window_index {
            window_index = index;
            used = 0;
        }
        let window_end = s.window * (index as u32 + 1);
        let reset = whole_secs(window_end - server_t);

        for (i, agent) in agents.iter_mut().enumerate() {
            let mut sends = 0u32;
            let mut retry_sends = Vec::new();
            agent.retries.retain(|(due, n)| {
                let keep = *due > now;
                if !keep {
                    retry_sends.push(*n);
                }
                keep
            });
            if now >= agent.paused_until {
                agent.credit += agent.rate * STEP.as_secs_f64();
                while agent.credit >= 1.0 {
                    agent.credit -= 1.0;
                    sends += 1;
                }
            }
            let firsts = std::iter::repeat_n(0u32, sends as usize);
            if std::env::var_os("SIM_DEBUG").is_some() && now > Duration::from_secs(34) && now < Duration::from_secs(36) && i == 0 {
                eprintln!("A0 {:?} rate {:.2} credit {:.2} paused {:?} sends {}", now, agent.rate, agent.credit, agent.paused_until, sends);
            }
            for tries in firsts.chain(retry_sends) {
                attempts += 1;
                if used < s.limit {
                    used += 1;
                    accepted_since_tick += 1;
                    let slot =
                        ((now + phase).as_secs_f64() / w) as u64 - (phase.as_secs_f64() / w) as u64;
                    accepted_per_window[slot.min(s.windows as u64 + 1) as usize] += 1;
                    if s.quota_headers {
                        agent.last_quota = Some(((s.limit - used) as f64, reset, now));
                    }
                    continue;
                }
                throttled += 1;
                let ra = reset;
                agent.paused_until = agent.paused_until.max(now + ra);
                agent.credit = 0.0;
                if tries < 3 {
                    let spread = ra
                        .mul_f64(0.2)
                        .max(Duration::from_millis(100))
                        .min(Duration::from_secs(1));
                    let jitter = spread.mul_f64(rng.random_range(0.0..1.0));
                    agent.retries.push((now + ra + jitter, tries + 1));
                }
                to_governor.push_back((
                    now + LATENCY,
                    Message::Throttle(ThrottleReport {
                        agent: ids[i].0.clone(),
                        limit_key: "cred".into(),
                        status: 429,
                        retry_after: Some(ra),
                        remaining: s.quota_headers.then_some(0.0),
                        limit: s.quota_headers.then_some(s.limit as f64),
                        reset: s.quota_headers.then_some(reset),
                        at: now,
                        agent_rate: agent.rate,
                    }),
                ));
            }
            let report_due = now.as_millis() % 250 == (i as u128 * 10) % 250;
            let due = if report_due { agent.last_quota.take() } else { None };
            if let Some((remaining, reset, at)) = due {
                to_governor.push_back((
                    now + LATENCY,
                    Message::Quota(QuotaReport {
                        agent: ids[i].0.clone(),
                        limit_key: "cred".into(),
                        remaining,
                        limit: Some(s.limit as f64),
                        reset,
                        at,
                    }),
                ));
            }
        }

        // The controller: reports, ticks, decisions.
        let mut decisions = Vec::new();
        while to_governor.front().is_some_and(|(t, _)| *t <= now) {
            let (_, message) = to_governor.pop_front().unwrap();
            let decision = match message {
                Message::Throttle(r) => governor.on_throttle(now, r),
                Message::Quota(r) => {
                    if std::env::var_os("SIM_DEBUG").is_some() && now > Duration::from_secs(34) && now < Duration::from_secs(38) {
                        eprintln!("Q {:?} {:?} {} {:?}", now, r.at, r.remaining, r.reset);
                    }
                    governor.on_quota(now, r)
                }
            };
            decisions.extend(decision);
        }
        if now.as_millis() % 100 == 0 {
            let rps = accepted_since_tick as f64 * 10.0;
            accepted_since_tick = 0;
            decisions.extend(governor.on_tick(now, rps));
        }
        for d in decisions {
            let adjusts = agent_shares(&d, &ids, &mut rng);
            to_agents.push_back((now + LATENCY, adjusts, d.at));
        }
        while to_agents.front().is_some_and(|(t, _, _)| *t <= now) {
            let (_, adjusts, at) = to_agents.pop_front().unwrap();
            for (agent, adjust) in agents.iter_mut().zip(adjusts) {
                agent.rate = adjust.max_rate;
                if !adjust.pause.is_zero() {
                    agent.paused_until = agent.paused_until.max(at + adjust.pause);
                    agent.credit = 0.0;
                }
            }
        }
        now += STEP;
    }
    if std::env::var_os("SIM_DEBUG").is_some() {
        eprintln!("per window: {accepted_per_window:?}");
        for e in governor.events() {
            eprintln!(
                "{:>8.3} {:?} {:.2} -> {:.2} {}",
                e.at.as_secs_f64(),
                e.kind,
                e.old_rate,
                e.new_rate,
                e.reason
            );
        }
    }
    let full = &accepted_per_window[1..s.windows as usize];
    let goodput = full.iter().sum::<u64>() as f64 / (full.len() as u64 * s.limit) as f64;
    Outcome {
        goodput,
        throttled: throttled as f64 / attempts as f64,
    }
}

fn check(s: Scenario, min_goodput: f64, max_throttled: f64) {
    for seed in 0..3 {
        let o = simulate(s, seed);
        eprintln!("{s:?} seed {seed}: {o:?}");
        assert!(o.goodput >= min_goodput, "{s:?}: {o:?}");
        assert!(
            o.goodput <= 1.0 + 1e-9,
            "the limiter never lets more through: {o:?}"
        );
        assert!(o.throttled <= max_throttled, "{s:?}: {o:?}");
    }
}

#[test]
fn quota_headers_reach_97_percent_with_under_1_percent_throttled() {
    for (limit, window) in [(300, 60), (100, 10)] {
        check(
            Scenario {
                limit,
                window: Duration::from_secs(window),
                agents: 4,
                overload: 3.0,
                quota_headers: true,
                windows: 10,
            },
            0.97,
            0.01,
        );
    }
}

#[test]
fn retry_after_only_reaches_90_percent_with_under_5_percent_throttled() {
    for (limit, window) in [(300, 60), (100, 10)] {
        check(
            Scenario {
                limit,
                window: Duration::from_secs(window),
                agents: 4,
                overload: 3.0,
                quota_headers: false,
                windows: 10,
            },
            0.90,
            0.05,
        );
    }
}

#[test]
#[ignore = "debugging aid: SIM_DEBUG=1 cargo test -p crescendo-backoff debug_one -- --ignored"]
fn debug_one() {
    let s = Scenario {
        limit: 100,
        window: Duration::from_secs(10),
        agents: 4,
        overload: 3.0,
        quota_headers: true,
        windows: 10,
    };
    eprintln!("{:?}", simulate(s, 2));
}
