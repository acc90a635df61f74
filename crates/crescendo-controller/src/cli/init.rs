//! `crescendo-controller init`: a commented starter plan (and the files it names),
//! from the plans this repository runs in its own tests, so a template always
//! validates.

use std::path::{Path, PathBuf};

use crate::exit_code::{EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK};

/// Which starter plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum Template {
    /// PUT updates to a flows API, ramping past flowsim's default limit.
    FlowUpdate,
    /// Architect's checkout → get → update → checkin cycle, with a body file.
    Architect,
}

impl Template {
    /// The plan text and the files it names (paths relative to the plan).
    fn files(self) -> (&'static str, &'static [(&'static str, &'static str)]) {
        match self {
            Template::FlowUpdate => (include_str!("../../../../plans/flow-update.toml"), &[]),
            Template::Architect => (
                include_str!("../../../../plans/architect-flow-update.toml"),
                &[(
                    "data/flow-update-body.json",
                    include_str!("../../../../plans/data/flow-update-body.json"),
                )],
            ),
        }
    }
}

#[derive(Debug, clap::Args)]
pub(super) struct InitArgs {
    /// Where the plan goes (its files go beside it).
    #[arg(default_value = "plan.toml")]
    path: PathBuf,
    #[arg(long, value_enum, default_value = "flow-update")]
    template: Template,
    /// Replace files that exist.
    #[arg(long)]
    force: bool,
}

pub(super) fn init(args: &InitArgs) -> u8 {
    let (plan, extra) = args.template.files();
    let dir = args.path.parent().unwrap_or(Path::new(""));
    let mut writes: Vec<(PathBuf, &str)> = vec![(args.path.clone(), plan)];
    writes.extend(extra.iter().map(|(rel, text)| (dir.join(rel), *text)));
    if !args.force
        && let Some((taken, _)) = writes.iter().find(|(path, _)| path.exists())
    {
        eprintln!("error: {} exists (--force replaces it)", taken.display());
        return EXIT_BAD_INPUT;
    }
    for (path, text) in &writes {
        let written = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(path, text));
        if let Err(e) = written {
            eprintln!("error: {}: {e}", path.display());
            return EXIT_FAILURE;
        }
        println!("wrote {}", path.display());
    }
    println!(
        "next: crescendo-controller validate {0}, then crescendo-controller run {0} --local-agents 2",
        args.path.display()
    );
    EXIT_OK
}
