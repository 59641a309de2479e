//! The webhook outbox row of a committed change: what a tenant's endpoint will be POSTed (the
//! body, fixed at commit so every retry sends — and signs — the same bytes) and the change's
//! stable delivery id (the receiver's idempotency key). Written by [`super::commit`] in the
//! commit's transaction when the commit asks for it ([`crate::store::CommitLimits::webhook`]);
//! delivered by `webhooks`.

use image_chat_protocol::{Event, Subject};
use serde::Serialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::super::{ImageKey, StoreError};
use super::to_json;

/// The JSON body a webhook receives for one committed change.
#[derive(Serialize)]
struct Body<'a> {
    /// Same as the delivery id header: lets a receiver that stores bodies deduplicate too.
    id: &'a str,
    tenant: &'a str,
    /// The image changed (absent for a page).
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<&'a str>,
    /// The page changed (absent for an image).
    #[serde(skip_serializing_if = "Option::is_none")]
    page: Option<&'a str>,
    epoch: u32,
    seq: u64,
    /// The event exactly as widgets received it (PROTOCOL.md §6).
    change: &'a RawValue,
}

/// The change's delivery id: the same for every attempt and every node, different for every
/// change (a hash of tenant, image, epoch and seq; 32 hex digits).
pub fn delivery_id(image: &ImageKey, event: &Event) -> String {
    let mut hash = Sha256::new();
    for part in [
        image.tenant.as_str().as_bytes(),
        b"\0",
        image.subject.kind().as_str().as_bytes(),
        b"\0",
        image.subject.as_str().as_bytes(),
        b"\0",
        &event.epoch().to_be_bytes(),
        &event.seq().to_be_bytes(),
    ] {
        hash.update(part);
    }
    hex::encode(&hash.finalize()[..16])
}

/// The delivery id and the body of `event` (whose JSON, as broadcast, is `event_json`).
pub fn delivery(
    image: &ImageKey,
    event: &Event,
    event_json: &str,
) -> Result<(String, String), StoreError> {
    let id = delivery_id(image, event);
    let change = RawValue::from_string(event_json.to_owned())
        .map_err(|e| StoreError::Backend(format!("encoding a webhook body: {e}")))?;
    let body = to_json(&Body {
        id: &id,
        tenant: image.tenant.as_str(),
        image: matches!(image.subject, Subject::Image(_)).then(|| image.subject.as_str()),
        page: matches!(image.subject, Subject::Page(_)).then(|| image.subject.as_str()),
        epoch: event.epoch(),
        seq: event.seq(),
        change: &change,
    })?;
    Ok((id, body))
}
