//! The flow store: flows keyed by id in a sharded map. A flow is a JSON object whose
//! server-owned fields (`id`, `version`, `selfUri`) callers cannot overwrite; every
//! other field of a PUT body is merged in and bumps `version`.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value, json};

use crate::shard::Sharded;

const SHARDS: usize = 64;
const SERVER_OWNED: [&str; 3] = ["id", "version", "selfUri"];

#[derive(Debug)]
struct Flow {
    /// Creation order, for stable listing.
    seq: u64,
    doc: Map<String, Value>,
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
    pub(crate) fn get(&self, id: &str, missing: Missing) -> Option<Value> {
        let mut shard = self.shards.lock(self.hasher.hash_one(id));
        if let Some(flow) = shard.get(id) {
            return Some(Value::Object(flow.doc.clone()));
        }
        (missing == Missing::Create).then(|| {
            let flow = self.new_flow(id);
            let doc = Value::Object(flow.doc.clone());
            shard.insert(id.to_owned(), flow);
            doc
        })
    }

    /// Merges `patch` into the flow and bumps its version (a flow created by this PUT
    /// starts at version 1). Returns the flow's new JSON.
    pub(crate) fn put(
        &self,
        id: &str,
        patch: Map<String, Value>,
        missing: Missing,
    ) -> Option<Value> {
        let mut shard = self.shards.lock(self.hasher.hash_one(id));
        let created = !shard.contains_key(id);
        if created {
            if missing == Missing::NotFound {
                return None;
            }
            shard.insert(id.to_owned(), self.new_flow(id));
        }
        let flow = shard.get_mut(id)?;
        if !created {
            let version = flow.doc.get("version").and_then(Value::as_u64).unwrap_or(0);
            flow.doc.insert("version".to_owned(), json!(version + 1));
        }
        for (field, value) in patch {
            if !SERVER_OWNED.contains(&field.as_str()) {
                flow.doc.insert(field, value);
            }
        }
        Some(Value::Object(flow.doc.clone()))
    }

    /// Page `number` (from 1) of `size` flows in creation order.
    pub(crate) fn list(&self, number: u64, size: u64) -> Page {
        let mut all: Vec<(u64, Value)> = Vec::new();
        self.shards.for_each(|shard| {
            all.extend(
                shard
                    .values()
                    .map(|f| (f.seq, Value::Object(f.doc.clone()))),
            );
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
        Flow { seq, doc }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn put_merges_bumps_version_and_keeps_server_fields() {
        let flows = Flows::new();
        flows.seed(2);
        let v = flows
            .put(
                "flow-1",
                obj(json!({"name": "IVR", "id": "hijack", "version": 99, "extra": 1})),
                Missing::NotFound,
            )
            .unwrap();
        assert_eq!(v["id"], "flow-1");
        assert_eq!(v["name"], "IVR");
        assert_eq!(v["version"], 2);
        assert_eq!(v["extra"], 1);
        let v = flows
            .put(
                "flow-1",
                obj(json!({"description": "d"})),
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
        assert!(flows.get("x", Missing::NotFound).is_none());
        assert!(flows.put("x", Map::new(), Missing::NotFound).is_none());
        assert_eq!(flows.get("x", Missing::Create).unwrap()["version"], 1);
        assert_eq!(
            flows
                .put("y", obj(json!({"name": "Y"})), Missing::Create)
                .unwrap()["version"],
            1
        );
        assert_eq!(
            flows.put("y", Map::new(), Missing::Create).unwrap()["version"],
            2
        );
    }

    #[test]
    fn list_pages_in_creation_order() {
        let flows = Flows::new();
        flows.seed(30);
        let page = flows.list(2, 25);
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
        assert!(flows.list(3, 25).entities.is_empty());
    }
}
