//! The `Record` trait binding each Rust type to its Avro schema.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::records::*;
use crate::{LoadedSchema, SchemaError, files};

/// A Rust type that is the value of a topic, with its Avro schema.
pub trait Record: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// Full Avro name, e.g. `io.switchyard.Submission`.
    const FULL_NAME: &'static str;

    /// The resolved schema of this record.
    fn schema() -> Result<&'static LoadedSchema, SchemaError> {
        files::loaded(Self::FULL_NAME)
    }
}

macro_rules! records {
    ($($ty:ident),* $(,)?) => {
        $(impl Record for $ty {
            const FULL_NAME: &'static str = concat!("io.switchyard.", stringify!($ty));
        })*

        /// Full names of every type that is a topic's value.
        pub const RECORD_NAMES: &[&str] = &[$(concat!("io.switchyard.", stringify!($ty))),*];
    };
}

records!(
    Submission,
    ValidatedMessage,
    Rejection,
    RoutingDecision,
    DispatchRequest,
    DispatchOutcome,
    DeliveryReport,
    FinalReport,
    CallbackAttempt,
    SenderDrain,
    SenderHealth,
    CustomerConfig,
    ApiClientConfig,
    SenderConfig,
    RouteRule,
    ContentPolicy,
    NumberingEntry,
    CallbackResult,
    ReportAck,
    BillCode,
    HeldMessage,
    StateEntry,
    BalanceEvent,
    BalanceCommand,
);
