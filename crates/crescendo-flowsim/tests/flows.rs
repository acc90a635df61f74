//! Flow endpoints over real sockets: PUT/GET, 404 vs auto-create, 400, listing.

mod common;

use common::{Sim, header};
use crescendo_flowsim::Config;
use serde_json::Value;

fn config() -> Config {
    Config {
        flows: 3,
        ..Config::default()
    }
}

#[tokio::test]
async fn put_updates_and_bumps_version() {
    let sim = Sim::start(config()).await;
    let resp = sim
        .put(
            "/api/v2/flows/flow-2",
            Some("Bearer t"),
            r#"{"name":"Main IVR","description":"peak"}"#,
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert!(
        header(&resp, "content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let flow: Value = resp.json().await.unwrap();
    assert_eq!(flow["id"], "flow-2");
    assert_eq!(flow["name"], "Main IVR");
    assert_eq!(flow["description"], "peak");
    assert_eq!(flow["version"], 2);

    let flow: Value = sim
        .put("/api/v2/flows/flow-2", None, r#"{"description":"after"}"#)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (flow["name"].as_str(), flow["version"].as_u64()),
        (Some("Main IVR"), Some(3))
    );
    let flow: Value = sim
        .get("/api/v2/flows/flow-2", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (flow["description"].as_str(), flow["version"].as_u64()),
        (Some("after"), Some(3))
    );
    sim.stop().await;
}

#[tokio::test]
async fn unknown_flow_is_404_unless_auto_create() {
    let sim = Sim::start(config()).await;
    for resp in [
        sim.get("/api/v2/flows/nope", None).await,
        sim.put("/api/v2/flows/nope", None, r#"{"name":"x"}"#).await,
    ] {
        assert_eq!(resp.status(), 404);
        let id = header(&resp, "inin-correlation-id").unwrap().to_owned();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["code"], "not.found");
        assert_eq!(body["status"], 404);
        assert_eq!(body["contextId"], id.as_str());
        assert!(body["message"].as_str().unwrap().contains("nope"));
    }
    sim.stop().await;

    let sim = Sim::start(Config {
        auto_create: true,
        ..config()
    })
    .await;
    let resp = sim
        .put("/api/v2/flows/new-one", None, r#"{"name":"x"}"#)
        .await;
    assert_eq!(resp.status(), 200);
    let flow: Value = resp.json().await.unwrap();
    assert_eq!(
        (
            flow["id"].as_str(),
            flow["name"].as_str(),
            flow["version"].as_u64()
        ),
        (Some("new-one"), Some("x"), Some(1))
    );
    let resp = sim.get("/api/v2/flows/other", None).await;
    assert_eq!(resp.status(), 200);
    let stats = sim.stats().await;
    assert_eq!(stats.statuses["200"], 2);
    sim.stop().await;
}

#[tokio::test]
async fn malformed_json_is_400_with_error_body() {
    let sim = Sim::start(config()).await;
    for body in [r#"{"name": "#, "[1,2]", r#"{"name": 5}"#] {
        let resp = sim.put("/api/v2/flows/flow-1", None, body).await;
        assert_eq!(resp.status(), 400, "{body}");
        assert!(
            header(&resp, "content-type")
                .unwrap()
                .starts_with("application/json")
        );
        let err: Value = resp.json().await.unwrap();
        assert_eq!(err["code"], "bad.request");
        assert_eq!(err["status"], 400);
        assert!(err["details"].is_array() && err["errors"].is_array());
    }
    // nothing was changed by the bad requests
    let flow: Value = sim
        .get("/api/v2/flows/flow-1", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(flow["version"], 1);
    let stats = sim.stats().await;
    assert_eq!(stats.endpoints["PUT /api/v2/flows/{flowId}"]["400"], 3);
    sim.stop().await;
}

#[tokio::test]
async fn list_is_paged() {
    let sim = Sim::start(Config {
        flows: 30,
        ..Config::default()
    })
    .await;
    let page: Value = sim.get("/api/v2/flows", None).await.json().await.unwrap();
    assert_eq!(page["entities"].as_array().unwrap().len(), 25);
    assert_eq!(
        (page["pageNumber"].as_u64(), page["pageSize"].as_u64()),
        (Some(1), Some(25))
    );
    assert_eq!(
        (page["total"].as_u64(), page["pageCount"].as_u64()),
        (Some(30), Some(2))
    );
    assert_eq!(page["entities"][0]["id"], "flow-1");

    let page: Value = sim
        .get("/api/v2/flows?pageNumber=3&pageSize=12", None)
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = page["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "flow-25", "flow-26", "flow-27", "flow-28", "flow-29", "flow-30"
        ]
    );
    assert_eq!(page["pageCount"], 3);

    for bad in [
        "?pageSize=501",
        "?pageSize=0",
        "?pageNumber=0",
        "?pageSize=abc",
    ] {
        let resp = sim.get(&format!("/api/v2/flows{bad}"), None).await;
        assert_eq!(resp.status(), 400, "{bad}");
    }
    sim.stop().await;
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let sim = Sim::start(config()).await;
    let resp = sim.get("/api/v2/nothing", None).await;
    assert_eq!(resp.status(), 404);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["code"], "not.found");

    let resp = sim
        .client
        .delete(sim.url("/api/v2/flows/flow-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["status"], 405);

    let resp = sim.get("/healthz", None).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "ok");

    let stats = sim.stats().await;
    assert_eq!(stats.endpoints["other"]["404"], 1);
    assert_eq!(stats.endpoints["other"]["405"], 1);
    assert_eq!(stats.accepted, 2, "health and stats are not API requests");
    sim.stop().await;
}
