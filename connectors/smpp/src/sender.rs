//! The public face of one SMPP sender: [`SmppSender::start`] binds (and keeps binding) in the
//! background; [`SmppSender::submit`] sends one message and says what became of it; receipts
//! go to the caller's [`ReportSink`], and the SMSC gets its deliver_sm_resp only once the sink
//! said the report is written.

use std::sync::Arc;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use switchyard_schemas::ResultStatus;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::codes::Class;
use crate::index::{MessageContext, ReceiptIndex};
use crate::jobs::Job;
use crate::session::{LinkConfig, LinkRole, spawn_link};
use crate::settings::{BindMode, SettingsError, SmppSettings};

/// One message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// switchyard's message id.
    pub message_id: String,
    /// The destination address.
    pub to: String,
    /// The source address; the sender's `source_addr` when `None`.
    pub from: Option<String>,
    pub text: String,
    /// The caller's own context, stored with the carrier id and handed back with receipts.
    pub reference: String,
}

/// What became of a submit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitOutcome {
    /// The SMSC took every part; one carrier id per part, in order.
    Accepted { carrier_ids: Vec<String> },
    /// The SMSC kept answering "busy" (ESME_RTHROTTLED / ESME_RMSGQFUL): nothing was taken;
    /// send it again later. Not a failure of the message.
    Throttled,
    /// Refused or not sent: `class` says whether another sender may succeed; `code` is the
    /// unified result code.
    Failed {
        class: Class,
        code: &'static str,
        detail: String,
    },
    /// The SMSC may or may not have taken it (no answer in time, connection lost with it in
    /// flight). Never send it again: a receipt reconciles it, or it fails as unknown after
    /// `ambiguous_deadline_ms` (a report through the sink either way).
    Ambiguous { detail: String },
}

impl SubmitOutcome {
    /// The failover class of the `messages.dispatched` record of a failed submit:
    /// `SenderDown` (another sender may take it), `Permanent` (none can). `None` for the
    /// others: accepted and ambiguous ones are never sent again, and a throttled one waits for
    /// this sender (a dispatcher answers it with `StageError::Unavailable`, so the runner
    /// offers the same input again later).
    pub fn failure_class(&self) -> Option<switchyard_schemas::FailureClass> {
        match self {
            SubmitOutcome::Failed { class, .. } => class.failure_class(),
            _ => None,
        }
    }

    /// The first part's carrier id of an accepted submit.
    pub fn carrier_id(&self) -> Option<&str> {
        match self {
            SubmitOutcome::Accepted { carrier_ids } => carrier_ids.first().map(String::as_str),
            _ => None,
        }
    }
}

/// What a report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    /// A delivery receipt from the SMSC.
    Receipt,
    /// An ambiguous submit with no receipt by its deadline: outcome unknown.
    Unknown,
    /// An ambiguous submit the SMSC refused after all (a late error response).
    LateRefusal,
}

/// A report for the caller to write (to `messages.reports`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptReport {
    pub kind: ReportKind,
    pub context: MessageContext,
    pub carrier_id: Option<String>,
    pub status: ResultStatus,
    pub result_code: &'static str,
    pub result_text: &'static str,
    /// The carrier's own words: `DELIVRD err:000`, a command_status name, …
    pub carrier_code: String,
}

/// The report could not be written.
#[derive(Debug, Error)]
#[error("report not written: {reason}")]
pub struct SinkError {
    pub reason: String,
    /// Whether writing it again later may work (the SMSC is asked to send the receipt again).
    pub retriable: bool,
}

/// Where reports go. `write` returns once the report is durably written: only then is the
/// SMSC's deliver_sm answered with ESME_ROK; an error answers ESME_RX_T_APPN, and the SMSC
/// sends the receipt again later.
pub trait ReportSink: Send + Sync + 'static {
    fn write(&self, report: ReceiptReport) -> BoxFuture<'_, Result<(), SinkError>>;
}

/// A report handed over a channel; the receiver confirms it with `written`.
#[derive(Debug)]
pub struct PendingReport {
    pub report: ReceiptReport,
    pub written: oneshot::Sender<Result<(), String>>,
}

/// A [`ReportSink`] that hands reports to a channel (a stream of receipts for the caller).
#[derive(Debug, Clone)]
pub struct ChannelSink(mpsc::Sender<PendingReport>);

impl ChannelSink {
    pub fn new(capacity: usize) -> (Self, mpsc::Receiver<PendingReport>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (ChannelSink(tx), rx)
    }
}

impl ReportSink for ChannelSink {
    fn write(&self, report: ReceiptReport) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async move {
            let (written, confirmed) = oneshot::channel();
            self.0
                .send(PendingReport { report, written })
                .await
                .map_err(|_| SinkError {
                    reason: "report receiver closed".into(),
                    retriable: true,
                })?;
            match confirmed.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(reason)) => Err(SinkError {
                    reason,
                    retriable: true,
                }),
                Err(_) => Err(SinkError {
                    reason: "report dropped unconfirmed".into(),
                    retriable: true,
                }),
            }
        })
    }
}

/// The state of a sender's submitting bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindState {
    Connecting,
    Bound,
    /// Bound, but sending nothing for a while after a throttling answer.
    Paused,
    /// The SMSC refused the bind (command_status named); retried with backoff.
    Refused {
        status: String,
    },
    /// Not connected; `reason` says why; retried with backoff.
    Disconnected {
        reason: String,
    },
    Stopped,
}

/// A running SMPP sender.
#[derive(Debug)]
pub struct SmppSender {
    jobs: mpsc::Sender<Job>,
    state: watch::Receiver<BindState>,
    shutdown: watch::Sender<bool>,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl SmppSender {
    /// Validate `settings` and start binding in the background (needs a tokio runtime).
    pub fn start(
        settings: SmppSettings,
        index: Arc<dyn ReceiptIndex>,
        sink: Arc<dyn ReportSink>,
    ) -> Result<SmppSender, SettingsError> {
        settings.validate()?;
        let settings = Arc::new(settings);
        let (jobs_tx, jobs_rx) = mpsc::channel(settings.window * 4);
        let (state_tx, state_rx) = watch::channel(BindState::Connecting);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let tasks = match settings.bind_mode {
            BindMode::Transceiver => vec![spawn_link(LinkConfig {
                role: LinkRole::Transceiver,
                settings,
                index,
                sink,
                jobs: Some(jobs_rx),
                notices_out: None,
                notices_in: None,
                state: Some(state_tx),
                shutdown: shutdown_rx,
            })],
            BindMode::TransmitterReceiver => {
                let (notice_tx, notice_rx) = mpsc::unbounded_channel();
                let tx = spawn_link(LinkConfig {
                    role: LinkRole::Transmitter,
                    settings: settings.clone(),
                    index: index.clone(),
                    sink: sink.clone(),
                    jobs: Some(jobs_rx),
                    notices_out: Some(notice_tx),
                    notices_in: None,
                    state: Some(state_tx),
                    shutdown: shutdown_rx.clone(),
                });
                let rx = spawn_link(LinkConfig {
                    role: LinkRole::Receiver,
                    settings,
                    index,
                    sink,
                    jobs: None,
                    notices_out: None,
                    notices_in: Some(notice_rx),
                    state: None,
                    shutdown: shutdown_rx,
                });
                vec![tx, rx]
            }
        };
        Ok(SmppSender {
            jobs: jobs_tx,
            state: state_rx,
            shutdown: shutdown_tx,
            tasks: std::sync::Mutex::new(tasks),
        })
    }

    /// Send one message. Waits for the SMSC's answer (or the bind, up to `bind_wait_ms`).
    /// Dropping the future does not take the message back: it may still be sent.
    pub async fn submit(&self, message: OutgoingMessage) -> SubmitOutcome {
        let (reply, outcome) = oneshot::channel();
        let job = Job::new(message, reply);
        if self.jobs.send(job).await.is_err() {
            return stopped();
        }
        outcome.await.unwrap_or_else(|_| stopped())
    }

    /// The submitting bind's state, live.
    pub fn state(&self) -> watch::Receiver<BindState> {
        self.state.clone()
    }

    /// Stop: nothing new is sent, unanswered submits get up to `submit_timeout_ms` to be
    /// answered, then the bind is closed with an unbind; submits never sent fail with
    /// `TryAnotherSender`. Returns once the links have stopped.
    pub async fn shutdown(&self) {
        let _ = self.shutdown.send(true);
        let tasks = match self.tasks.lock() {
            Ok(mut tasks) => std::mem::take(&mut *tasks),
            Err(_) => Vec::new(),
        };
        for task in tasks {
            let _ = task.await;
        }
    }
}

fn stopped() -> SubmitOutcome {
    SubmitOutcome::Failed {
        class: Class::TryAnotherSender,
        code: Class::TryAnotherSender.result_code(),
        detail: "the sender is stopped".into(),
    }
}
