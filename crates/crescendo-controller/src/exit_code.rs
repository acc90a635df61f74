//! The documented exit codes of `crescendo-controller`: the command line returns them,
//! the run's verdict ([`crate::report::Verdict::exit_code`]) and `compare` decide them.

/// The run passed: it went as planned and every threshold held (`compare`: B holds).
pub const EXIT_OK: u8 = 0;
/// Another failure (no agents came, every agent failed, an I/O error …).
pub const EXIT_FAILURE: u8 = 1;
/// A bad plan or bad arguments (`compare`: a summary cannot be read).
pub const EXIT_BAD_INPUT: u8 = 2;
/// The run was cancelled (`crescendo-controller cancel`).
pub const EXIT_CANCELLED: u8 = 3;
/// The run went on short: an agent was lost or stopped with an error.
pub const EXIT_DEGRADED: u8 = 4;
/// A threshold failed, or an `abort_on_fail` threshold stopped the run (`compare`: B
/// regressed).
pub const EXIT_THRESHOLD: u8 = 99;
/// A signal (SIGINT, SIGTERM) stopped the run.
pub const EXIT_INTERRUPTED: u8 = 130;
