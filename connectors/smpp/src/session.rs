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
            self.on_timers(None, now);
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

    async fn serve(&mut self, conn: &mut Conn) -> Step<()> {
        loop {
            self.pump(conn).await?;
            let now = Instant::now();
            let enquire = conn
                .enquire_wait
                .map(|(_, d)| d)
                .unwrap_or(conn.enquire_due);
            let wake = [Some(enquire), conn.paused_until, self.next_deadline()]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(now + Duration::from_secs(1));
            let take_jobs = self.active.len() < self.settings.window * 4;
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
                    for (_, (generation, seq)) in self.on_timers(Some(conn), now) {
                        if generation == self.generation {
                            respond(conn, seq, status::ESME_RX_T_APPN).await?;
                        }
                    }
                },
                _ = self.shutdown.changed() => {},
            }
            if self.stopping() {
                return Err(LinkError::Shutdown);
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

    // ---- submitting side ----

    fn accept_job(&mut self, job: Job) {
        let s = &self.settings;
        self.concat_ref = self.concat_ref.wrapping_add(1);
        let parts = match encode(
            &job.message.text,
            s.data_coding,
            s.long_text,
            self.concat_ref,
        ) {
            Ok(parts) => parts,
            Err(e) => {
                let _ = job.reply.send(crate::sender::SubmitOutcome::Failed {
                    class: Class::Permanent,
                    code: Class::Permanent.result_code(),
                    detail: e.to_string(),
                });
                return;
            }
        };
        let id = self.next_job;
        self.next_job += 1;
        let active = Active::new(job, parts);
        for part in 0..active.parts.len() {
            self.send_queue.push_back((id, part));
        }
        self.active.insert(id, active);
    }

    /// Fail the submits that waited longer than `bind_wait` for a bind and were never sent.
    fn fail_stale_jobs(&mut self, now: Instant) {
        let wait = self.settings.bind_wait();
        let stale: Vec<u64> = self
            .active
            .iter()
            .filter(|(_, a)| !a.sent_any() && a.created + wait <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            if let Some(a) = self.active.get_mut(&id) {
                a.refuse(0, Class::TryAnotherSender, status::ESME_RSYSERR);
            }
            self.send_queue.retain(|(job, _)| *job != id);
            tracing::info!(
                role = self.role.name(),
                "submit failed: no bind within bind_wait_ms"
            );
            self.check_job(id);
        }
    }

    fn stale_deadline(&self) -> Option<Instant> {
        let wait = self.settings.bind_wait();
        self.active
            .values()
            .filter(|a| !a.sent_any())
            .map(|a| a.created + wait)
            .min()
    }

    /// Send queued parts while the window has room and the bind is not paused.
    async fn pump(&mut self, conn: &mut Conn) -> Step<()> {
        let mut sent = false;
        while conn.paused_until.is_none() && self.window.has_room() {
            let Some((job, part)) = self.send_queue.pop_front() else {
                break;
            };
            let Some(active) = self.active.get_mut(&job) else {
                continue;
            };
            if active.states.get(part) != Some(&PartState::Queued) {
                continue;
            }
            let pdu = submit_pdu(&self.settings, active, part);
            let seq = self.seq.allocate();
            active.states[part] = PartState::InFlight;
            if self.window.open(seq, (job, part), Instant::now()).is_err() {
                active.states[part] = PartState::Queued;
                self.send_queue.push_front((job, part));
                break;
            }
            conn.writer
                .feed(Pdu::new(seq, 0, Body::SubmitSm(pdu)))
                .await?;
            sent = true;
        }
        if sent {
            conn.writer.flush().await?;
        }
        Ok(())
    }

    fn make_ambiguous(&mut self, job: u64, part: usize) -> Option<(MessageContext, String)> {
        let a = self.active.get_mut(&job)?;
        a.states[part] = PartState::Ambiguous;
        let context = a.context(part, now_millis());
        let text = a.parts[part].text.clone();
        tracing::warn!(message_id = %context.message_id, part = context.part, "submit ambiguous: not answered; waiting for a receipt");
        self.notify(Notice::Ambiguous {
            context: context.clone(),
            text: text.clone(),
        });
        self.check_job(job);
        Some((context, text))
    }

    fn check_job(&mut self, job: u64) {
        let Some(outcome) = self.active.get(&job).and_then(Active::outcome) else {
            return;
        };
        if let Some(mut a) = self.active.remove(&job) {
            tracing::debug!(message_id = %a.message.message_id, ?outcome, "submit settled");
            if let Some(reply) = a.reply.take() {
                let _ = reply.send(outcome);
            }
        }
    }

    fn on_submit_resp(&mut self, conn: &mut Conn, seq: u32, st: u32, message_id: String) {
        let now = Instant::now();
        if let Some((job, part)) = self.window.close(seq) {
            if st == status::ESME_ROK && message_id.trim().is_empty() {
                // Taken, but under no id we can match: only a receipt by recipient settles it.
                self.make_ambiguous(job, part);
                return;
            }
            let Some(a) = self.active.get_mut(&job) else {
                return;
            };
            if st == status::ESME_ROK {
                let carrier_id = CarrierId(message_id.trim().to_string());
                a.states[part] = PartState::Accepted {
                    carrier_id: carrier_id.0.clone(),
                    stored: false,
                };
                let context = a.context(part, now_millis());
                let index = self.index.clone();
                self.pending.push(Box::pin(async move {
                    let keys = carrier_id.keys();
                    let error = index.put(&keys, &context).await.err();
                    Done::Put {
                        job,
                        part,
                        carrier_id,
                        context,
                        error,
                    }
                }));
                return;
            }
            let class = classify(st);
            if class == Class::Throttled {
                a.throttles += 1;
                let pause = self.settings.throttle_pause();
                conn.paused_until = Some(now + pause);
                if let Some(tx) = &self.state {
                    tx.send_replace(BindState::Paused);
                }
                if a.throttles > self.settings.max_throttle_retries {
                    a.refuse(part, class, st);
                } else {
                    a.states[part] = PartState::Queued;
                    self.send_queue.push_front((job, part));
                    tracing::info!(message_id = %a.message.message_id, status = %status_name(st), pause_ms = pause.as_millis() as u64, "throttled: bind paused, submit queued again");
                    return;
                }
            } else {
                tracing::info!(message_id = %a.message.message_id, status = %status_name(st), ?class, "submit refused");
                a.refuse(part, class, st);
            }
            self.check_job(job);
        } else if let Some((context, text)) = self.timed_out.remove(&seq) {
            self.notify(Notice::Resolved {
                message_id: context.message_id.clone(),
                part: context.part,
            });
            if st == status::ESME_ROK && !message_id.trim().is_empty() {
                tracing::info!(message_id = %context.message_id, "late submit_sm_resp: ambiguous submit accepted");
                let carrier_id = CarrierId(message_id.trim().to_string());
                let index = self.index.clone();
                self.pending.push(Box::pin(async move {
                    let keys = carrier_id.keys();
                    let error = index.put(&keys, &context).await.err();
                    Done::LatePut {
                        carrier_id,
                        context,
                        error,
                    }
                }));
            } else if st != status::ESME_ROK {
                let class = classify(st);
                let report = ReceiptReport {
                    kind: ReportKind::LateRefusal,
                    context,
                    carrier_id: None,
                    status: switchyard_schemas::ResultStatus::Failed,
                    result_code: class.result_code(),
                    result_text: "the carrier refused the message after its deadline",
                    carrier_code: status_name(st),
                };
                self.spawn_write(None, report, None);
            } else {
                // Accepted without an id, late: back to waiting for a receipt by recipient.
                self.notify(Notice::Ambiguous { context, text });
            }
        } else {
            tracing::debug!(seq, "submit_sm_resp for no submit of ours");
        }
    }

    // ---- receiving side ----

    fn notify(&mut self, notice: Notice) {
        if self.role.receives() {
            self.apply_notice(notice);
        } else if let Some(tx) = &self.notices_out {
            let _ = tx.send(notice);
        }
    }

    fn apply_notice(&mut self, notice: Notice) {
        match notice {
            Notice::Accepted {
                carrier_id,
                context,
            } => {
                for (receipt, (generation, seq)) in
                    self.early.take_matching(&carrier_id, &context.to)
                {
                    tracing::debug!(carrier_id = %receipt.carrier_id.0, "held receipt matched its submit_sm_resp");
                    let report = receipt_report(&receipt, context.clone());
                    self.spawn_write(Some((generation, seq)), report, None);
                }
                self.recent.insert(&carrier_id, context);
            }
            Notice::Ambiguous { context, text } => {
                self.ambiguous.add(context, text, Instant::now())
            }
            Notice::Resolved { message_id, part } => {
                self.ambiguous.resolved(&message_id, part);
            }
        }
    }

    async fn on_deliver(&mut self, conn: &mut Conn, seq: u32, deliver: ShortMessage) -> Step<()> {
        match parse(&deliver) {
            None => {
                tracing::info!(from = %deliver.source_addr, "mobile-originated deliver_sm acknowledged (not handled)");
                respond(conn, seq, status::ESME_ROK).await
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "unreadable receipt refused");
                respond(conn, seq, 0x65).await
            }
            Some(Ok(receipt)) => {
                let form = self.settings.receipt_id_form;
                if let Some(context) = self.recent.find(&receipt, form) {
                    let report = receipt_report(&receipt, context);
                    self.spawn_write(Some((self.generation, seq)), report, None);
                    return Ok(());
                }
                let index = self.index.clone();
                let generation = self.generation;
                self.pending.push(Box::pin(async move {
                    let found = lookup(index.as_ref(), &receipt, form).await;
                    Done::Lookup {
                        generation,
                        seq,
                        receipt,
                        found,
                    }
                }));
                Ok(())
            }
        }
    }

    fn spawn_write(
        &mut self,
        answer: Option<(u64, u32)>,
        report: ReceiptReport,
        unknown: Option<Unreconciled>,
    ) {
        let sink = self.sink.clone();
        let generation = answer.map(|(g, _)| g).unwrap_or(self.generation);
        let seq = answer.map(|(_, s)| s);
        self.pending.push(Box::pin(async move {
            let result = sink.write(report).await;
            Done::Written {
                generation,
                seq,
                result,
                unknown,
            }
        }));
    }

    async fn on_done(&mut self, mut conn: Option<&mut Conn>, done: Done) -> Step<()> {
        match done {
            Done::Put {
                job,
                part,
                carrier_id,
                context,
                error,
            } => {
                if let Some(e) = error {
                    tracing::error!(message_id = %context.message_id, error = %e, "carrier id not stored: a receipt after a restart will not match");
                }
                if let Some(a) = self.active.get_mut(&job)
                    && let Some(PartState::Accepted { stored, .. }) = a.states.get_mut(part)
                {
                    *stored = true;
                }
                self.notify(Notice::Accepted {
                    carrier_id,
                    context,
                });
                self.check_job(job);
            }
            Done::LatePut {
                carrier_id,
                context,
                error,
            } => {
                if let Some(e) = error {
                    tracing::error!(message_id = %context.message_id, error = %e, "late carrier id not stored");
                }
                self.notify(Notice::Accepted {
                    carrier_id,
                    context,
                });
            }
            Done::Lookup {
                generation,
                seq,
                receipt,
                found,
            } => {
                let context = match found {
                    Ok(Some(context)) => Some(context),
                    Ok(None) => self
                        .recent
                        .find(&receipt, self.settings.receipt_id_form)
                        .or_else(|| self.ambiguous.reconcile(&receipt)),
                    Err(e) => {
                        tracing::warn!(error = %e, "receipt index unavailable: receipt answered with a temporary error");
                        if let Some(conn) = conn.as_deref_mut()
                            && generation == self.generation
                        {
                            respond(conn, seq, status::ESME_RX_T_APPN).await?;
                        }
                        return Ok(());
                    }
                };
                match context {
                    Some(context) => {
                        let report = receipt_report(&receipt, context);
                        self.spawn_write(Some((generation, seq)), report, None);
                    }
                    None if generation == self.generation => {
                        tracing::debug!(carrier_id = %receipt.carrier_id.0, "receipt before its submit_sm_resp: held");
                        if let Err((full, _)) =
                            self.early.hold(receipt, (generation, seq), Instant::now())
                        {
                            tracing::warn!(error = %full, "receipt answered with a temporary error");
                            if let Some(conn) = conn.as_deref_mut() {
                                respond(conn, seq, status::ESME_RX_T_APPN).await?;
                            }
                        }
                    }
                    None => {}
                }
            }
            Done::Written {
                generation,
                seq,
                result,
                unknown,
            } => {
                if let Err(e) = &result {
                    tracing::warn!(error = %e, "report not written");
                }
                if let (Some(seq), Some(conn)) = (seq, conn)
                    && generation == self.generation
                {
                    let st = if result.is_ok() {
                        status::ESME_ROK
                    } else {
                        status::ESME_RX_T_APPN
                    };
                    respond(conn, seq, st).await?;
                }
                if let (Err(_), Some(mut u)) = (result, unknown) {
                    u.until = Instant::now() + self.settings.throttle_pause();
                    self.ambiguous.retry_later(u);
                }
            }
        }
        Ok(())
    }

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
    fn on_timers(&mut self, conn: Option<&mut Conn>, now: Instant) -> Vec<(Receipt, (u64, u32))> {
        let _ = conn;
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

/// The report of a receipt about `context`.
fn receipt_report(receipt: &Receipt, context: MessageContext) -> ReceiptReport {
    let (status, result_code, result_text) = receipt_result(&receipt.stat);
    let carrier_code = match &receipt.err {
        Some(err) => format!("{} err:{err}", receipt.stat),
        None => receipt.stat.clone(),
    };
    ReceiptReport {
        kind: ReportKind::Receipt,
        context,
        carrier_id: Some(receipt.carrier_id.0.clone()),
        status,
        result_code,
        result_text,
        carrier_code,
    }
}

/// Find the context of `receipt` in the index, by the carrier-id rule.
async fn lookup(
    index: &dyn ReceiptIndex,
    receipt: &Receipt,
    form: crate::receipts::IdForm,
) -> Result<Option<MessageContext>, IndexError> {
    for key in receipt.carrier_id.lookup_keys(form) {
        if let Some(context) = index.get(&key).await?
            && crate::receipts::same_recipient(&context.to, &receipt.recipient)
        {
            return Ok(Some(context));
        }
    }
    Ok(None)
}

async fn respond(conn: &mut Conn, seq: u32, st: u32) -> Step<()> {
    conn.writer
        .send(Pdu::new(seq, st, Body::DeliverSmResp))
        .await?;
    Ok(())
}

/// The submit_sm of part `part`.
fn submit_pdu(s: &SmppSettings, a: &Active, part: usize) -> ShortMessage {
    let encoded = &a.parts[part];
    let mut tlvs = Vec::new();
    if let Some(payload) = &encoded.payload {
        tlvs.push(Tlv {
            tag: tag::MESSAGE_PAYLOAD,
            value: payload.clone(),
        });
    }
    ShortMessage {
        service_type: String::new(),
        source_addr_ton: s.source_addr_ton,
        source_addr_npi: s.source_addr_npi,
        source_addr: a
            .message
            .from
            .clone()
            .unwrap_or_else(|| s.source_addr.clone()),
        dest_addr_ton: s.dest_addr_ton,
        dest_addr_npi: s.dest_addr_npi,
        destination_addr: a.message.to.clone(),
        esm_class: if encoded.udh { 0x40 } else { 0x00 },
        registered_delivery: u8::from(s.registered_delivery),
        data_coding: s.data_coding.value(),
        short_message: encoded.short_message.clone(),
        tlvs,
        ..ShortMessage::default()
    }
}
