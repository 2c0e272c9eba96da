//! Messages are per API client: of two clients of one customer, neither sees the other's
//! messages — not by id (404, in the same words as an unknown id), not in the search, not in
//! the report pull, and it cannot acknowledge the other's reports. Whole pipeline on the real
//! broker, with no webhook role, so every final report stays pullable.

use std::time::Duration;

use serde_json::{Value, json};
use switchyard::pipeline::Role;
use switchyard_carrier_http::simulator::SimulatorSettings;
use switchyard_runtime::Processing;
use switchyard_tests::TestEnv;
use switchyard_tests::pipeline::{API_KEY, Pipeline};

/// A second client of the test config's customer acme (the first is `acme-web`, [`API_KEY`]).
const BATCH_KEY: &str = "sk-acme-batch";
const BATCH: &str = r#"
[[clients]]
id = "acme-batch"
customer = "acme"
api_key = "sk-acme-batch"
"#;

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn get(&self, key: &str, path: &str) -> anyhow::Result<(u16, Value)> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(key)
            .send()
            .await?;
        Ok((response.status().as_u16(), response.json().await?))
    }

    async fn post(&self, key: &str, path: &str, body: Value) -> anyhow::Result<(u16, Value)> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await?;
        Ok((response.status().as_u16(), response.json().await?))
    }

    /// Send one SMS as the client of `key`; its message id.
    async fn send(&self, key: &str, client_message_id: &str) -> anyhow::Result<String> {
        let message = json!({"channel": "sms", "to": "01012345678", "text": "hello",
                             "client_message_id": client_message_id});
        let (status, answer) = self.post(key, "/v1/messages", message).await?;
        anyhow::ensure!(status == 202, "{status} {answer}");
        answer["message_id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow::anyhow!("no message_id in {answer}"))
    }

    /// The message ids of the client's undelivered reports.
    async fn pullable(&self, key: &str) -> anyhow::Result<Vec<String>> {
        let (status, page) = self
            .get(key, "/v1/reports?status=undelivered&limit=1000")
            .await?;
        anyhow::ensure!(status == 200, "{status} {page}");
        Ok(ids(&page["reports"]))
    }
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["message_id"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_clients_of_one_customer_see_only_their_own_messages() -> anyhow::Result<()> {
    let pipeline = Pipeline::start_configured(
        TestEnv::new()?,
        &[Role::Callback],
        SimulatorSettings {
            success_rate: 1.0,
            receipt_delay: Duration::from_millis(10),
        },
        Processing::default(),
        BATCH,
        |_| {},
    )
    .await?;
    let api = Api {
        http: reqwest::Client::new(),
        base: pipeline.ingress_url.clone(),
    };
    let web_id = api.send(API_KEY, "scope-web").await?;
    let batch_id = api.send(BATCH_KEY, "scope-batch").await?;

    // By id: each its own; the other's is as unknown as an id that never existed.
    assert_eq!(
        api.get(API_KEY, &format!("/v1/messages/{web_id}")).await?.0,
        200
    );
    assert_eq!(
        api.get(BATCH_KEY, &format!("/v1/messages/{batch_id}"))
            .await?
            .0,
        200
    );
    let (status, other) = api
        .get(BATCH_KEY, &format!("/v1/messages/{web_id}"))
        .await?;
    assert_eq!(status, 404, "{other}");
    let (_, unknown) = api.get(BATCH_KEY, "/v1/messages/no-such-id").await?;
    assert_eq!(
        other["detail"].as_str().map(|d| d.replace(&web_id, "ID")),
        unknown["detail"]
            .as_str()
            .map(|d| d.replace("no-such-id", "ID")),
    );
    assert_eq!(
        api.get(API_KEY, &format!("/v1/messages/{batch_id}"))
            .await?
            .0,
        404
    );

    // The search: by the other's own id nothing, by time only its own.
    let (_, page) = api
        .get(BATCH_KEY, "/v1/messages?client_message_id=scope-web")
        .await?;
    assert_eq!(ids(&page["messages"]), Vec::<String>::new(), "{page}");
    let (_, page) = api.get(API_KEY, "/v1/messages?limit=100").await?;
    assert_eq!(ids(&page["messages"]), vec![web_id.clone()], "{page}");
    let (_, page) = api.get(BATCH_KEY, "/v1/messages?limit=100").await?;
    assert_eq!(ids(&page["messages"]), vec![batch_id.clone()], "{page}");

    // The report pull, once both are final: each client its own.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (web, batch) = (api.pullable(API_KEY).await?, api.pullable(BATCH_KEY).await?);
        if web.contains(&web_id) && batch.contains(&batch_id) {
            assert_eq!(web, vec![web_id.clone()]);
            assert_eq!(batch, vec![batch_id.clone()]);
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "final reports never pullable: web {web:?}, batch {batch:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Acknowledging the other's report: not found, and it stays in the other's list.
    let (status, answer) = api
        .post(
            BATCH_KEY,
            "/v1/reports/ack",
            json!({"message_ids": [web_id]}),
        )
        .await?;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["acked"], json!([]), "{answer}");
    assert_eq!(answer["not_found"], json!([web_id]), "{answer}");
    assert_eq!(api.pullable(API_KEY).await?, vec![web_id.clone()]);
    let (_, answer) = api
        .post(API_KEY, "/v1/reports/ack", json!({"message_ids": [web_id]}))
        .await?;
    assert_eq!(answer["acked"], json!([web_id]), "{answer}");
    assert_eq!(api.pullable(API_KEY).await?, Vec::<String>::new());
    pipeline.stop().await;
    Ok(())
}
