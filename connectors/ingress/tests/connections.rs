//! The ingress as a client on the network meets it, with no broker: its connection limits (idle
//! and header-read timeouts, the connection cap, an oversized `Content-Length` refused before
//! its body), its answers to requests it does not serve (404/405 problem+json, 401 with its
//! challenge, two `Authorization` headers), and which client sees which message. The real
//! router on a runtime pointed at no broker: nothing here publishes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use switchyard_config::hash_api_key;
use switchyard_history::{HistoryRecord, HistoryStore};
use switchyard_ingress::{Ingress, ServerLimits, serve_with};
use switchyard_runtime::{CancellationToken, ConfigTables, KafkaSettings, Origin, Runtime};
use switchyard_schemas::{ApiClientConfig, Channel, Submission};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

const WEB_KEY: &str = "sk-acme-web";
const BATCH_KEY: &str = "sk-acme-batch";
const BETA_KEY: &str = "sk-beta-web";

/// A running ingress and what it reads.
struct Served {
    addr: SocketAddr,
    url: String,
    history: HistoryStore,
    /// The health of the ingress's process (its roles and stages).
    health: switchyard_runtime::Health,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

fn client(customer: &str, id: &str, key: &str) -> ApiClientConfig {
    ApiClientConfig {
        client_id: id.into(),
        customer_id: customer.into(),
        key_hash: hash_api_key(key),
        report_url: None,
        signing_secret: None,
        signing_secret_previous: None,
        enabled: true,
        rate_limit_per_second: None,
    }
}

/// The ingress with `limits`: customer acme with clients acme-web and acme-batch, customer
/// beta with beta-web; the history in a fresh SQLite file.
async fn serve(limits: ServerLimits) -> anyhow::Result<Served> {
    let dir = tempfile::tempdir()?;
    let history =
        HistoryStore::open(&format!("sqlite://{}", dir.path().join("h.db").display())).await?;
    // Nothing listens on port 9: a test that published would fail, not hang.
    let runtime = Runtime::new(KafkaSettings::new("127.0.0.1:9"), "http://127.0.0.1:9")?;
    let tables = ConfigTables::fixed(
        Vec::new(),
        vec![
            client("acme", "acme-web", WEB_KEY),
            client("acme", "acme-batch", BATCH_KEY),
            client("beta", "beta-web", BETA_KEY),
        ],
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    let health = runtime.health.clone();
    let ingress = Ingress {
        runtime,
        tables,
        history: history.clone(),
        limits: Arc::default(),
    };
    let shutdown = CancellationToken::new();
    let (addr, task) =
        serve_with("127.0.0.1:0".parse()?, ingress, limits, shutdown.clone()).await?;
    Ok(Served {
        addr,
        url: format!("http://{addr}"),
        history,
        health,
        shutdown,
        task,
        _dir: dir,
    })
}

fn limits(header: Duration, idle: Duration, max_connections: usize) -> ServerLimits {
    ServerLimits {
        header_read_timeout: header,
        idle_timeout: idle,
        max_connections,
    }
}

/// One HTTP/1.1 response as read off the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    /// Header names in lower case.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Read one response (the test's side of HTTP/1.1: a head, then `Content-Length` bytes).
async fn read_answer(stream: &mut TcpStream) -> anyhow::Result<Answer> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = stream.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "closed before a response head: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec())?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .ok_or_else(|| anyhow::anyhow!("no status line in {head:?}"))?
        .parse()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map(|(_, v)| v.parse())
        .transpose()?
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "closed in a response body");
        body.extend_from_slice(&chunk[..n]);
    }
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// `GET /healthz` on `stream`, keeping the connection open.
async fn health(stream: &mut TcpStream) -> anyhow::Result<Answer> {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: ingress\r\n\r\n")
        .await?;
    read_answer(stream).await
}

/// Whether the server closed `stream` (a read sees the end, or a reset) within `wait`.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut byte = [0u8; 1];
    match tokio::time::timeout(wait, stream.read(&mut byte)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) => panic!("unexpected bytes from the server"),
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_thousand_idle_connections_are_all_closed_after_the_idle_timeout() -> anyhow::Result<()>
{
    let idle = Duration::from_secs(1);
    let served = serve(limits(Duration::from_secs(10), idle, 10_000)).await?;
    // The server raised the soft open-file limit to the hard one; both ends of 2,000
    // connections live in this process.
    let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
    if soft < 4_500 {
        eprintln!("skipped: the open-file limit is {soft}; 2,000 connections need ~4,100");
        return Ok(());
    }
    let addr = served.addr;
    let connected: Vec<(TcpStream, Instant)> = futures::stream::iter(0..2_000)
        .map(|_| async move {
            // Taken before the server can have accepted it.
            let connecting = Instant::now();
            let stream = TcpStream::connect(addr).await?;
            anyhow::Ok((stream, connecting))
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let all_open = Instant::now();
    // Each sees the server close it, and not before the idle timeout.
    let closes = connected
        .into_iter()
        .map(|(mut stream, opened)| async move {
            let mut byte = [0u8; 1];
            let read = tokio::time::timeout(idle + Duration::from_secs(20), stream.read(&mut byte))
                .await
                .map_err(|_| anyhow::anyhow!("still open after the idle timeout and 20 s"))?;
            let closed_after = opened.elapsed();
            match read {
                Ok(0) => anyhow::Ok(closed_after),
                Ok(n) => anyhow::bail!("{n} unexpected bytes"),
                Err(e) => anyhow::bail!("read failed: {e}"),
            }
        });
    let after: Vec<Duration> = futures::future::join_all(closes)
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let done = all_open.elapsed();
    assert_eq!(after.len(), 2_000);
    let earliest = after.iter().min().copied().unwrap_or_default();
    assert!(earliest >= idle, "one closed after {earliest:?}");
    assert!(done < Duration::from_secs(15), "closing took {done:?}");
    // Their slots are free again: a new connection is served.
    let mut stream = TcpStream::connect(addr).await?;
    assert_eq!(health(&mut stream).await?.status, 200);
    served.shutdown.cancel();
    served.task.await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keep_alive_connection_is_closed_once_idle_after_its_last_request() -> anyhow::Result<()>
{
    let idle = Duration::from_millis(800);
    let served = serve(limits(Duration::from_secs(10), idle, 100)).await?;
    let mut stream = TcpStream::connect(served.addr).await?;
    // Requests closer together than the idle timeout keep it open: 3 × 500 ms > 800 ms.
    for _ in 0..3 {
        assert_eq!(health(&mut stream).await?.status, 200);
        tokio::time::sleep(idle * 5 / 8).await;
    }
    assert_eq!(health(&mut stream).await?.status, 200);
    let answered = Instant::now();
    assert!(closed_within(&mut stream, idle + Duration::from_secs(10)).await);
    assert!(
        answered.elapsed() >= idle,
        "closed after {:?}",
        answered.elapsed()
    );
    served.shutdown.cancel();
    served.task.await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_not_finished_within_the_header_timeout_is_closed() -> anyhow::Result<()> {
    let header = Duration::from_secs(1);
    let served = serve(limits(header, Duration::from_secs(60), 100)).await?;
    // Trickled: a byte every 200 ms never finishes the head; the timeout runs from the first.
    let mut slow = TcpStream::connect(served.addr).await?;
    let mut silent = TcpStream::connect(served.addr).await?;
    let first_byte = Instant::now();
    let mut closed = false;
    for byte in b"GET /healthz HTTP/1.1\r\nhost: ingress\r\nx-slow: "
        .iter()
        .cycle()
    {
        if slow.write_all(&[*byte]).await.is_err()
            || closed_within(&mut slow, Duration::from_millis(200)).await
        {
            closed = true;
            break;
        }
        anyhow::ensure!(
            first_byte.elapsed() < header + Duration::from_secs(10),
            "a trickled head was not cut off"
        );
    }
    assert!(closed);
    let after = first_byte.elapsed();
    assert!(after >= header, "closed after {after:?}");
    // A connection that sent nothing is idle, not a late head: the 60 s idle timeout applies.
    assert!(!closed_within(&mut silent, Duration::from_millis(500)).await);
    assert_eq!(health(&mut silent).await?.status, 200);
    served.shutdown.cancel();
    served.task.await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn over_the_connection_cap_a_new_connection_gets_503_and_the_others_are_served()
-> anyhow::Result<()> {
    let cap = 50;
    let served = serve(limits(
        Duration::from_secs(10),
        Duration::from_secs(60),
        cap,
    ))
    .await?;
    let mut open = Vec::new();
    for _ in 0..cap {
        let mut stream = TcpStream::connect(served.addr).await?;
        // Answered: the server holds this connection in one of its slots.
        assert_eq!(health(&mut stream).await?.status, 200);
        open.push(stream);
    }
    let mut over = TcpStream::connect(served.addr).await?;
    let refused = health(&mut over).await?;
    assert_eq!(refused.status, 503);
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(
        refused.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(refused.header("connection"), Some("close"));
    assert_eq!(
        refused.json()["type"],
        "https://switchyard.dev/problems/too-many-connections"
    );
    assert!(closed_within(&mut over, Duration::from_secs(5)).await);

    // Connections under the cap are still served.
    for stream in open.iter_mut().take(5) {
        assert_eq!(health(stream).await?.status, 200);
    }
    // Once one closes, a new connection gets its slot (as soon as the server saw the close).
    drop(open.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut stream = TcpStream::connect(served.addr).await?;
        let answer = health(&mut stream).await?;
        if answer.status == 200 {
            break;
        }
        assert_eq!(answer.status, 503);
        anyhow::ensure!(Instant::now() < deadline, "the freed slot was never reused");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    served.shutdown.cancel();
    drop(open);
    served.task.await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_body_over_the_limit_is_refused_before_it_is_sent() -> anyhow::Result<()> {
    let served = serve(ServerLimits::default()).await?;
    let mut stream = TcpStream::connect(served.addr).await?;
    let head = format!(
        "POST /v1/messages HTTP/1.1\r\nhost: ingress\r\nauthorization: Bearer {WEB_KEY}\r\n\
         content-type: application/json\r\ncontent-length: 8388609\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await?;
    // No body follows: the answer cannot wait for it.
    let answer = tokio::time::timeout(Duration::from_secs(1), read_answer(&mut stream))
        .await
        .map_err(|_| anyhow::anyhow!("no answer within a second"))??;
    assert_eq!(answer.status, 413);
    assert_eq!(
        answer.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(
        answer.json()["type"],
        "https://switchyard.dev/problems/body-too-large"
    );
    // 8 MiB itself is allowed to be declared (the body would be read).
    let mut stream = TcpStream::connect(served.addr).await?;
    let head = head.replace("8388609", "8388608");
    stream.write_all(head.as_bytes()).await?;
    let waited = tokio::time::timeout(Duration::from_millis(500), read_answer(&mut stream)).await;
    assert!(waited.is_err(), "answered before the body: {waited:?}");
    served.shutdown.cancel();
    drop(stream);
    served.task.await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_sends_the_oversized_body_anyway_still_reads_the_413() -> anyhow::Result<()> {
    let served = serve(ServerLimits::default()).await?;
    let body = vec![b' '; 8 * 1024 * 1024 + 1];
    // reqwest (hyper) sends the whole body without waiting for 100-continue; the server answers
    // first and closes. Closed at once, the client's writes would fail and it would report that
    // failure rather than the answer.
    for round in 0..20 {
        let sent = reqwest::Client::new()
            .post(format!("{}/v1/messages", served.url))
            .bearer_auth(WEB_KEY)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await;
        let response = sent.map_err(|e| anyhow::anyhow!("round {round}: {e:?}"))?;
        assert_eq!(response.status(), 413, "round {round}");
        let problem: Value = response.json().await?;
        assert_eq!(
            problem["type"], "https://switchyard.dev/problems/body-too-large",
            "round {round}"
        );
    }
    served.shutdown.cancel();
    served.task.await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_and_methods_are_problem_json() -> anyhow::Result<()> {
    let served = serve(ServerLimits::default()).await?;
    let http = reqwest::Client::new();
    for path in ["/v1/messages/0190/", "/nope", "/v1/message", "/"] {
        let response = http
            .get(format!("{}{path}", served.url))
            .bearer_auth(WEB_KEY)
            .send()
            .await?;
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
        let body: Value = response.json().await?;
        assert_eq!(body["status"], 404, "{path}");
    }
    let response = http
        .delete(format!("{}/v1/messages", served.url))
        .bearer_auth(WEB_KEY)
        .send()
        .await?;
    assert_eq!(response.status(), 405);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let allow = response.headers()["allow"].to_str()?.to_string();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    served.shutdown.cancel();
    served.task.await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_carries_its_challenge_and_two_authorization_headers_are_a_400() -> anyhow::Result<()>
{
    let served = serve(ServerLimits::default()).await?;
    let http = reqwest::Client::new();
    let url = format!("{}/v1/messages?limit=1", served.url);
    for key in [None, Some("sk-unknown")] {
        let mut request = http.get(&url);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await?;
        assert_eq!(response.status(), 401, "{key:?}");
        assert_eq!(
            response.headers()["www-authenticate"],
            "Bearer realm=\"switchyard\"",
            "{key:?}"
        );
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
    // Two keys, even the same one twice: which one is meant cannot be told.
    for second in [WEB_KEY, BETA_KEY] {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.append("authorization", format!("Bearer {WEB_KEY}").parse()?);
        headers.append("authorization", format!("Bearer {second}").parse()?);
        let response = http.get(&url).headers(headers).send().await?;
        assert_eq!(response.status(), 400, "{second}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let body: Value = response.json().await?;
        assert!(
            body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("one Authorization header")),
            "{body}"
        );
    }
    // One is fine.
    let response = http.get(&url).bearer_auth(WEB_KEY).send().await?;
    assert_eq!(response.status(), 200);
    served.shutdown.cancel();
    served.task.await?;
    Ok(())
}

/// Put a submission of `customer`, sent by `client` (none: produced directly), in the history.
async fn recorded(
    history: &HistoryStore,
    id: &str,
    customer: &str,
    client: Option<&str>,
    offset: i64,
) -> anyhow::Result<()> {
    let submission = Submission {
        message_id: Some(id.into()),
        customer_id: customer.into(),
        client_id: client.map(str::to_string),
        client_message_id: Some(format!("cm-{id}")),
        channel: Channel::Sms,
        to: "01012345678".into(),
        from: None,
        text: "hello".into(),
        subject: None,
        bill_code: None,
        priority: Default::default(),
        template_code: None,
        fallback: None,
        attachments: Vec::new(),
        expires_at: None,
        metadata: Default::default(),
        accepted_at: switchyard_schemas::now_millis(),
    };
    let event = submission.event(Origin {
        topic: "messages.accepted",
        partition: 0,
        offset,
        timestamp: None,
        key: None,
    });
    history.record_all(&[event]).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_is_seen_only_by_the_client_that_sent_it() -> anyhow::Result<()> {
    let served = serve(ServerLimits::default()).await?;
    recorded(&served.history, "m-web", "acme", Some("acme-web"), 1).await?;
    recorded(&served.history, "m-direct", "acme", None, 2).await?;
    let http = reqwest::Client::new();
    let get = |id: &str, key: &str| {
        http.get(format!("{}/v1/messages/{id}", served.url))
            .bearer_auth(key)
            .send()
    };
    assert_eq!(get("m-web", WEB_KEY).await?.status(), 200);
    // acme's other client: as if there were no such message, in the same words.
    let other = get("m-web", BATCH_KEY).await?;
    assert_eq!(other.status(), 404);
    let other: Value = other.json().await?;
    let unknown: Value = get("m-unknown", BATCH_KEY).await?.json().await?;
    assert_eq!(
        other["detail"].as_str().map(|d| d.replace("m-web", "ID")),
        unknown["detail"]
            .as_str()
            .map(|d| d.replace("m-unknown", "ID"))
    );
    assert_eq!(other["type"], unknown["type"]);
    // Another customer's client neither.
    assert_eq!(get("m-web", BETA_KEY).await?.status(), 404);
    // A message produced directly (naming no client) is its customer's: every client of it.
    assert_eq!(get("m-direct", WEB_KEY).await?.status(), 200);
    assert_eq!(get("m-direct", BATCH_KEY).await?.status(), 200);
    assert_eq!(get("m-direct", BETA_KEY).await?.status(), 404);
    // The search draws the same line.
    let search = |key: &str| {
        http.get(format!("{}/v1/messages?limit=100", served.url))
            .bearer_auth(key)
            .send()
    };
    let ids = |page: Value| -> Vec<String> {
        let mut ids: Vec<String> = page["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["message_id"].as_str().map(str::to_string))
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(
        ids(search(WEB_KEY).await?.json().await?),
        ["m-direct", "m-web"]
    );
    assert_eq!(ids(search(BATCH_KEY).await?.json().await?), ["m-direct"]);
    assert!(ids(search(BETA_KEY).await?.json().await?).is_empty());
    served.shutdown.cancel();
    served.task.await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_shutdown_idle_connections_are_closed_and_the_server_task_ends() -> anyhow::Result<()> {
    let served = serve(ServerLimits::default()).await?;
    let mut streams = Vec::new();
    for _ in 0..10 {
        let mut stream = TcpStream::connect(served.addr).await?;
        assert_eq!(health(&mut stream).await?.status, 200);
        streams.push(stream);
    }
    served.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), served.task)
        .await
        .map_err(|_| anyhow::anyhow!("the server did not end"))??;
    for stream in &mut streams {
        assert!(closed_within(stream, Duration::from_secs(1)).await);
    }
    Ok(())
}

#[tokio::test]
async fn healthz_answers_503_with_the_reason_while_a_stage_of_the_process_is_stuck()
-> anyhow::Result<()> {
    let served = serve(ServerLimits::default()).await?;
    let mut stream = TcpStream::connect(served.addr).await?;
    assert_eq!(health(&mut stream).await?.status, 200);
    let limits = switchyard_runtime::StuckLimits {
        after: Duration::from_secs(3600),
        attempts: 0,
    };
    served.health.note_failure(
        ("validate", "batch"),
        "to messages.rejected: Message size too large",
        limits,
        std::time::Instant::now(),
    );
    let answer = health(&mut stream).await?;
    assert_eq!(answer.status, 503);
    let body = answer.json();
    assert_eq!(body["status"], "stuck");
    assert_eq!(
        body["stuck"]["validate"]["reason"],
        "to messages.rejected: Message size too large"
    );
    served
        .health
        .note_progress("validate", None, std::time::Instant::now());
    assert_eq!(health(&mut stream).await?.status, 200);
    served.shutdown.cancel();
    Ok(())
}
