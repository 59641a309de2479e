//! Webhooks: every committed change of a tenant that registered an endpoint is POSTed to it,
//! signed, retried, at least once, without ever slowing the live path.
//!
//! How a change travels: the commit writes its outbox row in its own transaction
//! (`store::rules::outbox`; the body and the delivery id are fixed there), then pokes the
//! dispatcher ([`dispatch`]); the dispatcher claims due rows from the store (a lease, so the
//! nodes of a cluster each take different rows), POSTs each with its signature ([`sign`]),
//! deletes it on a 2xx answer and otherwise reschedules it with exponential backoff and jitter
//! ([`backoff`]). The outbox is in the database, so a restart or a crash loses nothing: a row
//! claimed by a node that died is claimed again when its lease expires. A receiver may
//! therefore see a change more than once (never zero times while it keeps answering within the
//! retry horizon): it deduplicates on the delivery id.
//!
//! The endpoint is `https://` ([`target`]); plain `http://` only to a loopback address, for
//! development and tests. Configuration and the receiver's side are in docs/OPERATIONS.md
//! ("Webhooks").

pub mod backoff;
pub mod dispatch;
pub mod sign;
pub mod target;
