//! The flow store: flows keyed by id in a sharded map. A flow is a JSON object whose
//! server-owned fields (`id`, `version`, `selfUri` and the lock workflow's) callers
//! cannot overwrite; every other field of a PUT body is merged in and bumps `version`.
//! `workflow` holds each flow's lock, versions and last operation.

mod workflow;

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Map, Value, json};

use workflow::Workflow;
pub(crate) use workflow::{Action, Refusal};

use crate::shard::Sharded;

const SHARDS: usize = 64;
const SERVER_OWNED: [&str; 3] = ["id", "version", "selfUri"];
/// Seeded ids printed in full before the start-up line switches to a range.
const SHOWN_IDS: u64 = 3;

#[derive(Debug)]
struct Flow {
    /// Creation order, for stable listing.
    seq: u64,
    doc: Map<String, Value>,
    work: Workflow,
}

impl Flow {
    /// The document as the API shows it at `now`.
    fn render(&self, now: Duration) -> Value {
        let mut doc = self.doc.clone();
        self.work.render(&mut doc, now);
        Value::Object(doc)
    }
}

/// Who writes and under which lock rule.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Writer<'a> {
    pub(crate) caller: &'a str,
    /// `--require-checkout`: the caller must hold the lock.
    pub(crate) require_checkout: bool,
}

/// The answer to a lock-workflow action.
#[derive(Debug)]
pub(crate) enum Acted {
    /// Checkout and unlock answer the flow.
    Flow(Value),
    /// Checkin and publish answer their operation.
    Operation(Value),
}

/// The one- or two-line start-up note about `--flows N`, e.g.
/// `flowsim: seeded 100 flows: flow-1, flow-2, flow-3 … flow-100`.
pub fn seeded_summary(n: u64) -> Option<String> {
    if n == 0 {
        return None;
    }
    let shown = n.min(SHOWN_IDS);
    let mut ids: Vec<String> = (1..=shown).map(|i| format!("flow-{i}")).collect();
    let mut line = format!(
        "flowsim: seeded {n} flow{}: ",
        if n == 1 { "" } else { "s" }
    );
    if n > shown + 1 {
        line += &format!("{} … flow-{n}", ids.join(", "));
    } else {
        if n > shown {
            ids.push(format!("flow-{n}"));
        }
        line += &ids.join(", ");
    }
    Some(line)
}

/// What the store needs to answer a request for a flow that does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Missing {
    Create,
    NotFound,
}

/// A page of `GET /api/v2/flows`.
#[derive(Debug)]
pub(crate) struct Page {
    pub(crate) entities: Vec<Value>,
    pub(crate) total: u64,
}

/// All flows.
#[derive(Debug)]
pub(crate) struct Flows {
    shards: Sharded<HashMap<String, Flow>>,
    hasher: std::collections::hash_map::RandomState,
    next_seq: AtomicU64,
}

impl Flows {
    pub(crate) fn new() -> Self {
        Self {
            shards: Sharded::new(SHARDS),
            hasher: Default::default(),
            next_seq: AtomicU64::new(0),
        }
    }

    /// Creates `flow-1` … `flow-n`.
    pub(crate) fn seed(&self, n: u64) {
        for i in 1..=n {
            let id = format!("flow-{i}");
            let mut shard = self.shards.lock(self.hasher.hash_one(&id));
            shard.entry(id).or_insert_with_key(|id| self.new_flow(id));
        }
    }

    /// The flow's JSON, creating it first when `missing` says so.
    pub(crate) fn get(&self, id: &str, missing: Missing, now: Duration) -> Option<Value> {
        let mut shard = self.shards.lock(self.hasher.hash_one(id));
        if let Some(flow) = shard.get(id) {
            return Some(flow.render(now));
        }
        (missing == Missing::Create).then(|| {
            let flow = self.new_flow(id);
            let doc = flow.render(now);
            shard.insert(id.to_owned(), flow);
            doc
        })
    }

    /// Merges `patch` into the flow and bumps its version (a flow created by this PUT
    /// starts at version 1), unless the lock rules refuse `writer`. Returns the flow's
    /// new JSON.
    pub(crate) fn put(
        &self,
        id: &str,
        patch: Map<String, Value>,
        missing: Missing,
        writer: Writer<'_>,
        now: Duration,
    ) -> Result<Value, Refusal> {
        let mut shard = self.shards.lock(self.hasher.hash_one(id));
        let created = !shard.contains_key(id);
        if created {
            if missing == Missing::NotFound {
                return Err(Refusal::NotFound);
            }
            shard.insert(id.to_owned(), self.new_flow(id));
        }
        let flow = shard.get_mut(id).ok_or(Refusal::NotFound)?;
        if let Err(refusal) = flow
            .work
            .check_write(writer.caller, writer.require_checkout)
        {
            if created {
                shard.remove(id);
            }
            return Err(refusal);
        }
        if !created {
            let version = flow.doc.get("version").and_then(Value::as_u64).unwrap_or(0);
            flow.doc.insert("version".to_owned(), json!(version + 1));
        }
        for (field, value) in patch {
            let field_name = field.as_str();
            if !SERVER_OWNED.contains(&field_name) && !workflow::FIELDS.contains(&field_name) {
                flow.doc.insert(field, value);
            }
        }
        Ok(flow.render(now))
    }

    /// Applies a lock-workflow action for `caller` (an unknown flow is created first
    /// when `missing` says so).
    pub(crate) fn act(
        &self,
        id: &str,
        action: Action,
        caller: &str,
        missing: Missing,
        now: Duration,
        operation_delay: Duration,
    ) -> Result<Acted, Refusal> {
        let mut shard = self.shards.lock(self.hasher.hash_one(id));
        if !shard.contains_key(id) {
            if missing == Missing::NotFound {
                return Err(Refusal::NotFound);
            }
            shard.insert(id.to_owned(), self.new_flow(id));
        }
        let flow = shard.get_mut(id).ok_or(Refusal::NotFound)?;
        match flow.work.act(id, action, caller, now, operation_delay)? {
            Some(operation) => Ok(Acted::Operation(operation)),
            None => Ok(Acted::Flow(flow.render(now))),
        }
    }

    /// Page `number` (from 1) of `size` flows in creation order.
    pub(crate) fn list(&self, number: u64, size: u64, now: Duration) -> Page {
        let mut all: Vec<(u64, Value)> = Vec::new();
        self.shards.for_each(|shard| {
            all.extend(shard.values().map(|f| (f.seq, f.render(now))));
        });
        all.sort_unstable_by_key(|(seq, _)| *seq);
        let total = all.len() as u64;
        let skip =
            usize::try_from(number.saturating_sub(1).saturating_mul(size)).unwrap_or(usize::MAX);
        let take = usize::try_from(size).unwrap_or(usize::MAX);
        let entities = all
            .into_iter()
            .skip(skip)
            .take(take)
            .map(|(_, v)| v)
            .collect();
        Page { entities, total }
    }

    fn new_flow(&self, id: &str) -> Flow {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let doc = json!({
            "id": id,
            "name": id,
            "description": "",
            "type": "INBOUNDCALL",
            "version": 1,
            "selfUri": format!("/api/v2/flows/{id}"),
        });
        let Value::Object(doc) = doc else {
            unreachable!("json! of an object literal")
        };
        Flow {
            seq,
            doc,
            work: Workflow::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Duration = Duration::ZERO;
    const ANYONE: Writer<'static> = Writer {
        caller: "anonymous",
        require_checkout: false,
    };

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn put(flows: &Flows, id: &str, patch: Value, missing: Missing) -> Result<Value, Refusal> {
        flows.put(id, obj(patch), missing, ANYONE, NOW)
    }

    #[test]
    fn put_merges_bumps_version_and_keeps_server_fields() {
        let flows = Flows::new();
        flows.seed(2);
        let patch = json!({"name": "IVR", "id": "hijack", "version": 99, "extra": 1,
            "lockedClient": {"id": "me"}, "publishedVersion": 9});
        let v = put(&flows, "flow-1", patch, Missing::NotFound).unwrap();
        assert_eq!(v["id"], "flow-1");
        assert_eq!(v["name"], "IVR");
        assert_eq!(v["version"], 2);
        assert_eq!(v["savedVersion"], 2);
        assert_eq!(v["extra"], 1);
        assert!(v["lockedClient"].is_null());
        assert_eq!(v["publishedVersion"], 1);
        let v = put(
            &flows,
            "flow-1",
            json!({"description": "d"}),
            Missing::NotFound,
        )
        .unwrap();
        assert_eq!(
            (
                v["name"].as_str(),
                v["description"].as_str(),
                v["version"].as_u64()
            ),
            (Some("IVR"), Some("d"), Some(3))
        );
    }

    #[test]
    fn missing_flows_are_created_only_when_asked() {
        let flows = Flows::new();
        assert!(flows.get("x", Missing::NotFound, NOW).is_none());
        let none = put(&flows, "x", json!({}), Missing::NotFound);
        assert_eq!(none, Err(Refusal::NotFound));
        assert_eq!(flows.get("x", Missing::Create, NOW).unwrap()["version"], 1);
        let y = put(&flows, "y", json!({"name": "Y"}), Missing::Create).unwrap();
        assert_eq!(y["version"], 1);
        let y = put(&flows, "y", json!({}), Missing::Create).unwrap();
        assert_eq!(y["version"], 2);
        let act = flows.act("z", Action::Checkout, "a", Missing::NotFound, NOW, NOW);
        assert!(matches!(act, Err(Refusal::NotFound)));
    }

    #[test]
    fn locks_guard_writes() {
        let flows = Flows::new();
        flows.seed(1);
        let a = Writer {
            caller: "a",
            require_checkout: false,
        };
        let b = Writer { caller: "b", ..a };
        let act = |action, caller| flows.act("flow-1", action, caller, Missing::NotFound, NOW, NOW);
        let Ok(Acted::Flow(flow)) = act(Action::Checkout, "a") else {
            panic!("checkout answers the flow")
        };
        assert_eq!(flow["lockedClient"]["id"], "a");
        let refused = flows.put("flow-1", Map::new(), Missing::NotFound, b, NOW);
        assert_eq!(refused, Err(Refusal::LockedByOther));
        assert!(
            flows
                .put("flow-1", Map::new(), Missing::NotFound, a, NOW)
                .is_ok()
        );
        assert!(matches!(act(Action::Checkin, "a"), Ok(Acted::Operation(_))));
        let strict = Writer {
            require_checkout: true,
            ..b
        };
        let refused = flows.put("flow-1", Map::new(), Missing::NotFound, strict, NOW);
        assert_eq!(refused, Err(Refusal::NotCheckedOut));
        // a refused auto-create leaves nothing behind
        let refused = flows.put("new", Map::new(), Missing::Create, strict, NOW);
        assert_eq!(refused, Err(Refusal::NotCheckedOut));
        assert!(flows.get("new", Missing::NotFound, NOW).is_none());
        let flow = flows.get("flow-1", Missing::NotFound, NOW).unwrap();
        assert_eq!(
            (flow["version"].as_u64(), flow["checkedInVersion"].as_u64()),
            (Some(2), Some(2))
        );
    }

    #[test]
    fn list_pages_in_creation_order() {
        let flows = Flows::new();
        flows.seed(30);
        let page = flows.list(2, 25, NOW);
        assert_eq!(page.total, 30);
        let ids: Vec<&str> = page
            .entities
            .iter()
            .map(|v| v["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            (26..=30).map(|i| format!("flow-{i}")).collect::<Vec<_>>()
        );
        assert!(flows.list(3, 25, NOW).entities.is_empty());
    }

    #[test]
    fn seeded_summary_lines() {
        assert_eq!(seeded_summary(0), None);
        let line = |n| seeded_summary(n).unwrap();
        assert_eq!(line(1), "flowsim: seeded 1 flow: flow-1");
        assert_eq!(
            line(4),
            "flowsim: seeded 4 flows: flow-1, flow-2, flow-3, flow-4"
        );
        assert_eq!(
            line(500),
            "flowsim: seeded 500 flows: flow-1, flow-2, flow-3 … flow-500"
        );
    }
}
