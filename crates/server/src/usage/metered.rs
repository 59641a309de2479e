//! A session's socket with its tenant's [`TenantMeter`] in front: every text frame handed to
//! the socket is counted (one frame, its bytes) as it is handed over. Reading passes through.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::ws::Message;
use futures_util::{Sink, SinkExt, Stream, StreamExt};

use super::TenantMeter;

/// `conn` counted into `meter` (see the module doc).
pub struct Metered<'a, C> {
    conn: &'a mut C,
    meter: &'a TenantMeter,
}

impl<'a, C> Metered<'a, C> {
    /// Counts what is sent on `conn` into `meter`.
    pub fn new(conn: &'a mut C, meter: &'a TenantMeter) -> Self {
        Self { conn, meter }
    }
}

impl<C> Sink<Message> for Metered<'_, C>
where
    C: Sink<Message> + Unpin,
{
    type Error = C::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.get_mut().conn.poll_ready_unpin(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
        let this = self.get_mut();
        if let Message::Text(text) = &item {
            this.meter.sent(text.len());
        }
        this.conn.start_send_unpin(item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.get_mut().conn.poll_flush_unpin(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.get_mut().conn.poll_close_unpin(cx)
    }
}

impl<C> Stream for Metered<'_, C>
where
    C: Stream + Unpin,
{
    type Item = C::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<C::Item>> {
        self.get_mut().conn.poll_next_unpin(cx)
    }
}
