//! deploy/compose: in both files (the one-shot fleet and the service) every service runs
//! a Crescendo binary with flags it has, health checks run a binary of the image on the
//! service's own port, the agents' --controller URL reaches the controller's --listen
//! port, tokens are Compose secrets, and `serve --data` is on a named volume. Mutated
//! copies show each kind of mistake is caught.

mod common;

use std::path::PathBuf;

use common::{assert_caught, fail_on, help};
use crescendo_deploy_check::{compose, workspace_root};

fn compose_dir() -> PathBuf {
    workspace_root().join("deploy/compose")
}

#[test]
fn compose_commands_use_real_flags() {
    let mut help = help();
    for file in ["docker-compose.yml", "docker-compose.service.yml"] {
        fail_on(&compose::check(&compose_dir().join(file), &mut help));
    }
}

#[test]
fn mistakes_are_caught() {
    let mut help = help();
    let service = "docker-compose.service.yml";
    let cases = [
        // (name, file, from, to, a fragment of the expected problem)
        (
            "compose-run-flag",
            "docker-compose.yml",
            "--wait-for-agents=",
            "--wait-for-agent=",
            "has no flag --wait-for-agent",
        ),
        (
            "compose-health-flag",
            "docker-compose.yml",
            "health, --tcp, \"127.0.0.1:7700\"",
            "health, --tpc, \"127.0.0.1:7700\"",
            "`crescendo-controller health` has no flag --tpc",
        ),
        (
            "compose-out",
            "docker-compose.yml",
            "./out:/out",
            "./out:/reports",
            "--out /out is not on a writable volume",
        ),
        (
            "compose-serve-flag",
            service,
            "--run-deadline=",
            "--run-dedline=",
            "`crescendo-controller serve` has no flag --run-dedline",
        ),
        (
            "compose-labels-flag",
            service,
            "--labels=",
            "--lables=",
            "`crescendo-agent` has no flag --lables",
        ),
        (
            "compose-health-port",
            service,
            "health, --tcp, \"127.0.0.1:7700\"",
            "health, --tcp, \"127.0.0.1:7701\"",
            "--tcp 127.0.0.1:7701 but the service listens on Some(7700)",
        ),
        (
            "compose-health-shell",
            service,
            "test: [CMD, crescendo-controller, health, --tcp, \"127.0.0.1:7700\"]",
            "test: [CMD-SHELL, \"nc -z 127.0.0.1 7700\"]",
            "needs a shell, which the FROM scratch image does not have",
        ),
        (
            "compose-data-bind",
            service,
            "- crescendo-data:/home/crescendo",
            "- ./data:/home/crescendo",
            "not a named volume of the top-level volumes",
        ),
        (
            "compose-data-off-volume",
            service,
            "--data=/home/crescendo/data",
            "--data=/var/lib/crescendo",
            "--data /var/lib/crescendo is not on a writable volume",
        ),
        (
            "compose-secret-ungranted",
            service,
            "secrets: [enrol_token, admin_token]",
            "secrets: [enrol_token]",
            "secret admin_token is not in the service's secrets",
        ),
        (
            "compose-secret-path",
            service,
            "--enrol-token-file=/run/secrets/enrol_token\n    secrets: [enrol_token]",
            "--enrol-token-file=/etc/enrol.token\n    secrets: [enrol_token]",
            "--enrol-token-file /etc/enrol.token is not a Compose secret",
        ),
        (
            "compose-agent-url",
            service,
            "--controller=http://controller:7700",
            "--controller=http://controler:7700",
            "--controller http://controler:7700 is no service's --listen port",
        ),
    ];
    assert_caught(&compose_dir(), &cases, |dir, file| {
        compose::check(&dir.join(file), &mut help)
    });
}
