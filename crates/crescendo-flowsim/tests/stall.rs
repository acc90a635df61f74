//! Latency, jitter and stalls over real sockets.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Sim;
use crescendo_flowsim::Config;
use serde_json::json;

fn unlimited() -> Config {
    Config {
        limit: 0,
        flows: 1,
        ..Config::default()
    }
}

#[tokio::test]
async fn stall_holds_in_flight_and_new_responses() {
    let sim = Arc::new(
        Sim::start(Config {
            latency: Duration::from_millis(200),
            ..unlimited()
        })
        .await,
    );
    // one request already in flight (inside its 200 ms latency) when the stall begins
    let in_flight = {
        let sim = Arc::clone(&sim);
        tokio::spawn(async move {
            let t0 = Instant::now();
            assert_eq!(sim.get("/api/v2/flows/flow-1", None).await.status(), 200);
            t0.elapsed()
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t0 = Instant::now();
    let resp = sim.post_json("/__sim/stall", json!({"ms": 1000})).await;
    assert_eq!(resp.status(), 200);
    assert!(
        t0.elapsed() < Duration::from_millis(500),
        "sim controls are not stalled"
    );
    // one that starts during the stall
    let started = Instant::now();
    assert_eq!(sim.get("/api/v2/flows/flow-1", None).await.status(), 200);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(850),
        "new request held: {waited:?}"
    );
    let waited = in_flight.await.unwrap();
    assert!(
        waited >= Duration::from_millis(950),
        "in-flight request held: {waited:?}"
    );
    // after the stall: only the configured latency
    let started = Instant::now();
    sim.get("/api/v2/flows/flow-1", None).await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(200) && waited < Duration::from_millis(800),
        "{waited:?}"
    );
    Arc::into_inner(sim).unwrap().stop().await;
}

#[tokio::test]
async fn bad_stall_body_is_400() {
    let sim = Sim::start(unlimited()).await;
    let resp = sim
        .client
        .post(sim.url("/__sim/stall"))
        .body("{\"ms\":\"x\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    sim.stop().await;
}

#[tokio::test]
async fn latency_and_jitter_apply_to_api_only() {
    let sim = Sim::start(Config {
        latency: Duration::from_millis(100),
        jitter: Duration::from_millis(50),
        ..unlimited()
    })
    .await;
    for _ in 0..3 {
        let t0 = Instant::now();
        sim.get("/api/v2/flows/flow-1", None).await;
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_millis(100) && took < Duration::from_millis(600),
            "{took:?}"
        );
    }
    let t0 = Instant::now();
    sim.stats().await;
    assert!(t0.elapsed() < Duration::from_millis(90));
    sim.stop().await;
}

#[tokio::test]
async fn shutdown_is_prompt_even_during_a_stall() {
    let sim = Arc::new(Sim::start(unlimited()).await);
    sim.post_json("/__sim/stall", json!({"ms": 60_000})).await;
    let stuck = {
        let sim = Arc::clone(&sim);
        tokio::spawn(async move { sim.get("/api/v2/flows/flow-1", None).await.status() })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t0 = Instant::now();
    sim.cancel();
    let status = tokio::time::timeout(Duration::from_secs(5), stuck)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, 200, "the held response is released, not dropped");
    Arc::into_inner(sim).unwrap().stop().await;
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
}
