//! Roles that fail are not hidden: a role whose runner stops with an error marks the process
//! unhealthy (`/healthz` 503), stops the other roles, and the process exits non-zero.

use std::process::Command;
use std::time::Duration;

use switchyard::pipeline::{Role, start};
use switchyard_runtime::{CancellationToken, RoleState};
use switchyard_tests::Stack;

/// A setting the transactional producer of validate refuses (a record may not outlive its
/// transaction), while every other client accepts it: validate fails after it started.
const BREAKS_TRANSACTIONS: (&str, &str) = ("message.timeout.ms", "600000");

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_role_makes_the_process_unhealthy_and_its_exit_code_non_zero() -> anyhow::Result<()>
{
    switchyard_tests::init_logging();
    let stack = Stack::start(&[]).await?;
    let mut runtime = stack.runtime.clone();
    runtime.kafka.overrides.push((
        BREAKS_TRANSACTIONS.0.to_string(),
        BREAKS_TRANSACTIONS.1.to_string(),
    ));
    let dir = tempfile::tempdir()?;
    let shutdown = CancellationToken::new();
    let running = start(
        &runtime,
        &[Role::Validate],
        &switchyard_tests::pipeline::local_settings(dir.path()),
        &shutdown,
    )
    .await?;
    let failed = running.health.failed();
    tokio::time::timeout(Duration::from_secs(30), failed.cancelled()).await?;
    let report = running.health.report();
    assert_eq!(report.status, "failing");
    match report.roles.get("validate") {
        Some(RoleState::Failed(error)) => assert!(
            error.contains("message.timeout.ms"),
            "the error says why: {error}"
        ),
        other => panic!("validate should have failed: {other:?} in {report:?}"),
    }
    let served = switchyard_runtime::health_router(running.health.clone());
    let response = axum_get(served, "/healthz").await?;
    assert_eq!(response, 503);
    let code = running.run_until(&shutdown, Duration::from_secs(10)).await;
    assert_eq!(code, 1, "a failed role gives a non-zero exit code");
    assert!(shutdown.is_cancelled(), "the other roles were told to stop");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn switchyard_run_exits_non_zero_when_its_role_fails() -> anyhow::Result<()> {
    let stack = Stack::start(&[]).await?;
    let dir = tempfile::tempdir()?;
    let mut child = Command::new(switchyard_tests::processes::switchyard_bin()?)
        .args(["--brokers", &stack.env.brokers()])
        .args(["--topic-prefix", stack.env.namespace.prefix()])
        .args(["--schema-registry-url", &stack.registry.url()])
        .args([
            "--kafka-option",
            &format!("{}={}", BREAKS_TRANSACTIONS.0, BREAKS_TRANSACTIONS.1),
        ])
        .args(["run", "validate", "--history"])
        .arg(dir.path().join("history.db"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            anyhow::bail!("the process kept running with a failed role");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status.code(), Some(1));
    Ok(())
}

/// Serve `app` on a free port and GET `path`; returns the status code.
async fn axum_get(app: axum::Router, path: &str) -> anyhow::Result<u16> {
    let shutdown = CancellationToken::new();
    let (addr, _) =
        switchyard_runtime::serve_http("127.0.0.1:0".parse()?, app, shutdown.clone(), "test")
            .await?;
    let status = reqwest::get(format!("http://{addr}{path}")).await?.status();
    shutdown.cancel();
    Ok(status.as_u16())
}
