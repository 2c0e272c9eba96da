//! The dispatch stage of one sender, whatever its kind: consumes `sender.<name>`, hands each
//! request to the sender's [`Carrier`] and writes what became of it (`outcome::outputs`).

use std::sync::Arc;

use futures::future::BoxFuture;
use switchyard_runtime::{AsyncProcessor, Origin, Output, StageError};
use switchyard_schemas::{DispatchRequest, now_millis};

use crate::failure::Sent;
use crate::registry::Carrier;

/// One sender's dispatcher.
#[derive(Clone)]
pub struct Dispatcher {
    pub sender: String,
    pub kind: String,
    pub carrier: Arc<dyn Carrier>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("sender", &self.sender)
            .field("kind", &self.kind)
            .finish()
    }
}

impl Dispatcher {
    async fn dispatch(&self, request: DispatchRequest) -> Result<Vec<Output>, StageError> {
        let sent = self.carrier.send(&request).await;
        if let Sent::Failed { failure, detail } = &sent {
            tracing::info!(stage = "dispatch", topic = %format!("sender.{}", self.sender), message_id = %request.message_id, sender = %self.sender, kind = %self.kind, failure = failure.name(), %detail, "not taken");
        }
        crate::outcome::outputs(request, sent, now_millis())
    }
}

impl AsyncProcessor for Dispatcher {
    type Input = DispatchRequest;

    fn process<'a>(
        &'a self,
        input: DispatchRequest,
        _origin: Origin<'a>,
    ) -> BoxFuture<'a, Result<Vec<Output>, StageError>> {
        Box::pin(self.dispatch(input))
    }

    fn concurrency(&self) -> usize {
        self.carrier.window().max(1)
    }
}
