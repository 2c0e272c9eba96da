//! Group commit for SQLite writes: callers that write at the same moment (the ingress's
//! requests, the history stage) share one database transaction. One writer thread takes
//! whatever is queued (up to [`MOST_EVENTS`]) and writes it together; each caller is answered
//! once its events are committed. If the shared write fails, each caller's events are written
//! alone, so one caller's bad event fails only that caller.

use std::sync::mpsc;

use tokio::sync::oneshot;

use crate::event::Event;
use crate::{HistoryError, SqliteHistory};

/// Most events written in one shared transaction.
pub const MOST_EVENTS: usize = 5_000;

/// One caller's events and where to answer.
type Request = (Vec<Event>, oneshot::Sender<Result<(), HistoryError>>);

/// The queue of one store's writer thread. Cheap to clone; the thread ends once every clone
/// is dropped.
#[derive(Debug, Clone)]
pub struct GroupWriter {
    queue: mpsc::Sender<Request>,
}

impl GroupWriter {
    /// Start the writer thread of `store`.
    pub fn start(store: SqliteHistory) -> Result<Self, HistoryError> {
        let (queue, requests) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("history-writer".into())
            .spawn(move || write_until_closed(&store, &requests))
            .map_err(|e| HistoryError::Unavailable(format!("no history writer thread: {e}")))?;
        Ok(GroupWriter { queue })
    }

    /// Keep `events`, committed together with whatever else is being written now.
    pub async fn record_all(&self, events: Vec<Event>) -> Result<(), HistoryError> {
        let (answer, answered) = oneshot::channel();
        self.queue
            .send((events, answer))
            .map_err(|_| HistoryError::Unavailable("the history writer stopped".into()))?;
        answered
            .await
            .map_err(|_| HistoryError::Unavailable("the history writer stopped".into()))?
    }
}

/// Write every request until the queue closes.
fn write_until_closed(store: &SqliteHistory, requests: &mpsc::Receiver<Request>) {
    while let Ok(first) = requests.recv() {
        let mut group = vec![first];
        let mut events = group[0].0.len();
        while events < MOST_EVENTS {
            match requests.try_recv() {
                Ok(request) => {
                    events += request.0.len();
                    group.push(request);
                }
                Err(_) => break,
            }
        }
        write_group(store, group);
    }
}

/// Write `group` in one transaction; if that fails, each request alone.
fn write_group(store: &SqliteHistory, group: Vec<Request>) {
    if group.len() > 1 {
        let all: Vec<&Event> = group.iter().flat_map(|(events, _)| events).collect();
        if store.record_refs(&all).is_ok() {
            for (_, answer) in group {
                let _ = answer.send(Ok(()));
            }
            return;
        }
    }
    for (events, answer) in group {
        let _ = answer.send(store.record_all(&events));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn concurrent_writers_are_all_answered_and_every_event_is_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteHistory::open(&dir.path().join("h.db")).expect("store");
        let writer = GroupWriter::start(store.clone()).expect("writer");
        let writes = (0..50).map(|n| {
            let writer = writer.clone();
            async move {
                let event = Event {
                    event_key: format!("accepted/0/{n}"),
                    message_id: format!("m-{n}"),
                    kind: "accepted",
                    at: n,
                    stage: crate::Stage::Accepted,
                    summary: crate::Summary {
                        customer_id: Some("c".into()),
                        accepted_at: Some(n),
                        ..crate::Summary::default()
                    },
                    detail: serde_json::Value::Null,
                };
                writer.record_all(vec![event]).await
            }
        });
        for written in futures::future::join_all(writes).await {
            written.expect("written");
        }
        for n in 0..50 {
            assert!(
                store.message(&format!("m-{n}")).expect("read").is_some(),
                "m-{n} kept"
            );
        }
    }
}
