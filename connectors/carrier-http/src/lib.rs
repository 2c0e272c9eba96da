//! The HTTP carrier connector: the dispatcher for senders of kind `http` (generic JSON API),
//! the receipts endpoint that turns carriers' receipts into `messages.reports`, and a carrier
//! simulator speaking the same API.

pub mod codes;
pub mod dispatcher;
pub mod protocol;
pub mod receipts;
pub mod reference;
pub mod service;
pub mod simulator;
