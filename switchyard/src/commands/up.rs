//! `switchyard up`: the whole platform in one process — registry, config, every role, a carrier
//! simulator, an SMSC simulator (when node and `tests/smsc` are installed) and a webhook inbox
//! — until Ctrl-C or SIGTERM. Stopping is bounded (`--shutdown-timeout-seconds`), and the
//! simulator child process is stopped on every way out (`ChildProcess`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use switchyard::pipeline::{Role, start};
use switchyard_carrier_http::simulator::{self, SimulatorSettings};

use crate::cli::RoleArgs;
use crate::commands::sim::spawn_smsc;
use crate::context::Context;

pub struct Up {
    pub roles: RoleArgs,
    pub registry: SocketAddr,
    pub sim: SocketAddr,
    pub inbox: SocketAddr,
    pub inbox_secret: String,
    pub config: Option<PathBuf>,
    /// The SMSC simulator's port (the demo config's SMPP sender points at 2775).
    pub smsc_port: u16,
}

pub async fn run(app: &Context, up: Up) -> anyhow::Result<i32> {
    let (registry, registry_task) = switchyard_schema_registry::serve(
        &app.kafka,
        up.registry,
        app.metrics.clone(),
        app.shutdown.clone(),
    )
    .await
    .context("starting the schema registry (did `switchyard topics apply` run?)")?;
    let runtime = app.runtime(&format!("http://{registry}"))?;
    if let Some(file) = &up.config {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let report = switchyard_config::apply(&runtime, &text, false, 1).await?;
        println!(
            "config {}: {}",
            file.display(),
            report.to_string().lines().last().unwrap_or_default()
        );
    }
    let sim = simulator::serve(
        up.sim,
        SimulatorSettings {
            success_rate: 0.95,
            receipt_delay: Duration::from_millis(100),
        },
        app.shutdown.clone(),
    )
    .await?;
    let smsc_log = std::env::temp_dir().join("switchyard-smsc.jsonl");
    // Stopped on every way out: below, on an early return (its drop), and by the process's
    // exit (the shutdown watchdog's included).
    let mut smsc = match spawn_smsc(up.smsc_port, Some(smsc_log.clone())).await {
        Ok((child, _)) => Some(child),
        Err(e) => {
            eprintln!("SMSC simulator not started ({e:#}); the SMPP sender keeps reconnecting");
            None
        }
    };
    let (inbox, _) = switchyard_callback::receiver::serve(
        up.inbox,
        &up.inbox_secret,
        true,
        app.shutdown.clone(),
    )
    .await?;
    let running = start(
        &runtime,
        &Role::ALL,
        &up.roles.settings(switchyard_callback::WebhookMode::Dev),
        &app.shutdown,
    )
    .await?;
    let ingress = running.ingress.map(|a| a.to_string()).unwrap_or_default();
    println!();
    println!("switchyard is up");
    println!(
        "  ingress          http://{ingress}        (POST /v1/messages, GET /v1/messages/{{id}}, /openapi.json)"
    );
    println!("  schema registry  http://{registry}");
    println!("  carrier sim      http://{sim}/submit      (95% delivered, receipts after 100 ms)");
    if smsc.is_some() {
        println!(
            "  SMSC simulator   smpp://127.0.0.1:{}       (PDUs logged to {})",
            up.smsc_port,
            smsc_log.display()
        );
    }
    println!("  webhook inbox    http://{inbox}/webhooks/switchyard   (logs every report)");
    if let Some(metrics) = app.metrics_addr {
        println!("  metrics          http://{metrics}/metrics");
    }
    println!();
    println!("Try:");
    println!(
        "  curl -s -X POST http://{ingress}/v1/messages -H 'Authorization: Bearer sk-demo-0123456789' \\"
    );
    println!(
        "       -H 'Content-Type: application/json' -d '{{\"channel\":\"sms\",\"to\":\"01012345678\",\"text\":\"hello\"}}'"
    );
    println!(
        "  curl -s http://{ingress}/v1/messages/<message_id> -H 'Authorization: Bearer sk-demo-0123456789'"
    );
    println!("Ctrl-C stops everything.");
    // Past the grace period the watchdog logs what did not stop and exits (killing the
    // simulator), even if this task never runs again.
    switchyard_runtime::shutdown::on_overdue({
        let report = running.overdue_report();
        move |grace| report.report(grace)
    });
    let grace = switchyard_runtime::shutdown::grace();
    let code = running.run_until(&app.shutdown, grace).await;
    if code != switchyard::pipeline::EXIT_OVERDUE {
        let _ = tokio::time::timeout(Duration::from_secs(2), registry_task).await;
    }
    if let Some(smsc) = &mut smsc {
        smsc.stop().await;
    }
    Ok(code)
}
