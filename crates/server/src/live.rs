//! Open WebSocket sessions per tenant on this node, for the admin API's live count (the
//! dashboard's "live now"). A session counts from its `welcome` to its end; the count is this
//! process's (a cluster's nodes each answer for their own sessions).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use image_chat_protocol::TenantId;

/// Live sessions per tenant.
#[derive(Debug, Default)]
pub struct LiveSessions(Mutex<HashMap<TenantId, u64>>);

/// Counts one session while it lives.
#[derive(Debug)]
pub struct LiveGuard<'a> {
    sessions: &'a LiveSessions,
    tenant: TenantId,
}

impl LiveSessions {
    /// Counts a session of `tenant` until the guard drops.
    pub fn enter(&self, tenant: &TenantId) -> LiveGuard<'_> {
        *self.lock().entry(tenant.clone()).or_insert(0) += 1;
        LiveGuard {
            sessions: self,
            tenant: tenant.clone(),
        }
    }

    /// The tenant's open sessions now.
    pub fn count(&self, tenant: &TenantId) -> u64 {
        self.lock().get(tenant).copied().unwrap_or(0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, u64>> {
        // Only counters are written under the lock: a panic cannot leave them half-written.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for LiveGuard<'_> {
    fn drop(&mut self) {
        let mut map = self.sessions.lock();
        if let Some(n) = map.get_mut(&self.tenant) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.tenant);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_while_guards_live() {
        let live = LiveSessions::default();
        let (a, b) = (TenantId::new("a"), TenantId::new("b"));
        let one = live.enter(&a);
        let two = live.enter(&a);
        let other = live.enter(&b);
        assert_eq!((live.count(&a), live.count(&b)), (2, 1));
        drop(one);
        assert_eq!(live.count(&a), 1);
        drop((two, other));
        assert_eq!((live.count(&a), live.count(&b)), (0, 0));
        assert!(live.lock().is_empty(), "no entry left behind");
    }
}
