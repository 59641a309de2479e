//! What each event means. Applying the log's events in `seq` order to an empty state yields the
//! server's snapshot; the widget's view model and the server's replay checks both use this, so
//! the meaning of an event is written down exactly once.

use thiserror::Error;

use crate::ids::{ChatId, CommentId};
use crate::model::{Chat, Snapshot};
use crate::server::{ChatChange, Event};

/// An event that does not fit the state it was applied to: a sign that the state missed
/// something (and must be resynchronized), never something to paper over.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ApplyError {
    /// `new-image-chat` for an id that already exists.
    #[error("discussion {0} already exists")]
    DuplicateChat(ChatId),
    /// An update or delete for a discussion that does not exist.
    #[error("discussion {0} does not exist")]
    UnknownChat(ChatId),
    /// A reply whose id already exists in the thread.
    #[error("comment {0} already exists")]
    DuplicateComment(CommentId),
    /// An edit or removal of a comment that does not exist.
    #[error("comment {0} does not exist")]
    UnknownComment(CommentId),
    /// A removal of a discussion's opening comment, which only goes with the discussion.
    #[error("comment {0} opens its discussion")]
    OpeningComment(CommentId),
}

/// Every discussion on one image, in creation order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImageState {
    chats: Vec<Chat>,
}

impl ImageState {
    /// The state a snapshot describes.
    pub fn from_snapshot(snapshot: Snapshot) -> Self {
        Self {
            chats: snapshot.chats,
        }
    }

    /// The state as a snapshot.
    pub fn to_snapshot(&self) -> Snapshot {
        Snapshot {
            chats: self.chats.clone(),
        }
    }

    /// Discussions, oldest first.
    pub fn chats(&self) -> &[Chat] {
        &self.chats
    }

    /// One discussion by id.
    pub fn chat(&self, id: &ChatId) -> Option<&Chat> {
        self.chats.iter().find(|c| &c.id == id)
    }

    fn chat_mut(&mut self, id: &ChatId) -> Result<&mut Chat, ApplyError> {
        self.chats
            .iter_mut()
            .find(|c| &c.id == id)
            .ok_or_else(|| ApplyError::UnknownChat(id.clone()))
    }

    /// Applies one event. On error the state is unchanged.
    pub fn apply(&mut self, event: &Event) -> Result<(), ApplyError> {
        match event {
            Event::NewImageChat(e) | Event::NewTextChat(e) => {
                if self.chat(&e.chat.id).is_some() {
                    return Err(ApplyError::DuplicateChat(e.chat.id.clone()));
                }
                self.chats.push(e.chat.clone());
            }
            Event::ImageChatUpdated(e) | Event::UpdatedTextChat(e) => {
                let chat = self.chat_mut(&e.chat_id)?;
                match &e.change {
                    ChatChange::CommentAdded { comment } => {
                        if chat.comments.iter().any(|c| c.id == comment.id) {
                            return Err(ApplyError::DuplicateComment(comment.id.clone()));
                        }
                        chat.comments.push(comment.clone());
                    }
                    ChatChange::CommentEdited {
                        comment_id,
                        text,
                        edited_at,
                    } => {
                        let comment = chat
                            .comments
                            .iter_mut()
                            .find(|c| &c.id == comment_id)
                            .ok_or_else(|| ApplyError::UnknownComment(comment_id.clone()))?;
                        comment.text.clone_from(text);
                        comment.edited_at = Some(*edited_at);
                    }
                    ChatChange::CommentDeleted { comment_id } => {
                        let i = chat
                            .comments
                            .iter()
                            .position(|c| &c.id == comment_id)
                            .ok_or_else(|| ApplyError::UnknownComment(comment_id.clone()))?;
                        if i == 0 {
                            return Err(ApplyError::OpeningComment(comment_id.clone()));
                        }
                        chat.comments.remove(i);
                    }
                    ChatChange::Resolved { resolved } => chat.resolved = *resolved,
                    ChatChange::Moved { anchor } => chat.anchor = anchor.clone(),
                }
            }
            Event::DeletedImageChat(e) | Event::DeletedTextChat(e) => {
                let before = self.chats.len();
                self.chats.retain(|c| c.id != e.chat_id);
                if self.chats.len() == before {
                    return Err(ApplyError::UnknownChat(e.chat_id.clone()));
                }
            }
        }
        Ok(())
    }
}
