//! The HTTP carrier protocol: the generic JSON API (`protocol`), the reference carriers echo
//! back (`reference`), the receipts endpoint that turns carriers' receipts into
//! `messages.reports`, a carrier simulator speaking the same API, and the one table of unified
//! result codes (`codes`). The `http` sender kind that submits with it is in
//! `switchyard-senders`.

pub mod codes;
pub mod protocol;
pub mod receipts;
pub mod reference;
pub mod simulator;
