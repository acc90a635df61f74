//! The limiter over real sockets: 429s, headers, per-token keys, org limit, exact stats.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Sim, header};
use crescendo_flowsim::{Config, HeaderFamilies, key_name};
use serde_json::Value;

fn limited(limit: u64) -> Config {
    Config {
        limit,
        flows: 50,
        ..Config::default()
    }
}

#[tokio::test]
async fn throttles_after_the_limit_with_retry_after_headers_and_body() {
    let sim = Sim::start(limited(5)).await;
    for i in 1..=5u64 {
        let resp = sim
            .put("/api/v2/flows/flow-1", Some("Bearer a"), r#"{"name":"n"}"#)
            .await;
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, "inin-ratelimit-allowed"), Some("5"));
        assert_eq!(
            header(&resp, "inin-ratelimit-count"),
            Some(i.to_string().as_str())
        );
        assert_eq!(
            header(&resp, "x-ratelimit-remaining"),
            Some((5 - i).to_string().as_str())
        );
        let reset: u64 = header(&resp, "inin-ratelimit-reset")
            .unwrap()
            .parse()
            .unwrap();
        assert!((59..=60).contains(&reset), "{reset}");
        assert!(header(&resp, "inin-correlation-id").is_some());
        assert!(header(&resp, "retry-after").is_none());
    }
    let resp = sim
        .put("/api/v2/flows/flow-1", Some("Bearer a"), r#"{"name":"n"}"#)
        .await;
    assert_eq!(resp.status(), 429);
    assert!(
        header(&resp, "content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let retry_after: u64 = header(&resp, "retry-after").unwrap().parse().unwrap();
    assert!((59..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(header(&resp, "x-ratelimit-remaining"), Some("0"));
    assert_eq!(header(&resp, "inin-ratelimit-count"), Some("5"));
    let id = header(&resp, "inin-correlation-id").unwrap().to_owned();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "too.many.requests.retry.after");
    assert_eq!(body["status"], 429);
    assert_eq!(body["contextId"], id.as_str());
    assert_eq!(
        body["message"],
        format!("Rate limit exceeded the maximum. Retry the request in [{retry_after}] seconds")
    );
    assert_eq!(
        (
            body["details"].as_array().map(Vec::len),
            body["errors"].as_array().map(Vec::len)
        ),
        (Some(0), Some(0))
    );

    let stats = sim.stats().await;
    assert_eq!((stats.accepted, stats.throttled), (5, 1));
    assert_eq!(stats.endpoints["PUT /api/v2/flows/{flowId}"]["429"], 1);
    sim.stop().await;
}

#[tokio::test]
async fn throttled_request_does_not_reach_flow_state() {
    let sim = Sim::start(limited(2)).await;
    for _ in 0..4 {
        sim.put("/api/v2/flows/flow-7", None, "{}").await;
    }
    // a new token can read it: two PUTs applied, not four
    let flow: Value = sim
        .get("/api/v2/flows/flow-7", Some("Bearer reader"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(flow["version"], 3);
    sim.stop().await;
}

#[tokio::test]
async fn stats_are_exact_under_concurrency() {
    let sim = Arc::new(Sim::start(limited(300)).await);
    let tasks: Vec<_> = (0..50)
        .map(|t| {
            let sim = Arc::clone(&sim);
            tokio::spawn(async move {
                let mut codes = Vec::with_capacity(10);
                for _ in 0..10 {
                    let resp = sim
                        .put(
                            &format!("/api/v2/flows/flow-{}", t + 1),
                            Some("Bearer shared"),
                            r#"{"name":"x"}"#,
                        )
                        .await;
                    codes.push(resp.status().as_u16());
                }
                codes
            })
        })
        .collect();
    let mut ok = 0;
    let mut throttled = 0;
    for task in tasks {
        for code in task.await.unwrap() {
            match code {
                200 => ok += 1,
                429 => throttled += 1,
                other => panic!("unexpected status {other}"),
            }
        }
    }
    assert_eq!((ok, throttled), (300, 200));
    let stats = sim.stats().await;
    assert_eq!((stats.accepted, stats.throttled), (300, 200));
    let key = &stats.keys[&key_name(Some("Bearer shared"))];
    assert_eq!((key.accepted, key.throttled), (300, 200));
    assert_eq!(stats.statuses["200"], 300);
    assert_eq!(stats.statuses["429"], 200);
    assert_eq!(stats.endpoints["PUT /api/v2/flows/{flowId}"]["200"], 300);
    assert!(
        !serde_json::to_string(&stats).unwrap().contains("shared"),
        "raw tokens never shown"
    );
    Arc::into_inner(sim).unwrap().stop().await;
}

#[tokio::test]
async fn tokens_have_their_own_quota() {
    let sim = Sim::start(limited(3)).await;
    for _ in 0..5 {
        sim.get("/api/v2/flows/flow-1", Some("Bearer a")).await;
    }
    for _ in 0..3 {
        let resp = sim.get("/api/v2/flows/flow-1", Some("Bearer b")).await;
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(sim.get("/api/v2/flows/flow-1", None).await.status(), 200);
    let stats = sim.stats().await;
    let a = &stats.keys[&key_name(Some("Bearer a"))];
    let b = &stats.keys[&key_name(Some("Bearer b"))];
    assert_eq!((a.accepted, a.throttled), (3, 2));
    assert_eq!((b.accepted, b.throttled), (3, 0));
    assert_eq!(stats.keys["anonymous"].accepted, 1);
    assert_eq!((stats.accepted, stats.throttled), (7, 2));
    sim.stop().await;
}

#[tokio::test]
async fn org_limit_spans_tokens_and_reports_the_tighter_limit() {
    let sim = Sim::start(Config {
        org_limit: 4,
        ..limited(3)
    })
    .await;
    let resp = sim.get("/api/v2/flows/flow-1", Some("Bearer a")).await;
    // org has 3 left, token a has 2 left: the token limit is tighter
    assert_eq!(header(&resp, "x-ratelimit-remaining"), Some("2"));
    assert_eq!(header(&resp, "x-ratelimit-limit"), Some("3"));
    sim.get("/api/v2/flows/flow-1", Some("Bearer b")).await;
    let resp = sim.get("/api/v2/flows/flow-1", Some("Bearer c")).await;
    // now org has 1 left and c has 2: org is tighter
    assert_eq!(header(&resp, "x-ratelimit-remaining"), Some("1"));
    assert_eq!(header(&resp, "x-ratelimit-limit"), Some("4"));
    assert_eq!(
        sim.get("/api/v2/flows/flow-1", Some("Bearer d"))
            .await
            .status(),
        200
    );
    let resp = sim.get("/api/v2/flows/flow-1", Some("Bearer e")).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(header(&resp, "x-ratelimit-limit"), Some("4"));
    let stats = sim.stats().await;
    assert_eq!((stats.accepted, stats.throttled), (4, 1));
    sim.stop().await;
}

#[tokio::test]
async fn header_families_are_switchable() {
    let families = |s: &str| HeaderFamilies::parse(s).unwrap();
    let sim = Sim::start(Config {
        headers: families("ietf"),
        ..limited(10)
    })
    .await;
    let resp = sim.get("/api/v2/flows/flow-1", None).await;
    assert_eq!(
        header(&resp, "ratelimit-policy"),
        Some("\"default\";q=10;w=60")
    );
    let rl = header(&resp, "ratelimit").unwrap();
    assert!(rl.starts_with("\"default\";r=9;t="), "{rl}");
    assert!(header(&resp, "inin-ratelimit-allowed").is_none());
    assert!(header(&resp, "x-ratelimit-limit").is_none());
    assert!(header(&resp, "inin-correlation-id").is_some());
    sim.stop().await;

    let sim = Sim::start(Config {
        headers: families("none"),
        ..limited(1)
    })
    .await;
    sim.get("/api/v2/flows/flow-1", None).await;
    let resp = sim.get("/api/v2/flows/flow-1", None).await;
    assert_eq!(resp.status(), 429);
    assert!(
        header(&resp, "retry-after").is_some(),
        "Retry-After is not optional"
    );
    assert!(
        resp.headers()
            .keys()
            .all(|k| !k.as_str().contains("ratelimit")),
        "{:?}",
        resp.headers()
    );
    sim.stop().await;

    let sim = Sim::start(Config {
        headers: families("x-ratelimit"),
        x_reset_epoch: true,
        ..limited(10)
    })
    .await;
    let resp = sim.get("/api/v2/flows/flow-1", None).await;
    let reset: u64 = header(&resp, "x-ratelimit-reset").unwrap().parse().unwrap();
    assert!(reset > 1_000_000_000, "epoch seconds: {reset}");
    sim.stop().await;

    // limiting off: no rate-limit headers at all
    let sim = Sim::start(limited(0)).await;
    let resp = sim.get("/api/v2/flows/flow-1", None).await;
    assert_eq!(resp.status(), 200);
    assert!(header(&resp, "inin-ratelimit-allowed").is_none());
    sim.stop().await;
}

#[tokio::test]
async fn short_window_releases_and_retry_after_rounds_up() {
    let sim = Sim::start(Config {
        window: Duration::from_millis(300),
        ..limited(2)
    })
    .await;
    // The window opens with the first request.
    let opened = Instant::now();
    sim.get("/api/v2/flows/flow-1", None).await;
    sim.get("/api/v2/flows/flow-1", None).await;
    let resp = sim.get("/api/v2/flows/flow-1", None).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(header(&resp, "retry-after"), Some("1"), "ceil never says 0");
    // Poll until the window releases the key (a 429 changes no limiter state; a generous
    // deadline only fails the test): not before the 300 ms window has passed.
    let deadline = opened + Duration::from_secs(30);
    let status = loop {
        let status = sim.get("/api/v2/flows/flow-1", None).await.status();
        if status != 429 {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the 300 ms window never released"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status, 200);
    assert!(
        opened.elapsed() >= Duration::from_millis(300),
        "released {:?} after the window opened",
        opened.elapsed()
    );
    assert_eq!(sim.stats().await.accepted, 3);
    sim.stop().await;
}

#[tokio::test]
async fn reset_zeroes_stats_and_refills_quota() {
    let sim = Sim::start(limited(2)).await;
    for _ in 0..3 {
        sim.get("/api/v2/flows/flow-1", None).await;
    }
    assert_eq!(sim.stats().await.throttled, 1);
    let resp = sim
        .client
        .post(sim.url("/__sim/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let stats = sim.stats().await;
    assert_eq!((stats.accepted, stats.throttled), (0, 0));
    assert!(stats.keys.is_empty() && stats.statuses.is_empty() && stats.endpoints.is_empty());
    assert_eq!(sim.get("/api/v2/flows/flow-1", None).await.status(), 200);
    assert_eq!(sim.get("/api/v2/flows/flow-1", None).await.status(), 200);
    assert_eq!(sim.get("/api/v2/flows/flow-1", None).await.status(), 429);
    sim.stop().await;
}

#[tokio::test]
async fn sim_controls_are_not_rate_limited() {
    let sim = Sim::start(limited(1)).await;
    for _ in 0..20 {
        assert_eq!(sim.get("/__sim/stats", None).await.status(), 200);
        assert_eq!(sim.get("/healthz", None).await.status(), 200);
    }
    assert_eq!(sim.get("/api/v2/flows/flow-1", None).await.status(), 200);
    sim.stop().await;
}
