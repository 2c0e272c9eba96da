//! The callback connector: signed webhooks of final reports (`reports.final`) to each client's
//! report URL; failures are recorded in the first retry tier.

pub mod receiver;
pub mod signature;
pub mod webhook;

pub use webhook::{Callback, EVENT_ID_HEADER, SIGNATURE_HEADER, WebhookBody};
