//! The topic-to-topic stages. Each is a plain function from an input record and read-only
//! config tables to output records, wrapped as a `Processor` for the shared runner.

pub mod admit;
pub mod balances;
pub mod clock;
pub mod deadline;
pub mod duplicates;
pub mod lane;
pub mod pacing;
pub mod policy;
pub mod release;
pub mod report;
pub mod route;
pub mod usability;
pub mod validate;

#[cfg(test)]
pub(crate) mod fixtures;
