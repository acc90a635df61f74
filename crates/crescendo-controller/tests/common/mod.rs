//! Shared by the tests that run the real `crescendo-controller` binary.

use std::ffi::OsStr;
use std::process::Command;

/// Run the controller binary; its exit code and everything it printed. Never a panic.
pub(crate) fn controller<I: AsRef<OsStr>>(args: impl IntoIterator<Item = I>) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_crescendo-controller"))
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("panicked"), "{text}");
    (out.status.code().unwrap_or(-1), text)
}
