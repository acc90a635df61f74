//! Builders shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use chrono::{DateTime, TimeZone, Utc};
use crescendo_store::{Missed, NewRun, Origin, Schedule, Selector, When};

/// A fixed time, `seconds` after 2025-06-01T00:00:00Z.
pub fn t(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 1, 0, 0, 0).unwrap() + chrono::TimeDelta::seconds(seconds)
}

pub fn new_run(plan_name: &str) -> NewRun {
    NewRun {
        plan_name: plan_name.into(),
        plan_text: format!("name = \"{plan_name}\"\n"),
        origin: Origin::Submit,
        agents: 2,
        selector: Selector::default(),
        scheduled_at: None,
        missed: None,
    }
}

pub fn schedule(name: &str, cron: &str) -> Schedule {
    Schedule {
        name: name.into(),
        plan_name: "flow-update".into(),
        plan_text: "name = \"flow-update\"\n".into(),
        agents: 3,
        selector: Selector(std::collections::BTreeMap::from([(
            "region".to_owned(),
            "eu-west-1".to_owned(),
        )])),
        when: When::cron(cron, "Europe/Dublin").unwrap(),
        missed: Missed::Skip,
        paused: false,
        created_at: t(0),
        last_handled: None,
    }
}
