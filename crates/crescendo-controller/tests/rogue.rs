//! A rogue member of a run (the generated gRPC client, not the project's agent) sends
//! every forgery the guard knows: a flood of unknown step names, counters that do not
//! add up, a far-future sequence number, an interval outside the run, a message past
//! the size limit. Each is refused by reason, the real agents' figures equal flowsim's
//! own counts, and nothing the rogue said reaches the result.

use std::time::Duration;

use crescendo_controller::report::summarize;
use crescendo_controller::{Controller, RunRequest, demo};
use crescendo_proto::v1 as pb;
use pb::agent_message::Kind as Out;
use pb::controller_message::Kind as In;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const PLAN: &str = r#"
name = "rogue"
[target]
base_url = "{BASE_URL}"
timeout = "2s"
[[scenario.steps]]
name = "update"
method = "PUT"
path = "/api/v2/flows/flow-1"
body = '{"name": "x"}'
[load]
stages = [ { duration = "4s", target = 30 } ]
[backoff]
policy = "none"
[fleet]
on_agent_loss = "continue"
"#;

fn message(kind: Out) -> pb::AgentMessage {
    pb::AgentMessage { kind: Some(kind) }
}

/// A snapshot of `steps` (name, ok, requests) with empty histograms.
fn forged(run_id: &str, seq: u64, start_ms: u64, steps: &[(String, u64, u64)]) -> pb::AgentMessage {
    let steps = steps
        .iter()
        .map(|(name, ok, requests)| pb::StepSnapshot {
            step: name.clone(),
            counters: Some(pb::Counters {
                ok: *ok,
                requests: *requests,
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    message(Out::Snapshot(pb::Snapshot {
        run_id: run_id.into(),
        seq,
        start_ms,
        end_ms: start_ms + 1_000,
        steps,
        ..Default::default()
    }))
}

/// Attach as `rogue`, play along until the start, then send the forgeries.
async fn rogue(url: String) {
    let mut client = pb::agent_control_client::AgentControlClient::connect(url)
        .await
        .unwrap();
    let (tx, rx) = mpsc::channel(64);
    let hello = pb::Hello {
        agent_id: "rogue".into(),
        host: "nowhere".into(),
        ..Default::default()
    };
    tx.send(message(Out::Hello(hello))).await.unwrap();
    let mut inbound = client
        .attach(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let mut run_id = String::new();
    while let Ok(Some(m)) = inbound.message().await {
        match m.kind {
            Some(In::Assign(a)) => {
                run_id = a.run_id.clone();
                let ready = pb::Ready { run_id: a.run_id };
                tx.send(message(Out::Ready(ready))).await.unwrap();
            }
            Some(In::Start(_)) => break,
            _ => {}
        }
    }
    let flood: Vec<(String, u64, u64)> = (0..1_000).map(|i| (format!("x{i}"), 0, 0)).collect();
    let sends = [
        forged(&run_id, 1, 0, &flood),
        forged(
            &run_id,
            2,
            0,
            &[("update".into(), 1_000_000_000_000_000_000, 9_383)],
        ),
        forged(
            &run_id,
            1_000_000_000_000_000_000,
            0,
            &[("update".into(), 0, 0)],
        ),
        forged(
            &run_id,
            3,
            1_000_000_000_000_000,
            &[("update".into(), 0, 0)],
        ),
    ];
    for m in sends {
        tx.send(m).await.unwrap();
    }
    // Past the 4 MiB limit: the controller ends this stream.
    let huge = pb::StepSnapshot {
        step: "update".into(),
        latency: vec![0; 5 * 1024 * 1024],
        ..Default::default()
    };
    let oversized = message(Out::Snapshot(pb::Snapshot {
        run_id: run_id.clone(),
        seq: 4,
        steps: vec![huge],
        ..Default::default()
    }));
    let _ = tx.send(oversized).await;
    // Drain what the controller says until it hangs up.
    while let Ok(Some(_)) = inbound.message().await {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rogue_member_changes_nothing_it_is_not() {
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    let base_url = demo::start_flowsim(demo::flowsim_config(), &shutdown)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let controller = Controller::start(listener, shutdown.clone()).unwrap();
    for id in ["a", "b"] {
        demo::start_agent(&controller.url(), id, &shutdown);
    }
    let rogue = tokio::spawn(rogue(controller.url()));
    let text = PLAN.replace("{BASE_URL}", &base_url);
    let plan = crescendo_plan::parse(&text, "rogue.toml").unwrap();
    let mut request = RunRequest::new(plan, text, 3).unwrap();
    request.wait_for_agents = Duration::from_secs(20);
    let outcome = controller.run(request).await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(10), rogue).await;
    let summary = summarize(&outcome);

    let refused = &summary.rejected_messages;
    for reason in [
        "unknown-step",
        "inconsistent-counters",
        "seq-out-of-window",
        "outside-the-run",
    ] {
        assert!(
            refused.get(reason).is_some_and(|n| *n >= 1),
            "{reason}: {refused:?}"
        );
    }
    // Nothing the rogue said is in the result: only the plan's step, no forged second,
    // and its own line is empty.
    assert_eq!(summary.steps.keys().collect::<Vec<_>>(), ["update"]);
    let plan_s = outcome.plan.duration().as_secs() + 60;
    assert!(
        summary.timeline.iter().all(|i| i.t <= plan_s),
        "{:?}",
        summary.timeline
    );
    let rogue_line = summary.agents.iter().find(|a| a.id == "rogue").unwrap();
    assert_eq!(rogue_line.requests, 0);
    // The real agents' figures are exactly what flowsim saw.
    let stats: serde_json::Value = reqwest::get(format!("{base_url}/__sim/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let seen = stats["accepted"].as_u64().unwrap() + stats["throttled"].as_u64().unwrap();
    assert!(seen > 0);
    assert_eq!(summary.totals.requests, seen, "{stats}");
    assert_eq!(summary.totals.ok, stats["accepted"].as_u64().unwrap());
    // The oversized message ended the rogue's stream: it is lost, and the run says so.
    let lost: Vec<&str> = summary.lost_agents.iter().map(|l| l.id.as_str()).collect();
    assert_eq!(lost, ["rogue"], "{:?}", summary.outcome_reasons);
}
