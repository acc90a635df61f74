//! Limit keys (one per credential) keep separate state: one client's 429s never slow
//! another client's agents.

use super::*;

/// Client A: Retry-After only, throttled every 2 s. Client B: quota headers, plenty
/// left. Ticks every 100 ms for 20 s, with `accepted` split between the keys.
fn run(with_a: bool) -> (Governor, Vec<FleetDecision>) {
    let mut g = Governor::new(GovernorConfig::new(40.0));
    let mut decisions = Vec::new();
    for t in 0..200u64 {
        let now = ms(t * 100);
        if t % 20 == 5 && with_a {
            let report = throttle("agent-a1", "client-a", now, Some(secs(1)));
            decisions.extend(g.on_throttle(now, report));
        }
        if t % 5 == 0 {
            let reset = ms(60_500 - (t * 100) % 60_000);
            let report = quota("client-b", now, 290.0 - t as f64, 300.0, reset);
            decisions.extend(g.on_quota(now, report));
        }
        let b_rate = g.allowed_rate("client-b");
        let a_rate = if with_a {
            g.allowed_rate("client-a")
        } else {
            0.0
        };
        decisions.extend(g.on_tick(now, (b_rate + a_rate).min(30.0)));
    }
    (g, decisions)
}

#[test]
fn two_credentials_on_a_fake_clock_never_share_a_cut() {
    let (g, decisions) = run(true);
    let on = |key: &str| -> Vec<&FleetDecision> {
        decisions.iter().filter(|d| d.limit_key == key).collect()
    };
    assert!(on("client-a").iter().any(|d| d.pause_until.is_some()));
    assert!(g.allowed_rate("client-a") < 40.0);
    assert!(g.paused_until("client-a", ms(18_600)).is_some());
    // B was never paused or cut …
    assert!(on("client-b").iter().all(|d| d.pause_until.is_none()));
    assert!(
        g.events()
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Cut | EventKind::Pause))
            .all(|e| e.limit_key == "client-a")
    );
    assert_eq!(g.paused_until("client-b", ms(18_600)), None);
    // … and it is paced exactly as it would be without client A.
    let (alone, alone_decisions) = run(false);
    assert_eq!(g.allowed_rate("client-b"), alone.allowed_rate("client-b"));
    let rates = |d: Vec<&FleetDecision>| d.iter().map(|d| d.rate).collect::<Vec<_>>();
    let b_alone: Vec<&FleetDecision> = alone_decisions.iter().collect();
    assert_eq!(rates(on("client-b")), rates(b_alone));
}

#[test]
fn shares_of_a_key_go_only_to_its_agents() {
    // The controller splits a key's decision between the agents on that key: passing
    // only those agents gives them the whole key rate.
    let decision = decision("client-a", 30.0, Some(secs(2)), false);
    let on_a = [("a1".to_owned(), 1.0), ("a2".to_owned(), 1.0)];
    let shares = agent_shares(&decision, &on_a, &mut StdRng::seed_from_u64(3));
    assert_eq!(shares.len(), 2);
    assert!(shares.iter().all(|s| (s.max_rate - 15.0).abs() < 1e-9));
    assert!(
        shares
            .iter()
            .all(|s| s.pause >= secs(1) && s.pause < ms(1_500))
    );
}
