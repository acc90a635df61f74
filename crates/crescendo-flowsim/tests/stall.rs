//! Latency, jitter and stalls over real sockets. Each test waits for what flowsim's
//! stats show (a request counted, responses held by a stall) rather than for a fixed
//! time, and asserts an order of events or a lower bound, never that something was fast:
//! the upper bounds of latency and jitter, and a stall's exact end, are checked on a
//! paused clock in `state.rs`.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Sim;
use crescendo_flowsim::Config;
use reqwest::StatusCode;
use serde_json::json;
use tokio::task::JoinHandle;

fn unlimited() -> Config {
    Config {
        limit: 0,
        flows: 1,
        ..Config::default()
    }
}

/// `GET /api/v2/flows/flow-1` in a task: its status and when its response arrived.
fn spawn_get(sim: &Arc<Sim>) -> JoinHandle<(StatusCode, Instant)> {
    let sim = Arc::clone(sim);
    tokio::spawn(async move {
        let status = sim.get("/api/v2/flows/flow-1", None).await.status();
        (status, Instant::now())
    })
}

/// API responses flowsim has counted with status 200 (counted before latency and stalls
/// hold them, so a counted request is in flight or answered).
fn ok_count(stats: &crescendo_flowsim::Stats) -> u64 {
    stats.statuses.get("200").copied().unwrap_or(0)
}

#[tokio::test]
async fn stall_holds_in_flight_and_new_responses() {
    const LATENCY: Duration = Duration::from_millis(500);
    const STALL: Duration = Duration::from_secs(2);
    let sim = Arc::new(
        Sim::start(Config {
            latency: LATENCY,
            ..unlimited()
        })
        .await,
    );
    // One request in flight (inside its latency) when the stall begins...
    let in_flight = spawn_get(&sim);
    sim.wait_for("the first request", |s| ok_count(s) == 1)
        .await;
    let stall_sent = Instant::now();
    let resp = sim
        .post_json("/__sim/stall", json!({ "ms": STALL.as_millis() as u64 }))
        .await;
    assert_eq!(resp.status(), 200);
    // ...and one that starts during it.
    let during = spawn_get(&sim);
    // Both are held by the stall. This answer comes from a control while the stall is in
    // force (a held control would only answer once `stalled` is back to 0).
    let stats = sim
        .wait_for("both responses held by the stall", |s| s.stalled == 2)
        .await;
    assert_eq!(ok_count(&stats), 2, "{stats:?}");
    // The stall ends by itself: both are answered, not before it could have ended.
    for (name, task) in [("in-flight", in_flight), ("new", during)] {
        let (status, answered) = task.await.unwrap();
        assert_eq!(status, 200, "{name}");
        assert!(
            answered >= stall_sent + STALL,
            "{name} request answered {:?} after the stall was sent, before it ended",
            answered - stall_sent
        );
    }
    assert_eq!(sim.stats().await.stalled, 0, "nothing held after the stall");
    // After the stall: the configured latency still applies.
    let started = Instant::now();
    assert_eq!(sim.get("/api/v2/flows/flow-1", None).await.status(), 200);
    assert!(started.elapsed() >= LATENCY, "{:?}", started.elapsed());
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
        assert_eq!(sim.get("/api/v2/flows/flow-1", None).await.status(), 200);
        assert!(
            t0.elapsed() >= Duration::from_millis(100),
            "{:?}",
            t0.elapsed()
        );
    }
    sim.stop().await;

    // Controls answer while an API response still waits out its (one hour) latency.
    let sim = Arc::new(
        Sim::start(Config {
            latency: Duration::from_secs(3600),
            ..unlimited()
        })
        .await,
    );
    let waiting = spawn_get(&sim);
    let stats = sim.wait_for("the API request", |s| ok_count(s) == 1).await;
    assert_eq!(stats.accepted, 1, "{stats:?}");
    assert!(!waiting.is_finished(), "the API response waits its latency");
    // Shutdown ends the latency wait: the held response is released.
    sim.cancel();
    let (status, _) = waiting.await.unwrap();
    assert_eq!(status, 200);
    Arc::into_inner(sim).unwrap().stop().await;
}

#[tokio::test]
async fn shutdown_releases_responses_held_by_a_stall() {
    let sim = Arc::new(Sim::start(unlimited()).await);
    // An hour's stall: only shutdown can release what it holds within the test's time.
    sim.post_json("/__sim/stall", json!({ "ms": 3_600_000 }))
        .await;
    let stuck = spawn_get(&sim);
    sim.wait_for("a response held by the stall", |s| s.stalled == 1)
        .await;
    sim.cancel();
    let (status, _) = stuck.await.unwrap();
    assert_eq!(status, 200, "the held response is released, not dropped");
    Arc::into_inner(sim).unwrap().stop().await;
}
