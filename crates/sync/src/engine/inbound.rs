//! Server frames: `welcome` (resync: missed events or snapshot, settling ops in flight), live
//! events and batches (ordering, gaps, echo suppression, announcements), `ack`, `error`,
//! `presence`, `lock`.

use image_chat_protocol::{
    BroadcastId, ChatChange, ChatId, CommentId, ErrorFrame, Event, ImageState, Op, Position,
    ServerMessage, User, Welcome,
};

use super::{Applied, Engine, Link, MAX_INDIVIDUAL_CATCH_UP_ANNOUNCEMENTS};
use crate::error::FailReason;
use crate::pending::{LocalOp, Progress};
use crate::view::{Announcement, ViewUpdate};

impl Engine {
    pub(super) fn on_message(&mut self, now: u64, text: &str) {
        if let Link::Live { last_rx, .. } = &mut self.link {
            *last_rx = now;
        }
        // Frames we cannot parse (e.g. a message type from a newer server) are ignored: if one
        // was an event, the next event's `seq` reveals the gap and triggers a resync.
        let Ok(message) = ServerMessage::decode(text) else {
            return;
        };
        // The engine is the same for images and pages: an event is applied whatever its name
        // (`new-image-chat` or `new-text-chat`…), by its payload.
        let message = match message.into_event() {
            Ok(event) => return self.on_live_events(now, vec![event]),
            Err(message) => message,
        };
        match message {
            ServerMessage::Welcome(welcome) => {
                if matches!(self.link, Link::Connecting { opened: true, .. }) {
                    self.on_welcome(now, welcome);
                }
            }
            ServerMessage::NewImageChat(_)
            | ServerMessage::ImageChatUpdated(_)
            | ServerMessage::DeletedImageChat(_)
            | ServerMessage::NewTextChat(_)
            | ServerMessage::UpdatedTextChat(_)
            | ServerMessage::DeletedTextChat(_) => {}
            ServerMessage::Batch(batch) => self.on_live_events(now, batch.events),
            ServerMessage::Ack(ack) => self.on_ack(&ack.broadcast_id, ack.seq),
            ServerMessage::Error(error) => self.on_error(error),
            ServerMessage::Presence(p) => self.set_online(p.online),
            ServerMessage::Lock(lock) => self.set_locked(lock.locked),
            ServerMessage::Pong(_) => {}
        }
    }

    pub(super) fn set_locked(&mut self, locked: bool) {
        if locked != self.view.locked {
            self.view.locked = locked;
            self.updates.push_back(ViewUpdate::Locked(locked));
        }
    }

    pub(super) fn set_online(&mut self, online: u32) {
        if online != self.view.online {
            self.view.online = online;
            self.updates.push_back(ViewUpdate::Online(online));
        }
    }

    pub(super) fn on_live_events(&mut self, now: u64, events: Vec<Event>) {
        if !matches!(self.link, Link::Live { .. }) {
            return;
        }
        for event in events {
            match self.apply_event(&event) {
                Applied::Yes { announce } => {
                    if let Some(a) = announce {
                        self.updates.push_back(ViewUpdate::Announce(a));
                    }
                }
                Applied::Duplicate => {}
                Applied::Gap => return self.resync(now, false),
                Applied::Corrupt => return self.resync(now, true),
            }
        }
    }

    /// Applies one event in order to the confirmed state, settling our op if it is ours.
    pub(super) fn apply_event(&mut self, event: &Event) -> Applied {
        let base = match self.position {
            // Epoch 0 names no log: the server creates an image's log (and draws its epoch)
            // with the image's first change, so that change may carry any epoch.
            Some(Position { epoch: 0, seq: 0 }) | None => Position {
                epoch: event.epoch(),
                seq: 0,
            },
            Some(position) => position,
        };
        if event.epoch() != base.epoch {
            return Applied::Corrupt;
        }
        if event.seq() <= base.seq {
            return Applied::Duplicate;
        }
        if event.seq() != base.seq + 1 {
            return Applied::Gap;
        }
        // Announcement text needs the state before a delete and after an add.
        if self.state.apply(event).is_err() {
            return Applied::Corrupt;
        }
        self.position = Some(event.position());
        self.touch(event.chat_id());
        let id = event.broadcast_id();
        let ours = match self.ops.remove(id) {
            Some(op) => {
                self.touch(op.chat_id());
                true
            }
            None => self.own.contains(id),
        };
        if ours {
            // Our own change: the confirmed state now holds it, the op is settled, and it is
            // neither applied twice nor announced.
            return Applied::Yes { announce: None };
        }
        Applied::Yes {
            announce: self.announcement(event),
        }
    }

    /// What to say about a remote event, unless the current person made it (another tab).
    pub(super) fn announcement(&self, event: &Event) -> Option<Announcement> {
        let is_you = |user: &User| self.you.as_ref().is_some_and(|you| you.id == user.id);
        match event {
            Event::NewImageChat(e) | Event::NewTextChat(e) => {
                let by = e.chat.author()?.clone();
                (!is_you(&by)).then(|| Announcement::NewChat {
                    chat_id: e.chat.id.clone(),
                    by,
                })
            }
            Event::ImageChatUpdated(e) | Event::UpdatedTextChat(e) => match &e.change {
                ChatChange::CommentAdded { comment } => {
                    (!is_you(&comment.author)).then(|| Announcement::Reply {
                        chat_id: e.chat_id.clone(),
                        comment_id: comment.id.clone(),
                        by: comment.author.clone(),
                    })
                }
                ChatChange::CommentEdited { comment_id, .. } => {
                    let by = self
                        .state
                        .chat(&e.chat_id)?
                        .comments
                        .iter()
                        .find(|c| &c.id == comment_id)?
                        .author
                        .clone();
                    (!is_you(&by)).then(|| Announcement::Edited {
                        chat_id: e.chat_id.clone(),
                        comment_id: comment_id.clone(),
                        by,
                    })
                }
                ChatChange::CommentDeleted { .. } => Some(Announcement::CommentDeleted {
                    chat_id: e.chat_id.clone(),
                }),
                ChatChange::Resolved { resolved } => Some(Announcement::Resolved {
                    chat_id: e.chat_id.clone(),
                    resolved: *resolved,
                }),
                ChatChange::Moved { .. } => Some(Announcement::Moved {
                    chat_id: e.chat_id.clone(),
                }),
            },
            Event::DeletedImageChat(e) | Event::DeletedTextChat(e) => Some(Announcement::Deleted {
                chat_id: e.chat_id.clone(),
            }),
        }
    }

    pub(super) fn on_welcome(&mut self, now: u64, welcome: Welcome) {
        let Link::Connecting { conn, .. } = self.link else {
            return;
        };
        let reconnect = self.position.is_some();
        self.you = Some(welcome.you);
        if welcome.token.is_some() {
            self.token = welcome.token;
        }
        self.set_online(welcome.online);
        if welcome.read_only != self.view.read_only {
            self.view.read_only = welcome.read_only;
            self.updates
                .push_back(ViewUpdate::ReadOnly(welcome.read_only));
        }
        self.set_locked(welcome.locked);
        self.touch_all();

        let resumed = welcome.recovered && !self.need_snapshot && self.position.is_some();
        let mut announcements = Vec::new();
        if resumed {
            for event in &welcome.events {
                match self.apply_event(event) {
                    Applied::Yes { announce } => announcements.extend(announce),
                    Applied::Duplicate => {}
                    Applied::Gap | Applied::Corrupt => return self.resync(now, true),
                }
            }
            if self.position != Some(welcome.position) {
                // The server claims a position the events did not bring us to.
                return self.resync(now, true);
            }
            // Committed ops had their events among the missed ones (and are settled); an op
            // still pending never reached the log.
        } else {
            let snapshot = welcome.snapshot.unwrap_or_default();
            self.state = ImageState::from_snapshot(snapshot);
            self.position = Some(welcome.position);
            self.need_snapshot = false;
            // An acknowledged op is in the snapshot (or was undone since by someone else); an
            // in-flight one is committed iff its effect is visible.
            let state = &self.state;
            // Discussions that exist only as our failed (or now failing) creates: a delete of
            // one is not "done" just because the snapshot lacks it.
            let mut unborn: Vec<ChatId> = Vec::new();
            self.ops.retain(|op| {
                let keep = match op.progress {
                    Progress::Acked { .. } => false,
                    Progress::Pending { .. } => !effect_visible(state, &op.op, &unborn),
                    Progress::Failed(_) => true,
                };
                if keep && let Op::CreateChat(create) = &op.op {
                    unborn.push(create.chat_id.clone());
                }
                keep
            });
            if reconnect {
                announcements.push(Announcement::Caught { changes: 0 });
            }
        }
        let mut lost = Vec::new();
        for op in self.ops.iter_mut() {
            if matches!(op.progress, Progress::Pending { .. }) {
                op.progress = Progress::Failed(FailReason::ConnectionLost);
                lost.push(op.op_ref());
            }
        }
        for op in &lost {
            self.report_failure(op, FailReason::ConnectionLost);
        }
        self.settle_acked();
        if announcements.len() > MAX_INDIVIDUAL_CATCH_UP_ANNOUNCEMENTS {
            announcements = vec![Announcement::Caught {
                changes: announcements.len(),
            }];
        }
        self.updates
            .extend(announcements.into_iter().map(ViewUpdate::Announce));
        self.backoff.reset();
        self.set_link(Link::Live {
            conn,
            last_rx: now,
            next_ping: now.saturating_add(self.timing.ping_interval_ms),
        });
    }

    /// Drops acknowledged ops whose change the confirmed state already includes.
    pub(super) fn settle_acked(&mut self) {
        let seq = self.position.map_or(0, |p| p.seq);
        let settled = |op: &LocalOp| matches!(op.progress, Progress::Acked { seq: s } if s <= seq);
        let chats: Vec<ChatId> = self
            .ops
            .iter()
            .filter(|op| settled(op))
            .map(|op| op.chat_id().clone())
            .collect();
        if chats.is_empty() {
            return;
        }
        self.ops.retain(|op| !settled(op));
        for chat in &chats {
            self.touch(chat);
        }
    }

    pub(super) fn on_ack(&mut self, id: &BroadcastId, seq: u64) {
        if let Some(op) = self.ops.get_mut(id) {
            op.progress = Progress::Acked { seq };
            let chat = op.chat_id().clone();
            self.touch(&chat);
        }
        self.settle_acked();
    }

    pub(super) fn on_error(&mut self, error: ErrorFrame) {
        let Some(id) = error.broadcast_id else {
            // Errors about the session itself come with a close code, which decides.
            return;
        };
        let Some(op) = self
            .ops
            .get_mut(&id)
            .filter(|o| matches!(o.progress, Progress::Pending { .. }))
        else {
            return;
        };
        let reason = FailReason::Server(error.code);
        op.progress = Progress::Failed(reason);
        let op_ref = op.op_ref();
        self.touch(&op_ref.chat_id);
        self.report_failure(&op_ref, reason);
    }
}

/// Whether a snapshot shows the effect of `op` (used to settle an op in flight at a drop).
/// A delete whose discussion is gone counts as done even if someone else deleted it first: what
/// the person asked for holds, and nothing is left to retry.
/// `unborn` lists discussions whose creation by us was not committed.
fn effect_visible(state: &ImageState, op: &Op, unborn: &[ChatId]) -> bool {
    let comment = |chat_id: &ChatId, comment_id: &CommentId| {
        state
            .chat(chat_id)
            .and_then(|chat| chat.comments.iter().find(|c| &c.id == comment_id))
    };
    match op {
        Op::CreateChat(o) => comment(&o.chat_id, &o.chat_id.opening_comment()).is_some(),
        Op::AddComment(o) => comment(&o.chat_id, &o.comment_id).is_some(),
        Op::EditComment(o) => comment(&o.chat_id, &o.comment_id).is_some_and(|c| c.text == o.text),
        Op::DeleteChat(o) => state.chat(&o.chat_id).is_none() && !unborn.contains(&o.chat_id),
        // Gone either way, like a delete: what the person asked for holds.
        Op::DeleteComment(o) => {
            comment(&o.chat_id, &o.comment_id).is_none() && !unborn.contains(&o.chat_id)
        }
        Op::ResolveChat(o) => state
            .chat(&o.chat_id)
            .is_some_and(|c| c.resolved == o.resolved),
        Op::MoveChat(o) => state.chat(&o.chat_id).is_some_and(|c| c.anchor == o.anchor),
    }
}
