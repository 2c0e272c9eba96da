//! Rust types of every switchyard record, one module per part of the pipeline.

mod config;
mod message;
mod reports;
mod routing;
mod state;

pub use config::{
    ApiClientConfig, BillCode, CarrierRoute, ContentPolicy, CustomerConfig, GroupShare, NightAds,
    NumberingEntry, NumberingKind, RouteRule, SenderConfig,
};
pub use message::{
    Attachment, Channel, Fallback, HeldMessage, Priority, Rejection, Submission, ValidatedMessage,
};
pub use reports::{
    CallbackAttempt, CallbackResult, DeliveryReport, FinalReport, ReportAck, ResultStatus,
};
pub use routing::{
    DispatchOutcome, DispatchRequest, DispatchStatus, FailureClass, RouteHop, RoutingDecision,
};
pub use state::{
    BalanceCommand, BalanceEvent, BalanceKind, HEARTBEAT_STALE_AFTER_MS, SenderDrain, SenderHealth,
    StateEntry,
};

/// Milliseconds since the Unix epoch (Avro `timestamp-millis`).
pub type Millis = i64;
