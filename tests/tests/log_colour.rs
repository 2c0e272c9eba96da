//! Logs written to a pipe (or file) carry no ANSI colour codes.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use switchyard_tests::processes::switchyard_bin;
use switchyard_tests::{free_port, wait_for_port};

#[tokio::test(flavor = "multi_thread")]
async fn logs_to_a_pipe_have_no_colour_codes() -> anyhow::Result<()> {
    let port = free_port();
    let mut child = Command::new(switchyard_bin()?)
        .args(["sim", "webhooks", "--listen", &format!("127.0.0.1:{port}")])
        .env_remove("NO_COLOR")
        .env_remove("LOG_FORMAT")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    wait_for_port(port, Duration::from_secs(20))?;
    // An unreadable webhook body is logged as a warning (coloured on a terminal).
    let status = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/webhooks/switchyard"))
        .body("not json")
        .send()
        .await?
        .status();
    assert!(status.is_client_error(), "{status}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    child.kill()?;
    child.wait()?;
    let mut logs = String::new();
    child
        .stderr
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stderr"))?
        .read_to_string(&mut logs)?;
    assert!(logs.contains("webhook with an unreadable body"), "{logs}");
    assert!(!logs.contains('\u{1b}'), "colour codes in {logs:?}");
    Ok(())
}
