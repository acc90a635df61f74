//! Fleet tests: decisions reach the agents on their limit key.

use super::*;

const PLAN: &str = r#"
name = "keys"
[target]
base_url = "http://127.0.0.1:9"
[[scenario.steps]]
name = "update"
method = "PUT"
path = "/x"
[load]
max_in_flight = 40
stages = [ { duration = "60s", target = 40 } ]
[backoff]
policy = "coordinated"
"#;

fn fleet() -> Fleet {
    let plan = crescendo_plan::parse(PLAN, "keys.toml").unwrap();
    Fleet::for_plan(&plan).expect("coordinated open plan")
}

fn shares() -> Vec<(String, Share)> {
    (0..4u32)
        .map(|index| {
            let share = Share {
                index,
                count: 4,
                rate_fraction: 0.25,
                vus: 0,
                max_in_flight: 10,
            };
            (format!("agent-{index}"), share)
        })
        .collect()
}

fn throttle(key: &str) -> Throttle {
    Throttle {
        limit_key: key.to_owned(),
        status: 429,
        retry_after: Some(Duration::from_secs(2)),
        rate_rps: 10.0,
        ..Default::default()
    }
}

fn quota(key: &str) -> Quota {
    Quota {
        limit_key: key.to_owned(),
        remaining: 290.0,
        limit: Some(300.0),
        reset: Some(Duration::from_millis(59_500)),
        ..Default::default()
    }
}

fn agents(adjusts: &[Adjustment]) -> Vec<&str> {
    let mut names: Vec<&str> = adjusts.iter().map(|(a, _)| a.as_str()).collect();
    names.sort_unstable();
    names
}

#[test]
fn a_cut_on_one_client_reaches_only_its_agents() {
    let (mut f, shares) = (fleet(), shares());
    for t in 0..=20u64 {
        f.on_tick(Duration::from_millis(t * 250), t * 10, &shares, "run");
    }
    let keys = ["client-a", "client-a", "client-b", "client-b"];
    for (i, key) in keys.iter().enumerate() {
        let at = Duration::from_millis(5_000 + i as u64);
        f.on_quota(at, &format!("agent-{i}"), &quota(key), &shares, "run");
    }
    let now = Duration::from_secs(6);
    // A Retry-After of 2.5 s: not whole seconds, so nobody scouts and all wait.
    let t = Throttle {
        retry_after: Some(Duration::from_millis(2_500)),
        ..throttle("client-a")
    };
    let adjusts = f.on_throttle(now, "agent-0", &t, &shares, "run");
    assert_eq!(agents(&adjusts), ["agent-0", "agent-1"]);
    // Client A's whole rate, split between its two agents, both paused.
    let total: f64 = adjusts.iter().filter_map(|(_, a)| a.max_rate_rps).sum();
    assert!((total - f.governor.allowed_rate("client-a")).abs() < 1e-9);
    assert!(
        adjusts
            .iter()
            .all(|(_, a)| a.pause >= Duration::from_millis(2_000))
    );
    assert!(f.governor.paused_until("client-b", now).is_none());
    // B's pacing goes to B's agents only.
    let b = f.on_quota(
        now,
        "agent-3",
        &Quota {
            remaining: 20.0,
            ..quota("client-b")
        },
        &shares,
        "run",
    );
    assert_eq!(agents(&b), ["agent-2", "agent-3"]);
}

#[test]
fn with_one_key_every_agent_follows_its_decisions() {
    let (mut f, shares) = (fleet(), shares());
    f.on_tick(Duration::ZERO, 0, &shares, "run");
    // Only agent-0 has reported (no credential named: the default key).
    let adjusts = f.on_throttle(
        Duration::from_secs(1),
        "agent-0",
        &throttle(""),
        &shares,
        "run",
    );
    assert_eq!(adjusts.len(), 4, "the cut, for all");
    assert_eq!(
        agents(&adjusts),
        ["agent-0", "agent-1", "agent-2", "agent-3"]
    );
}

#[test]
fn an_agent_joining_a_paused_key_is_paused_too() {
    let (mut f, shares) = (fleet(), shares());
    f.on_tick(Duration::ZERO, 0, &shares, "run");
    f.on_quota(
        Duration::from_millis(10),
        "agent-2",
        &quota("client-b"),
        &shares,
        "run",
    );
    f.on_throttle(
        Duration::from_secs(1),
        "agent-0",
        &throttle("client-a"),
        &shares,
        "run",
    );
    // agent-1 reports client A for the first time while A is paused until 3 s.
    let now = Duration::from_millis(1_500);
    let joined = f.on_quota(now, "agent-1", &quota("client-a"), &shares, "run");
    let (_, adjust) = joined.iter().find(|(a, _)| a == "agent-1").expect("placed");
    assert!(adjust.pause >= Duration::from_millis(1_500), "{adjust:?}");
}

#[test]
fn the_throttled_agent_scouts_and_its_opening_resumes_every_agent() {
    let (mut f, shares) = (fleet(), shares());
    for t in 0..=20u64 {
        f.on_tick(Duration::from_millis(t * 250), t * 10, &shares, "run");
    }
    let now = Duration::from_secs(6);
    let adjusts = f.on_throttle(now, "agent-2", &throttle(""), &shares, "run");
    assert_eq!(adjusts.len(), 4);
    for (agent, a) in &adjusts {
        if agent == "agent-2" {
            // Retry-After 2 s: the scout resumes a second early, replacing its own pause.
            assert_eq!(a.pause, Duration::from_millis(1_000));
            assert!(a.replace_pause);
            assert!(a.scout >= Duration::from_millis(1_000), "{a:?}");
            assert!(a.max_rate_rps.unwrap() <= 10.0);
        } else {
            assert!(
                a.pause >= Duration::from_millis(2_000) && !a.replace_pause && a.scout.is_zero(),
                "{a:?}"
            );
        }
    }
    // Someone else's word opens nothing; the scout's does, for every agent.
    let opened = |limit_key: &str| Opened {
        run_id: "run".into(),
        limit_key: limit_key.into(),
    };
    let later = Duration::from_millis(7_300);
    assert!(
        f.on_opened(later, "agent-1", &opened(""), &shares, "run")
            .is_empty()
    );
    let resume = f.on_opened(later, "agent-2", &opened(""), &shares, "run");
    assert_eq!(
        agents(&resume),
        ["agent-0", "agent-1", "agent-2", "agent-3"]
    );
    for (_, a) in &resume {
        assert!(
            a.replace_pause && a.pause.is_zero() && a.scout.is_zero(),
            "{a:?}"
        );
        assert!(a.max_rate_rps.unwrap() > 0.0);
    }
    assert!(
        f.events()
            .iter()
            .any(|e| e.kind == crescendo_backoff::governor::EventKind::Resume)
    );
}

#[test]
fn the_pause_clock_counts_wall_clock_time_once() {
    let s = Duration::from_secs_f64;
    let mut clock = super::PauseClock::default();
    clock.observe(s(1.0), None);
    clock.observe(s(2.0), Some(s(4.0)));
    // Seen again, extended: one span, not two.
    clock.observe(s(3.0), Some(s(5.0)));
    assert_eq!(clock.total(s(3.5)), s(1.5));
    // A scout got through at 4.5: the pause ends then.
    clock.observe(s(4.5), None);
    assert_eq!(clock.total(s(10.0)), s(2.5));
    // A pause that ran out on its own, then a new one.
    clock.observe(s(6.0), Some(s(7.0)));
    clock.observe(s(8.0), Some(s(9.0)));
    assert_eq!(clock.total(s(20.0)), s(4.5));
}
