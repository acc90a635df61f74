//! OAuth over real sockets: token issue and expiry, bad credentials, wrong grants, the
//! token endpoint's own limit, rate limits keyed per client, and auth off as before.

mod common;

use std::time::{Duration, Instant};

use common::{Sim, header};
use crescendo_flowsim::{AuthConfig, ClientSpec, Config, LimitKey, client_key_name, key_name};
use serde_json::Value;

fn clients(specs: &[&str]) -> Vec<ClientSpec> {
    specs
        .iter()
        .map(|s| ClientSpec::parse(s).unwrap())
        .collect()
}

fn config(auth: AuthConfig) -> Config {
    Config {
        flows: 3,
        auth,
        ..Config::default()
    }
}

fn two_clients() -> AuthConfig {
    AuthConfig {
        clients: clients(&["agent-a:secret-a", "agent-b:secret-b"]),
        ..AuthConfig::default()
    }
}

/// The status of `GET /api/v2/flows/flow-1` with `token`.
async fn flow_status(sim: &Sim, token: &str) -> reqwest::StatusCode {
    sim.get("/api/v2/flows/flow-1", Some(token)).await.status()
}

#[tokio::test]
async fn token_is_issued_and_expires() {
    let sim = Sim::start(config(AuthConfig {
        token_lifetime: Duration::from_secs(2),
        ..two_clients()
    }))
    .await;
    let requested = Instant::now();
    let resp = sim
        .token_request("agent-a", "secret-a", "client_credentials")
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "cache-control"), Some("no-store"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 2);
    let token = format!("Bearer {}", body["access_token"].as_str().unwrap());

    let resp = sim.get("/api/v2/flows/flow-1", Some(&token)).await;
    assert_eq!(resp.status(), 200);
    // The token works until it expires: poll until it stops working (a generous deadline
    // only fails the test), which must not be before its 2 s lifetime.
    let deadline = requested + Duration::from_secs(30);
    let resp = loop {
        let resp = sim.get("/api/v2/flows/flow-1", Some(&token)).await;
        if resp.status() != 200 {
            break resp;
        }
        assert!(Instant::now() < deadline, "the 2 s token never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(resp.status(), 401);
    assert!(
        requested.elapsed() >= Duration::from_secs(2),
        "expired {:?} after it was requested, before its 2 s lifetime",
        requested.elapsed()
    );
    let err: Value = resp.json().await.unwrap();
    assert_eq!(
        (err["code"].as_str(), err["status"].as_u64()),
        (Some("bad.credentials"), Some(401))
    );
    // a fresh token works again
    let fresh = sim.bearer("agent-a", "secret-a").await;
    assert_eq!(flow_status(&sim, &fresh).await, 200);
    // until the test control revokes every token
    let revoked: Value = sim
        .post("/__sim/revoke-tokens", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(revoked["revoked"], 1);
    assert_eq!(flow_status(&sim, &fresh).await, 401);
    sim.stop().await;
}

#[tokio::test]
async fn api_needs_a_valid_bearer_token_checked_before_the_limit() {
    let sim = Sim::start(Config {
        limit: 1,
        ..config(two_clients())
    })
    .await;
    for token in [None, Some("Bearer not-issued"), Some("Basic abc")] {
        let resp = sim.get("/api/v2/flows", token).await;
        assert_eq!(resp.status(), 401, "{token:?}");
        assert_eq!(header(&resp, "www-authenticate"), Some("Bearer"));
        assert!(header(&resp, "inin-correlation-id").is_some());
        let err: Value = resp.json().await.unwrap();
        assert_eq!(err["code"], "bad.credentials");
    }
    let token = sim.bearer("agent-a", "secret-a").await;
    assert_eq!(sim.get("/api/v2/flows", Some(&token)).await.status(), 200);
    assert_eq!(sim.get("/api/v2/flows", Some(&token)).await.status(), 429);
    let stats = sim.stats().await;
    assert_eq!(
        (stats.accepted, stats.throttled),
        (1, 1),
        "401s spend no quota"
    );
    assert_eq!(stats.endpoints["GET /api/v2/flows"]["401"], 3);
    assert_eq!(stats.statuses["401"], 3);
    assert_eq!(stats.endpoints["POST /oauth/token"]["200"], 1);
    sim.stop().await;
}

#[tokio::test]
async fn bad_credentials_and_grants_are_refused() {
    let sim = Sim::start(config(two_clients())).await;
    for (id, secret) in [
        ("agent-a", "wrong"),
        ("nobody", "secret-a"),
        ("agent-a", ""),
    ] {
        let resp = sim.token_request(id, secret, "client_credentials").await;
        assert_eq!(resp.status(), 401, "{id}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client");
    }
    let resp = sim
        .client
        .post(sim.url("/oauth/token"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "no credentials at all");

    let resp = sim.token_request("agent-a", "secret-a", "password").await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "unsupported_grant_type");
    let resp = sim
        .client
        .post(sim.url("/oauth/token"))
        .basic_auth("agent-a", Some("secret-a"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400, "no form body");

    let stats = sim.stats().await;
    let token = &stats.endpoints["POST /oauth/token"];
    assert_eq!((token["401"], token["400"]), (4, 2));
    assert_eq!(stats.accepted, 0, "token requests are not API requests");
    sim.stop().await;
}

#[tokio::test]
async fn token_endpoint_has_its_own_limit() {
    let sim = Sim::start(config(AuthConfig {
        token_rate_limit: 2,
        ..two_clients()
    }))
    .await;
    sim.bearer("agent-a", "secret-a").await;
    sim.bearer("agent-b", "secret-b").await;
    let resp = sim
        .token_request("agent-a", "secret-a", "client_credentials")
        .await;
    assert_eq!(resp.status(), 429);
    let retry: u64 = header(&resp, "retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let stats = sim.stats().await;
    assert_eq!(stats.endpoints["POST /oauth/token"]["429"], 1);
    assert_eq!(stats.throttled, 0, "the API totals are untouched");
    sim.stop().await;
}

#[tokio::test]
async fn limit_is_keyed_per_client_across_token_refreshes() {
    let sim = Sim::start(Config {
        limit: 2,
        ..config(two_clients())
    })
    .await;
    let first = sim.bearer("agent-a", "secret-a").await;
    let second = sim.bearer("agent-a", "secret-a").await;
    assert_ne!(first, second);
    assert_eq!(flow_status(&sim, &first).await, 200);
    assert_eq!(flow_status(&sim, &second).await, 200);
    assert_eq!(flow_status(&sim, &second).await, 429);
    let other = sim.bearer("agent-b", "secret-b").await;
    assert_eq!(flow_status(&sim, &other).await, 200);
    let stats = sim.stats().await;
    let a = stats.keys[&client_key_name("agent-a")];
    assert_eq!((a.accepted, a.throttled), (2, 1));
    assert_eq!(stats.keys[&client_key_name("agent-b")].accepted, 1);
    sim.stop().await;

    // keyed per token instead: a refreshed token starts with a fresh quota
    let sim = Sim::start(Config {
        limit: 1,
        ..config(AuthConfig {
            limit_key: LimitKey::Token,
            ..two_clients()
        })
    })
    .await;
    let first = sim.bearer("agent-a", "secret-a").await;
    let second = sim.bearer("agent-a", "secret-a").await;
    assert_eq!(flow_status(&sim, &first).await, 200);
    assert_eq!(flow_status(&sim, &second).await, 200);
    assert_eq!(flow_status(&sim, &first).await, 429);
    let stats = sim.stats().await;
    assert_eq!(stats.keys[&key_name(Some(second.as_str()))].accepted, 1);
    sim.stop().await;
}

#[tokio::test]
async fn auth_off_accepts_anything_and_token_endpoint_refuses() {
    let sim = Sim::start(config(AuthConfig::default())).await;
    for token in [None, Some("Bearer whatever"), Some("anything")] {
        let resp = sim.get("/api/v2/flows/flow-1", token).await;
        assert_eq!(resp.status(), 200, "{token:?}");
    }
    let resp = sim
        .token_request("agent-a", "secret-a", "client_credentials")
        .await;
    assert_eq!(resp.status(), 401);
    let stats = sim.stats().await;
    assert_eq!(stats.accepted, 3);
    assert_eq!(stats.keys[&key_name(Some("Bearer whatever"))].accepted, 1);
    sim.stop().await;
}

#[tokio::test]
async fn clients_file_is_read_and_errors_stop_serve() {
    let dir = std::env::temp_dir().join(format!("flowsim-oauth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("clients");
    std::fs::write(&path, "# agents\nfile-client:file-secret\n").unwrap();
    let sim = Sim::start(config(AuthConfig {
        clients_file: Some(path.clone()),
        ..AuthConfig::default()
    }))
    .await;
    let token = sim.bearer("file-client", "file-secret").await;
    assert_eq!(sim.get("/api/v2/flows", Some(&token)).await.status(), 200);
    sim.stop().await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bad = config(AuthConfig {
        clients_file: Some(dir.join("absent")),
        ..AuthConfig::default()
    });
    let shutdown = tokio_util::sync::CancellationToken::new();
    let err = crescendo_flowsim::serve(listener, bad, shutdown)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    std::fs::remove_dir_all(&dir).unwrap();
}
