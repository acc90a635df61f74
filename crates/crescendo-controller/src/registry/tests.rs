//! The registry's unit tests: ids and their streams' liveness.
use std::time::Duration;

use super::*;

/// Attach `id` on a new stream; the registry's answer, and the stream's life.
async fn attach(
    registry: &mut Registry,
    id: &str,
    conn: u64,
) -> (
    Result<(), AttachRefused>,
    StreamLife,
    mpsc::Receiver<crate::messages::ToAgent>,
) {
    let (tx, rx) = mpsc::channel(8);
    let life = StreamLife::new();
    let (reply, answer) = oneshot::channel();
    let hello = Hello {
        agent_id: id.into(),
        ..Hello::default()
    };
    let event = AgentEvent::Attached {
        hello,
        conn,
        tx,
        life: life.clone(),
        reply,
    };
    registry.observe(event).await;
    (answer.await.unwrap(), life, rx)
}

#[tokio::test(start_paused = true)]
async fn a_live_agents_id_is_refused_and_taken_over_only_once_its_stream_is_dead() {
    let timeout = Duration::from_secs(3);
    let mut registry = Registry::new(CancellationToken::new(), TaskTracker::new(), timeout);
    let (first, old, _old_rx) = attach(&mut registry, "agent-1", 1).await;
    assert!(first.is_ok());
    // Heard from a second ago: a second Hello with the id is refused.
    tokio::time::advance(Duration::from_secs(2)).await;
    old.heard();
    tokio::time::advance(Duration::from_secs(1)).await;
    let (hijack, _, _) = attach(&mut registry, "agent-1", 2).await;
    let refused = hijack.unwrap_err().to_string();
    assert!(
        refused.contains("agent-1") && refused.contains("live"),
        "{refused}"
    );
    assert!(!old.replaced().is_cancelled());
    assert_eq!(registry.agents["agent-1"].conn, 1);
    // Silent past the timeout: proved dead, so the new stream takes over and the
    // old one is closed.
    tokio::time::advance(Duration::from_secs(3)).await;
    let (takeover, _, _) = attach(&mut registry, "agent-1", 3).await;
    assert!(takeover.is_ok());
    assert!(old.replaced().is_cancelled(), "the old stream is closed");
    assert_eq!(registry.agents["agent-1"].conn, 3);
    // Another id is not affected; an ended stream frees its id at once.
    let (other, other_life, _) = attach(&mut registry, "agent-2", 4).await;
    assert!(other.is_ok());
    other_life.ended().cancel();
    assert!(attach(&mut registry, "agent-2", 5).await.0.is_ok());
}
