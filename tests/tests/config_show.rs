//! `config show` on the real broker: what the config topics hold, with signing secrets, secret
//! sender settings and credentials in URLs masked, and the key hash still visible.

use switchyard_config::{MASK, hash_api_key};
use switchyard_tests::Stack;

const CONFIG: &str = r#"
[[customers]]
id = "acme"
channels = ["sms"]

[[clients]]
id = "acme-web"
customer = "acme"
api_key = "sk-show-key"
report_url = "https://hooks:hook-pass@acme.example/in?token=hook-token"
signing_secret = "whsec-show-secret"

[[senders]]
name = "skt-a"
group = "skt-direct"
channel = "sms"
carriers = ["skt"]
endpoint = "https://svc:endpoint-pass@carrier.example/submit"
settings = { window = "8", password = "sender-pass", api_token = "sender-token" }
"#;

#[tokio::test(flavor = "multi_thread")]
async fn show_masks_every_secret_and_keeps_the_rest() -> anyhow::Result<()> {
    let stack = Stack::start(&[]).await?;
    switchyard_config::apply(&stack.runtime, CONFIG, false, 1).await?;
    let lines = switchyard_config::show(&stack.runtime).await?;
    let all = lines.join("\n");
    for secret in [
        "whsec-show-secret",
        "hook-pass",
        "hook-token",
        "endpoint-pass",
        "sender-pass",
        "sender-token",
        "sk-show-key",
    ] {
        assert!(!all.contains(secret), "{secret} shown:\n{all}");
    }
    let client = lines
        .iter()
        .find(|l| l.contains("acme-web"))
        .ok_or_else(|| anyhow::anyhow!("no client line:\n{all}"))?;
    assert!(client.contains(&hash_api_key("sk-show-key")), "{client}");
    assert!(
        client.contains(&format!(r#""signing_secret":"{MASK}""#)),
        "{client}"
    );
    let sender = lines
        .iter()
        .find(|l| l.contains("skt-a"))
        .ok_or_else(|| anyhow::anyhow!("no sender line:\n{all}"))?;
    assert!(sender.contains(r#""window":"8""#), "{sender}");
    assert!(
        sender.contains(&format!("https://svc:{MASK}@carrier.example/submit")),
        "{sender}"
    );
    Ok(())
}
