//! Only your agents and your operators, from the outside: a controller started
//! through the library on 127.0.0.1:0, agents in-process (the library the agent binary
//! runs) and raw gRPC clients (the generated client in crescendo-proto), all over real
//! sockets; certificates made at test time (rcgen, through `crescendo_controller::certs`).
//!
//! - Mutual TLS: agents with the CA's certificates attach and run, and their totals
//!   equal flowsim's counts; a certificate from another CA never attaches; an id the
//!   certificate does not name is refused (`PermissionDenied`).
//! - The enrolment token: a raw `Attach` without it or with a wrong one is refused
//!   (`Unauthenticated`) before any message comes back; an agent with a wrong one stops
//!   with `Refused`; the agents with the right one still count exactly.
//! - The admin token: `status` and `cancel` without it are `Unauthenticated`.
//! - No hijack: a raw `Hello` with a live agent's id mid-run is refused
//!   (`AlreadyExists`) and the agent's figures still equal flowsim's.

use std::time::Duration;

use crescendo_agent::AgentConfig;
use crescendo_agent::transport::{ClientTls, Token};
use crescendo_controller::certs::{Ca, Role};
use crescendo_controller::report::Summary;
use crescendo_controller::security::{Security, ServerTls};
use crescendo_controller::{Controller, ControllerSettings, RunRequest, demo};
use crescendo_proto::v1 as pb;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const YEAR: Duration = Duration::from_secs(365 * 86_400);

/// Three seconds of updates at 20 a second; each agent's requests carry its id as the
/// token, so flowsim counts them per agent.
const PLAN: &str = r#"
name = "security"
[target]
base_url = "{{BASE_URL}}"
[[scenario.steps]]
name = "update"
method = "PUT"
path = "/api/v2/flows/{flowId}"
headers = { "Content-Type" = "application/json", "Authorization" = "Bearer {agent}" }
body = '{"name": "flow {flowId}"}'
expect = [200]
[load]
stages = [ { duration = "3s", target = 20 } ]
[backoff]
policy = "none"
[data]
sequence = { var = "flowId", format = "flow-{n}", count = 50 }
"#;

/// flowsim and a controller with `security`, on loopback.
struct Rig {
    flowsim: String,
    controller: Controller,
    shutdown: CancellationToken,
    http: reqwest::Client,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Rig {
    async fn start(security: Security) -> Self {
        let shutdown = CancellationToken::new();
        let sim = crescendo_flowsim::Config {
            auto_create: true,
            limit: 0,
            ..Default::default()
        };
        let flowsim = demo::start_flowsim(sim, &shutdown).await.unwrap();
        let settings = ControllerSettings {
            security,
            ..ControllerSettings::default()
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let controller = Controller::start_with(listener, shutdown.clone(), settings).unwrap();
        Self {
            flowsim,
            controller,
            shutdown,
            http: reqwest::Client::new(),
        }
    }

    /// An in-process agent; its task's result says why it stopped.
    fn agent(
        &self,
        config: AgentConfig,
    ) -> tokio::task::JoinHandle<Result<(), crescendo_agent::AgentError>> {
        tokio::spawn(crescendo_agent::run(config, self.shutdown.clone()))
    }

    /// Wait (bounded) until exactly these agents are attached.
    async fn attached(&self, ids: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut now = self.controller.attached_agents().await.unwrap();
            now.sort();
            if now == ids {
                return;
            }
            assert!(Instant::now() < deadline, "attached {now:?}, want {ids:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn run(&self, agents: u32) -> Summary {
        let text = PLAN.replace("{{BASE_URL}}", &self.flowsim);
        let plan = crescendo_plan::parse(&text, "security plan").unwrap();
        let mut request = RunRequest::new(plan, text, agents).unwrap();
        request.wait_for_agents = Duration::from_secs(20);
        let outcome = self.controller.run(request).await.unwrap();
        crescendo_controller::report::summarize(&outcome)
    }

    async fn sim_stats(&self) -> serde_json::Value {
        let url = format!("{}/__sim/stats", self.flowsim);
        let response = self.http.get(url).send().await.unwrap();
        response.json().await.unwrap()
    }

    /// Every agent's requests, and the total, equal what flowsim saw.
    async fn assert_counts_exact(&self, summary: &Summary) {
        let stats = self.sim_stats().await;
        let seen = |v: &serde_json::Value| {
            v["accepted"].as_u64().unwrap_or(0) + v["throttled"].as_u64().unwrap_or(0)
        };
        assert!(summary.totals.requests > 0, "{stats}");
        assert_eq!(summary.totals.requests, seen(&stats), "{stats}");
        for agent in &summary.agents {
            let key = crescendo_flowsim::key_name(Some(&format!("Bearer {}", agent.id)));
            assert_eq!(
                agent.requests,
                seen(&stats["keys"][&key]),
                "{}: {stats}",
                agent.id
            );
        }
    }
}

/// A CA, and a controller certificate for 127.0.0.1 from it.
fn pki() -> (Ca, ServerTls) {
    let ca = Ca::new("test CA", YEAR).unwrap();
    let server = ca.issue_server(&["127.0.0.1".into()], YEAR).unwrap();
    let tls = ServerTls::from_pem(
        server.cert_pem.as_bytes(),
        server.key_pem.as_bytes(),
        Some(ca.cert_pem().as_bytes()),
    )
    .unwrap();
    (ca, tls)
}

/// An agent config with a client certificate for `cn` from `issuer`, trusting `ca`.
fn tls_agent(url: &str, id: &str, ca: &Ca, issuer: &Ca, cn: &str) -> AgentConfig {
    let mut config = AgentConfig::new(url, id);
    config.tls = Some(client_tls(ca, issuer, cn, Role::Agent));
    config
}

/// Client TLS with a `role` certificate for `cn` from `issuer`, trusting `ca`.
fn client_tls(ca: &Ca, issuer: &Ca, cn: &str, role: Role) -> ClientTls {
    let cert = issuer.issue_client(cn, role, YEAR).unwrap();
    let identity = (cert.cert_pem.into_bytes(), cert.key_pem.into_bytes());
    ClientTls::from_pem(ca.cert_pem(), Some(identity))
}

/// The admin service's `status` called with `tls`: the refusal's code, if refused.
async fn status_with(url: &str, tls: &ClientTls) -> Option<tonic::Code> {
    let channel = crescendo_agent::transport::endpoint(url, Some(tls))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = pb::admin_client::AdminClient::new(channel);
    client
        .status(pb::StatusRequest {})
        .await
        .err()
        .map(|s| s.code())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_admits_the_cas_agents_only_and_they_count_exactly() {
    let (ca, tls) = pki();
    let rig = Rig::start(Security {
        tls: Some(tls),
        ..Security::default()
    })
    .await;
    let url = rig.controller.url();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let other_ca = Ca::new("someone else's CA", YEAR).unwrap();
    // A certificate from another CA: the handshake is refused, again and again.
    let mut stranger = tls_agent(&url, "stranger", &ca, &other_ca, "stranger");
    stranger.give_up_after = Some(Duration::from_secs(2));
    let stranger = rig.agent(stranger);
    // The CA's certificate, but for another name: refused for good.
    let impostor = rig.agent(tls_agent(&url, "tls-2", &ca, &ca, "tls-1"));
    rig.agent(tls_agent(&url, "tls-1", &ca, &ca, "tls-1"));
    rig.agent(tls_agent(&url, "tls-3", &ca, &ca, "tls-3"));
    rig.attached(&["tls-1", "tls-3"]).await;

    let refused = tokio::time::timeout(Duration::from_secs(10), impostor)
        .await
        .expect("the impostor stops")
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("refused agent tls-2") && refused.contains("tls-1"),
        "{refused}"
    );
    let stranger = tokio::time::timeout(Duration::from_secs(10), stranger)
        .await
        .expect("the stranger gives up")
        .unwrap();
    assert!(stranger.is_err(), "never attached: {stranger:?}");

    // Roles: an operator's certificate cannot attach, an agent's cannot operate.
    let mut operator_agent = AgentConfig::new(&url, "alice");
    operator_agent.tls = Some(client_tls(&ca, &ca, "alice", Role::Operator));
    let refused = tokio::time::timeout(Duration::from_secs(10), rig.agent(operator_agent))
        .await
        .expect("the operator's agent stops")
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(refused.contains("operator's certificate"), "{refused}");
    let agent_tls = client_tls(&ca, &ca, "tls-1", Role::Agent);
    assert_eq!(
        status_with(&url, &agent_tls).await,
        Some(tonic::Code::PermissionDenied)
    );
    let operator_tls = client_tls(&ca, &ca, "alice", Role::Operator);
    assert_eq!(status_with(&url, &operator_tls).await, None);

    let summary = rig.run(2).await;
    let mut ids: Vec<&str> = summary.agents.iter().map(|a| a.id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["tls-1", "tls-3"]);
    rig.assert_counts_exact(&summary).await;
}

/// A raw `Attach` (the generated client) that sends `Hello` as `id`, with `token`
/// when given; the controller's answer to the call.
async fn raw_attach(
    url: &str,
    id: &str,
    token: Option<&str>,
) -> Result<tonic::Streaming<pb::ControllerMessage>, tonic::Status> {
    let mut client = pb::agent_control_client::AgentControlClient::connect(url.to_owned())
        .await
        .unwrap();
    let hello = pb::AgentMessage {
        kind: Some(pb::agent_message::Kind::Hello(pb::Hello {
            agent_id: id.into(),
            host: "elsewhere".into(),
            version: "0".into(),
            capacity: 1,
            resume_run_id: String::new(),
            labels: Default::default(),
        })),
    };
    // The stream stays open (the task keeps it) so the controller judges the Hello.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(hello).await.unwrap();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(tx);
    });
    let mut request = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    if let Some(token) = token {
        Token::new(token).unwrap().authorize(&mut request).unwrap();
    }
    client
        .attach(request)
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_enrolment_token_keeps_strangers_out_and_the_fleet_counts_exactly() {
    let rig = Rig::start(Security {
        enrol_token: Token::new("enrol-right"),
        ..Security::default()
    })
    .await;
    let url = rig.controller.url();
    for token in [None, Some("enrol-wrong")] {
        let status = raw_attach(&url, "intruder", token).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    }
    let mut wrong = AgentConfig::new(&url, "wrong-token");
    wrong.enrol_token = Token::new("enrol-wrong");
    let wrong = rig.agent(wrong);
    for id in ["enrolled-1", "enrolled-2"] {
        let mut config = AgentConfig::new(&url, id);
        config.enrol_token = Token::new("enrol-right");
        rig.agent(config);
    }
    rig.attached(&["enrolled-1", "enrolled-2"]).await;
    let wrong = tokio::time::timeout(Duration::from_secs(10), wrong)
        .await
        .expect("the agent with a wrong token stops")
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(wrong.contains("wrong enrolment token"), "{wrong}");
    assert!(
        !wrong.contains("enrol-wrong"),
        "the token never shows: {wrong}"
    );

    let summary = rig.run(2).await;
    assert_eq!(summary.agents.len(), 2);
    rig.assert_counts_exact(&summary).await;
}

/// A request carrying `token` when given.
fn with<T>(token: Option<&str>, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        Token::new(token).unwrap().authorize(&mut request).unwrap();
    }
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_cancel_want_the_admin_token() {
    let rig = Rig::start(Security {
        admin_token: Token::new("admin-right"),
        ..Security::default()
    })
    .await;
    let mut client = pb::admin_client::AdminClient::connect(rig.controller.url())
        .await
        .unwrap();
    for token in [None, Some("admin-wrong")] {
        let status = client
            .status(with(token, pb::StatusRequest {}))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        let cancel = pb::CancelRequest {
            reason: "no".into(),
        };
        let status = client.cancel(with(token, cancel)).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
    }
    let reply = client
        .status(with(Some("admin-right"), pb::StatusRequest {}))
        .await
        .unwrap();
    assert_eq!(reply.into_inner().state, "idle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hello_with_a_live_agents_id_is_refused_and_its_figures_are_untouched() {
    let rig = Rig::start(Security::default()).await;
    let url = rig.controller.url();
    rig.agent(AgentConfig::new(&url, "victim"));
    rig.attached(&["victim"]).await;
    let hijack = async {
        // Mid-run: flowsim has seen the victim's load.
        let key = crescendo_flowsim::key_name(Some("Bearer victim"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while rig.sim_stats().await["keys"][&key]["accepted"]
            .as_u64()
            .unwrap_or(0)
            < 10
        {
            assert!(Instant::now() < deadline, "the run did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        raw_attach(&url, "victim", None).await
    };
    let (summary, hijack) = tokio::join!(rig.run(1), hijack);
    let status = hijack.unwrap_err();
    assert_eq!(status.code(), tonic::Code::AlreadyExists, "{status:?}");
    assert!(status.message().contains("victim"), "{status:?}");
    assert_eq!(summary.agents.len(), 1);
    assert!(summary.lost_agents.is_empty(), "{:?}", summary.lost_agents);
    rig.assert_counts_exact(&summary).await;
    rig.attached(&["victim"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_streams_id_is_free_again_past_the_heartbeat_timeout() {
    let rig = Rig::start(Security::default()).await;
    let url = rig.controller.url();
    // Says Hello and then nothing: no heartbeat.
    let mut silent = raw_attach(&url, "ghost", None).await.unwrap();
    assert!(matches!(
        silent.message().await.unwrap().and_then(|m| m.kind),
        Some(pb::controller_message::Kind::Welcome(_))
    ));
    let status = raw_attach(&url, "ghost", None).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::AlreadyExists);
    // Past the timeout (3 s) the stream is proved dead and the id may attach again.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut again = loop {
        match raw_attach(&url, "ghost", None).await {
            Ok(stream) => break stream,
            Err(status) => assert_eq!(status.code(), tonic::Code::AlreadyExists),
        }
        assert!(
            Instant::now() < deadline,
            "the silent stream still holds the id"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(matches!(
        again.message().await.unwrap().and_then(|m| m.kind),
        Some(pb::controller_message::Kind::Welcome(_))
    ));
}
