//! Writing events: the event row (its key dedups), the message summary as one single-partition
//! batch whose timestamps encode "only moves forward", and the lookup rows of final reports.
//! Every write is idempotent, so a batch written twice leaves the same rows.

use futures::{StreamExt, TryStreamExt};
use scylla::value::MaybeUnset;

use super::{CqlHistory, errors};
use crate::event::{Event, Stage};
use crate::retention::DAY_MS;
use crate::{CallbackState, HistoryError};

/// Events of a batch written at once.
const CONCURRENCY: usize = 64;
/// Timestamp units per stage: status columns are written at `stage * STAGE_SPAN + at`, so a
/// later stage always wins and, within a stage, the later event.
const STAGE_SPAN: i64 = 100_000_000_000_000;

fn unset(value: &Option<String>) -> MaybeUnset<&str> {
    MaybeUnset::from_option(value.as_deref())
}

/// The write timestamp of an event's status columns.
pub(super) fn status_timestamp(stage: Stage, at: i64) -> i64 {
    stage as i64 * STAGE_SPAN + at.clamp(0, STAGE_SPAN - 1)
}

impl CqlHistory {
    /// Keep events (each idempotent by its event key), up to `CONCURRENCY` at a time.
    pub async fn record_all(&self, events: &[Event]) -> Result<(), HistoryError> {
        let writes: Vec<_> = events.iter().map(|event| self.record_one(event)).collect();
        futures::stream::iter(writes)
            .buffer_unordered(CONCURRENCY)
            .try_collect::<()>()
            .await
    }

    async fn record_one(&self, event: &Event) -> Result<(), HistoryError> {
        let (session, st) = (&self.inner.session, &self.inner.statements);
        let s = &event.summary;
        // Events that do not name the customer (carrier reports, webhook attempts, acks) expire
        // with the message's customer when the history knows it.
        let customer = match &s.customer_id {
            Some(c) => Some(c.clone()),
            None => self
                .summary_of(&event.message_id)
                .await?
                .and_then(|row| row.customer_id),
        };
        let ttl = self.inner.retention.ttl_seconds(customer.as_deref());
        let id = event.message_id.as_str();
        let event_row = (
            id,
            event.at,
            &event.event_key,
            event.kind,
            event.detail.to_string(),
            ttl,
        );
        let identity = (
            ttl,
            unset(&s.customer_id),
            unset(&s.client_id),
            unset(&s.client_message_id),
            unset(&s.channel),
            unset(&s.to),
            MaybeUnset::from_option(s.accepted_at),
            MaybeUnset::from_option(s.done_at),
            event.at,
            id,
        );
        let status = s.status.as_deref().map(|status| {
            (
                ttl,
                status_timestamp(event.stage, event.at),
                status,
                event.stage as i32,
                unset(&s.result_code),
                unset(&s.result_text),
                unset(&s.carrier),
                unset(&s.sender),
                id,
            )
        });
        let callback = s
            .callback
            .map(|c| (ttl, c.rank(), c.as_str(), c.rank() as i32, id));
        let written = match (status, callback) {
            (None, None) => session.batch(&st.summary[0], (event_row, identity)).await,
            (Some(status), None) => {
                session
                    .batch(&st.summary[1], (event_row, identity, status))
                    .await
            }
            (None, Some(callback)) => {
                session
                    .batch(&st.summary[2], (event_row, identity, callback))
                    .await
            }
            (Some(status), Some(callback)) => {
                session
                    .batch(&st.summary[3], (event_row, identity, status, callback))
                    .await
            }
        };
        written.map_err(errors::execution)?;

        if let Some(customer) = &s.customer_id {
            let by_day = async {
                if let Some(accepted_at) = s.accepted_at {
                    let day = accepted_at.div_euclid(DAY_MS);
                    session
                        .execute_unpaged(&st.insert_by_day, (customer, day, accepted_at, id, ttl))
                        .await
                        .map_err(errors::execution)?;
                }
                Ok::<_, HistoryError>(())
            };
            let by_client_message_id = async {
                if let Some(client_message_id) = &s.client_message_id {
                    session
                        .execute_unpaged(
                            &st.insert_by_client_message_id,
                            (customer, client_message_id, id, ttl),
                        )
                        .await
                        .map_err(errors::execution)?;
                }
                Ok(())
            };
            futures::future::try_join(by_day, by_client_message_id).await?;
        }

        let is_final = event.stage == Stage::Final && s.status.is_some();
        if is_final && let (Some(customer), Some(done_at)) = (&s.customer_id, s.done_at) {
            // The sender as the summary has it (the final report's, else the route's).
            let sender = match &s.sender {
                Some(sender) => Some(sender.clone()),
                None => self.summary_of(id).await?.and_then(|row| row.sender),
            };
            let day = done_at.div_euclid(DAY_MS);
            let finals = async {
                session
                    .execute_unpaged(
                        &st.insert_final,
                        (
                            customer,
                            day,
                            done_at,
                            id,
                            unset(&s.status),
                            unset(&s.result_code),
                            unset(&sender),
                            unset(&s.channel),
                            ttl,
                        ),
                    )
                    .await
                    .map_err(errors::execution)
            };
            let pending = async {
                session
                    .execute_unpaged(
                        &st.insert_pending,
                        (
                            customer,
                            done_at,
                            id,
                            unset(&s.client_id),
                            unset(&s.client_message_id),
                            unset(&s.channel),
                            unset(&s.to),
                            unset(&s.status),
                            unset(&s.result_code),
                            unset(&s.result_text),
                            ttl,
                        ),
                    )
                    .await
                    .map_err(errors::execution)
            };
            // The pending row's insert (timestamp 0) and a delivery's delete (timestamp 3 or
            // 4) land in either order: they may run at once.
            futures::future::try_join3(finals, pending, self.apply_callback_state(id, ttl)).await?;
            return Ok(());
        }
        if is_final || s.callback.is_some() {
            // Written first, read second: of a final and a webhook event racing, at least one
            // sees the other's write, and applying the state twice is harmless.
            self.apply_callback_state(id, ttl).await?;
        }
        Ok(())
    }

    /// Bring the message's pull-list row in line with its webhook state: a delivered or acked
    /// report leaves the list (deleted at a timestamp above the row's), a failing one shows its
    /// state.
    async fn apply_callback_state(&self, id: &str, ttl: i32) -> Result<(), HistoryError> {
        let (session, st) = (&self.inner.session, &self.inner.statements);
        let Some(row) = self.summary_of(id).await? else {
            return Ok(());
        };
        let (Some(customer), Some(done_at), Some(rank)) =
            (row.customer_id, row.done_at, row.callback_rank)
        else {
            return Ok(());
        };
        if row.stage != Some(Stage::Final as i32) || rank <= 0 {
            return Ok(());
        }
        let rank = i64::from(rank);
        if rank >= CallbackState::Delivered.rank() {
            session
                .execute_unpaged(&st.delete_pending, (rank, &customer, done_at, id))
                .await
                .map_err(errors::execution)?;
        } else if let Some(state) = row.callback_state {
            session
                .execute_unpaged(
                    &st.pending_state,
                    (ttl, rank, state, &customer, done_at, id),
                )
                .await
                .map_err(errors::execution)?;
        }
        Ok(())
    }
}
