//! The agent registry: the one task that knows every attached agent, outlives runs,
//! and lends agents to runs.
//!
//! The gRPC edge reports streams opening, messages and streams closing
//! ([`AgentEvent`]); [`crate::Controller`] and the admin service send [`Command`]s. A
//! run request waits in a queue until enough idle agents are attached, then gets its
//! own actor (`run::actor`) with those agents' streams; from then on the registry
//! routes those agents' messages to the run's inbox, and takes the agents back when
//! the run tells it it ended. Runs on disjoint agents may go at once.
//!
//! An id stays with its stream while that stream is alive (`liveness`): a second
//! `Hello` with the id is refused, and takes the id over only once the old stream is
//! proved dead (silent past the heartbeat timeout), which is then closed.

mod orphans;

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crescendo_plan::labels::{self, Labels};

use crate::error::ControllerError;
use crate::liveness::{AttachRefused, StreamLife};
use crate::messages::{AgentEvent, AgentTx, AgentView, CancelView, Hello, RunView, StatusView};
use crate::progress::ProgressMode;
use crate::run::actor::{Crew, RunInput, RunStart, run_actor, sleep_until_or_never};
use crate::run::request::{RunOutcome, RunRequest, StopCause};
use crate::run::state::{RunNews, Seen};
use orphans::{drain_orphan, stop_orphan};

/// Room in a run's inbox: agent messages wait here while the run merges.
const RUN_INBOX: usize = 4096;

/// Requests to the registry (from [`crate::Controller`] and the admin service).
#[derive(Debug)]
pub(crate) enum Command {
    Run {
        request: Box<RunRequest>,
        reply: oneshot::Sender<Result<RunOutcome, ControllerError>>,
    },
    Status {
        reply: oneshot::Sender<StatusView>,
    },
    /// Stop what is waiting and every run in progress (or only the run `only` names,
    /// waiting or in progress); `cause` says whether someone cancelled it or a signal
    /// interrupted it.
    Cancel {
        only: Option<String>,
        reason: String,
        cause: StopCause,
        reply: oneshot::Sender<CancelView>,
    },
}

/// One known agent: attached, or away while it is part of a run.
#[derive(Debug)]
struct Known {
    hello: Hello,
    conn: u64,
    /// Its stream's liveness: an id is not taken over while its stream is alive.
    life: StreamLife,
    /// `None` while away (kept only while a run holds it).
    tx: Option<AgentTx>,
    /// The run it is lent to.
    run: Option<String>,
    /// A run it is still part of that this registry does not know (a controller
    /// restarted under it): told to stop, it is not idle until it says `Finished`.
    orphan: Option<String>,
}

/// A run request waiting for agents.
#[derive(Debug)]
struct Waiting {
    request: Box<RunRequest>,
    reply: oneshot::Sender<Result<RunOutcome, ControllerError>>,
    deadline: Instant,
    /// The idle count last shown and when, so progress prints changes and a reminder
    /// every [`WAITING_REMINDER`].
    shown: Option<(usize, Instant)>,
}

impl Waiting {
    /// When the next reminder is due, if it has been shown at all.
    fn reminder_at(&self) -> Option<Instant> {
        self.shown.map(|(_, at)| at + WAITING_REMINDER)
    }
}

/// How often a run still waiting for agents says who is there.
const WAITING_REMINDER: Duration = Duration::from_secs(5);

/// Agents named in a waiting line; more are counted.
const NAMES_SHOWN: usize = 8;

/// Say which matching agents a waiting run has and how many are missing, when that
/// changed and every [`WAITING_REMINDER`].
fn show_waiting(w: &mut Waiting, matching: &[String]) {
    let idle = matching.len();
    w.request.live.waiting(idle);
    let now = Instant::now();
    let due = w
        .shown
        .is_none_or(|(shown, at)| shown != idle || now >= at + WAITING_REMINDER);
    if matches!(w.request.progress, ProgressMode::Plain | ProgressMode::Bar) && due {
        w.shown = Some((idle, now));
        let want = w.request.agents();
        let mut names = matching
            .iter()
            .take(NAMES_SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if idle > NAMES_SHOWN {
            names.push_str(&format!(", … {} more", idle - NAMES_SHOWN));
        }
        let attached = if names.is_empty() {
            String::new()
        } else {
            format!(" ({names})")
        };
        println!(
            "waiting for agents: {idle}/{want} attached{attached}; {} missing",
            want.saturating_sub(idle)
        );
    }
}

/// The registry task's state.
#[derive(Debug)]
pub(crate) struct Registry {
    agents: BTreeMap<String, Known>,
    waiting: VecDeque<Waiting>,
    runs: BTreeMap<String, mpsc::Sender<RunInput>>,
    news_tx: mpsc::Sender<RunNews>,
    news: mpsc::Receiver<RunNews>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    /// A stream heard from within this long is alive: its id is not taken over.
    heartbeat_timeout: Duration,
}

impl Registry {
    pub(crate) fn new(
        shutdown: CancellationToken,
        tracker: TaskTracker,
        heartbeat_timeout: Duration,
    ) -> Self {
        let (news_tx, news) = mpsc::channel(64);
        Self {
            agents: BTreeMap::new(),
            waiting: VecDeque::new(),
            runs: BTreeMap::new(),
            news_tx,
            news,
            shutdown,
            tracker,
            heartbeat_timeout,
        }
    }

    /// Serve until shut down and every run has ended.
    pub(crate) async fn serve(
        mut self,
        mut events: mpsc::Receiver<AgentEvent>,
        mut commands: mpsc::Receiver<Command>,
    ) {
        loop {
            let next_deadline = self
                .waiting
                .iter()
                .flat_map(|w| [Some(w.deadline), w.reminder_at()])
                .flatten()
                .min();
            tokio::select! {
                _ = self.shutdown.cancelled(), if !self.waiting.is_empty() => {
                    for w in self.waiting.drain(..) {
                        let _ = w.reply.send(Err(ControllerError::Cancelled { phase: "while waiting for agents: the controller is shutting down" }));
                    }
                }
                _ = self.shutdown.cancelled(), if self.runs.is_empty() => break,
                _ = sleep_until_or_never(next_deadline) => self.expire_waiting(),
                Some(news) = self.news.recv() => self.on_news(news),
                Some(event) = events.recv() => self.observe(event).await,
                Some(command) = commands.recv() => self.on_command(command),
                else => break,
            }
            self.start_runs();
        }
    }

    fn idle(&self) -> impl Iterator<Item = (&String, &Known)> {
        self.agents
            .iter()
            .filter(|(_, k)| k.run.is_none() && k.orphan.is_none() && k.tx.is_some())
    }

    /// Idle agents that `selector` picks, in id order.
    fn matching(&self, selector: &Labels) -> Vec<String> {
        self.idle()
            .filter(|(_, k)| labels::matches(selector, &k.hello.labels))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Start every waiting run whose agents are there, oldest first. A run that cannot
    /// start does not hold up a later one whose agents are idle (runs on disjoint
    /// agents go at once). Nothing is reserved: while an older run waits for more
    /// agents than are idle, a younger run that fits may take them, so a big run on a
    /// busy pool can reach its deadline (`not-started`, with the reason).
    fn start_runs(&mut self) {
        let mut kept = VecDeque::with_capacity(self.waiting.len());
        while let Some(mut w) = self.waiting.pop_front() {
            let matching = self.matching(&w.request.selector);
            if matching.len() >= w.request.agents() {
                self.launch(w, matching);
            } else {
                show_waiting(&mut w, &matching);
                kept.push_back(w);
            }
        }
        self.waiting = kept;
    }

    fn launch(&mut self, w: Waiting, matching: Vec<String>) {
        let run_id = w
            .request
            .id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()[..12].to_owned());
        let want = w.request.agents();
        let mut crew: Crew = Vec::with_capacity(want);
        for id in matching.into_iter().take(want) {
            let known = self.agents.get_mut(&id).expect("an idle agent");
            known.run = Some(run_id.clone());
            let tx = known.tx.clone().expect("idle agents are attached");
            crew.push((id, known.hello.host.clone(), tx));
        }
        let (inbox_tx, inbox) = mpsc::channel(RUN_INBOX);
        self.runs.insert(run_id.clone(), inbox_tx);
        tracing::info!(run_id = %run_id, agents = want, "run starts");
        self.tracker.spawn(run_actor(RunStart {
            run_id,
            request: *w.request,
            crew,
            inbox,
            news: self.news_tx.clone(),
            reply: w.reply,
            shutdown: self.shutdown.clone(),
        }));
    }

    fn expire_waiting(&mut self) {
        let now = Instant::now();
        let (expired, kept): (Vec<_>, Vec<_>) =
            self.waiting.drain(..).partition(|w| w.deadline <= now);
        self.waiting = kept.into();
        for w in expired {
            let error = self.agents_missing(&w.request);
            let _ = w.reply.send(Err(error));
        }
    }

    /// Why `request` could not get its agents: who was idle and matching, and what
    /// the other attached agents were doing.
    fn agents_missing(&self, request: &RunRequest) -> ControllerError {
        let want = request.agents();
        let selector = &request.selector;
        let matching = self.matching(selector);
        let others: Vec<String> = self
            .agents
            .iter()
            .filter(|(id, k)| k.tx.is_some() && !matching.contains(id))
            .map(|(id, k)| match &k.run {
                Some(run) => format!("{id} (busy: run {run})"),
                None => format!("{id} ({})", labels::format_labels(&k.hello.labels)),
            })
            .collect();
        ControllerError::AgentsMissing {
            waited: request.wait_for_agents,
            want,
            matching: if selector.is_empty() {
                String::new()
            } else {
                format!(" matching {}", labels::format_labels(selector))
            },
            have: matching.len(),
            missing: want.saturating_sub(matching.len()),
            attached: matching.join(", "),
            others: if others.is_empty() {
                String::new()
            } else {
                format!("; also attached: {}", others.join(", "))
            },
        }
    }

    fn on_news(&mut self, news: RunNews) {
        match news {
            RunNews::Ended { run_id } => {
                self.runs.remove(&run_id);
                self.agents.retain(|_, k| {
                    if k.run.as_deref() == Some(run_id.as_str()) {
                        k.run = None;
                    }
                    // An agent that was away when its run ended is forgotten.
                    k.tx.is_some()
                });
            }
            RunNews::Disconnect { agent } => {
                // Dropping its sender ends the stream; a reconnect starts afresh, idle.
                self.agents.remove(&agent);
            }
        }
    }

    /// Keep the registry current and route run members' news to their run.
    async fn observe(&mut self, event: AgentEvent) {
        match event {
            AgentEvent::Attached {
                hello,
                conn,
                tx,
                life,
                reply,
            } => {
                let agent = hello.agent_id.clone();
                // No hijack: an id stays with its stream while that one is alive.
                if let Some(old) = self.agents.get(&agent)
                    && old.tx.is_some()
                    && old.life.is_live(self.heartbeat_timeout)
                {
                    let _ = reply.send(Err(AttachRefused::InUse {
                        agent,
                        silent: old.life.silent_for(),
                        timeout: self.heartbeat_timeout,
                    }));
                    return;
                }
                if reply.send(Ok(())).is_err() {
                    return; // the stream went away while waiting for the answer
                }
                tracing::info!(agent = %agent, host = %hello.host, "agent attached");
                let resume_run_id = hello.resume_run_id.clone();
                // A reconnect replaces the old stream, proved dead: closing it stops an
                // old process that still reads it, and dropping its sender ends it.
                let old = self.agents.remove(&agent);
                if let Some(old) = &old {
                    old.life.replace();
                }
                let run = old.and_then(|k| k.run);
                let orphan = (run.is_none() && !resume_run_id.is_empty())
                    .then(|| stop_orphan(&agent, &resume_run_id, &tx));
                if let Some(run_id) = &run {
                    let seen = Seen::Attached {
                        resume_run_id,
                        tx: tx.clone(),
                    };
                    self.route(run_id, agent.clone(), seen).await;
                }
                let known = Known {
                    hello,
                    conn,
                    life,
                    tx: Some(tx),
                    run,
                    orphan,
                };
                self.agents.insert(agent, known);
            }
            AgentEvent::Message {
                agent,
                conn,
                message,
            } => {
                let Some(known) = self.agents.get_mut(&agent).filter(|k| k.conn == conn) else {
                    return;
                };
                if let Some(run_id) = known.run.clone() {
                    self.route(&run_id, agent, Seen::Message(message)).await;
                } else if known.orphan.is_some() && known.orphan.as_deref() == message.run_id() {
                    drain_orphan(known, &agent, message);
                }
            }
            AgentEvent::Detached { agent, conn } => {
                let Some(known) = self.agents.get_mut(&agent).filter(|k| k.conn == conn) else {
                    return;
                };
                tracing::info!(agent = %agent, "agent detached");
                match known.run.clone() {
                    Some(run_id) => {
                        known.tx = None;
                        self.route(&run_id, agent, Seen::Detached).await;
                    }
                    None => {
                        self.agents.remove(&agent);
                    }
                }
            }
        }
    }

    /// Hand a member's news to its run. Waits for room: a run merging a burst slows
    /// the registry down rather than losing a snapshot.
    async fn route(&self, run_id: &str, agent: String, seen: Seen) {
        if let Some(inbox) = self.runs.get(run_id) {
            let _ = inbox.send(RunInput::Agent { agent, seen }).await;
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Run { request, reply } => {
                if self.shutdown.is_cancelled() {
                    let _ = reply.send(Err(ControllerError::Gone));
                    return;
                }
                let deadline = Instant::now() + request.wait_for_agents;
                self.waiting.push_back(Waiting {
                    request,
                    reply,
                    deadline,
                    shown: None,
                });
            }
            Command::Status { reply } => self.status(reply),
            Command::Cancel {
                only,
                reason,
                cause,
                reply,
            } => self.cancel(only, reason, cause, reply),
        }
    }

    fn status(&self, reply: oneshot::Sender<StatusView>) {
        let agents: Vec<AgentView> = self
            .agents
            .iter()
            .filter(|(_, k)| k.tx.is_some())
            .map(|(id, k)| AgentView {
                id: id.clone(),
                host: k.hello.host.clone(),
                version: k.hello.version.clone(),
                run_id: k
                    .run
                    .clone()
                    .or_else(|| k.orphan.clone())
                    .unwrap_or_default(),
                labels: k.hello.labels.clone(),
                silent: k.life.silent_for(),
            })
            .collect();
        let waiting = !self.waiting.is_empty();
        let run = self.runs.values().next().cloned();
        // A run answers from its own task; the registry does not wait for it.
        tokio::spawn(async move {
            let mut view = RunView {
                state: if waiting { "waiting" } else { "idle" },
                ..RunView::default()
            };
            if let Some(inbox) = run {
                let (tx, rx) = oneshot::channel();
                if inbox.send(RunInput::Status { reply: tx }).await.is_ok()
                    && let Ok(v) = rx.await
                {
                    view = v;
                }
            }
            let _ = reply.send(StatusView { agents, run: view });
        });
    }

    /// Cancel what is waiting and every run in progress, or only the run `only`.
    fn cancel(
        &mut self,
        only: Option<String>,
        reason: String,
        cause: StopCause,
        reply: oneshot::Sender<CancelView>,
    ) {
        let picked = |id: Option<&String>| only.is_none() || id == only.as_ref();
        let (drop, kept): (Vec<_>, Vec<_>) = self
            .waiting
            .drain(..)
            .partition(|w| picked(w.request.id.as_ref()));
        self.waiting = kept.into();
        let mut cancelled = !drop.is_empty();
        for w in drop {
            let _ = w.reply.send(Err(ControllerError::Cancelled {
                phase: "while waiting for agents",
            }));
        }
        let runs: Vec<mpsc::Sender<RunInput>> = self
            .runs
            .iter()
            .filter(|(id, _)| picked(Some(id)))
            .map(|(_, inbox)| inbox.clone())
            .collect();
        cancelled |= !runs.is_empty();
        tokio::spawn(async move {
            let mut run_id = String::new();
            for inbox in runs {
                let (tx, rx) = oneshot::channel();
                let input = RunInput::Cancel {
                    reason: reason.clone(),
                    cause,
                    reply: tx,
                };
                if inbox.send(input).await.is_ok()
                    && let Ok(view) = rx.await
                {
                    run_id = view.run_id;
                }
            }
            let _ = reply.send(CancelView { cancelled, run_id });
        });
    }
}

#[cfg(test)]
mod tests;
