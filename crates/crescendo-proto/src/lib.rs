//! Generated code for the Crescendo wire contract (`proto/crescendo/v1`).
//!
//! Only generated types live here; every other crate converts them into its own
//! domain types at the service edge.
#![allow(missing_docs, unreachable_pub, missing_debug_implementations)]
#![allow(clippy::all)]

/// `crescendo.v1`: agent control and admin services.
pub mod v1 {
    tonic::include_proto!("crescendo.v1");
}
