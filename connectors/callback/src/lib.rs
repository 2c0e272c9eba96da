//! The callback connector: signed webhooks of final reports (`reports.final`) to each client's
//! report URL, retried through ten delayed tiers (`callbacks.retry.1..10`) on the
//! (n² − n + 1)-minute schedule, every attempt recorded in `callbacks.results`. The role is one
//! consumer over all of them (`role.rs`), each record decoded by its topic (`input.rs`).

pub mod attempt;
pub mod deliver;
pub mod endpoint_guard;
mod guarded_dns;
pub mod input;
pub mod receiver;
pub mod replay;
pub mod role;
pub mod schedule;
pub mod signature;
pub mod upgrade;
pub mod url_policy;
pub mod webhook;

pub use deliver::{ATTEMPT_HEADER, Deliverer, EVENT_ID_HEADER, SIGNATURE_HEADER, WebhookSettings};
pub use endpoint_guard::GuardSettings;
pub use input::CallbackInput;
pub use role::run_callback;
pub use url_policy::{WebhookMode, WebhookPolicy};
pub use webhook::{Callback, WebhookBody};
