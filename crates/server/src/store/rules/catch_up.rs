//! Reading an image back: its snapshot, its position, and the catch-up decision — whether a
//! (re)connecting client gets exactly the events it missed or the whole snapshot.
//!
//! Every function reads inside the caller's one read transaction, so the position, the events
//! and the snapshot it returns come from one state of the database.

use image_chat_protocol::{Chat, ChatId, Comment, CommentId, Event, Position, Snapshot};

use super::super::{CATCH_UP_EVENT_BYTES_FLOOR, CatchUp, ImageKey, StoreError};
use super::tx::{ImageRow, ReadTx};
use super::{NO_LOG, corrupt, from_json};

/// What a client resuming from `since` (or connecting fresh) must apply: see
/// [`Store::catch_up`](super::super::Store::catch_up).
pub async fn catch_up<T: ReadTx>(
    tx: &mut T,
    image: &ImageKey,
    since: Option<Position>,
) -> Result<CatchUp, StoreError> {
    let row = tx.image(image).await?;
    let position = row.map_or(NO_LOG, |r| r.position());
    Ok(match missed(tx, row, since).await? {
        Some(events) => CatchUp::Events { position, events },
        None => CatchUp::Snapshot {
            position,
            snapshot: read_snapshot(tx, row).await?,
        },
    })
}

/// The events [`catch_up`] would return, or `None` where it would return the snapshot.
pub async fn missed_events<T: ReadTx>(
    tx: &mut T,
    image: &ImageKey,
    since: Option<Position>,
) -> Result<Option<(Position, Vec<Event>)>, StoreError> {
    let row = tx.image(image).await?;
    let position = row.map_or(NO_LOG, |r| r.position());
    Ok(missed(tx, row, since)
        .await?
        .map(|events| (position, events)))
}

/// The image's state and the position it reflects.
pub async fn snapshot<T: ReadTx>(
    tx: &mut T,
    image: &ImageKey,
) -> Result<(Position, Snapshot), StoreError> {
    let row = tx.image(image).await?;
    let snapshot = read_snapshot(tx, row).await?;
    Ok((row.map_or(NO_LOG, |r| r.position()), snapshot))
}

/// Where the image's log stands.
pub async fn position<T: ReadTx>(tx: &mut T, image: &ImageKey) -> Result<Position, StoreError> {
    Ok(tx.image(image).await?.map_or(NO_LOG, |r| r.position()))
}

/// The catch-up decision: the events a client at `since` missed, if they are retained and
/// weigh no more than the snapshot would; `None`: send the snapshot.
async fn missed<T: ReadTx>(
    tx: &mut T,
    row: Option<ImageRow>,
    since: Option<Position>,
) -> Result<Option<Vec<Event>>, StoreError> {
    let position = row.map_or(NO_LOG, |r| r.position());
    match (since, row) {
        // Resuming exactly where the log stands (including "no log yet" on a still-empty
        // image): nothing missed.
        (Some(since), _) if since == position => Ok(Some(Vec::new())),
        // Same log, behind its head: the missed events, if still retained and not heavier
        // than the snapshot.
        (Some(since), Some(row)) if since.epoch == row.epoch && since.seq < row.head => {
            let weight = tx.event_bytes_after(row.id, since.seq).await?;
            if weight > CATCH_UP_EVENT_BYTES_FLOOR.max(row.bytes) {
                return Ok(None);
            }
            events_after(tx, row, since.seq).await
        }
        // No position, another epoch, or ahead of the head.
        _ => Ok(None),
    }
}

/// The events of `image` after `since`, if the log still holds all of them.
async fn events_after<T: ReadTx>(
    tx: &mut T,
    image: ImageRow,
    since: u64,
) -> Result<Option<Vec<Event>>, StoreError> {
    // The client needs `since + 1 ..= head`; all retained iff the oldest kept is ≤ since + 1.
    match tx.oldest_event(image.id).await? {
        Some(oldest) if oldest <= since + 1 => {}
        _ => return Ok(None),
    }
    let rows = tx.events_after(image.id, since).await?;
    let mut events = Vec::with_capacity(rows.len());
    let mut expected = since + 1;
    for (seq, body) in rows {
        if seq != expected {
            // Commits keep the retained log contiguous; a hole means the data was edited.
            return Err(corrupt(
                "event log",
                format!("expected seq {expected}, found {seq}"),
            ));
        }
        events.push(from_json("event", &body)?);
        expected += 1;
    }
    if expected != image.head + 1 {
        return Err(corrupt(
            "event log",
            format!(
                "head is {} but the log ends at {}",
                image.head,
                expected - 1
            ),
        ));
    }
    Ok(Some(events))
}

/// The snapshot of an image (empty if it has no row).
async fn read_snapshot<T: ReadTx>(
    tx: &mut T,
    image: Option<ImageRow>,
) -> Result<Snapshot, StoreError> {
    let Some(image) = image else {
        return Ok(Snapshot::default());
    };
    let mut chats: Vec<Chat> = Vec::new();
    for row in tx.snapshot_rows(image.id).await? {
        let comment = Comment {
            id: CommentId::new(row.comment_id),
            author: from_json("comment author", &row.author)?,
            text: row.text,
            created_at: row.created_at,
            edited_at: row.edited_at,
        };
        // Rows come grouped by chat (ordered by its creation seq), so a new chat id starts a
        // new discussion.
        match chats.last_mut() {
            Some(chat) if chat.id.as_str() == row.chat_id => chat.comments.push(comment),
            _ => chats.push(Chat {
                id: ChatId::new(row.chat_id),
                anchor: from_json("anchor", &row.anchor)?,
                comments: vec![comment],
                resolved: row.resolved,
            }),
        }
    }
    Ok(Snapshot { chats })
}
