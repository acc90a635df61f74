//! [`Schedule`]: a plan run on a timetable.

use chrono::{DateTime, Utc};

use crate::run_state::Missed;
use crate::selector::Selector;
use crate::when::When;

/// A named plan that runs at the times of [`When`].
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// Unique among schedules; runs it starts carry it in [`Origin::Schedule`](crate::Origin).
    pub name: String,
    pub plan_name: String,
    /// The plan's TOML as it was when the schedule was made.
    pub plan_text: String,
    /// How many agents each run is split over.
    pub agents: u32,
    pub selector: Selector,
    pub when: When,
    /// What to do about times missed while the service was down.
    pub missed: Missed,
    /// A paused schedule starts nothing; resuming it does not catch up (see
    /// [`Store::set_paused`](crate::Store::set_paused)).
    pub paused: bool,
    pub created_at: DateTime<Utc>,
    /// The newest scheduled time the service has dealt with (run, recorded as skipped, or
    /// passed over while paused); `None` until the first. Times up to it are never due.
    pub last_handled: Option<DateTime<Utc>>,
}
