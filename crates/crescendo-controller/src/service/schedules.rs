//! Schedules: what fires when, what a missed time becomes, and the schedule commands.
//!
//! The service wakes at the earliest next time of any schedule (and after every
//! command), asks [`crescendo_store::due`] what came due for each, and queues runs as
//! that function's docs describe: an on-time run with its `scheduled_at`; for times
//! missed while the service was down, one run (`missed = "run-once"`) or one
//! `not-started` record saying they were skipped (`"skip"`): never a silent skip.

use chrono::{DateTime, Utc};
use crescendo_store::{Missed, NewRun, Origin, RunRecord, RunState, Schedule};
use tokio::time::Instant;

use super::{ScheduleAction, Service, Submission};
use crate::error::ServiceError;

/// Past this much late, a wake-up still fires what came due (timer slack).
const WAKE_SLACK: std::time::Duration = std::time::Duration::from_millis(5);

/// When the service next has to look at its schedules.
#[derive(Debug)]
pub(super) struct Timetable {
    next: Option<DateTime<Utc>>,
    /// When this process started: a time that passed since was not missed while the
    /// service was down, only looked at late (a busy moment); it runs, late.
    up_since: DateTime<Utc>,
}

impl Default for Timetable {
    fn default() -> Self {
        Self {
            next: None,
            up_since: Utc::now(),
        }
    }
}

impl Timetable {
    /// The instant to wake at (`None`: no schedule will fire).
    pub(super) fn next_wake(&self) -> Option<Instant> {
        let next = self.next?;
        let wait = (next - Utc::now()).to_std().unwrap_or_default();
        Some(Instant::now() + wait + WAKE_SLACK)
    }

    /// Queue what came due and compute the next wake-up.
    pub(super) async fn fire_due(&mut self, service: &Service) {
        let schedules = match service.db.call(|s| s.schedules()).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("reading the schedules: {e}; trying again in 1 s");
                self.next = Some(Utc::now() + chrono::TimeDelta::seconds(1));
                return;
            }
        };
        let now = Utc::now();
        let mut next: Option<DateTime<Utc>> = None;
        for schedule in schedules {
            let mut due = crescendo_store::due(&schedule, now);
            // Times since the start were not missed while down: the newest runs, late.
            let late: Vec<DateTime<Utc>> = due
                .missed
                .iter()
                .copied()
                .filter(|&t| t >= self.up_since)
                .collect();
            due.missed.retain(|&t| t < self.up_since);
            if let Some(&newest) = late.last()
                && due.on_time.is_none()
            {
                tracing::warn!(schedule = %schedule.name, "{} time(s) came while the service was busy: running the newest, late", late.len());
                due.on_time = Some(newest);
            }
            if let Some(&newest) = due.missed.last() {
                let count = due.missed.len();
                let more = if due.missed_capped { " (or more)" } else { "" };
                match schedule.missed {
                    Missed::RunOnce => {
                        tracing::warn!(schedule = %schedule.name, "{count}{more} time(s) missed while the service was down: running once (missed = run-once)");
                        fire(service, &schedule, newest, Some(Missed::RunOnce)).await;
                    }
                    Missed::Skip => {
                        tracing::warn!(schedule = %schedule.name, "{count}{more} time(s) missed while the service was down: skipped (missed = skip)");
                        let reason = format!(
                            "missed while the service was down ({count}{more} time(s), newest {newest}): skipped"
                        );
                        not_started(
                            service,
                            &schedule,
                            Some(newest),
                            Some(Missed::Skip),
                            &reason,
                        )
                        .await;
                    }
                }
            }
            if let Some(at) = due.on_time {
                fire(service, &schedule, at, None).await;
            }
            if let Some(handled) = due.handled_up_to() {
                let name = schedule.name.clone();
                if let Err(e) = service
                    .db
                    .call(move |s| s.set_last_handled(&name, handled))
                    .await
                {
                    tracing::error!(schedule = %schedule.name, "recording the schedule's time: {e}");
                }
            }
            next = match (next, due.next) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        self.next = next;
    }

    /// A schedule command; the schedules it concerns, and the run `run-now` queued.
    pub(super) async fn act(
        &mut self,
        service: &Service,
        action: ScheduleAction,
    ) -> Result<(Vec<Schedule>, Option<RunRecord>), ServiceError> {
        let one = |name: String| {
            let db = service.db.clone();
            async move {
                let key = name.clone();
                db.call(move |s| s.schedule(&key))
                    .await?
                    .ok_or(ServiceError::NoSuchSchedule(name))
            }
        };
        let answer = match action {
            ScheduleAction::Add(mut schedule) => {
                // The plan must run as it is: validated and split now, not at 3 a.m.
                let request =
                    super::execute::request_for(&submission(&schedule), &service.settings)?;
                schedule.plan_name = request.plan.name.clone();
                if schedule.when.next_after(Utc::now()).is_none() {
                    return Err(ServiceError::BadRequest(format!(
                        "schedule {}: its time never comes (a past --at, or a cron that never matches)",
                        schedule.name
                    )));
                }
                let name = schedule.name.clone();
                service.db.call(move |s| s.add_schedule(&schedule)).await?;
                (vec![one(name).await?], None)
            }
            ScheduleAction::List => (service.db.call(|s| s.schedules()).await?, None),
            ScheduleAction::Pause(name) => {
                let key = name.clone();
                service.db.call(move |s| s.set_paused(&key, true)).await?;
                (vec![one(name).await?], None)
            }
            ScheduleAction::Resume(name) => {
                let key = name.clone();
                service.db.call(move |s| s.set_paused(&key, false)).await?;
                (vec![one(name).await?], None)
            }
            ScheduleAction::Remove(name) => {
                let schedule = one(name.clone()).await?;
                service.db.call(move |s| s.remove_schedule(&name)).await?;
                (vec![schedule], None)
            }
            ScheduleAction::RunNow(name) => {
                let schedule = one(name.clone()).await?;
                let run = service
                    .submit(submission(&schedule), Origin::Schedule { name })
                    .await?;
                (vec![schedule], Some(run))
            }
        };
        // A schedule added, resumed or removed moves the next wake-up.
        self.fire_due(service).await;
        Ok(answer)
    }
}

fn submission(schedule: &Schedule) -> Submission {
    Submission {
        plan_text: schedule.plan_text.clone(),
        plan_origin: format!("schedule {}", schedule.name),
        agents: schedule.agents,
        selector: schedule.selector.0.clone(),
    }
}

/// Queue `schedule`'s run for `at`; a plan that no longer splits is recorded
/// `not-started` with the reason.
async fn fire(service: &Service, schedule: &Schedule, at: DateTime<Utc>, missed: Option<Missed>) {
    let origin = Origin::Schedule {
        name: schedule.name.clone(),
    };
    let queued = service
        .queue(submission(schedule), origin, Some(at), missed)
        .await;
    match queued {
        Ok(run) => {
            let late = (Utc::now() - at).num_milliseconds();
            tracing::info!(schedule = %schedule.name, run_id = %run.id, "scheduled run queued {late} ms after its time");
        }
        Err(e) => {
            not_started(service, schedule, Some(at), missed, &e.to_string()).await;
        }
    }
}

/// Record a scheduled run that will not go, and why.
async fn not_started(
    service: &Service,
    schedule: &Schedule,
    at: Option<DateTime<Utc>>,
    missed: Option<Missed>,
    reason: &str,
) {
    let new = NewRun {
        plan_name: schedule.plan_name.clone(),
        plan_text: schedule.plan_text.clone(),
        origin: Origin::Schedule {
            name: schedule.name.clone(),
        },
        agents: schedule.agents,
        selector: schedule.selector.clone(),
        scheduled_at: at,
        missed,
    };
    let reason = reason.to_owned();
    let recorded = service
        .db
        .call(move |s| {
            let run = s.insert_run(&new)?;
            s.finish(
                &run.id,
                RunState::NotStarted,
                Some(&reason),
                None,
                None,
                Utc::now(),
            )?;
            Ok(run.id)
        })
        .await;
    match recorded {
        Ok(id) => super::notify::announce(&service.db, &service.settings, &service.tracker, id),
        Err(e) => {
            tracing::error!(schedule = %schedule.name, "recording a run that did not start: {e}")
        }
    }
}
