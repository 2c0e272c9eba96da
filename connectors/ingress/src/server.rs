//! How the ingress serves connections: hyper's HTTP/1.1 and HTTP/2 (as `axum::serve` does), with
//! the limits an endpoint on the internet needs ([`ServerLimits`]):
//!
//! - a client has `header_read_timeout` from the first byte of a request to its last header
//!   (a connection that trickles a request head is closed);
//! - a connection with no request in flight for `idle_timeout` is closed (gracefully: HTTP/1.1
//!   closes an idle keep-alive connection, HTTP/2 sends GOAWAY);
//! - at most `max_connections` connections are served at once; over it a new connection is
//!   answered `503` problem+json with `Retry-After: 1` and `Connection: close`, and the
//!   connections already open are served as before.
//!
//! hyper reads and writes HTTP; what is tracked here is only when bytes arrive and when requests
//! begin and end (hyper's own `header_read_timeout` also runs while a keep-alive connection waits
//! for its next request, so it cannot be both a header timeout and a longer idle timeout).
//!
//! A connection the server ends while its client may still be sending (a 413 answered before
//! the body, a 503 over the cap, a timeout) is closed lingering: its write side first, then what
//! still arrives is read and dropped for up to [`LINGER`] until the client closes too. Closing a
//! socket with unread data sends a reset, and a reset can make the client's system drop the
//! answer it had already received.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use switchyard_runtime::CancellationToken;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tower::ServiceExt;

use crate::problem::Problem;

/// The connection limits of the ingress. A zero timeout means none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// From the first byte of a request to the end of its headers.
    pub header_read_timeout: Duration,
    /// How long a connection with no request in flight stays open.
    pub idle_timeout: Duration,
    /// Most connections served at once (at least 1).
    pub max_connections: usize,
}

/// Default of [`ServerLimits::header_read_timeout`].
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default of [`ServerLimits::idle_timeout`].
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default of [`ServerLimits::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Connections over the cap being answered 503 at once; past this many more are closed
/// without an answer, so that a flood costs a bounded amount.
const MAX_REFUSING: usize = 1024;

/// How long a connection the server closes keeps reading (and dropping) what its client still
/// sends, so that the client reads the answer before the connection goes.
pub const LINGER: Duration = Duration::from_secs(5);

/// File descriptors kept for what is not a client connection (the broker, the history store,
/// logs) when checking the open-file limit against `max_connections`.
const SPARE_FILES: u64 = 256;

/// Bind `addr` (port 0 picks one) and serve `app` under `limits` until `shutdown`; `what`
/// names it in logs. Returns the bound address and the serving task, which ends once every
/// connection has: requests in flight at shutdown are answered, idle connections closed.
pub async fn serve_router(
    addr: SocketAddr,
    app: Router,
    limits: ServerLimits,
    shutdown: CancellationToken,
    what: &'static str,
) -> io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    raise_open_file_limit(limits.max_connections, what);
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(accept_loop(listener, app, limits, shutdown, what));
    tracing::info!(
        %bound,
        what,
        max_connections = limits.max_connections,
        header_read_timeout_ms = limits.header_read_timeout.as_millis() as u64,
        idle_timeout_ms = limits.idle_timeout.as_millis() as u64,
        "listening"
    );
    Ok((bound, task))
}

/// Raise the soft open-file limit to the hard one (each connection is a file descriptor), and
/// say so when even that is below `max_connections`.
fn raise_open_file_limit(max_connections: usize, what: &str) {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < max_connections as u64 + SPARE_FILES => tracing::warn!(
            what,
            open_file_limit = limit,
            max_connections,
            "the open-file limit is below max_connections: connections past it fail to be \
             accepted; raise `ulimit -n` (the hard limit) or lower max_connections"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(what, error = %e, "could not read or raise the open-file limit"),
    }
}

async fn accept_loop(
    listener: TcpListener,
    app: Router,
    limits: ServerLimits,
    shutdown: CancellationToken,
    what: &'static str,
) {
    let cap = limits.max_connections.clamp(1, u32::MAX as usize);
    let serving = Arc::new(Semaphore::new(cap));
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    let builder = Arc::new(auto::Builder::new(TokioExecutor::new()));
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of file descriptors, say: wait rather than spin.
                tracing::error!(what, error = %e, "accepting a connection failed");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        let _ = stream.set_nodelay(true);
        if let Ok(permit) = serving.clone().try_acquire_owned() {
            let (app, builder, shutdown) = (app.clone(), builder.clone(), shutdown.clone());
            tokio::spawn(serve_connection(
                stream, app, builder, limits, shutdown, permit,
            ));
        } else if let Ok(permit) = refusing.clone().try_acquire_owned() {
            tracing::debug!(what, cap, "over the connection cap: 503");
            tokio::spawn(refuse_connection(stream, limits, permit));
        } else {
            drop(stream);
        }
    }
    drop(listener);
    // Every connection holds a permit until it ends.
    let _all = serving.acquire_many(cap as u32).await;
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Why a connection is closed by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expired {
    /// No request in flight for the idle timeout.
    Idle,
    /// A request head begun and not finished within the header-read timeout.
    Head,
}

async fn serve_connection(
    stream: TcpStream,
    app: Router,
    builder: Arc<auto::Builder<TokioExecutor>>,
    limits: ServerLimits,
    shutdown: CancellationToken,
    _permit: OwnedSemaphorePermit,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched::new(stream, Some(activity.clone())));
    let service = hyper::service::service_fn({
        let activity = activity.clone();
        move |request: Request<Incoming>| {
            let in_flight = activity.begin();
            let app = app.clone();
            async move {
                let response = app
                    .oneshot(request.map(Body::new))
                    .await
                    .unwrap_or_else(|never: Infallible| match never {});
                Ok::<_, Infallible>(response.map(|body| Tracked {
                    inner: body,
                    _in_flight: in_flight,
                }))
            }
        }
    });
    let connection = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(connection);
    let mut closing = false;
    loop {
        tokio::select! {
            served = connection.as_mut() => {
                if let Err(e) = served {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = shutdown.cancelled(), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            expired = activity.expired(limits), if !closing => match expired {
                Expired::Idle => {
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
                Expired::Head => {
                    tracing::debug!("request head not received in time: closing");
                    return;
                }
            },
        }
    }
}

/// Answer the request of a connection over the cap with 503 and close it. Its client has the
/// header-read timeout (at most 10 s) to send the request.
async fn refuse_connection(stream: TcpStream, limits: ServerLimits, _permit: OwnedSemaphorePermit) {
    let service = hyper::service::service_fn(|_request: Request<Incoming>| async {
        Ok::<_, Infallible>(too_many_connections())
    });
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1.keep_alive(false);
    let connection = http1.serve_connection(TokioIo::new(Watched::new(stream, None)), service);
    let wait = match limits.header_read_timeout {
        Duration::ZERO => DEFAULT_HEADER_READ_TIMEOUT,
        given => given.min(DEFAULT_HEADER_READ_TIMEOUT),
    };
    let _ = tokio::time::timeout(wait, connection).await;
}

/// The answer to a connection over the cap.
pub fn too_many_connections() -> Response<Body> {
    let mut response = Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "too-many-connections",
        "Too many connections",
        "the ingress is serving as many connections as it may; retry in a second",
    )
    .with_headers(vec![(header::RETRY_AFTER, "1".to_string())])
    .into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// When a connection last had a request in flight, and whether a request head is arriving.
#[derive(Debug)]
struct Activity {
    state: Mutex<State>,
    changed: Notify,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct State {
    in_flight: usize,
    /// When the last request ended (or the connection began).
    idle_since: Instant,
    /// When the first byte arrived with no request in flight: a request head is being read.
    head_since: Option<Instant>,
    /// An HTTP/2 connection (its preface first): frames that are no request (settings, pings)
    /// arrive between requests, so only the idle timeout applies.
    http2: bool,
    /// Whether any byte arrived yet.
    started: bool,
}

/// The start of the HTTP/2 connection preface.
const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

impl Activity {
    fn new() -> Self {
        Activity {
            state: Mutex::new(State {
                in_flight: 0,
                idle_since: Instant::now(),
                head_since: None,
                http2: false,
                started: false,
            }),
            changed: Notify::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `bytes` arrived.
    fn read(&self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let mut state = self.state();
        if !state.started {
            state.started = true;
            state.http2 = bytes.starts_with(HTTP2_PREFACE);
        }
        if state.in_flight == 0 && state.head_since.is_none() && !state.http2 {
            state.head_since = Some(Instant::now());
            drop(state);
            self.changed.notify_waiters();
        }
    }

    /// A request begins; it ends when the guard is dropped (its response sent or abandoned).
    fn begin(self: &Arc<Self>) -> InFlight {
        let mut state = self.state();
        state.in_flight += 1;
        state.head_since = None;
        drop(state);
        self.changed.notify_waiters();
        InFlight(self.clone())
    }

    fn end(&self) {
        let mut state = self.state();
        state.in_flight = state.in_flight.saturating_sub(1);
        if state.in_flight == 0 {
            state.idle_since = Instant::now();
            state.head_since = None;
        }
        drop(state);
        self.changed.notify_waiters();
    }

    /// Resolves once the connection has been idle for the idle timeout, or a request head has
    /// taken longer than the header-read timeout.
    async fn expired(&self, limits: ServerLimits) -> Expired {
        let after = |since: Instant, limit: Duration| (!limit.is_zero()).then(|| since + limit);
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registered before the state is read: no change is missed.
            changed.as_mut().enable();
            let seen = *self.state();
            let deadline = match seen {
                State { in_flight: 1.., .. } => None,
                State {
                    head_since: Some(since),
                    ..
                } => after(since, limits.header_read_timeout).map(|at| (at, Expired::Head)),
                State { idle_since, .. } => {
                    after(idle_since, limits.idle_timeout).map(|at| (at, Expired::Idle))
                }
            };
            match deadline {
                None => changed.await,
                Some((at, why)) => tokio::select! {
                    () = tokio::time::sleep_until(at) => {
                        if *self.state() == seen {
                            return why;
                        }
                    }
                    () = changed => {}
                },
            }
        }
    }
}

/// A request in flight on a connection.
#[derive(Debug)]
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// A response body that ends its request when hyper is done with it.
#[derive(Debug)]
struct Tracked {
    inner: Body,
    _in_flight: InFlight,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A client's stream, telling its [`Activity`] (if any) when bytes arrive; dropped before its
/// client closed it, it lingers ([`LINGER`]).
#[derive(Debug)]
struct Watched {
    /// Taken when dropped.
    inner: Option<TcpStream>,
    activity: Option<Arc<Activity>>,
    /// The client closed its side: nothing more will arrive.
    ended: bool,
}

impl Watched {
    fn new(stream: TcpStream, activity: Option<Arc<Activity>>) -> Self {
        Watched {
            inner: Some(stream),
            activity,
            ended: false,
        }
    }

    fn stream(&mut self) -> io::Result<Pin<&mut TcpStream>> {
        self.inner
            .as_mut()
            .map(Pin::new)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        let Some(stream) = self.inner.take() else {
            return;
        };
        if self.ended {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(linger(stream));
        }
    }
}

/// Close the write side, then read and drop whatever still arrives until the client closes
/// (or [`LINGER`] passed), and only then close.
async fn linger(mut stream: TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = stream.shutdown().await;
    let mut sink = vec![0u8; 16 * 1024];
    let _ = tokio::time::timeout(LINGER, async {
        while let Ok(1..) = stream.read(&mut sink).await {}
    })
    .await;
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = self.stream()?.poll_read(cx, buf);
        match &polled {
            Poll::Ready(Ok(())) => {
                let read = &buf.filled()[before..];
                if read.is_empty() && buf.remaining() > 0 {
                    self.ended = true;
                } else if let Some(activity) = &self.activity {
                    activity.read(read);
                }
            }
            Poll::Ready(Err(_)) => self.ended = true,
            Poll::Pending => {}
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.stream()?.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.stream()?.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream()?.poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream()?.poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real time, short limits: a deadline is never early, and late by at most the slack on a
    // loaded machine.
    const HEAD: Duration = Duration::from_millis(200);
    const IDLE: Duration = Duration::from_millis(400);
    const SLACK: Duration = Duration::from_secs(2);
    const LIMITS: ServerLimits = ServerLimits {
        header_read_timeout: HEAD,
        idle_timeout: IDLE,
        max_connections: 1,
    };

    fn within(elapsed: Duration, limit: Duration) {
        assert!(
            elapsed >= limit && elapsed < limit + SLACK,
            "{elapsed:?} for {limit:?}"
        );
    }

    #[tokio::test]
    async fn an_idle_connection_expires_after_the_idle_timeout_and_a_request_resets_it() {
        let activity = Arc::new(Activity::new());
        let start = Instant::now();
        assert_eq!(activity.expired(LIMITS).await, Expired::Idle);
        within(start.elapsed(), IDLE);

        // A request in flight never expires; once it ends the idle time starts again.
        let in_flight = activity.begin();
        let waited = tokio::time::timeout(IDLE * 3, activity.expired(LIMITS)).await;
        assert!(waited.is_err(), "expired with a request in flight");
        drop(in_flight);
        let ended = Instant::now();
        assert_eq!(activity.expired(LIMITS).await, Expired::Idle);
        within(ended.elapsed(), IDLE);
    }

    #[tokio::test]
    async fn a_request_head_has_the_header_timeout_from_its_first_byte() {
        let activity = Arc::new(Activity::new());
        tokio::time::sleep(IDLE / 2).await;
        activity.read(b"GET / HT");
        let first_byte = Instant::now();
        // More bytes do not extend it.
        tokio::time::sleep(HEAD / 2).await;
        activity.read(b"TP/1.1\r\n");
        assert_eq!(activity.expired(LIMITS).await, Expired::Head);
        within(first_byte.elapsed(), HEAD);
    }

    #[tokio::test]
    async fn http2_frames_between_requests_are_not_a_request_head() {
        let activity = Arc::new(Activity::new());
        let start = Instant::now();
        activity.read(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        assert_eq!(activity.expired(LIMITS).await, Expired::Idle);
        within(start.elapsed(), IDLE);
    }

    #[tokio::test]
    async fn zero_timeouts_are_none() {
        let none = ServerLimits {
            header_read_timeout: Duration::ZERO,
            idle_timeout: Duration::ZERO,
            max_connections: 1,
        };
        let activity = Arc::new(Activity::new());
        let waited = tokio::time::timeout(IDLE * 2, activity.expired(none)).await;
        assert!(waited.is_err(), "idle");
        activity.read(b"G");
        let waited = tokio::time::timeout(HEAD * 2, activity.expired(none)).await;
        assert!(waited.is_err(), "head");
    }
}
