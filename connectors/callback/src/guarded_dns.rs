//! The webhook client's DNS resolver: it resolves a report URL's host when the webhook is sent
//! and keeps only the addresses the policy allows, so the connection goes to an address that
//! was checked (a DNS answer that changes after a check cannot redirect a webhook).

use std::net::SocketAddr;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::url_policy::WebhookPolicy;

/// A resolver that refuses hosts resolving only to addresses the policy does not allow.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    policy: Arc<WebhookPolicy>,
}

impl GuardedResolver {
    pub fn new(policy: Arc<WebhookPolicy>) -> Self {
        GuardedResolver { policy }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refusals = Vec::new();
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|addr| match policy.address_allowed(addr.ip()) {
                    Ok(()) => true,
                    Err(refused) => {
                        refusals.push(refused.to_string());
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let reason = if refusals.is_empty() {
                    format!("{host} has no address")
                } else {
                    format!("{host} refused: {}", refusals.join("; "))
                };
                return Err(reason.into());
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}
