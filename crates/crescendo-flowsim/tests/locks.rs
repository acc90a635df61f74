//! The lock workflow over real sockets: checkout/checkin/publish/unlock, 409s with JSON
//! bodies, operations completing after `--operation-delay`, and their stats.

mod common;

use std::time::{Duration, Instant};

use common::Sim;
use crescendo_flowsim::{AuthConfig, ClientSpec, Config};
use serde_json::Value;

const CHECKOUT: &str = "/api/v2/flows/actions/checkout?flow=flow-1";
const CHECKIN: &str = "/api/v2/flows/actions/checkin?flow=flow-1";
const PUBLISH: &str = "/api/v2/flows/actions/publish?flow=flow-1";
const UNLOCK: &str = "/api/v2/flows/actions/unlock?flow=flow-1";

fn oauth_config() -> Config {
    Config {
        flows: 3,
        auth: AuthConfig {
            clients: ["a:secret-a", "b:secret-b"]
                .iter()
                .map(|s| ClientSpec::parse(s).unwrap())
                .collect(),
            ..AuthConfig::default()
        },
        ..Config::default()
    }
}

async fn assert_locked(resp: reqwest::Response) {
    assert_eq!(resp.status(), 409);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["code"], "flow.locked");
    assert_eq!(err["status"], 409);
    assert_eq!(err["message"], "Flow is locked by another client");
    assert!(err["contextId"].is_string());
}

#[tokio::test]
async fn checkout_locks_out_other_clients_until_checkin() {
    let sim = Sim::start(oauth_config()).await;
    let a = sim.bearer("a", "secret-a").await;
    let b = sim.bearer("b", "secret-b").await;

    let resp = sim.post(CHECKOUT, Some(&a)).await;
    assert_eq!(resp.status(), 200);
    let flow: Value = resp.json().await.unwrap();
    assert_eq!(flow["id"], "flow-1");
    assert_eq!(flow["lockedClient"]["id"], "a");
    assert_eq!(
        sim.post(CHECKOUT, Some(&a)).await.status(),
        200,
        "re-checkout"
    );

    assert_locked(sim.post(CHECKOUT, Some(&b)).await).await;
    assert_locked(
        sim.put("/api/v2/flows/flow-1", Some(&b), r#"{"name":"B"}"#)
            .await,
    )
    .await;
    assert_eq!(sim.post(CHECKIN, Some(&b)).await.status(), 409);
    let resp = sim
        .put("/api/v2/flows/flow-1", Some(&a), r#"{"name":"A"}"#)
        .await;
    assert_eq!(resp.status(), 200, "the holder may write");

    let resp = sim.post(CHECKIN, Some(&a)).await;
    assert_eq!(resp.status(), 200);
    let op: Value = resp.json().await.unwrap();
    assert_eq!(
        (op["status"].as_str(), op["complete"].as_bool()),
        (Some("Complete"), Some(true))
    );

    let flow: Value = sim.post(CHECKOUT, Some(&b)).await.json().await.unwrap();
    assert_eq!(flow["lockedClient"]["id"], "b");
    assert_eq!(flow["checkedInVersion"], 2);
    assert_eq!(
        (flow["version"].as_u64(), flow["savedVersion"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(flow["currentOperation"]["actionName"], "Checkin");

    // admin unlock frees it whoever holds it
    let flow: Value = sim.post(UNLOCK, Some(&a)).await.json().await.unwrap();
    assert!(flow["lockedClient"].is_null());

    let stats = sim.stats().await;
    let checkout = &stats.endpoints["POST /api/v2/flows/actions/checkout"];
    assert_eq!((checkout["200"], checkout["409"]), (3, 1));
    assert_eq!(stats.endpoints["PUT /api/v2/flows/{flowId}"]["409"], 1);
    assert_eq!(
        stats.endpoints["POST /api/v2/flows/actions/checkin"]["409"],
        1
    );
    assert_eq!(stats.statuses["409"], 3);
    assert_eq!(stats.accepted, 9, "409s consumed quota");
    sim.stop().await;
}

#[tokio::test]
async fn publish_operation_completes_after_the_delay() {
    let sim = Sim::start(Config {
        operation_delay: Duration::from_millis(500),
        ..oauth_config()
    })
    .await;
    let a = sim.bearer("a", "secret-a").await;
    let published = Instant::now();
    let resp = sim.post(PUBLISH, Some(&a)).await;
    assert_eq!(resp.status(), 202);
    let op: Value = resp.json().await.unwrap();
    assert_eq!(
        (op["status"].as_str(), op["complete"].as_bool()),
        (Some("InProgress"), Some(false))
    );
    assert_eq!(op["actionName"], "Publish");
    let flow: Value = sim
        .get("/api/v2/flows/flow-1", Some(&a))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(flow["publishedVersion"], 2);

    // Poll until the operation completes (a generous deadline only fails the test); it
    // must not have completed before its delay.
    let deadline = published + Duration::from_secs(30);
    loop {
        let flow: Value = sim
            .get("/api/v2/flows/flow-1", Some(&a))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(flow["currentOperation"]["id"], op["id"]);
        let status = flow["currentOperation"]["status"].as_str().unwrap();
        if status == "Complete" {
            assert_eq!(flow["currentOperation"]["complete"], true);
            assert!(
                published.elapsed() >= Duration::from_millis(500),
                "complete {:?} after publishing, before the 500 ms delay",
                published.elapsed()
            );
            break;
        }
        assert_eq!(status, "InProgress", "{flow}");
        assert!(Instant::now() < deadline, "never completed: {flow}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // another client's lock blocks publishing
    let b = sim.bearer("b", "secret-b").await;
    assert_eq!(sim.post(CHECKOUT, Some(&b)).await.status(), 200);
    assert_locked(sim.post(PUBLISH, Some(&a)).await).await;
    sim.stop().await;
}

#[tokio::test]
async fn bad_action_requests() {
    let sim = Sim::start(oauth_config()).await;
    let a = sim.bearer("a", "secret-a").await;
    for path in [
        "/api/v2/flows/actions/checkout",
        "/api/v2/flows/actions/checkin?flow=",
    ] {
        let resp = sim.post(path, Some(&a)).await;
        assert_eq!(resp.status(), 400, "{path}");
        let err: Value = resp.json().await.unwrap();
        assert_eq!(err["code"], "bad.request");
    }
    let resp = sim
        .post("/api/v2/flows/actions/publish?flow=nope", Some(&a))
        .await;
    assert_eq!(resp.status(), 404);
    assert_eq!(sim.post(CHECKOUT, None).await.status(), 401);
    sim.stop().await;
}

#[tokio::test]
async fn without_oauth_the_caller_is_the_hashed_bearer_token() {
    let sim = Sim::start(Config {
        flows: 2,
        ..Config::default()
    })
    .await;
    let flow: Value = sim
        .post(CHECKOUT, Some("Bearer one"))
        .await
        .json()
        .await
        .unwrap();
    // The token names the caller, but only hashed: others see the lock, never the token.
    assert_eq!(
        flow["lockedClient"]["id"],
        crescendo_flowsim::key_name(Some("Bearer one"))
    );
    let text = sim
        .get("/api/v2/flows/flow-1", Some("Bearer two"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!text.contains("\"one\""), "{text}");
    assert_locked(sim.post(CHECKOUT, None).await).await;
    assert_locked(
        sim.put("/api/v2/flows/flow-1", Some("Bearer two"), "{}")
            .await,
    )
    .await;
    // an unlocked flow stays writable by anyone, as before
    assert_eq!(
        sim.put("/api/v2/flows/flow-2", None, "{}").await.status(),
        200
    );
    let flow: Value = sim
        .post("/api/v2/flows/actions/checkout?flow=flow-2", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(flow["lockedClient"]["id"], "anonymous");
    sim.stop().await;
}

#[tokio::test]
async fn require_checkout_refuses_writes_without_the_lock() {
    let sim = Sim::start(Config {
        require_checkout: true,
        ..oauth_config()
    })
    .await;
    let a = sim.bearer("a", "secret-a").await;
    let resp = sim
        .put("/api/v2/flows/flow-1", Some(&a), r#"{"name":"x"}"#)
        .await;
    assert_eq!(resp.status(), 409);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["code"], "flow.not.checked.out");
    assert_eq!(sim.post(CHECKOUT, Some(&a)).await.status(), 200);
    let resp = sim
        .put("/api/v2/flows/flow-1", Some(&a), r#"{"name":"x"}"#)
        .await;
    assert_eq!(resp.status(), 200);
    sim.stop().await;
}
