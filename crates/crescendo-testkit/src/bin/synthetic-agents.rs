//! `synthetic-agents`: many light agents in one process for `scripts/bench-controller.sh`.
//! Each speaks the real agent protocol over its own gRPC connection (the generated
//! client, as the real agent does): hello, ready on assignment, then from the start one
//! snapshot a second of 3 steps (real HdrHistogram encodings with a realistic spread
//! of latencies) and a heartbeat, and `Finished` when the plan's duration is over. No
//! requests are sent anywhere.
//!
//!   synthetic-agents --controller http://127.0.0.1:PORT --agents 1000 --requests 20 --seconds 30
//!
//! Prints one JSON line: snapshots sent and acknowledged, the ack round trip (sent →
//! merged and acknowledged) p50/p99/max in ms over the steady part (after the first
//! 5 s), and the snapshot bytes per agent per second (per step).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use crescendo_controller::aggregate::bench::{EncodedSecond, STEPS};
use crescendo_proto::v1 as pb;
use hdrhistogram::Histogram;
use pb::agent_control_client::AgentControlClient;
use pb::{agent_message::Kind as Out, controller_message::Kind as In};
use prost::Message;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;

/// Set by the first agent told to start (the script waits for its line on stderr).
static STARTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[derive(Debug)]
struct Args {
    controller: String,
    agents: usize,
    requests: u64,
    seconds: u64,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        controller: String::new(),
        agents: 1000,
        requests: 20,
        seconds: 30,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--controller" => a.controller = value,
            "--agents" => a.agents = value.parse()?,
            "--requests" => a.requests = value.parse()?,
            "--seconds" => a.seconds = value.parse()?,
            _ => anyhow::bail!("unknown flag {flag}"),
        }
    }
    anyhow::ensure!(!a.controller.is_empty(), "--controller URL is required");
    Ok(a)
}

/// What every agent adds to.
#[derive(Debug)]
struct Tally {
    round_trip_us: Histogram<u64>,
    sent: u64,
    acked: u64,
    bytes: u64,
}

/// One snapshot message of agent `second`'s pre-encoded measurements.
fn snapshot(run_id: &str, seq: u64, second: &pb::Snapshot) -> pb::AgentMessage {
    let mut s = second.clone();
    s.run_id = run_id.to_owned();
    s.seq = seq;
    s.start_ms = (seq - 1) * 1000;
    s.end_ms = seq * 1000;
    pb::AgentMessage {
        kind: Some(Out::Snapshot(s)),
    }
}

fn encoded(agent: usize, requests: u64) -> pb::Snapshot {
    let second = EncodedSecond::new(&format!("synthetic-{agent}"), requests, agent as u64);
    pb::Snapshot {
        steps: second
            .steps()
            .map(|(step, c, latency, service_time)| pb::StepSnapshot {
                step: step.to_owned(),
                latency: latency.to_vec(),
                service_time: service_time.to_vec(),
                counters: Some(pb::Counters {
                    requests: c.requests,
                    ok: c.ok,
                    ..Default::default()
                }),
                statuses: [(200, c.ok)].into(),
                ..Default::default()
            })
            .collect(),
        offered: requests,
        ..Default::default()
    }
}

async fn agent(index: usize, args: Arc<Args>, tally: Arc<Mutex<Tally>>) -> anyhow::Result<()> {
    let id = format!("synthetic-{index}");
    let second = encoded(index, args.requests);
    let endpoint = tonic::transport::Endpoint::from_shared(args.controller.clone())?;
    // A thousand connects at once may overflow the listen backlog: retry, bounded.
    let mut attempts = 0;
    let channel = loop {
        match endpoint.connect().await {
            Ok(channel) => break channel,
            Err(e) if attempts >= 100 => return Err(e.into()),
            Err(_) => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let (tx, rx) = mpsc::channel(64);
    tx.send(pb::AgentMessage {
        kind: Some(Out::Hello(pb::Hello {
            agent_id: id.clone(),
            host: "synthetic".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            capacity: 1,
            ..Default::default()
        })),
    })
    .await?;
    let mut inbound = AgentControlClient::new(channel)
        .attach(ReceiverStream::new(rx))
        .await?
        .into_inner();
    let mut sent_at: HashMap<u64, Instant> = HashMap::new();
    let mut run_id = String::new();
    let mut start: Option<Instant> = None;
    let mut seq = 0;
    let mut finished = false;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            message = inbound.message() => {
                let Some(message) = message? else { return Ok(()) };
                match message.kind {
                    Some(In::Assign(a)) => {
                        run_id = a.run_id.clone();
                        tx.send(pb::AgentMessage { kind: Some(Out::Ready(pb::Ready { run_id: a.run_id })) }).await?;
                    }
                    Some(In::Start(s)) => {
                        if !STARTED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                            eprintln!("load started");
                        }
                        start = Some(Instant::now() + Duration::from_millis(s.delay_ms));
                        tick = tokio::time::interval_at(
                            Instant::now() + Duration::from_millis(s.delay_ms) + Duration::from_secs(1),
                            Duration::from_secs(1),
                        );
                    }
                    Some(In::Ack(a)) => {
                        if let Some(at) = sent_at.remove(&a.seq) {
                            let mut t = tally.lock().expect("tally");
                            t.acked += 1;
                            if a.seq > 5 {
                                let _ = t.round_trip_us.record(at.elapsed().as_micros() as u64);
                            }
                        }
                        if finished && sent_at.is_empty() {
                            tx.send(pb::AgentMessage { kind: Some(Out::Finished(pb::Finished {
                                run_id: run_id.clone(), last_seq: seq, ..Default::default()
                            })) }).await?;
                        }
                    }
                    Some(In::Stop(s)) if s.release => return Ok(()),
                    _ => {}
                }
            }
            _ = tick.tick() => {
                tx.send(pb::AgentMessage { kind: Some(Out::Heartbeat(pb::Heartbeat { run_id: run_id.clone(), in_flight: 0 })) }).await?;
                if start.is_none() || finished {
                    continue;
                }
                seq += 1;
                let message = snapshot(&run_id, seq, &second);
                let bytes = message.encoded_len() as u64;
                sent_at.insert(seq, Instant::now());
                tx.send(message).await?;
                {
                    let mut t = tally.lock().expect("tally");
                    t.sent += 1;
                    t.bytes += bytes;
                }
                if seq >= args.seconds {
                    finished = true;
                }
            }
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(args()?);
    let tally = Arc::new(Mutex::new(Tally {
        round_trip_us: Histogram::new(3)?,
        sent: 0,
        acked: 0,
        bytes: 0,
    }));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..args.agents {
        tasks.spawn(agent(i, args.clone(), tally.clone()));
    }
    let mut failed = 0;
    while let Some(done) = tasks.join_next().await {
        if let Ok(Err(e)) | Err(e) = done.map_err(anyhow::Error::from) {
            failed += 1;
            if failed <= 3 {
                eprintln!("agent failed: {e:#}");
            }
        }
    }
    let t = tally.lock().expect("tally");
    let ms = |q: f64| t.round_trip_us.value_at_quantile(q) as f64 / 1000.0;
    let per_agent_second = t.bytes as f64 / t.sent.max(1) as f64;
    println!(
        "{}",
        serde_json::json!({
            "agents": args.agents,
            "failed_agents": failed,
            "snapshots_sent": t.sent,
            "snapshots_acked": t.acked,
            "ack_round_trip_ms": {"p50": ms(0.5), "p99": ms(0.99), "max": ms(1.0)},
            "snapshot_bytes_per_agent_second": per_agent_second,
            "snapshot_bytes_per_step": per_agent_second / STEPS.len() as f64,
        })
    );
    Ok(())
}
