//! The view model: what the widget renders, and the changes it must apply to its DOM.
//!
//! The view is *derived*, never edited in place: it is the confirmed server state
//! (`image_chat_protocol::ImageState`, the single definition of what events mean) with our
//! unsettled ops replayed over it in submission order (a pending reply appended, a pending edit's
//! text swapped in, a pending delete hiding its discussion or reply, a pending resolve or move
//! showing the new state or anchor, a failed op shown as failed with the confirmed content
//! restored). Rebuilding it after each input is cheap at the sizes one image
//! holds, and it makes rollback trivially correct: a failed op simply stops contributing its
//! effect. `diff` then turns the old and new views into the few [`ViewUpdate`]s the widget
//! applies.
//!
//! Each discussion's view is built once and then shared ([`Rc`]): the engine's [`View`], the
//! [`ViewUpdate::Chat`] that reports it and the widget's own table hold the same one, instead
//! of three copies of every comment's strings (a snapshot of a thousand discussions made that
//! a quarter of the widget's first paint: docs/BENCHMARKS.md, "First paint (issue 18,
//! session 7)"). Views are never changed once shared: a rebuild makes new ones.

use std::rc::Rc;

use crate::queue::Queue;

use image_chat_protocol::{
    Anchor, BroadcastId, ChatId, CommentId, ImageState, Op, TextAnchor, User,
};

use crate::connection::ConnectionStatus;
use crate::error::{FailReason, OpKind};
use crate::pending::{LocalOp, PendingOps, Progress};
use crate::sorted::SortedMap;

/// Where a discussion or comment stands with respect to our own ops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpState {
    /// The server's state (or our op, now committed).
    Confirmed,
    /// Our op is on its way; show `data-pending`.
    Pending {
        /// The op.
        op: BroadcastId,
        /// What it does.
        kind: OpKind,
    },
    /// Our op failed; show `data-failed` with the reason and retry / dismiss. For a failed edit
    /// or delete the confirmed content is shown again.
    Failed {
        /// The op (for [`crate::Command::Retry`] / [`crate::Command::Dismiss`]).
        op: BroadcastId,
        /// What it tried to do.
        kind: OpKind,
        /// Why (translate [`FailReason::key`]).
        reason: FailReason,
        /// Whether offering "retry" makes sense.
        retryable: bool,
    },
}

impl OpState {
    /// Whether an op of ours is still on its way.
    pub fn is_pending(&self) -> bool {
        matches!(self, OpState::Pending { .. })
    }

    /// Whether an op of ours failed here.
    pub fn is_failed(&self) -> bool {
        matches!(self, OpState::Failed { .. })
    }
}

/// One comment as shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommentView {
    /// Its id (`data-comment-id`).
    pub id: CommentId,
    /// Who wrote it.
    pub author: User,
    /// The text to show (with `textContent` only).
    pub text: String,
    /// Creation time, ms since the Unix epoch (local time for an optimistic comment).
    pub created_at: u64,
    /// Last edit time, if edited.
    pub edited_at: Option<u64>,
    /// Whether the current person wrote it.
    pub mine: bool,
    /// Whether the current person may edit it (author or moderator).
    pub can_edit: bool,
    /// Our op on this comment, if any.
    pub state: OpState,
}

/// One discussion as shown: its marker and thread.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatView {
    /// Its id (`data-chat-id`).
    pub id: ChatId,
    /// Where the discussion is anchored: a point or a region of an image (fractions of its
    /// size), or a passage of a page's text ([`ChatView::text`]); the kind follows the
    /// engine's subject.
    pub anchor: Anchor,
    /// The thread, oldest first.
    pub comments: Vec<CommentView>,
    /// Whether the current person started it.
    pub mine: bool,
    /// Whether the current person may delete, resolve, reopen and move it (author or
    /// moderator).
    pub can_delete: bool,
    /// Resolved (settled): drawn muted, its thread collapsed.
    pub resolved: bool,
    /// Our latest op on the discussion itself (create, delete, resolve, move), if any; a reply,
    /// an edit or a reply's deletion shows on its comment.
    pub state: OpState,
}

impl ChatView {
    /// The marker position as `(x, y)` fractions: the point, or a region's top-left corner;
    /// `None` for a passage of text (a page's discussion has no marker on an image).
    pub fn point(&self) -> Option<(f64, f64)> {
        match self.anchor {
            Anchor::Text(_) => None,
            _ => Some(self.anchor.corner()),
        }
    }

    /// A page discussion's passage (re-anchor it with `image_chat_anchor::locate`).
    pub fn text(&self) -> Option<&TextAnchor> {
        self.anchor.as_text()
    }

    /// A region anchor's `(x, y, w, h)`, as fractions.
    pub fn region(&self) -> Option<(f64, f64, f64, f64)> {
        match self.anchor {
            Anchor::Region { x, y, w, h } => Some((x, y, w, h)),
            _ => None,
        }
    }

    /// The person who started the discussion.
    pub fn author(&self) -> Option<&User> {
        self.comments.first().map(|c| &c.author)
    }
}

/// Everything the widget shows, at once (for a full render).
#[derive(Clone, Debug, PartialEq)]
pub struct View {
    /// Discussions in creation order (confirmed ones in server order, then our pending ones).
    pub chats: Vec<Rc<ChatView>>,
    /// The connection status.
    pub connection: ConnectionStatus,
    /// How many connections view this image (0 until the first `welcome`).
    pub online: u32,
    /// The server lets this person read but not write (tenant policy or signed user data):
    /// the widget hides the controls and the engine refuses new ops.
    pub read_only: bool,
    /// A moderator locked the image read-only: only moderators may change it (others' ops are
    /// refused by the engine, as the server would with `image-locked`).
    pub locked: bool,
}

impl View {
    /// One discussion by id.
    pub fn chat(&self, id: &ChatId) -> Option<&ChatView> {
        self.chats.iter().find(|c| &c.id == id).map(Rc::as_ref)
    }
}

/// A remote change worth telling screen-reader users about (an `aria-live` message). Never
/// produced for the person's own changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Announcement {
    /// Someone placed a new marker.
    NewChat {
        /// The new discussion.
        chat_id: ChatId,
        /// Who.
        by: User,
    },
    /// Someone replied.
    Reply {
        /// The discussion.
        chat_id: ChatId,
        /// The new comment.
        comment_id: CommentId,
        /// Who.
        by: User,
    },
    /// Someone edited their comment.
    Edited {
        /// The discussion.
        chat_id: ChatId,
        /// The comment.
        comment_id: CommentId,
        /// Its author.
        by: User,
    },
    /// A discussion was deleted.
    Deleted {
        /// The discussion that is gone.
        chat_id: ChatId,
    },
    /// A reply was deleted.
    CommentDeleted {
        /// The discussion.
        chat_id: ChatId,
    },
    /// A discussion was resolved (`true`) or reopened (`false`).
    Resolved {
        /// The discussion.
        chat_id: ChatId,
        /// Its new state.
        resolved: bool,
    },
    /// A discussion's marker moved.
    Moved {
        /// The discussion.
        chat_id: ChatId,
    },
    /// After a reconnect, several remote changes arrived at once (or the whole state was
    /// reloaded); announced as one message instead of a burst.
    Caught {
        /// How many changes (0 when the state was reloaded from a snapshot).
        changes: usize,
    },
}

/// One thing the widget must change in its DOM, drained with [`crate::Engine::poll_view`].
#[derive(Clone, Debug, PartialEq)]
pub enum ViewUpdate {
    /// A discussion appeared or changed: (re)render its marker and thread. `index` is its place
    /// in creation order (for DOM / tab order). Removals of the same round come first.
    Chat {
        /// Position in [`View::chats`].
        index: usize,
        /// The discussion as it now is (shared with [`View::chats`]).
        chat: Rc<ChatView>,
    },
    /// A discussion is gone (deleted, rolled back, or dismissed): remove its marker and thread.
    ChatRemoved {
        /// Which.
        chat_id: ChatId,
    },
    /// The connection status changed (`data-state`, status line).
    Connection(ConnectionStatus),
    /// The live viewer count changed (`.image-chat-online`).
    Online(u32),
    /// The server's read-only verdict for this person changed (see [`View::read_only`]).
    ReadOnly(bool),
    /// The image was locked (true) or unlocked by a moderator (see [`View::locked`]).
    Locked(bool),
    /// Say this in the `aria-live` region.
    Announce(Announcement),
    /// One of our ops just failed (for a transient notice; the failure also shows in the view).
    OpFailed {
        /// The op.
        op: BroadcastId,
        /// What it tried to do.
        kind: OpKind,
        /// Why.
        reason: FailReason,
    },
}

/// Builds the discussions to show: the confirmed state with our ops replayed over it.
pub(crate) fn build(state: &ImageState, ops: &PendingOps, you: Option<&User>) -> Vec<Rc<ChatView>> {
    let mut chats: Vec<Rc<ChatView>> = state
        .chats()
        .iter()
        .map(|chat| Rc::new(confirmed_view(chat, you)))
        .collect();
    for op in ops.iter() {
        overlay(&mut chats, op, you);
    }
    chats
}

fn confirmed_view(chat: &image_chat_protocol::Chat, you: Option<&User>) -> ChatView {
    let comments: Vec<CommentView> = chat
        .comments
        .iter()
        .map(|c| comment_view(c.id.clone(), &c.author, c.text.clone(), c, you))
        .collect();
    let mut view = chat_view(chat.id.clone(), chat.anchor.clone(), comments, you);
    view.resolved = chat.resolved;
    view
}

/// The view of one discussion alone, exactly as [`build`] would show it (or `None` when
/// [`build`] would not show it). Every op changes only the discussion it names, so replaying
/// just that discussion's ops over its confirmed state gives the same result; the same
/// `overlay` is used, so the two can never disagree.
fn build_one(
    state: &ImageState,
    ops: &PendingOps,
    you: Option<&User>,
    id: &ChatId,
) -> Option<Rc<ChatView>> {
    let mut one: Vec<Rc<ChatView>> = state
        .chat(id)
        .map(|chat| Rc::new(confirmed_view(chat, you)))
        .into_iter()
        .collect();
    for op in ops.iter().filter(|op| op.chat_id() == id) {
        overlay(&mut one, op, you);
    }
    one.pop()
}

/// Most discussions an incremental refresh handles; beyond that a full rebuild is as cheap.
pub(crate) const MAX_INCREMENTAL: usize = 16;

/// Where an entry of the refreshed view comes from.
enum Source {
    /// Rebuilt: `touched[k]`.
    Fresh(usize),
    /// Untouched: moved over from `old[i]`.
    Old(usize),
}

/// Brings `old` (the view last built) up to date when only the discussions in `touched` can
/// have changed, appending to `out` exactly the updates [`diff`] would. This is what keeps one
/// remote event O(1) in allocations and comparisons instead of rebuilding and comparing every
/// discussion shown: an untouched discussion is moved over as it is, and only its place is
/// checked.
///
/// Why it is sound: a discussion's view depends only on its confirmed state, the ops naming it
/// and who the person is (a change of person touches everything), so an untouched discussion's
/// view is unchanged; and untouched discussions keep their relative order (confirmed ones in
/// log order, then our creates in op order; only touched ones join, leave or move). Returns
/// `false`, with `old` and `out` unchanged, if `old` does not match that expectation; the
/// caller then rebuilds in full.
pub(crate) fn refresh(
    old: &mut Vec<Rc<ChatView>>,
    state: &ImageState,
    ops: &PendingOps,
    you: Option<&User>,
    touched: &[ChatId],
    out: &mut Queue<ViewUpdate>,
) -> bool {
    if let [id] = touched
        && ops.iter().next().is_none()
        && refresh_confirmed_one(old, state, you, id, out).is_some()
    {
        return true;
    }
    let slot = |id: &ChatId| touched.iter().position(|t| t == id);
    let mut fresh: Vec<Option<Rc<ChatView>>> = touched
        .iter()
        .map(|id| build_one(state, ops, you, id))
        .collect();

    // Plan the new order without moving anything, so a mismatch leaves `old` intact. Candidates
    // in the order `build` produces them: confirmed discussions, then our creates.
    let untouched: Vec<usize> = (0..old.len())
        .filter(|&i| slot(&old[i].id).is_none())
        .collect();
    let mut next_untouched = untouched.iter().copied().peekable();
    let mut placed = vec![false; touched.len()];
    let mut plan: Vec<Source> = Vec::with_capacity(old.len() + touched.len());
    let creates = ops.iter().filter_map(|op| match &op.op {
        Op::CreateChat(create) => Some(&create.chat_id),
        _ => None,
    });
    for id in state.chats().iter().map(|c| &c.id).chain(creates) {
        match slot(id) {
            Some(k) => {
                if fresh[k].is_some() && !placed[k] {
                    placed[k] = true;
                    plan.push(Source::Fresh(k));
                }
            }
            None => {
                // An untouched candidate missing from `old` is hidden (by our pending delete)
                // and stays hidden.
                if next_untouched.peek().is_some_and(|&i| &old[i].id == id) {
                    plan.extend(next_untouched.next().map(Source::Old));
                }
            }
        }
    }
    let all_placed = placed
        .iter()
        .zip(&fresh)
        .all(|(placed, chat)| *placed || chat.is_none());
    if next_untouched.peek().is_some() || !all_placed {
        return false;
    }

    // Removals first (in old order), and each survivor's index once they are done.
    let mut old_index: Vec<Option<usize>> = vec![None; old.len()];
    let mut survivors = 0;
    for (i, chat) in old.iter().enumerate() {
        let removed = slot(&chat.id).is_some_and(|k| fresh[k].is_none());
        if removed {
            out.push_back(ViewUpdate::ChatRemoved {
                chat_id: chat.id.clone(),
            });
        } else {
            old_index[i] = Some(survivors);
            survivors += 1;
        }
    }
    let mut old_of_touched: Vec<Option<usize>> = vec![None; touched.len()];
    for (i, chat) in old.iter().enumerate() {
        if let Some(k) = slot(&chat.id) {
            old_of_touched[k] = Some(i);
        }
    }

    let mut previous: Vec<Option<Rc<ChatView>>> =
        std::mem::take(old).into_iter().map(Some).collect();
    let mut chats = Vec::with_capacity(plan.len());
    for source in plan {
        let index = chats.len();
        let (chat, unchanged) = match source {
            Source::Fresh(k) => {
                let Some(chat) = fresh[k].take() else {
                    continue;
                };
                let unchanged = old_of_touched[k].is_some_and(|i| {
                    old_index[i] == Some(index) && previous[i].as_ref() == Some(&chat)
                });
                (chat, unchanged)
            }
            Source::Old(i) => {
                let Some(chat) = previous[i].take() else {
                    continue;
                };
                (chat, old_index[i] == Some(index))
            }
        };
        if !unchanged {
            out.push_back(ViewUpdate::Chat {
                index,
                chat: Rc::clone(&chat),
            });
        }
        chats.push(chat);
    }
    *old = chats;
    true
}

/// [`refresh`] for its commonest case, a live event: one discussion touched and no ops of
/// ours, so the view is the confirmed state in log order, one view per discussion. Then `old`
/// holds the untouched discussions, in that order, and at most the touched one besides, and
/// the lengths say which case it is: one more in the state (created: it is the last), one fewer
/// (deleted), or as many (changed, in its place). One scan of the discussions at most, instead
/// of planning the whole order in five. `None`, with nothing changed, when `old` does not fit
/// (the caller plans).
fn refresh_confirmed_one(
    old: &mut Vec<Rc<ChatView>>,
    state: &ImageState,
    you: Option<&User>,
    id: &ChatId,
    out: &mut Queue<ViewUpdate>,
) -> Option<()> {
    let chats = state.chats();
    if chats.len() == old.len() + 1 {
        let last = chats.last().filter(|c| c.id == *id)?;
        let chat = Rc::new(confirmed_view(last, you));
        out.push_back(ViewUpdate::Chat {
            index: old.len(),
            chat: Rc::clone(&chat),
        });
        old.push(chat);
    } else if chats.len() + 1 == old.len() {
        let index = old.iter().rposition(|c| c.id == *id)?;
        old.remove(index);
        out.push_back(ViewUpdate::ChatRemoved {
            chat_id: id.clone(),
        });
    } else if chats.len() == old.len() {
        let index = chats.iter().rposition(|c| c.id == *id)?;
        if old[index].id != *id {
            return None;
        }
        let chat = Rc::new(confirmed_view(&chats[index], you));
        if old[index] != chat {
            out.push_back(ViewUpdate::Chat {
                index,
                chat: Rc::clone(&chat),
            });
            old[index] = chat;
        }
    } else {
        return None;
    }
    Some(())
}

pub(crate) fn op_state(op: &LocalOp) -> OpState {
    match &op.progress {
        Progress::Pending { .. } => OpState::Pending {
            op: op.id().clone(),
            kind: op.kind(),
        },
        Progress::Acked { .. } => OpState::Confirmed,
        Progress::Failed(reason) => OpState::Failed {
            op: op.id().clone(),
            kind: op.kind(),
            reason: *reason,
            retryable: reason.retryable(),
        },
    }
}

fn is_mine(author: &User, you: Option<&User>) -> bool {
    you.is_some_and(|you| !you.id.is_empty() && you.id == author.id)
}

fn is_moderator(you: Option<&User>) -> bool {
    you.is_some_and(|you| you.is_moderator)
}

fn comment_view(
    id: CommentId,
    author: &User,
    text: String,
    c: &image_chat_protocol::Comment,
    you: Option<&User>,
) -> CommentView {
    let mine = is_mine(author, you);
    CommentView {
        id,
        author: author.clone(),
        text,
        created_at: c.created_at,
        edited_at: c.edited_at,
        mine,
        can_edit: mine || is_moderator(you),
        state: OpState::Confirmed,
    }
}

fn chat_view(
    id: ChatId,
    anchor: Anchor,
    comments: Vec<CommentView>,
    you: Option<&User>,
) -> ChatView {
    let mine = comments.first().is_some_and(|c| c.mine);
    ChatView {
        id,
        anchor,
        comments,
        mine,
        can_delete: mine || is_moderator(you),
        resolved: false,
        state: OpState::Confirmed,
    }
}

fn optimistic_comment(id: &CommentId, text: &str, op: &LocalOp, you: Option<&User>) -> CommentView {
    // Our own op: ours by definition. Before the first `welcome` the author is a placeholder
    // (no id yet); once the server said who we are, show that.
    let author = match you {
        Some(you) if op.author.id.is_empty() => you.clone(),
        _ => op.author.clone(),
    };
    let mine = true;
    CommentView {
        id: id.clone(),
        author,
        text: text.to_owned(),
        created_at: op.at,
        edited_at: None,
        mine,
        can_edit: mine || is_moderator(you),
        state: op_state(op),
    }
}

/// Replays one of our ops over the discussions shown. An op whose target is gone (deleted by
/// someone else meanwhile) contributes nothing; its failure is still reported via
/// [`ViewUpdate::OpFailed`] when the server refuses it.
///
/// Views are changed in place with [`Rc::make_mut`]: while a view is being built its
/// discussions are not shared yet, so that never copies.
fn overlay(chats: &mut Vec<Rc<ChatView>>, op: &LocalOp, you: Option<&User>) {
    let state = op_state(op);
    let effective = !matches!(op.progress, Progress::Failed(_));
    match &op.op {
        Op::CreateChat(create) => {
            if chats.iter().any(|c| c.id == create.chat_id) {
                return;
            }
            let comment =
                optimistic_comment(&create.chat_id.opening_comment(), &create.text, op, you);
            let mine = comment.mine;
            chats.push(Rc::new(ChatView {
                id: create.chat_id.clone(),
                anchor: create.anchor.clone(),
                comments: vec![comment],
                mine,
                can_delete: mine || is_moderator(you),
                resolved: false,
                state,
            }));
        }
        Op::AddComment(reply) => {
            let Some(chat) = chats.iter_mut().find(|c| c.id == reply.chat_id) else {
                return;
            };
            if chat.comments.iter().any(|c| c.id == reply.comment_id) {
                return;
            }
            let comment = optimistic_comment(&reply.comment_id, &reply.text, op, you);
            Rc::make_mut(chat).comments.push(comment);
        }
        Op::EditComment(edit) => {
            let Some(comment) = chats
                .iter_mut()
                .find(|c| c.id == edit.chat_id)
                .and_then(|chat| {
                    let chat = Rc::make_mut(chat);
                    chat.comments.iter_mut().find(|c| c.id == edit.comment_id)
                })
            else {
                return;
            };
            if effective {
                comment.text.clone_from(&edit.text);
                comment.edited_at = Some(op.at);
            }
            comment.state = state;
        }
        Op::DeleteChat(delete) => {
            if effective {
                chats.retain(|c| c.id != delete.chat_id);
            } else if let Some(chat) = chats.iter_mut().find(|c| c.id == delete.chat_id) {
                Rc::make_mut(chat).state = state;
            }
        }
        Op::DeleteComment(delete) => {
            let Some(chat) = chats.iter_mut().find(|c| c.id == delete.chat_id) else {
                return;
            };
            let chat = Rc::make_mut(chat);
            if effective {
                chat.comments.retain(|c| c.id != delete.comment_id);
            } else if let Some(comment) =
                chat.comments.iter_mut().find(|c| c.id == delete.comment_id)
            {
                comment.state = state;
            }
        }
        Op::ResolveChat(resolve) => {
            if let Some(chat) = chats.iter_mut().find(|c| c.id == resolve.chat_id) {
                let chat = Rc::make_mut(chat);
                if effective {
                    chat.resolved = resolve.resolved;
                }
                chat.state = state;
            }
        }
        Op::MoveChat(moved) => {
            if let Some(chat) = chats.iter_mut().find(|c| c.id == moved.chat_id) {
                let chat = Rc::make_mut(chat);
                if effective {
                    chat.anchor = moved.anchor.clone();
                }
                chat.state = state;
            }
        }
    }
}

/// Appends to `out` the updates that turn `old` into `new`: removals first, then every
/// discussion that is new, changed, or moved. ([`SortedMap`]s rather than hash maps: no hasher
/// in the widget's wasm.)
pub(crate) fn diff(old: &[Rc<ChatView>], new: &[Rc<ChatView>], out: &mut Queue<ViewUpdate>) {
    if old.is_empty() {
        // The first snapshot: everything is new, no id needs looking up.
        out.extend(
            new.iter()
                .enumerate()
                .map(|(index, chat)| ViewUpdate::Chat {
                    index,
                    chat: Rc::clone(chat),
                }),
        );
        return;
    }
    let new_ids: SortedMap<&ChatId, ()> = new.iter().map(|c| (&c.id, ())).collect();
    for chat in old {
        if !new_ids.contains_key(&&chat.id) {
            out.push_back(ViewUpdate::ChatRemoved {
                chat_id: chat.id.clone(),
            });
        }
    }
    // Index of each surviving old discussion once the removals are done, so a removal alone
    // does not make every later discussion look moved.
    let old_after_removal: SortedMap<&ChatId, (usize, &Rc<ChatView>)> = old
        .iter()
        .filter(|c| new_ids.contains_key(&&c.id))
        .enumerate()
        .map(|(i, c)| (&c.id, (i, c)))
        .collect();
    for (index, chat) in new.iter().enumerate() {
        let unchanged = old_after_removal
            .get(&&chat.id)
            .is_some_and(|(i, old)| *i == index && *old == chat);
        if !unchanged {
            out.push_back(ViewUpdate::Chat {
                index,
                chat: Rc::clone(chat),
            });
        }
    }
}
