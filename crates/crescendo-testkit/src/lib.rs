//! crescendo-testkit
