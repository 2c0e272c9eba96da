//! `switchyard sim carrier|webhooks`.

use std::time::Duration;

use switchyard_carrier_http::simulator::{SimulatorSettings, serve};

use crate::cli::SimCommand;
use crate::context::Context;

pub async fn run(app: &Context, command: SimCommand) -> anyhow::Result<i32> {
    match command {
        SimCommand::Carrier {
            listen,
            success_rate,
            receipt_delay_ms,
        } => {
            let settings = SimulatorSettings {
                success_rate,
                receipt_delay: Duration::from_millis(receipt_delay_ms),
            };
            let bound = serve(listen, settings, app.shutdown.clone()).await?;
            println!("carrier simulator on http://{bound}/submit");
        }
        SimCommand::Webhooks { listen, secret } => {
            let (bound, _) =
                switchyard_callback::receiver::serve(listen, &secret, true, app.shutdown.clone())
                    .await?;
            println!("webhook receiver on http://{bound}/webhooks/switchyard");
        }
    }
    app.shutdown.cancelled().await;
    Ok(0)
}
