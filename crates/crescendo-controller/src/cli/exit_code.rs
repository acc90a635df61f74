//! The documented exit codes of `crescendo-controller`, shared by the command line and
//! the commands that decide them (`compare`).

/// Every threshold held (`compare`: B holds).
pub const EXIT_OK: u8 = 0;
/// Another failure.
pub const EXIT_FAILURE: u8 = 1;
/// A bad plan or bad arguments (`compare`: a summary cannot be read).
pub const EXIT_BAD_INPUT: u8 = 2;
/// A threshold failed (`compare`: B regressed).
pub const EXIT_THRESHOLD: u8 = 99;
