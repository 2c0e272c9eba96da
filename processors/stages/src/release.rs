//! release: `messages.held` (ads waiting out the quiet hours) and `messages.paced` (messages
//! over their customer's rate) → `messages.accepted`, each at its own time (the `due-at`
//! header validate set). At least once: validate recognises a second copy of a released
//! message by its ticket and drops it (`pacing.rs`).

use switchyard_runtime::{Origin, Output, Processor, StageError};
use switchyard_schemas::HeldMessage;

pub use switchyard_runtime::names::ACCEPTED;

/// The release stage.
#[derive(Debug, Clone, Copy, Default)]
pub struct Release;

/// The submission to send back to validate, keyed like every submission (by customer).
pub fn release(held: HeldMessage) -> Output {
    tracing::debug!(stage = "release", message_id = %held.message_id, release_at = held.release_at, "released");
    Output::new(ACCEPTED, held.customer_id.clone(), held.submission)
}

impl Processor for Release {
    type Input = HeldMessage;

    fn process(&self, input: HeldMessage, _origin: Origin<'_>) -> Result<Vec<Output>, StageError> {
        Ok(vec![release(input)])
    }
}
