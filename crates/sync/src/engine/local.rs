//! The person's ops: validation, optimistic recording, sending (only when live), retry and
//! dismiss. Nothing here is ever queued for later.

use image_chat_protocol::limits::{validate_fraction, validate_text};
use image_chat_protocol::{
    AddComment, Anchor, Auth, BroadcastId, ChatId, CreateChat, DeleteChat, DeleteComment,
    EditComment, MoveChat, Op, ResolveChat, User,
};

use super::{Command, Engine, Link};
use crate::connection::StopReason;
use crate::error::{FailReason, LocalError, OpKind, OpRef};
use crate::ids;
use crate::pending::{LocalOp, Progress};
use crate::view::{OpState, ViewUpdate};

impl Engine {
    pub(super) fn submit(&mut self, now: u64, cmd: Command) -> Result<OpRef, LocalError> {
        // The server would refuse it (`forbidden`, `image-locked`); say so at once and show
        // nothing.
        if !self.may_write() {
            return Err(LocalError::NotAllowed);
        }
        let broadcast_id = ids::broadcast_id(self.ids.as_mut());
        let op = match cmd {
            Command::CreateChat { x, y, text } => {
                validate_fraction(x)?;
                validate_fraction(y)?;
                validate_text(&text)?;
                Op::CreateChat(CreateChat {
                    broadcast_id,
                    chat_id: ids::chat_id(self.ids.as_mut()),
                    anchor: Anchor::point(x, y),
                    text,
                })
            }
            Command::Reply { chat_id, text } => {
                validate_text(&text)?;
                let chat = self
                    .view
                    .chat(&chat_id)
                    .ok_or_else(|| LocalError::UnknownChat(chat_id.clone()))?;
                target_exists(&chat.state)?;
                Op::AddComment(AddComment {
                    broadcast_id,
                    chat_id,
                    comment_id: ids::comment_id(self.ids.as_mut()),
                    text,
                })
            }
            Command::Edit {
                chat_id,
                comment_id,
                text,
            } => {
                validate_text(&text)?;
                let chat = self
                    .view
                    .chat(&chat_id)
                    .ok_or_else(|| LocalError::UnknownChat(chat_id.clone()))?;
                let comment = chat
                    .comments
                    .iter()
                    .find(|c| c.id == comment_id)
                    .ok_or_else(|| LocalError::UnknownComment(comment_id.clone()))?;
                target_exists(&chat.state)?;
                target_exists(&comment.state)?;
                if self.you.is_some() && !comment.can_edit {
                    return Err(LocalError::NotAllowed);
                }
                Op::EditComment(EditComment {
                    broadcast_id,
                    chat_id,
                    comment_id,
                    text,
                })
            }
            Command::Delete { chat_id } => {
                self.manageable(&chat_id)?;
                Op::DeleteChat(DeleteChat {
                    broadcast_id,
                    chat_id,
                })
            }
            Command::CreateText { anchor, text } => {
                let anchor = Anchor::Text(anchor);
                anchor.validate()?;
                validate_text(&text)?;
                Op::CreateChat(CreateChat {
                    broadcast_id,
                    chat_id: ids::chat_id(self.ids.as_mut()),
                    anchor,
                    text,
                })
            }
            Command::CreateRegion { x, y, w, h, text } => {
                let anchor = Anchor::region(x, y, w, h);
                // Checked as given (a fraction outside [0, 1] is refused, not rounded in).
                for v in [x, y, w, h] {
                    validate_fraction(v)?;
                }
                anchor.validate()?;
                validate_text(&text)?;
                Op::CreateChat(CreateChat {
                    broadcast_id,
                    chat_id: ids::chat_id(self.ids.as_mut()),
                    anchor,
                    text,
                })
            }
            Command::DeleteComment {
                chat_id,
                comment_id,
            } => {
                if comment_id == chat_id.opening_comment() {
                    return Err(LocalError::NotAllowed);
                }
                let chat = self
                    .view
                    .chat(&chat_id)
                    .ok_or_else(|| LocalError::UnknownChat(chat_id.clone()))?;
                let comment = chat
                    .comments
                    .iter()
                    .find(|c| c.id == comment_id)
                    .ok_or_else(|| LocalError::UnknownComment(comment_id.clone()))?;
                target_exists(&chat.state)?;
                target_exists(&comment.state)?;
                if self.you.is_some() && !comment.can_edit {
                    return Err(LocalError::NotAllowed);
                }
                Op::DeleteComment(DeleteComment {
                    broadcast_id,
                    chat_id,
                    comment_id,
                })
            }
            Command::Resolve { chat_id, resolved } => {
                self.manageable(&chat_id)?;
                Op::ResolveChat(ResolveChat {
                    broadcast_id,
                    chat_id,
                    resolved,
                })
            }
            Command::Move { chat_id, anchor } => {
                anchor.validate()?;
                self.manageable(&chat_id)?;
                Op::MoveChat(MoveChat {
                    broadcast_id,
                    chat_id,
                    anchor: anchor.canonical(),
                })
            }
            // Handled by `handle_local`.
            Command::Retry { op } | Command::Dismiss { op } => {
                return Err(LocalError::UnknownOp(op));
            }
        };
        // Text on pages, points and regions on images: the server would refuse the others
        // (`wrong-anchor-kind`), so they are refused here, before anything is shown.
        op.check_subject(self.subject.kind())?;
        self.own.insert(op.broadcast_id().clone());
        let author = self.optimistic_author();
        let progress = match self.live_conn() {
            Some(conn) => {
                self.transmits
                    .push_back(op.clone().into_message().to_json());
                Progress::Pending { conn }
            }
            None => Progress::Failed(self.not_live_reason()),
        };
        let local = LocalOp {
            op,
            progress,
            at: now,
            author,
        };
        let op_ref = local.op_ref();
        let failed = match local.progress {
            Progress::Failed(reason) => Some(reason),
            _ => None,
        };
        let chat_id = local.chat_id().clone();
        self.ops.push(local);
        self.touch(&chat_id);
        match failed {
            Some(reason) => {
                self.report_failure(&op_ref, reason);
                Err(LocalError::NotConnected { op: op_ref, reason })
            }
            None => Ok(op_ref),
        }
    }

    pub(super) fn retry(&mut self, id: BroadcastId) -> Result<OpRef, LocalError> {
        let live = self.live_conn();
        let not_live = self.not_live_reason();
        let Some(chat_id) = self
            .ops
            .get(&id)
            .filter(|o| matches!(o.progress, Progress::Failed(_)))
            .map(|o| o.chat_id().clone())
        else {
            return Err(LocalError::UnknownOp(id));
        };
        self.touch(&chat_id);
        let Some(local) = self.ops.get_mut(&id) else {
            return Err(LocalError::UnknownOp(id));
        };
        let op_ref = local.op_ref();
        match live {
            Some(conn) => {
                local.progress = Progress::Pending { conn };
                self.transmits
                    .push_back(local.op.clone().into_message().to_json());
                // Sent after everything else, so replayed after everything else.
                self.ops.move_to_end(&id);
                Ok(op_ref)
            }
            None => {
                local.progress = Progress::Failed(not_live);
                self.report_failure(&op_ref, not_live);
                Err(LocalError::NotConnected {
                    op: op_ref,
                    reason: not_live,
                })
            }
        }
    }

    pub(super) fn dismiss(&mut self, id: &BroadcastId) -> Result<OpRef, LocalError> {
        match self.ops.get(id) {
            Some(op) if matches!(op.progress, Progress::Failed(_)) => {
                let op_ref = op.op_ref();
                self.ops.remove(id);
                self.touch(&op_ref.chat_id);
                Ok(op_ref)
            }
            _ => Err(LocalError::UnknownOp(id.clone())),
        }
    }

    /// Refuses a delete, resolve or move of a discussion that is not shown, exists only as our
    /// failed create, or is not this person's to manage (author or moderator).
    fn manageable(&self, chat_id: &ChatId) -> Result<(), LocalError> {
        let chat = self
            .view
            .chat(chat_id)
            .ok_or_else(|| LocalError::UnknownChat(chat_id.clone()))?;
        target_exists(&chat.state)?;
        if self.you.is_some() && !chat.can_delete {
            return Err(LocalError::NotAllowed);
        }
        Ok(())
    }

    pub(super) fn optimistic_author(&self) -> User {
        if let Some(you) = &self.you {
            return you.clone();
        }
        let name = match &self.auth {
            Some(Auth::Anonymous { name, .. }) => name.clone(),
            _ => String::new(),
        };
        User {
            id: String::new(),
            name,
            avatar_url: None,
            is_moderator: false,
            signed_in: false,
        }
    }

    pub(super) fn not_live_reason(&self) -> FailReason {
        if let Link::Stopped(StopReason::Refused(code)) = self.link {
            return FailReason::Refused(code);
        }
        if self.browser_online {
            FailReason::NotConnected
        } else {
            FailReason::Offline
        }
    }

    pub(super) fn report_failure(&mut self, op: &OpRef, reason: FailReason) {
        self.updates.push_back(ViewUpdate::OpFailed {
            op: op.op.clone(),
            kind: op.kind,
            reason,
        });
    }
}

/// Refuses ops on a discussion or comment that only exists as our failed create / reply: the
/// server does not know it, so the op could only fail (or, for a delete, look confirmed
/// without ever having been committed).
fn target_exists(state: &OpState) -> Result<(), LocalError> {
    match state {
        OpState::Failed {
            op,
            kind: OpKind::CreateChat | OpKind::Reply,
            ..
        } => Err(LocalError::TargetFailed(op.clone())),
        _ => Ok(()),
    }
}
