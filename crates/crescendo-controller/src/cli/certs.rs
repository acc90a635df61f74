//! `crescendo-controller certs`: a CA, a controller certificate and agent
//! certificates as PEM files, for teams without a PKI (see [`crate::certs`]).

use std::path::PathBuf;
use std::time::Duration;

use crate::certs::{CertsRequest, generate};
use crate::exit_code::{EXIT_BAD_INPUT, EXIT_OK};

/// What to make, and where.
#[derive(Debug, clap::Args)]
pub(super) struct CertsArgs {
    /// The directory for the PEM files (created if missing). A CA already there
    /// (ca.pem, ca-key.pem) issues the new certificates.
    #[arg(long, default_value = "crescendo-certs")]
    out: PathBuf,
    /// A DNS name or IP address agents use to reach the controller (repeat for each);
    /// makes controller.pem and controller-key.pem.
    #[arg(long = "controller-name", value_name = "NAME")]
    controller_names: Vec<String>,
    /// An agent id (repeat for each): makes agent-ID.pem and agent-ID-key.pem with
    /// CN = ID and OU = crescendo-agent (it may attach, never operate).
    #[arg(long = "agent", value_name = "ID")]
    agents: Vec<String>,
    /// An operator's name (repeat for each): makes operator-NAME.pem and
    /// operator-NAME-key.pem with OU = crescendo-operator, for the admin commands under
    /// mutual TLS (it may operate, never attach).
    #[arg(long = "operator", value_name = "NAME")]
    operators: Vec<String>,
    /// How long the certificates are valid.
    #[arg(long, default_value = "365days", value_parser = humantime::parse_duration)]
    valid_for: Duration,
    /// Replace certificates already in the directory (never the CA).
    #[arg(long)]
    force: bool,
}

pub(super) fn certs_cmd(args: CertsArgs) -> u8 {
    let request = CertsRequest {
        dir: args.out,
        controller_names: args.controller_names,
        agents: args.agents,
        operators: args.operators,
        valid_for: args.valid_for,
        force: args.force,
    };
    match generate(&request) {
        Ok(written) => {
            for path in written {
                println!("wrote {}", path.display());
            }
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: {:#}", anyhow::Error::new(e));
            EXIT_BAD_INPUT
        }
    }
}
