//! Graceful shutdown, bounded. SIGTERM or SIGINT cancels a token every long-running task
//! watches (a failed role cancels the same token); from then on the process has its grace
//! period ([`set_grace`], `--shutdown-timeout-seconds`, default 30 s) to finish its batches,
//! commit and leave. A watchdog thread enforces it outside the async runtime, whose threads may
//! be stuck in librdkafka calls that wait for a broker that is gone (a transaction's commit or
//! abort, a consumer's close, a producer's flush on drop): when the grace period expires — or
//! at a second signal — it says what did not finish ([`on_overdue`]), kills the child processes
//! ([`track_child`]) and exits without running librdkafka's destructors ([`exit`]). What was not
//! committed is consumed again after the restart: offsets only move with a commit.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// The grace period when nothing sets one.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);

/// The exit status of a process that left with work unfinished when its grace period expired
/// (0: every role stopped in time; 1: a role failed).
pub const EXIT_OVERDUE: i32 = 2;

static GRACE_MS: AtomicU64 = AtomicU64::new(30_000);

/// What to say, and which exit status to give, when the grace period expired.
type OverdueHook = Box<dyn Fn(Duration) -> i32 + Send + Sync>;
static OVERDUE: Mutex<Option<OverdueHook>> = Mutex::new(None);

/// Child processes (each the leader of its own process group) killed on the way out.
static CHILDREN: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

static EXITING: AtomicBool = AtomicBool::new(false);

/// Set the grace period: how long after a shutdown request the process may take to stop.
pub fn set_grace(grace: Duration) {
    let ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
    GRACE_MS.store(ms, Ordering::SeqCst);
}

/// The grace period.
pub fn grace() -> Duration {
    Duration::from_millis(GRACE_MS.load(Ordering::SeqCst))
}

/// What the watchdog does when the grace period expired, before it exits: log what is still
/// unfinished and return the exit status. Replaces any earlier hook.
pub fn on_overdue(hook: impl Fn(Duration) -> i32 + Send + Sync + 'static) {
    *OVERDUE.lock().unwrap_or_else(PoisonError::into_inner) = Some(Box::new(hook));
}

/// Kill the process group led by `pid` (a child spawned with `process_group(0)`) on the way
/// out, however the process ends short of SIGKILL.
pub fn track_child(pid: u32) {
    CHILDREN
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(pid);
}

/// `pid` was stopped and reaped: not to be killed again (its number may be reused).
pub fn forget_child(pid: u32) {
    CHILDREN
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&pid);
}

/// SIGKILL every tracked child's process group (the child and whatever it started, e.g. the
/// real node behind a version manager's shim). Reaping is the caller's; a process that exits
/// right after leaves it to init.
pub fn kill_children() {
    let pids: Vec<u32> = CHILDREN
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .copied()
        .collect();
    for pid in pids {
        kill_group(pid);
    }
}

/// SIGKILL the process group led by `pid`, or `pid` alone if it leads none.
pub fn kill_group(pid: u32) {
    let kill = |target: String| {
        Command::new("kill")
            .args(["-KILL", "--", &target])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !kill(format!("-{pid}")) {
        kill(pid.to_string());
    }
}

/// Leave the process now with `code`: kill the tracked children and exit without waiting for
/// anything else (no destructor runs: a librdkafka client's can block on a dead broker;
/// `std::process::exit` still flushes stdout unless another thread holds it). A second caller
/// (the watchdog and the main path at once) waits for the first.
pub fn exit(code: i32) -> ! {
    if EXITING.swap(true, Ordering::SeqCst) {
        loop {
            std::thread::park();
        }
    }
    kill_children();
    std::process::exit(code)
}

/// A token cancelled on the first SIGTERM or SIGINT (Ctrl-C). From that signal, or from any
/// other cancellation of the token (a failed role), the process has the grace period to exit;
/// then — or at a second signal — the watchdog calls the [`on_overdue`] hook and [`exit`]s.
pub fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    // The watchdog runs on a thread and a runtime of its own: the process's async threads may
    // be blocked in librdkafka calls when it matters.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("shutdown")
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::warn!(error = %e, "no shutdown watchdog; stopping is not bounded");
            return unbounded(token);
        }
    };
    // Listen before returning, so a signal right after this call is already ours.
    let signals = {
        let _entered = runtime.enter();
        Signals::listen()
    };
    let watched = token.clone();
    let spawned = std::thread::Builder::new()
        .name("shutdown".into())
        .spawn(move || runtime.block_on(watch(watched, signals)));
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no shutdown watchdog; stopping is not bounded");
        return unbounded(token);
    }
    token
}

/// The watchdog: wait for a signal (or the token), cancel the token, then give the process its
/// grace period.
async fn watch(token: CancellationToken, mut signals: Signals) {
    let signal = tokio::select! {
        signal = signals.next() => Some(signal),
        _ = token.cancelled() => None,
    };
    let grace = grace();
    match signal {
        Some(signal) => {
            tracing::info!(
                signal,
                grace_seconds = grace.as_secs_f64(),
                "shutdown requested: finishing in-flight work"
            );
            token.cancel();
        }
        None => {
            tracing::info!(
                grace_seconds = grace.as_secs_f64(),
                "stopping: finishing in-flight work"
            );
        }
    }
    tokio::select! {
        _ = tokio::time::sleep(grace) => {}
        signal = signals.next() => {
            tracing::warn!(signal, "second signal: leaving now, without waiting for in-flight work");
        }
    }
    let hook = OVERDUE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    let code = match hook {
        Some(hook) => hook(grace),
        None => {
            tracing::error!(
                grace_seconds = grace.as_secs_f64(),
                "the process did not stop within {} s of the shutdown request; leaving without \
                 waiting (what was not committed is consumed again after the restart)",
                grace.as_secs_f64()
            );
            EXIT_OVERDUE
        }
    };
    exit(code)
}

/// The old way, if no watchdog thread can start: a task that cancels the token on a signal.
fn unbounded(token: CancellationToken) -> CancellationToken {
    let cancel = token.clone();
    tokio::spawn(async move {
        let mut signals = Signals::listen();
        let signal = signals.next().await;
        tracing::info!(signal, "shutdown requested: finishing in-flight work");
        cancel.cancel();
    });
    token
}

/// SIGTERM and SIGINT.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    /// Listen (in the current runtime).
    fn listen() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let listen = |kind: SignalKind, name: &str| match signal(kind) {
                Ok(stream) => Some(stream),
                Err(e) => {
                    tracing::warn!(error = %e, signal = name, "cannot listen for the signal");
                    None
                }
            };
            Signals {
                term: listen(SignalKind::terminate(), "SIGTERM"),
                int: listen(SignalKind::interrupt(), "SIGINT"),
            }
        }
        #[cfg(not(unix))]
        {
            Signals {}
        }
    }

    /// The next signal's name.
    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            async fn recv(stream: &mut Option<tokio::signal::unix::Signal>) {
                let received = match stream {
                    Some(stream) => stream.recv().await.is_some(),
                    None => false,
                };
                // Not listening, or the runtime is going away: no signal will come.
                if !received {
                    std::future::pending::<()>().await;
                }
            }
            tokio::select! {
                _ = recv(&mut self.term) => "SIGTERM",
                _ = recv(&mut self.int) => "SIGINT",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grace_period_is_settable() {
        assert_eq!(DEFAULT_GRACE, Duration::from_secs(30));
        set_grace(Duration::from_millis(1500));
        assert_eq!(grace(), Duration::from_millis(1500));
        set_grace(DEFAULT_GRACE);
        assert_eq!(grace(), DEFAULT_GRACE);
    }
}
