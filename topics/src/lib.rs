//! The topic catalog (`topics/catalog.toml`): every topic of the pipeline declared once, and
//! the idempotent apply that creates it on a broker and reports drift.

mod apply;
mod catalog;
mod error;
pub mod names;

pub use apply::{ApplyOptions, ApplyReport, Drift, apply};
pub use catalog::{
    BUILTIN, Catalog, Cleanup, TopicSpec, callback_retry_delay_minutes, callback_retry_topic,
};
pub use error::TopicsError;
pub use names::Namespace;
