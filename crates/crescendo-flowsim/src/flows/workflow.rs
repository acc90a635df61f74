//! The Architect lock workflow of one flow: who holds the lock (`lockedClient`), the
//! saved, checked-in and published versions, and the last checkin/publish operation,
//! whose status is derived from the simulator clock when the flow is shown (so nothing
//! has to run in the background to complete it).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use uuid::Uuid;

/// The fields the workflow owns in a flow document; a PUT body cannot set them.
pub(super) const FIELDS: [&str; 5] = [
    "lockedClient",
    "savedVersion",
    "checkedInVersion",
    "publishedVersion",
    "currentOperation",
];

/// `POST /api/v2/flows/actions/{action}?flow={id}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Lock to the caller; answers the flow.
    Checkout,
    /// The lock holder unlocks and checks in; answers an operation.
    Checkin,
    /// Publish (refused while another client holds the lock); answers an operation.
    Publish,
    /// Admin unlock, whoever holds it; answers the flow.
    Unlock,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Self::Checkout => "Checkout",
            Self::Checkin => "Checkin",
            Self::Publish => "Publish",
            Self::Unlock => "Unlock",
        }
    }
}

/// Why a flow refused a write or an action (all 409 but `NotFound`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    NotFound,
    /// Another client holds the lock.
    LockedByOther,
    /// The caller must hold the lock but nobody does.
    NotCheckedOut,
}

/// A checkin or publish, complete once the sim clock passes `done_at`.
#[derive(Debug, Clone)]
struct Operation {
    id: Uuid,
    action: Action,
    client: Arc<str>,
    done_at: Duration,
}

impl Operation {
    fn render(&self, flow_id: &str, now: Duration) -> Value {
        let complete = now >= self.done_at;
        json!({
            "id": self.id,
            "actionName": self.action.name(),
            "status": if complete { "Complete" } else { "InProgress" },
            "complete": complete,
            "client": { "id": &*self.client },
            "flow": { "id": flow_id, "selfUri": format!("/api/v2/flows/{flow_id}") },
        })
    }
}

/// Lock state and versions of one flow.
#[derive(Debug, Default)]
pub(super) struct Workflow {
    locked_by: Option<Arc<str>>,
    checked_in: u64,
    published: u64,
    operation: Option<Operation>,
}

impl Workflow {
    /// A seeded or auto-created flow: checked in and published at version 1, unlocked.
    pub(super) fn new() -> Self {
        Self {
            checked_in: 1,
            published: 1,
            ..Self::default()
        }
    }

    /// Whether `caller` may write the flow: never while another client holds the lock,
    /// and with `require_checkout` only while `caller` holds it.
    pub(super) fn check_write(&self, caller: &str, require_checkout: bool) -> Result<(), Refusal> {
        match &self.locked_by {
            Some(holder) if &**holder != caller => Err(Refusal::LockedByOther),
            Some(_) => Ok(()),
            None if require_checkout => Err(Refusal::NotCheckedOut),
            None => Ok(()),
        }
    }

    /// Applies `action` for `caller`. Returns the operation JSON for checkin and publish
    /// (`None` for checkout and unlock, which answer the flow itself).
    pub(super) fn act(
        &mut self,
        flow_id: &str,
        action: Action,
        caller: &str,
        now: Duration,
        operation_delay: Duration,
    ) -> Result<Option<Value>, Refusal> {
        match action {
            Action::Checkout => {
                self.check_write(caller, false)?;
                self.locked_by = Some(Arc::from(caller));
                return Ok(None);
            }
            Action::Unlock => {
                self.locked_by = None;
                return Ok(None);
            }
            Action::Checkin => {
                self.check_write(caller, true)?;
                self.locked_by = None;
                self.checked_in += 1;
            }
            Action::Publish => {
                self.check_write(caller, false)?;
                self.published += 1;
            }
        }
        let operation = Operation {
            id: crate::error::correlation_id(),
            action,
            client: Arc::from(caller),
            done_at: now + operation_delay,
        };
        let body = operation.render(flow_id, now);
        self.operation = Some(operation);
        Ok(Some(body))
    }

    /// Adds the workflow fields to a flow document (`savedVersion` is its `version`).
    pub(super) fn render(&self, doc: &mut Map<String, Value>, now: Duration) {
        let id = doc
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let saved = doc.get("version").cloned().unwrap_or(json!(1));
        let locked = match &self.locked_by {
            Some(client) => json!({ "id": &**client }),
            None => Value::Null,
        };
        let operation = self.operation.as_ref().map(|op| op.render(&id, now));
        doc.insert("lockedClient".to_owned(), locked);
        doc.insert("savedVersion".to_owned(), saved);
        doc.insert("checkedInVersion".to_owned(), json!(self.checked_in));
        doc.insert("publishedVersion".to_owned(), json!(self.published));
        doc.insert(
            "currentOperation".to_owned(),
            operation.unwrap_or(Value::Null),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Duration = Duration::from_secs(10);

    #[test]
    fn lock_rules() {
        let mut w = Workflow::new();
        assert_eq!(w.check_write("a", false), Ok(()));
        assert_eq!(w.check_write("a", true), Err(Refusal::NotCheckedOut));
        let checkin = w.act("f", Action::Checkin, "a", NOW, Duration::ZERO);
        assert_eq!(checkin, Err(Refusal::NotCheckedOut));
        assert_eq!(
            w.act("f", Action::Checkout, "a", NOW, Duration::ZERO),
            Ok(None)
        );
        assert_eq!(
            w.act("f", Action::Checkout, "a", NOW, Duration::ZERO),
            Ok(None)
        );
        let b = |w: &mut Workflow, action| w.act("f", action, "b", NOW, Duration::ZERO);
        assert_eq!(b(&mut w, Action::Checkout), Err(Refusal::LockedByOther));
        assert_eq!(b(&mut w, Action::Checkin), Err(Refusal::LockedByOther));
        assert_eq!(b(&mut w, Action::Publish), Err(Refusal::LockedByOther));
        assert_eq!(w.check_write("b", false), Err(Refusal::LockedByOther));
        assert_eq!(w.check_write("a", true), Ok(()));
        assert_eq!(b(&mut w, Action::Unlock), Ok(None));
        assert_eq!(b(&mut w, Action::Checkout), Ok(None));
    }

    #[test]
    fn operations_complete_after_the_delay() {
        let mut w = Workflow::new();
        w.act("f", Action::Checkout, "a", NOW, Duration::ZERO)
            .unwrap();
        let op = w
            .act("f", Action::Checkin, "a", NOW, Duration::from_secs(2))
            .unwrap()
            .unwrap();
        assert_eq!(
            (op["status"].as_str(), op["complete"].as_bool()),
            (Some("InProgress"), Some(false))
        );
        assert_eq!(op["actionName"], "Checkin");
        let mut doc = Map::new();
        doc.insert("id".to_owned(), json!("f"));
        doc.insert("version".to_owned(), json!(4));
        w.render(&mut doc, NOW + Duration::from_secs(1));
        assert_eq!(doc["currentOperation"]["status"], "InProgress");
        assert_eq!(doc["currentOperation"]["id"], op["id"]);
        assert_eq!(
            (
                doc["checkedInVersion"].as_u64(),
                doc["savedVersion"].as_u64()
            ),
            (Some(2), Some(4))
        );
        assert!(doc["lockedClient"].is_null());
        w.render(&mut doc, NOW + Duration::from_secs(2));
        assert_eq!(doc["currentOperation"]["complete"], true);

        let op = w
            .act("f", Action::Publish, "b", NOW, Duration::ZERO)
            .unwrap()
            .unwrap();
        assert_eq!(op["status"], "Complete");
        w.render(&mut doc, NOW);
        assert_eq!(doc["publishedVersion"], 2);
    }
}
