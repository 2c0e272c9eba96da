//! The thin I/O task of one bind ("link"): connect, bind, keep the link alive with
//! enquire_link, send submits within the window, read responses and receipts, reconnect with
//! backoff. Every decision is made by the pure modules (`window`, `jobs`, `receipts`,
//! `ambiguous`, `codes`); this file moves bytes and time.
//!
//! A transceiver bind is one link doing both sides. With separate binds the transmitter link
//! tells the receiver link about accepted ids and ambiguous submits through [`Notice`]s.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{SinkExt, StreamExt};
use thiserror::Error;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::ambiguous::{Ambiguous, Unreconciled};
use crate::backoff::{Backoff, Jitter};
use crate::codec::{Frame, SmppCodec};
use crate::codes::{Class, classify, receipt_result, status_name};
use crate::encoding::encode;
use crate::index::{IndexError, MessageContext, ReceiptIndex};
use crate::jobs::{Active, Job, PartState};
use crate::pdu::{Bind, Body, Pdu, ShortMessage, Tlv, id, status, tag};
use crate::receipts::{CarrierId, EarlyReceipts, Receipt, parse};
use crate::recent::Recent;
use crate::sender::{BindState, ReceiptReport, ReportKind, ReportSink, SinkError};
use crate::settings::SmppSettings;
use crate::window::{Sequence, Window};

mod receiving;
mod submitting;

/// Which bind a link makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRole {
    Transceiver,
    Transmitter,
    Receiver,
}

impl LinkRole {
    fn receives(self) -> bool {
        self != LinkRole::Transmitter
    }

    fn name(self) -> &'static str {
        match self {
            LinkRole::Transceiver => "transceiver",
            LinkRole::Transmitter => "transmitter",
            LinkRole::Receiver => "receiver",
        }
    }
}

/// What the submitting side tells the receiving side.
#[derive(Debug)]
pub enum Notice {
    /// A submit was accepted under `carrier_id` (and is in the index).
    Accepted {
        carrier_id: CarrierId,
        context: MessageContext,
    },
    /// A submit became ambiguous.
    Ambiguous {
        context: MessageContext,
        text: String,
    },
    /// A late response settled an ambiguous submit.
    Resolved { message_id: String, part: u8 },
}

/// Everything a link needs.
pub struct LinkConfig {
    pub role: LinkRole,
    pub settings: Arc<SmppSettings>,
    pub index: Arc<dyn ReceiptIndex>,
    pub sink: Arc<dyn ReportSink>,
    pub jobs: Option<mpsc::Receiver<Job>>,
    pub notices_out: Option<mpsc::UnboundedSender<Notice>>,
    pub notices_in: Option<mpsc::UnboundedReceiver<Notice>>,
    pub state: Option<watch::Sender<BindState>>,
    pub shutdown: watch::Receiver<bool>,
}

impl std::fmt::Debug for LinkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkConfig")
            .field("role", &self.role)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Start a link task.
pub fn spawn_link(config: LinkConfig) -> JoinHandle<()> {
    tokio::spawn(Link::new(config).run())
}

/// Why a connection ended or never started; every one is retried with backoff.
#[derive(Debug, Error)]
enum LinkError {
    #[error("connect: {0}")]
    Io(#[from] std::io::Error),
    #[error("the SMSC refused the bind: {0}")]
    Refused(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the SMSC closed the connection")]
    Closed,
    #[error("the SMSC unbound")]
    Unbound,
    #[error("shutting down")]
    Shutdown,
}

/// A finished background step.
enum Done {
    Put {
        job: u64,
        part: usize,
        carrier_id: CarrierId,
        context: MessageContext,
        error: Option<IndexError>,
    },
    LatePut {
        carrier_id: CarrierId,
        context: MessageContext,
        error: Option<IndexError>,
    },
    Lookup {
        generation: u64,
        seq: u32,
        receipt: Receipt,
        found: Result<Option<MessageContext>, IndexError>,
    },
    Written {
        generation: u64,
        seq: Option<u32>,
        result: Result<(), SinkError>,
        unknown: Option<Unreconciled>,
    },
}

/// One connected and bound link.
struct Conn {
    reader: FramedRead<OwnedReadHalf, SmppCodec>,
    writer: FramedWrite<OwnedWriteHalf, SmppCodec>,
    enquire_due: Instant,
    enquire_wait: Option<(u32, Instant)>,
    paused_until: Option<Instant>,
}

type Step<T> = Result<T, LinkError>;

struct Link {
    role: LinkRole,
    settings: Arc<SmppSettings>,
    index: Arc<dyn ReceiptIndex>,
    sink: Arc<dyn ReportSink>,
    jobs: Option<mpsc::Receiver<Job>>,
    notices_out: Option<mpsc::UnboundedSender<Notice>>,
    notices_in: Option<mpsc::UnboundedReceiver<Notice>>,
    state: Option<watch::Sender<BindState>>,
    shutdown: watch::Receiver<bool>,
    seq: Sequence,
    generation: u64,
    // Submitting side.
    active: HashMap<u64, Active>,
    next_job: u64,
    send_queue: VecDeque<(u64, usize)>,
    window: Window<(u64, usize)>,
    /// Submits that timed out on this connection: a late response still settles them.
    timed_out: HashMap<u32, (MessageContext, String)>,
    concat_ref: u8,
    // Receiving side.
    early: EarlyReceipts<(u64, u32)>,
    ambiguous: Ambiguous,
    recent: Recent,
    pending: FuturesUnordered<BoxFuture<'static, Done>>,
    backoff: Backoff,
    jitter: Jitter,
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

async fn recv_opt<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn recv_notice(rx: &mut Option<mpsc::UnboundedReceiver<Notice>>) -> Option<Notice> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

impl Link {
    fn new(c: LinkConfig) -> Self {
        let s = c.settings.clone();
        let seed = now_millis() as u64 ^ (c.role as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Link {
            role: c.role,
            index: c.index,
            sink: c.sink,
            jobs: c.jobs,
            notices_out: c.notices_out,
            notices_in: c.notices_in,
            state: c.state,
            shutdown: c.shutdown,
            seq: Sequence::default(),
            generation: 0,
            active: HashMap::new(),
            next_job: 0,
            send_queue: VecDeque::new(),
            window: Window::new(s.window, s.submit_timeout()),
            timed_out: HashMap::new(),
            concat_ref: 0,
            early: EarlyReceipts::new(
                s.early_receipt_capacity,
                s.early_receipt_ttl(),
                s.receipt_id_form,
            ),
            ambiguous: Ambiguous::new(s.ambiguous_deadline()),
            recent: Recent::new(s.early_receipt_capacity.max(s.window * 100)),
            pending: FuturesUnordered::new(),
            backoff: Backoff::new(
                Duration::from_millis(s.reconnect_min_ms),
                Duration::from_millis(s.reconnect_max_ms),
            ),
            jitter: Jitter::seeded(seed),
            settings: s,
        }
    }

    fn set_state(&self, state: BindState) {
        if let Some(tx) = &self.state {
            tx.send_if_modified(|current| {
                let changed = *current != state;
                *current = state;
                changed
            });
        }
    }

    /// Shut down when asked, or when the `SmppSender` is gone.
    fn stopping(&self) -> bool {
        *self.shutdown.borrow() || self.shutdown.has_changed().is_err()
    }

    async fn run(mut self) {
        let mut retry_at = Instant::now();
        loop {
            if self.stopping() {
                break;
            }
            self.wait_until(retry_at).await;
            if self.stopping() {
                break;
            }
            let reason = match self.connect_and_bind().await {
                Ok(mut conn) => {
                    self.backoff.reset();
                    self.set_state(BindState::Bound);
                    tracing::info!(role = self.role.name(), host = %self.settings.host, port = self.settings.port, "smpp bound");
                    let err = self.run_bound(&mut conn).await;
                    self.disconnected();
                    err
                }
                Err(err) => err,
            };
            match &reason {
                LinkError::Refused(status) => {
                    self.set_state(BindState::Refused {
                        status: status.clone(),
                    });
                }
                LinkError::Shutdown => break,
                other => self.set_state(BindState::Disconnected {
                    reason: other.to_string(),
                }),
            }
            let delay = self.backoff.next(self.jitter.sample());
            tracing::warn!(role = self.role.name(), error = %reason, retry_in_ms = delay.as_millis() as u64, "smpp link down");
            retry_at = Instant::now() + delay;
        }
        self.stop();
    }

    /// Shut down: whatever was never sent fails with `TryAnotherSender`.
    fn stop(&mut self) {
        if let Some(mut jobs) = self.jobs.take() {
            jobs.close();
            while let Ok(job) = jobs.try_recv() {
                self.accept_job(job);
            }
        }
        let ids: Vec<u64> = self.active.keys().copied().collect();
        for job in ids {
            if let Some(a) = self.active.get_mut(&job) {
                for state in &mut a.states {
                    if matches!(state, PartState::Queued | PartState::InFlight) {
                        *state = PartState::Failed {
                            class: Class::TryAnotherSender,
                            status: status::ESME_RSYSERR,
                        };
                    }
                }
            }
            self.check_job(job);
        }
        self.set_state(BindState::Stopped);
        tracing::info!(role = self.role.name(), "smpp link stopped");
    }

    /// Not connected: serve everything but the connection until `until`.
    async fn wait_until(&mut self, until: Instant) {
        loop {
            let now = Instant::now();
            self.on_timers(now);
            self.fail_stale_jobs(now);
            if now >= until || self.stopping() {
                return;
            }
            let wake = [Some(until), self.next_deadline(), self.stale_deadline()]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(until);
            let take_jobs = self.active.len() < self.settings.window * 4;
            tokio::select! {
                job = recv_opt(&mut self.jobs), if take_jobs => match job {
                    Some(job) => self.accept_job(job),
                    None => { self.jobs = None; }
                },
                done = self.pending.next(), if !self.pending.is_empty() => {
                    if let Some(done) = done {
                        let _ = self.on_done(None, done).await;
                    }
                },
                notice = recv_notice(&mut self.notices_in) => match notice {
                    Some(n) => self.apply_notice(n),
                    None => { self.notices_in = None; }
                },
                _ = tokio::time::sleep_until(wake.into()) => {},
                _ = self.shutdown.changed() => {},
            }
        }
    }

    async fn connect_and_bind(&mut self) -> Step<Conn> {
        self.set_state(BindState::Connecting);
        let timeout = self.settings.submit_timeout();
        let address = (self.settings.host.as_str(), self.settings.port);
        let stream = tokio::time::timeout(timeout, TcpStream::connect(address))
            .await
            .map_err(|_| LinkError::Timeout(timeout))??;
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        let mut conn = Conn {
            reader: FramedRead::new(read, SmppCodec),
            writer: FramedWrite::new(write, SmppCodec),
            enquire_due: Instant::now() + self.settings.enquire_link_interval(),
            enquire_wait: None,
            paused_until: None,
        };
        let s = &self.settings;
        let bind = Bind {
            system_id: s.system_id.clone(),
            password: s.password.expose().to_string(),
            system_type: s.system_type.clone(),
            addr_ton: s.source_addr_ton,
            addr_npi: s.source_addr_npi,
            address_range: String::new(),
        };
        let body = match self.role {
            LinkRole::Transceiver => Body::BindTransceiver(bind),
            LinkRole::Transmitter => Body::BindTransmitter(bind),
            LinkRole::Receiver => Body::BindReceiver(bind),
        };
        let seq = self.seq.allocate();
        conn.writer.send(Pdu::new(seq, 0, body)).await?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let frame = tokio::time::timeout_at(deadline, conn.reader.next())
                .await
                .map_err(|_| LinkError::Timeout(timeout))?;
            match frame {
                None => return Err(LinkError::Closed),
                Some(Err(e)) => return Err(LinkError::Io(e)),
                Some(Ok(Frame::Pdu(pdu))) if pdu.header.sequence_number == seq => {
                    let st = pdu.header.command_status;
                    // A generic_nack or an error status: refused.
                    if st != status::ESME_ROK || pdu.body == Body::GenericNack {
                        return Err(LinkError::Refused(status_name(st)));
                    }
                    return Ok(conn);
                }
                Some(Ok(other)) => {
                    tracing::debug!(?other, "smpp frame before bind_resp ignored");
                }
            }
        }
    }

    /// Serve a bound connection until it ends.
    async fn run_bound(&mut self, conn: &mut Conn) -> LinkError {
        match self.serve(conn).await {
            Ok(()) => LinkError::Closed,
            Err(LinkError::Shutdown) => {
                self.unbind(conn).await;
                LinkError::Shutdown
            }
            Err(e) => e,
        }
    }

    /// Serve until the connection ends. Once stopping, nothing new is sent and the unanswered
    /// submits get up to `submit_timeout_ms` to be answered before the unbind.
    async fn serve(&mut self, conn: &mut Conn) -> Step<()> {
        let mut drain_until: Option<Instant> = None;
        loop {
            let now = Instant::now();
            if self.stopping() {
                let until = *drain_until.get_or_insert(now + self.settings.submit_timeout());
                let puts_pending = self.active.values().any(|a| {
                    a.states
                        .iter()
                        .any(|s| matches!(s, PartState::Accepted { stored: false, .. }))
                });
                if (self.window.is_empty() && !puts_pending) || now >= until {
                    return Err(LinkError::Shutdown);
                }
            } else {
                self.pump(conn).await?;
            }
            let stopping = drain_until.is_some();
            let enquire = conn
                .enquire_wait
                .map(|(_, d)| d)
                .unwrap_or(conn.enquire_due);
            let wake = [
                Some(enquire),
                conn.paused_until,
                self.next_deadline(),
                drain_until,
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now + Duration::from_secs(1));
            let take_jobs = !stopping && self.active.len() < self.settings.window * 4;
            tokio::select! {
                frame = conn.reader.next() => match frame {
                    Some(Ok(frame)) => self.on_frame(conn, frame).await?,
                    Some(Err(e)) => return Err(LinkError::Io(e)),
                    None => return Err(LinkError::Closed),
                },
                job = recv_opt(&mut self.jobs), if take_jobs => match job {
                    Some(job) => self.accept_job(job),
                    None => { self.jobs = None; }
                },
                done = self.pending.next(), if !self.pending.is_empty() => {
                    if let Some(done) = done {
                        self.on_done(Some(conn), done).await?;
                    }
                },
                notice = recv_notice(&mut self.notices_in) => match notice {
                    Some(n) => self.apply_notice(n),
                    None => { self.notices_in = None; }
                },
                _ = tokio::time::sleep_until(wake.into()) => {
                    let now = Instant::now();
                    self.link_timers(conn, now).await?;
                    for (_, (generation, seq)) in self.on_timers(now) {
                        if generation == self.generation {
                            respond(conn, seq, status::ESME_RX_T_APPN).await?;
                        }
                    }
                },
                _ = self.shutdown.changed(), if !stopping => {},
            }
        }
    }

    async fn unbind(&mut self, conn: &mut Conn) {
        let seq = self.seq.allocate();
        if conn
            .writer
            .send(Pdu::new(seq, 0, Body::Unbind))
            .await
            .is_err()
        {
            return;
        }
        let wait = Duration::from_millis(self.settings.submit_timeout_ms.min(2_000));
        let _ = tokio::time::timeout(wait, async {
            while let Some(Ok(frame)) = conn.reader.next().await {
                if let Frame::Pdu(Pdu {
                    body: Body::UnbindResp,
                    ..
                }) = frame
                {
                    break;
                }
            }
        })
        .await;
    }

    /// The connection is gone: its in-flight submits are ambiguous, its held receipts are
    /// dropped (unanswered, the SMSC sends them again).
    fn disconnected(&mut self) {
        for (_, (job, part)) in self.window.drain() {
            self.make_ambiguous(job, part);
        }
        self.timed_out.clear();
        let dropped = self.early.drain().len();
        if dropped > 0 {
            tracing::info!(dropped, "held receipts dropped with their connection");
        }
        self.generation += 1;
    }

    /// One frame from the SMSC, to the side it concerns.
    async fn on_frame(&mut self, conn: &mut Conn, frame: Frame) -> Step<()> {
        let pdu = match frame {
            Frame::Pdu(pdu) => pdu,
            Frame::Bad { header, error } => {
                tracing::warn!(command_id = header.command_id, %error, "undecodable PDU");
                if header.command_id == id::SUBMIT_SM | id::RESP {
                    self.on_submit_resp(
                        conn,
                        header.sequence_number,
                        header.command_status,
                        String::new(),
                    );
                } else if header.command_id & id::RESP == 0 {
                    let nack = Pdu::new(header.sequence_number, 0x02, Body::GenericNack);
                    conn.writer.send(nack).await?;
                }
                return Ok(());
            }
        };
        let (seq, st) = (pdu.header.sequence_number, pdu.header.command_status);
        match pdu.body {
            Body::SubmitSmResp { message_id } => self.on_submit_resp(conn, seq, st, message_id),
            Body::DeliverSm(deliver) => self.on_deliver(conn, seq, deliver).await?,
            Body::EnquireLink => {
                conn.writer
                    .send(Pdu::new(seq, 0, Body::EnquireLinkResp))
                    .await?
            }
            Body::EnquireLinkResp => {
                if conn.enquire_wait.is_some_and(|(s, _)| s == seq) {
                    conn.enquire_wait = None;
                }
            }
            Body::Unbind => {
                conn.writer.send(Pdu::new(seq, 0, Body::UnbindResp)).await?;
                return Err(LinkError::Unbound);
            }
            Body::GenericNack => {
                // A nack for one of our submits: refused, never taken.
                if let Some((job, part)) = self.window.close(seq) {
                    let class = if st == status::ESME_ROK {
                        Class::TryAnotherSender
                    } else {
                        classify(st)
                    };
                    tracing::warn!(seq, status = %status_name(st), "generic_nack for a submit");
                    if let Some(a) = self.active.get_mut(&job) {
                        a.refuse(part, class, st);
                    }
                    self.check_job(job);
                }
            }
            Body::Other(_) if pdu.header.command_id & id::RESP == 0 => {
                let nack = Pdu::new(seq, status::ESME_RINVCMDID, Body::GenericNack);
                conn.writer.send(nack).await?;
            }
            other => tracing::debug!(?other, "PDU ignored"),
        }
        Ok(())
    }

    // ---- timers ----

    fn next_deadline(&self) -> Option<Instant> {
        [
            self.window.next_deadline(),
            self.early.next_deadline(),
            self.ambiguous.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Timers of the connection: enquire_link and the end of a throttling pause.
    async fn link_timers(&mut self, conn: &mut Conn, now: Instant) -> Step<()> {
        if let Some((_, deadline)) = conn.enquire_wait
            && deadline <= now
        {
            return Err(LinkError::Timeout(self.settings.submit_timeout()));
        }
        if conn.enquire_wait.is_none() && conn.enquire_due <= now {
            let seq = self.seq.allocate();
            conn.writer
                .send(Pdu::new(seq, 0, Body::EnquireLink))
                .await?;
            conn.enquire_wait = Some((seq, now + self.settings.submit_timeout()));
            conn.enquire_due = now + self.settings.enquire_link_interval();
        }
        if conn.paused_until.is_some_and(|until| until <= now) {
            conn.paused_until = None;
            self.set_state(BindState::Bound);
        }
        Ok(())
    }

    /// Timers of the submits and receipts; returns the held receipts whose time ran out (to be
    /// answered with a temporary error on their connection).
    fn on_timers(&mut self, now: Instant) -> Vec<(Receipt, (u64, u32))> {
        for (seq, (job, part)) in self.window.expire(now) {
            if let Some(entry) = self.make_ambiguous(job, part) {
                self.timed_out.insert(seq, entry);
            }
        }
        for u in self.ambiguous.expire(now) {
            tracing::warn!(message_id = %u.context.message_id, "ambiguous submit without a receipt: failed as unknown");
            let report = ReceiptReport {
                kind: ReportKind::Unknown,
                context: u.context.clone(),
                carrier_id: None,
                status: switchyard_schemas::ResultStatus::Failed,
                result_code: Class::Ambiguous.result_code(),
                result_text: "unknown: no answer to the submit and no receipt",
                carrier_code: "no submit_sm_resp".into(),
            };
            self.spawn_write(None, report, Some(u));
        }
        let expired = self.early.expire(now);
        for (receipt, _) in &expired {
            tracing::info!(carrier_id = %receipt.carrier_id.0, "held receipt matched no submit in time: temporary error");
        }
        expired
    }
}

/// An index call that takes longer than `limit` counts as the index being unavailable.
async fn bounded<T>(
    limit: Duration,
    call: impl std::future::Future<Output = Result<T, IndexError>>,
) -> Result<T, IndexError> {
    tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
        Err(IndexError::Unavailable(format!(
            "no answer within {} ms",
            limit.as_millis()
        )))
    })
}

async fn respond(conn: &mut Conn, seq: u32, st: u32) -> Step<()> {
    conn.writer
        .send(Pdu::new(seq, st, Body::DeliverSmResp))
        .await?;
    Ok(())
}
