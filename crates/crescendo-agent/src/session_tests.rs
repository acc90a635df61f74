//! The session against a scripted controller on 127.0.0.1:0: streamed data rows
//! arrive before `Ready`, a garbage chunk fails the preparation, a shutdown flushes
//! the run's last snapshot and `Finished` before the agent ends its stream.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use crescendo_proto::v1 as pb;
use pb::agent_control_server::{AgentControl, AgentControlServer};
use pb::agent_message::Kind as Out;
use pb::controller_message::Kind as In;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use super::{AgentConfig, run};

type ToAgent = mpsc::Receiver<Result<pb::ControllerMessage, Status>>;

/// A controller the test drives by hand: a fixed number of streams (one per attach),
/// messages in both directions through channels.
#[derive(Debug)]
struct Scripted {
    to_agent: Mutex<VecDeque<ToAgent>>,
    from_agent: mpsc::Sender<pb::AgentMessage>,
}

#[tonic::async_trait]
impl AgentControl for Scripted {
    type AttachStream = ReceiverStream<Result<pb::ControllerMessage, Status>>;

    async fn attach(
        &self,
        request: Request<Streaming<pb::AgentMessage>>,
    ) -> Result<Response<Self::AttachStream>, Status> {
        let rx = self.to_agent.lock().unwrap().pop_front();
        let rx = rx.ok_or_else(|| Status::unavailable("no more streams"))?;
        let mut inbound = request.into_inner();
        let tx = self.from_agent.clone();
        tokio::spawn(async move {
            while let Ok(Some(m)) = inbound.message().await {
                if tx.send(m).await.is_err() {
                    return;
                }
            }
            // The agent ended its stream: a message without a kind marks it.
            let _ = tx.send(pb::AgentMessage { kind: None }).await;
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

struct Harness {
    /// One sender per stream; the front one is the current stream.
    to_agent: VecDeque<mpsc::Sender<Result<pb::ControllerMessage, Status>>>,
    from_agent: mpsc::Receiver<pb::AgentMessage>,
    agent: tokio::task::JoinHandle<Result<(), crate::AgentError>>,
    /// The agent's root token.
    shutdown: CancellationToken,
}

impl Harness {
    async fn start(agent_id: &str) -> Self {
        Self::with_streams(agent_id, 1).await
    }

    async fn with_streams(agent_id: &str, streams: usize) -> Self {
        let (to_agent, to_rx): (VecDeque<_>, VecDeque<_>) =
            (0..streams).map(|_| mpsc::channel(64)).unzip();
        let (from_tx, from_agent) = mpsc::channel(1024);
        let service = Scripted {
            to_agent: Mutex::new(to_rx),
            from_agent: from_tx,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(AgentControlServer::new(service))
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        let mut config = AgentConfig::new(url, agent_id);
        config.give_up_after = Some(Duration::from_secs(10));
        let shutdown = CancellationToken::new();
        let agent = tokio::spawn(run(config, shutdown.clone()));
        let mut harness = Self {
            to_agent,
            from_agent,
            agent,
            shutdown,
        };
        assert!(matches!(harness.next().await, Out::Hello(_)));
        harness
    }

    async fn send(&self, kind: In) {
        let message = pb::ControllerMessage { kind: Some(kind) };
        self.to_agent[0].send(Ok(message)).await.unwrap();
    }

    /// End the current stream (the agent reconnects on the next one).
    fn break_stream(&mut self) {
        self.to_agent.pop_front();
    }

    /// The agent's next message other than snapshots and heartbeats (bounded wait).
    async fn next(&mut self) -> Out {
        let wait = async {
            loop {
                let m = self.from_agent.recv().await.expect("agent stream open");
                match m.kind {
                    Some(Out::Snapshot(_) | Out::Heartbeat(_)) | None => {}
                    Some(kind) => return kind,
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(30), wait)
            .await
            .expect("the agent answers")
    }
}

fn assign(run_id: &str) -> pb::Assign {
    let plan = r#"name = "streamed"
[target]
base_url = "http://127.0.0.1:9"
[[scenario.steps]]
name = "get"
path = "/flows/{flowId}"
[data]
file = "flows.jsonl"
partition = "unique"
[load]
model = "closed"
stages = [{ duration = "30s", target = 1 }]
"#;
    pb::Assign {
        run_id: run_id.into(),
        plan_toml: plan.into(),
        share: Some(pb::Share {
            index: 0,
            count: 1,
            rate_fraction: 1.0,
            vus: 1,
            max_in_flight: 1,
        }),
        files: [("flows.jsonl".to_owned(), b"{\"flowId\":\"a\"}\n".to_vec())].into(),
        data_streamed: true,
    }
}

/// The agent's next message, snapshots and the end-of-stream marker (`None`)
/// included (bounded wait).
async fn raw(h: &mut Harness) -> Option<Out> {
    let m = tokio::time::timeout(Duration::from_secs(30), h.from_agent.recv())
        .await
        .expect("the agent says something")
        .expect("agent stream open");
    m.kind
}

fn chunk(run_id: &str, text: &str, rows: u64, last: bool) -> In {
    In::Data(pb::DataChunk {
        run_id: run_id.into(),
        rows_jsonl: text.as_bytes().to_vec(),
        rows,
        last,
    })
}

#[tokio::test]
async fn ready_waits_for_the_last_data_chunk_and_the_run_uses_the_rows() {
    let mut h = Harness::start("agent-stream").await;
    h.send(In::Assign(assign("run-s"))).await;
    h.send(chunk("run-s", "{\"flowId\":\"a\"}\n", 1, false))
        .await;
    // A second assignment while busy is answered at once: it proves that nothing
    // (no Ready) was sent for the first chunk before it.
    h.send(In::Assign(assign("run-other"))).await;
    match h.next().await {
        Out::Finished(f) => assert_eq!(f.run_id, "run-other"),
        other => panic!("expected the busy answer, got {other:?}"),
    }
    h.send(chunk(
        "run-s",
        "{\"flowId\":\"b\"}\n{\"flowId\":\"c\"}\n",
        2,
        true,
    ))
    .await;
    match h.next().await {
        Out::Ready(r) => assert_eq!(r.run_id, "run-s"),
        other => panic!("expected Ready, got {other:?}"),
    }
    h.send(In::Start(pb::Start {
        run_id: "run-s".into(),
        delay_ms: 0,
    }))
    .await;
    // Three rows, each once: the agent stops by itself (nothing listens on port 9,
    // so every request is a connect error, which is fine here).
    match h.next().await {
        Out::Finished(f) => assert_eq!((f.run_id.as_str(), f.error.as_str()), ("run-s", "")),
        other => panic!("expected Finished, got {other:?}"),
    }
    h.send(In::Stop(pb::Stop {
        run_id: String::new(),
        reason: "done".into(),
        release: true,
    }))
    .await;
    let ended = tokio::time::timeout(Duration::from_secs(10), h.agent).await;
    assert!(matches!(ended, Ok(Ok(Ok(())))), "released agent exits");
}

#[tokio::test]
async fn a_garbage_chunk_fails_the_preparation() {
    let mut h = Harness::start("agent-garbage").await;
    h.send(In::Assign(assign("run-g"))).await;
    h.send(chunk("run-g", "{\"flowId\": [1]}\n", 1, true)).await;
    match h.next().await {
        Out::Finished(f) => {
            assert_eq!(f.run_id, "run-g");
            assert!(
                f.error.contains("column flowId is not a string"),
                "{}",
                f.error
            );
        }
        other => panic!("expected Finished with an error, got {other:?}"),
    }
    assert!(!crate::spool::spool_path("run-g", "agent-garbage").exists());
    // The agent is idle again and takes the next assignment.
    h.send(In::Assign(assign("run-g2"))).await;
    h.send(chunk("run-g2", "{\"flowId\":\"a\"}\n", 1, true))
        .await;
    assert!(matches!(h.next().await, Out::Ready(_)));
}

#[tokio::test]
async fn a_stream_lost_while_rows_arrive_fails_the_preparation_after_the_reconnect() {
    let mut h = Harness::with_streams("agent-lost", 2).await;
    h.send(In::Assign(assign("run-l"))).await;
    h.send(chunk("run-l", "{\"flowId\":\"a\"}\n", 1, false))
        .await;
    // A barrier: the busy answer shows the chunk was taken before the stream breaks.
    h.send(In::Assign(assign("run-other"))).await;
    assert!(matches!(h.next().await, Out::Finished(_)));
    h.break_stream();
    match h.next().await {
        Out::Hello(hello) => assert_eq!(hello.resume_run_id, "", "nothing to resume"),
        other => panic!("expected a new Hello, got {other:?}"),
    }
    match h.next().await {
        Out::Finished(f) => {
            assert_eq!(f.run_id, "run-l");
            assert!(f.error.contains("data rows interrupted"), "{}", f.error);
        }
        other => panic!("expected Finished, got {other:?}"),
    }
    assert!(!crate::spool::spool_path("run-l", "agent-lost").exists());
}

/// An open-model run of 20 requests a second for 30 s against a closed port.
fn long_assign(run_id: &str) -> pb::Assign {
    let plan = r#"name = "long"
[target]
base_url = "http://127.0.0.1:9"
timeout = "2s"
[[scenario.steps]]
name = "get"
path = "/"
[load]
stages = [{ duration = "30s", target = 20 }]
"#;
    pb::Assign {
        plan_toml: plan.into(),
        files: Default::default(),
        data_streamed: false,
        ..assign(run_id)
    }
}

#[tokio::test]
async fn a_shutdown_flushes_the_last_snapshot_and_finished_then_ends_the_stream() {
    let mut h = Harness::start("agent-shutdown").await;
    h.send(In::Assign(long_assign("run-x"))).await;
    assert!(matches!(h.next().await, Out::Ready(_)));
    h.send(In::Start(pb::Start {
        run_id: "run-x".into(),
        delay_ms: 0,
    }))
    .await;
    // The run is under way once its first snapshot arrives; it stays unacknowledged.
    while !matches!(raw(&mut h).await, Some(Out::Snapshot(_))) {}
    h.shutdown.cancel();
    let (mut seqs, mut last) = (vec![1], false);
    let finished = loop {
        match raw(&mut h).await {
            Some(Out::Snapshot(s)) => {
                seqs.push(s.seq);
                last |= s.last;
            }
            Some(Out::Finished(f)) => break f,
            None => panic!("the stream ended before Finished"),
            Some(_) => {}
        }
    };
    assert!(last, "the last snapshot is marked");
    assert_eq!(finished.error, "", "a stopped run is no failure");
    assert_eq!(finished.last_seq, *seqs.last().unwrap());
    // Until every snapshot is acknowledged the agent keeps its stream.
    for &seq in &seqs[..seqs.len() - 1] {
        h.send(In::Ack(pb::Ack {
            run_id: "run-x".into(),
            seq,
        }))
        .await;
    }
    let early = tokio::time::timeout(Duration::from_millis(300), raw(&mut h)).await;
    assert!(early.is_err(), "the stream stays open: {early:?}");
    h.send(In::Ack(pb::Ack {
        run_id: "run-x".into(),
        seq: finished.last_seq,
    }))
    .await;
    assert_eq!(raw(&mut h).await, None, "the agent ends its stream");
    h.break_stream();
    let ended = tokio::time::timeout(Duration::from_secs(5), h.agent).await;
    assert!(matches!(ended, Ok(Ok(Ok(())))), "{ended:?}");
}

#[tokio::test]
async fn a_shutdown_while_idle_returns_at_once_and_before_the_start_says_why() {
    let h = Harness::start("agent-idle").await;
    h.shutdown.cancel();
    let ended = tokio::time::timeout(Duration::from_secs(1), h.agent).await;
    assert!(matches!(ended, Ok(Ok(Ok(())))), "{ended:?}");

    let mut h = Harness::start("agent-prepared").await;
    h.send(In::Assign(long_assign("run-p"))).await;
    assert!(matches!(h.next().await, Out::Ready(_)));
    h.shutdown.cancel();
    match h.next().await {
        Out::Finished(f) => assert_eq!(f.error, "agent shut down before the start"),
        other => panic!("expected Finished, got {other:?}"),
    }
    assert_eq!(raw(&mut h).await, None, "the agent ends its stream");
    h.break_stream();
    let ended = tokio::time::timeout(Duration::from_secs(5), h.agent).await;
    assert!(matches!(ended, Ok(Ok(Ok(())))), "{ended:?}");
}
