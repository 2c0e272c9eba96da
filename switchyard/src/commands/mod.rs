//! One module per subcommand.

pub mod balance;
pub mod callbacks;
pub mod config;
pub mod history;
pub mod policy;
pub mod registry;
pub mod replay;
pub mod run;
pub mod senders;
pub mod sim;
pub mod topics;
pub mod up;
