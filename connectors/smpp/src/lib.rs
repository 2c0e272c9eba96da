//! SMPP 3.4 ESME (client) connector: one [`SmppSender`] per carrier bind. Protocol logic is
//! pure (`pdu`, `window`, `receipts`, `ambiguous`, `codes`, `encoding`, `jobs`); `session` is
//! the thin tokio task that does the I/O. Decision 0017 says what happens to unanswered submits.

pub mod ambiguous;
pub mod backoff;
pub mod codec;
pub mod codes;
pub mod encoding;
pub mod index;
pub mod jobs;
pub mod pdu;
pub mod receipts;
pub mod recent;
pub mod sender;
pub mod session;
pub mod settings;
pub mod window;

pub use codes::Class;
pub use encoding::{DataCoding, LongText};
pub use index::{IndexError, MemoryIndex, MessageContext, ReceiptIndex};
pub use receipts::IdForm;
pub use sender::{
    BindState, ChannelSink, OutgoingMessage, PendingReport, ReceiptReport, ReportKind, ReportSink,
    SinkError, SmppSender, SubmitOutcome,
};
pub use settings::{BindMode, Password, SettingsError, SmppSettings};
