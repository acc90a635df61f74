//! The route templates of the API and the token endpoint: the router serves them and
//! the stats classify what axum matched by them.

/// Route template of the flow list.
pub(crate) const FLOWS: &str = "/api/v2/flows";
/// Route template of one flow.
pub(crate) const FLOW: &str = "/api/v2/flows/{flowId}";
/// Route templates of the lock workflow actions (`?flow={id}`).
pub(crate) const CHECKOUT: &str = "/api/v2/flows/actions/checkout";
pub(crate) const CHECKIN: &str = "/api/v2/flows/actions/checkin";
pub(crate) const PUBLISH: &str = "/api/v2/flows/actions/publish";
pub(crate) const UNLOCK: &str = "/api/v2/flows/actions/unlock";
/// The OAuth token endpoint.
pub(crate) const TOKEN: &str = "/oauth/token";
