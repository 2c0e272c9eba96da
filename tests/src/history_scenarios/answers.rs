//! Every query kind's answers of a store, to compare two stores (a rebuilt one and the original).

use switchyard_history::{FailureCount, HistoryStore};

use super::search::query;

/// Every query kind's answer for a set of messages of `customer`: each message (with its
/// events), each client's whole pull list and search by time in pages of `page`, whether each
/// client may ack each message, the failure summary and per-sender statistics of [`from`,
/// `to`).
#[derive(Debug, PartialEq)]
pub struct Answers {
    pub messages: Vec<Option<switchyard_history::MessageView>>,
    pub pages: Vec<Vec<switchyard_history::ReportPage>>,
    pub searches: Vec<Vec<switchyard_history::MessagePage>>,
    pub ackable: Vec<Vec<bool>>,
    pub summary: Vec<FailureCount>,
    pub senders: Vec<switchyard_history::SenderStats>,
}

/// The answers of `store` (see `Answers`).
pub async fn answers(
    store: &HistoryStore,
    customer: &str,
    clients: &[&str],
    ids: &[String],
    (from, to): (i64, i64),
    page: usize,
) -> anyhow::Result<Answers> {
    let mut messages = Vec::new();
    for id in ids {
        messages.push(store.message(id).await?);
    }
    let (mut pages, mut searches, mut ackable) = (Vec::new(), Vec::new(), Vec::new());
    for client in clients {
        let (mut list, mut cursor) = (Vec::new(), None::<String>);
        loop {
            let next = store
                .undelivered(customer, client, cursor.as_deref(), page)
                .await?;
            cursor = next.next_cursor.clone();
            list.push(next);
            if cursor.is_none() {
                break;
            }
        }
        pages.push(list);
        let mut query = query(from, to);
        (query.customer_id, query.client_id) = (customer.to_string(), client.to_string());
        let (mut list, mut cursor) = (Vec::new(), None::<String>);
        loop {
            let next = store.search(&query, cursor.as_deref(), page).await?;
            cursor = next.next_cursor.clone();
            list.push(next);
            if cursor.is_none() {
                break;
            }
        }
        searches.push(list);
        let mut mine = Vec::new();
        for id in ids {
            mine.push(store.ackable(customer, client, id).await?);
        }
        ackable.push(mine);
    }
    Ok(Answers {
        messages,
        pages,
        searches,
        ackable,
        summary: store.failure_summary(customer, from, to).await?,
        senders: store.sender_stats(customer, from, to).await?,
    })
}
