//! `crescendo-controller probe`: the capacity probe from the command line.

use std::path::{Path, PathBuf};

use super::fleet_args::FleetArgs;
use tokio_util::sync::CancellationToken;

use super::{CLOSE_GRACE, Shown, cancel_on_signal, fleet_settings, say};
use crate::exit_code::{EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK};
use crate::report;

pub(super) async fn probe_cmd(
    source: &super::PlanArgs,
    agents: u32,
    fleet: &FleetArgs,
    settings: crate::probe::ProbeSettings,
    out: Option<PathBuf>,
    shown: &Shown,
) -> anyhow::Result<u8> {
    let (progress, live) = (shown.progress, &shown.live);
    let Some(fleet_settings) = fleet_settings(fleet) else {
        return Ok(EXIT_BAD_INPUT);
    };
    let path = source.path();
    let Some((plan, _)) = source.load() else {
        return Ok(EXIT_BAD_INPUT);
    };
    // The probe's own plan must split too (a closed plan's cap is its peak VUs).
    let checked = crate::probe::probe_plan(&plan, settings)
        .map_err(|e| format!("{}: {e}", path.display()))
        .and_then(|(probe, _)| probe.split(agents).map_err(|e| e.to_string()));
    if let Err(e) = checked {
        eprintln!("error: {e}");
        return Ok(EXIT_BAD_INPUT);
    }
    let shutdown = CancellationToken::new();
    let controller = fleet.start(fleet_settings, &shutdown).await?;
    sayln!(
        progress,
        "probe: controller on {}; waiting for {agents} agent(s)",
        controller.url()
    );
    cancel_on_signal(controller.clone());
    let probe = crate::probe::run_probe(&controller, &plan, agents, settings, |r| {
        // A data file's rows are streamed from the plan's directory.
        r.files = Some(crescendo_plan::DirFiles::for_plan(path));
        r.progress = progress;
        r.live = live.clone();
        r.stream = shown.stream.clone();
        r.release_agents = true;
        r.wait_for_agents = fleet.wait_for_agents;
        r.lost_after = fleet.heartbeat_timeout;
    })
    .await;
    shutdown.cancel();
    controller.closed(CLOSE_GRACE).await;
    let probe = match probe {
        Ok(p) => p,
        Err(e) if e.is_bad_input() => {
            eprintln!("error: {e}");
            return Ok(EXIT_BAD_INPUT);
        }
        Err(e) => return Err(e.into()),
    };
    let dir = out.unwrap_or_else(|| Path::new("crescendo-out").join(&probe.outcome.run_id));
    let summary = report::write_all(&probe.outcome, &dir)?;
    if let Some(stream) = &shown.stream {
        let mut line = super::stream_summary(&summary, &dir);
        line["probe"] = serde_json::to_value(&probe.result)?;
        stream.line("summary", line);
    }
    std::fs::write(
        dir.join("probe.json"),
        serde_json::to_string_pretty(&probe.result)? + "\n",
    )?;
    match &probe.result {
        Some(r) => {
            sayln!(
                progress,
                "sustainable rate: {:.2} req/s (steady {} s from t={} s, {:.2} % throttled; ceiling {:.1} req/s)",
                r.sustainable_rps,
                r.window_s,
                r.from_s,
                r.throttled_ratio * 100.0,
                r.ceiling_rps
            );
            match r.inferred_window_s {
                Some(w) => sayln!(
                    progress,
                    "inferred window: {w:.0} s (longest reset the API reported)"
                ),
                None => sayln!(
                    progress,
                    "inferred window: unknown (the API sent no reset headers)"
                ),
            }
        }
        None => sayln!(
            progress,
            "no steady stretch stayed under the throttle epsilon: raise --duration or --epsilon"
        ),
    }
    sayln!(progress, "reports: {}", dir.display());
    Ok(if probe.result.is_some() {
        EXIT_OK
    } else {
        EXIT_FAILURE
    })
}
