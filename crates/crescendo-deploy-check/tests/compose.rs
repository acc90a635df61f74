//! deploy/compose/docker-compose.yml: every service runs a Crescendo binary with flags
//! it has, and the agents' --controller URL reaches the controller's --listen port.

use crescendo_deploy_check::cli::{self, HelpCache};
use crescendo_deploy_check::{compose, workspace_root};

#[test]
fn compose_commands_use_real_flags() {
    let path = workspace_root().join("deploy/compose/docker-compose.yml");
    let mut help = HelpCache::new(cli::built_binaries().unwrap_or_else(|e| panic!("{e}")));
    let problems = compose::check(&path, &mut help);
    assert!(
        problems.is_empty(),
        "{} problem(s):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}
