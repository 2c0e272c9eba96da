//! Sender kinds: a registry (`registry`) of the kinds a sender can be (`http`, `smpp`), each
//! with typed settings that `config apply` checks and the dispatch role builds from; the
//! failure classes every kind reports in (`failure`); the pure mapping of what a carrier did to
//! the records dispatch writes (`outcome`); and the one dispatch service (`service`) that
//! runs every enabled sender by its kind. Decision 0019.

pub mod backlog;
pub mod common;
pub mod deadline;
pub mod dispatcher;
pub mod failover;
pub mod failure;
pub mod gate;
pub mod health;
pub mod heartbeat;
pub mod http;
pub mod outcome;
pub mod rate;
pub mod registry;
pub mod service;
pub mod settings;
pub mod smpp;
pub mod strmap;

pub use failure::{DispatchFailure, Sent};
pub use registry::{Carrier, KindError, SenderKind, StartContext, check, kind, kinds};
pub use service::run_dispatch;
