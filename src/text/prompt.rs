//! The prompt at a selection: a small toolbar (`div.image-chat-prompt[role=toolbar]`) with
//! *Discuss this text*, *Copy* and *Cancel*, in the widget's overlay, under the selection's
//! last line. Its buttons carry `data-text-action` (see [`TextAction`]).

use web_sys::{Document, Element};

use crate::dom::plain;
use crate::i18n::Locale;
use crate::text::strings::strings;

/// What a text-mode button does (`data-text-action`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextAction {
    /// Open a draft about the selection.
    Discuss,
    /// Copy the selected text.
    Copy,
    /// Dismiss the prompt (and the selection).
    Cancel,
    /// Start (or stop) selecting text with the keyboard (the top bar's button).
    SelectKeys,
}

impl TextAction {
    /// The attribute value.
    pub fn as_attr(self) -> &'static str {
        match self {
            TextAction::Discuss => "discuss",
            TextAction::Copy => "copy-text",
            TextAction::Cancel => "cancel-text",
            TextAction::SelectKeys => "select-keys",
        }
    }

    /// The action an attribute value names.
    pub fn from_attr(value: &str) -> Option<TextAction> {
        [
            TextAction::Discuss,
            TextAction::Copy,
            TextAction::Cancel,
            TextAction::SelectKeys,
        ]
        .into_iter()
        .find(|a| a.as_attr() == value)
    }
}

/// A widget button (`button.image-chat-btn[data-text-action]`).
pub fn button(doc: &Document, action: TextAction, label: &str) -> Element {
    let b = plain::create(doc, "button");
    b.set_class_name("image-chat-btn");
    plain::set(&b, "type", "button");
    plain::set(&b, "data-text-action", action.as_attr());
    b.set_text_content(Some(label));
    b
}

/// The prompt element (hidden until [`Prompt::show`]).
pub struct Prompt {
    /// `div.image-chat-prompt`.
    pub el: Element,
    discuss: Element,
    cancel: Element,
    copy: Element,
    error: Element,
    locale: Locale,
}

impl Prompt {
    /// Builds the prompt inside `root` (the widget's overlay), hidden.
    pub fn build(doc: &Document, root: &Element, locale: Locale) -> Prompt {
        let s = strings(locale);
        let el = plain::create(doc, "div");
        el.set_class_name("image-chat-prompt");
        plain::set(&el, "role", "toolbar");
        plain::set(&el, "aria-label", s.prompt_label);
        plain::set(&el, "hidden", "");
        let discuss = button(doc, TextAction::Discuss, s.discuss);
        plain::set(&discuss, "data-primary", "");
        let copy = button(doc, TextAction::Copy, s.copy);
        let cancel = button(doc, TextAction::Cancel, s.cancel);
        let error = plain::create(doc, "p");
        error.set_class_name("image-chat-error");
        plain::set(&error, "hidden", "");
        for b in [&discuss, &copy, &cancel, &error] {
            plain::append(&el, b);
        }
        plain::append(root, &el);
        Prompt {
            el,
            discuss,
            cancel,
            copy,
            error,
            locale,
        }
    }

    /// Shows the prompt at `(left, top)` px in the overlay root's box.
    pub fn show(&self, left: f64, top: f64) {
        plain::set_style(&self.el, "left", &crate::geometry::px(left));
        plain::set_style(&self.el, "top", &crate::geometry::px(top));
        self.copy.set_text_content(Some(strings(self.locale).copy));
        plain::set(&self.error, "hidden", "");
        plain::unset(&self.el, "hidden");
    }

    /// Hides the prompt.
    pub fn hide(&self) {
        plain::set(&self.el, "hidden", "");
    }

    /// Whether the prompt is shown.
    pub fn shown(&self) -> bool {
        !self.el.has_attribute("hidden")
    }

    /// "Copy" says "Copied".
    pub fn copied(&self) {
        self.copy
            .set_text_content(Some(strings(self.locale).copied));
    }

    /// Shows the labels in `locale`.
    pub fn relabel(&mut self, locale: Locale) {
        self.locale = locale;
        let s = strings(locale);
        plain::set(&self.el, "aria-label", s.prompt_label);
        for (b, label) in [
            (&self.discuss, s.discuss),
            (&self.copy, s.copy),
            (&self.cancel, s.cancel),
        ] {
            b.set_text_content(Some(label));
        }
    }

    /// Shows why the selection cannot be discussed.
    pub fn error(&self, message: &str) {
        self.error.set_text_content(Some(message));
        plain::unset(&self.error, "hidden");
    }

    /// Focuses the first button (Tab from the selection).
    pub fn focus(&self) {
        if let Some(first) = plain::query(&self.el, "button") {
            plain::focus(&first);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip_through_their_attributes() {
        for a in [
            TextAction::Discuss,
            TextAction::Copy,
            TextAction::Cancel,
            TextAction::SelectKeys,
        ] {
            assert_eq!(TextAction::from_attr(a.as_attr()), Some(a));
        }
        assert_eq!(TextAction::from_attr("post"), None);
    }
}
