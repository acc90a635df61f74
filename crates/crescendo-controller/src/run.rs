//! One run: what it is asked ([`RunRequest`]), the actor that carries it out, the
//! state it owns, and what it produced ([`RunOutcome`]).
//!
//! - `request`: [`RunRequest`] (the plan, split once into shares) and [`RunOutcome`].
//! - `state`: `ActiveRun`, the members, merged result and governor one run owns, and
//!   how each agent message changes them.
//! - `guard`: what one agent may report (the plan's steps, its share's pace, the run's
//!   length), checked before anything is merged.
//! - `actor`: the task that owns an `ActiveRun`: assign, ready, start barrier, merge,
//!   stop; it talks to the registry only through its inbox and a `RunEnded` message.

pub(crate) mod actor;
pub(crate) mod guard;
pub(crate) mod request;
pub(crate) mod state;

pub use request::{RunOutcome, RunRequest, RunStarted, StopCause};
