//! The local ops the engine still has to account for: sent and unanswered, acknowledged but not
//! yet seen in the event stream, or failed and waiting for the person's retry / dismiss.
//!
//! Ops stay in submission order, which is also the order the server receives them on one socket;
//! the view replays them in that order over the confirmed state (see [`crate::view`]).
//! An op leaves this table when the confirmed state contains its effect (its event was applied,
//! or a snapshot superseded it) or when the person dismisses its failure.

use image_chat_protocol::{BroadcastId, ChatId, CommentId, Op, User};

use crate::connection::ConnectionId;
use crate::error::{FailReason, OpKind, OpRef};

/// Where an op stands.
#[derive(Clone, Debug, PartialEq)]
pub enum Progress {
    /// Sent on `conn`, no answer yet.
    Pending {
        /// The socket it went out on; an op sent on an older socket is settled by the resync.
        conn: ConnectionId,
    },
    /// The server committed it as change `seq`; its event has not been applied yet, so the
    /// view keeps showing the optimistic effect (now as confirmed) until it is.
    Acked {
        /// The change it became.
        seq: u64,
    },
    /// It failed; shown as failed until retried or dismissed.
    Failed(FailReason),
}

/// One op of ours, with what the view needs to show it before the server confirms it.
#[derive(Clone, Debug, PartialEq)]
pub struct LocalOp {
    /// The op exactly as sent (and re-sent on retry, same `broadcastId`).
    pub op: Op,
    /// Where it stands.
    pub progress: Progress,
    /// Local time of submission, shown as the optimistic comment's time.
    pub at: u64,
    /// Who we believed we were when submitting (the optimistic comment's author).
    pub author: User,
}

impl LocalOp {
    /// Which kind of op.
    pub fn kind(&self) -> OpKind {
        match &self.op {
            Op::CreateChat(_) => OpKind::CreateChat,
            Op::AddComment(_) => OpKind::Reply,
            Op::EditComment(_) => OpKind::Edit,
            Op::DeleteChat(_) => OpKind::Delete,
            Op::DeleteComment(_) => OpKind::DeleteComment,
            Op::ResolveChat(_) => OpKind::Resolve,
            Op::MoveChat(_) => OpKind::Move,
        }
    }

    /// The op's id.
    pub fn id(&self) -> &BroadcastId {
        self.op.broadcast_id()
    }

    /// The comment concerned, for the ops that make or change one (a creation makes the
    /// opening comment, whose id is the discussion's).
    pub fn comment_id(&self) -> Option<CommentId> {
        match &self.op {
            Op::CreateChat(op) => Some(op.chat_id.opening_comment()),
            Op::AddComment(op) => Some(op.comment_id.clone()),
            Op::EditComment(op) => Some(op.comment_id.clone()),
            Op::DeleteComment(op) => Some(op.comment_id.clone()),
            Op::DeleteChat(_) | Op::ResolveChat(_) | Op::MoveChat(_) => None,
        }
    }

    /// The discussion concerned.
    pub fn chat_id(&self) -> &ChatId {
        self.op.chat_id()
    }

    /// A handle naming this op for the widget.
    pub fn op_ref(&self) -> OpRef {
        OpRef {
            op: self.id().clone(),
            kind: self.kind(),
            chat_id: self.chat_id().clone(),
            comment_id: self.comment_id(),
        }
    }
}

/// Our unsettled ops, in submission order.
#[derive(Clone, Debug, Default)]
pub struct PendingOps {
    ops: Vec<LocalOp>,
}

impl PendingOps {
    /// Adds an op at the end.
    pub fn push(&mut self, op: LocalOp) {
        self.ops.push(op);
    }

    /// All ops, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &LocalOp> {
        self.ops.iter()
    }

    /// All ops, oldest first, mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut LocalOp> {
        self.ops.iter_mut()
    }

    /// The op with this id.
    pub fn get(&self, id: &BroadcastId) -> Option<&LocalOp> {
        self.ops.iter().find(|o| o.id() == id)
    }

    /// The op with this id, mutably.
    pub fn get_mut(&mut self, id: &BroadcastId) -> Option<&mut LocalOp> {
        self.ops.iter_mut().find(|o| o.id() == id)
    }

    /// Removes and returns the op with this id.
    pub fn remove(&mut self, id: &BroadcastId) -> Option<LocalOp> {
        let i = self.ops.iter().position(|o| o.id() == id)?;
        Some(self.ops.remove(i))
    }

    /// Keeps only the ops for which `keep` is true.
    pub fn retain(&mut self, keep: impl FnMut(&LocalOp) -> bool) {
        self.ops.retain(keep);
    }

    /// Moves an op to the end (a retried op is re-sent after everything else, so the view must
    /// replay it last too).
    pub fn move_to_end(&mut self, id: &BroadcastId) {
        if let Some(i) = self.ops.iter().position(|o| o.id() == id) {
            let op = self.ops.remove(i);
            self.ops.push(op);
        }
    }
}
