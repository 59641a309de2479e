//! The widget's button actions: every `data-action` attribute the UI writes and every click or
//! key the widget dispatches names one [`Action`], so the compiler checks both ends. The DOM
//! values (`data-action=close`, …) are part of the documented DOM contract and never change.

/// What a widget button (or its keyboard shortcut) does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Close the open thread (and any draft).
    Close,
    /// Discard the new-discussion draft.
    CancelDraft,
    /// Show or hide the markers.
    ToggleMarkers,
    /// Post the draft as a new discussion.
    Post,
    /// Reply in the open thread.
    Reply,
    /// Start editing a comment.
    Edit,
    /// Leave the comment being edited.
    CancelEdit,
    /// Save the comment being edited.
    SaveEdit,
    /// Delete the open discussion (asks once to confirm).
    Delete,
    /// Reconnect now instead of waiting for the back-off.
    Reconnect,
    /// Copy the kept text of a refused comment.
    Copy,
    /// Send a failed operation again.
    Retry,
    /// Forget a failed operation.
    Dismiss,
    /// Delete one reply of the open thread (asks once to confirm).
    DeleteComment,
    /// Resolve the open discussion, or reopen it.
    Resolve,
    /// Expand a resolved discussion's collapsed thread.
    ShowThread,
    /// Show or hide resolved discussions (the bar's filter).
    ToggleResolved,
    /// Copy a link to the open discussion.
    CopyLink,
    /// Lock the image read-only, or unlock it (moderators: the bar's lock button).
    ToggleLock,
}

impl Action {
    /// Every action, for tests and anything that must list them.
    pub const ALL: [Action; 19] = [
        Action::Close,
        Action::CancelDraft,
        Action::ToggleMarkers,
        Action::Post,
        Action::Reply,
        Action::Edit,
        Action::CancelEdit,
        Action::SaveEdit,
        Action::Delete,
        Action::Reconnect,
        Action::Copy,
        Action::Retry,
        Action::Dismiss,
        Action::DeleteComment,
        Action::Resolve,
        Action::ShowThread,
        Action::ToggleResolved,
        Action::CopyLink,
        Action::ToggleLock,
    ];

    /// The `data-action` attribute value.
    pub fn as_attr(&self) -> &'static str {
        match self {
            Action::Close => "close",
            Action::CancelDraft => "cancel-draft",
            Action::ToggleMarkers => "toggle-markers",
            Action::Post => "post",
            Action::Reply => "reply",
            Action::Edit => "edit",
            Action::CancelEdit => "cancel-edit",
            Action::SaveEdit => "save-edit",
            Action::Delete => "delete",
            Action::Reconnect => "reconnect",
            Action::Copy => "copy",
            Action::Retry => "retry",
            Action::Dismiss => "dismiss",
            Action::DeleteComment => "delete-comment",
            Action::Resolve => "resolve",
            Action::ShowThread => "show-thread",
            Action::ToggleResolved => "toggle-resolved",
            Action::CopyLink => "copy-link",
            Action::ToggleLock => "toggle-lock",
        }
    }

    /// The CSS selector for this action's buttons (`[data-action=…]`); a literal per action,
    /// so no formatting code ships in the wasm.
    pub fn selector(&self) -> &'static str {
        match self {
            Action::Close => "[data-action=close]",
            Action::CancelDraft => "[data-action=cancel-draft]",
            Action::ToggleMarkers => "[data-action=toggle-markers]",
            Action::Post => "[data-action=post]",
            Action::Reply => "[data-action=reply]",
            Action::Edit => "[data-action=edit]",
            Action::CancelEdit => "[data-action=cancel-edit]",
            Action::SaveEdit => "[data-action=save-edit]",
            Action::Delete => "[data-action=delete]",
            Action::Reconnect => "[data-action=reconnect]",
            Action::Copy => "[data-action=copy]",
            Action::Retry => "[data-action=retry]",
            Action::Dismiss => "[data-action=dismiss]",
            Action::DeleteComment => "[data-action=delete-comment]",
            Action::Resolve => "[data-action=resolve]",
            Action::ShowThread => "[data-action=show-thread]",
            Action::ToggleResolved => "[data-action=toggle-resolved]",
            Action::CopyLink => "[data-action=copy-link]",
            Action::ToggleLock => "[data-action=toggle-lock]",
        }
    }

    /// The action a `data-action` value names; `None` for anything else (a page may put its
    /// own `data-action` inside the widget's box, which the widget then ignores).
    pub fn from_attr(value: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_attr() == value)
    }
}

#[cfg(test)]
mod tests {
    use super::Action;

    #[test]
    fn every_action_round_trips_through_its_attribute() {
        for action in Action::ALL {
            assert_eq!(Action::from_attr(action.as_attr()), Some(action));
        }
    }

    #[test]
    fn attribute_values_are_distinct_and_unknown_ones_are_none() {
        for (i, a) in Action::ALL.iter().enumerate() {
            for b in &Action::ALL[i + 1..] {
                assert_ne!(a.as_attr(), b.as_attr());
            }
        }
        for action in Action::ALL {
            assert_eq!(
                action.selector(),
                format!("[data-action={}]", action.as_attr())
            );
        }
        assert_eq!(Action::from_attr(""), None);
        assert_eq!(Action::from_attr("Close"), None);
        assert_eq!(Action::from_attr("nonsense"), None);
    }
}
