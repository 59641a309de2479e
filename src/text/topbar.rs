//! The top bar of a text container (`div.image-chat-topbar[data-image-chat-own]`): the
//! connection status and the live number of people on the page (the widget's own bar, moved
//! here), the number of discussions — or, when there are none, "Select some text to start a
//! discussion." —, the keyboard path to selecting text, and the list of discussions (every one
//! opens its thread; those whose text is not found any more are listed apart, "On text that
//! changed"). It goes first in the container, or first in the `topBarTarget` element; it is the
//! widget's own element (`data-image-chat-own`), never part of the text.

use image_chat_protocol::ChatId;
use web_sys::{Document, Element};

use crate::dom::plain;
use crate::i18n::Locale;
use crate::text::prompt::{TextAction, button};
use crate::text::strings::{list_entry, strings};

/// One discussion in the list.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The discussion.
    pub id: ChatId,
    /// Its quote.
    pub quote: String,
    /// How many comments it has.
    pub comments: usize,
    /// Its text is not found any more.
    pub changed: bool,
}

/// The top bar's elements.
pub struct TopBar {
    /// `div.image-chat-topbar`.
    pub el: Element,
    count: Element,
    /// The keyboard selection button.
    pub select: Element,
    list: Element,
    summary: Element,
    open: Element,
    changed_head: Element,
    changed: Element,
    /// What the list shows, as last rendered.
    shown: Option<(Locale, Vec<Entry>)>,
}

impl TopBar {
    /// Builds the bar first in `parent`, taking over the widget's `bar` (status, reconnect,
    /// people online).
    pub fn build(
        doc: &Document,
        parent: &Element,
        bar: &Element,
        locale: Locale,
        theme: &str,
    ) -> TopBar {
        let s = strings(locale);
        let el = plain::create(doc, "div");
        el.set_class_name("image-chat-topbar");
        for (name, value) in [
            ("data-image-chat-own", ""),
            ("role", "region"),
            ("aria-label", s.bar_label),
            ("lang", locale.tag()),
            ("data-theme", theme),
        ] {
            plain::set(&el, name, value);
        }
        plain::append(&el, bar);
        let count = plain::create(doc, "span");
        count.set_class_name("image-chat-count");
        plain::append(&el, &count);
        let select = button(doc, TextAction::SelectKeys, s.select_keys);
        plain::set(&select, "aria-pressed", "false");
        plain::append(&el, &select);
        let list = plain::create(doc, "details");
        list.set_class_name("image-chat-list");
        plain::set(&list, "hidden", "");
        let summary = plain::create(doc, "summary");
        summary.set_text_content(Some(s.list));
        plain::append(&list, &summary);
        let open = plain::create(doc, "ol");
        plain::append(&list, &open);
        let changed_head = plain::create(doc, "p");
        changed_head.set_class_name("image-chat-changed");
        changed_head.set_text_content(Some(s.changed));
        plain::append(&list, &changed_head);
        let changed = plain::create(doc, "ol");
        plain::set(&changed, "data-changed", "");
        plain::append(&list, &changed);
        plain::append(&el, &list);
        plain::insert(parent, &el, parent.first_child().as_ref());
        TopBar {
            el,
            count,
            select,
            list,
            summary,
            open,
            changed_head,
            changed,
            shown: None,
        }
    }

    /// Shows the number of discussions (or the hint) and lists them; touches the DOM only when
    /// something changed.
    pub fn render(&mut self, doc: &Document, locale: Locale, entries: Vec<Entry>) {
        if self
            .shown
            .as_ref()
            .is_some_and(|(l, e)| *l == locale && *e == entries)
        {
            return;
        }
        let s = strings(locale);
        let n = entries.len();
        self.count.set_text_content(Some(&if n == 0 {
            s.empty_hint.to_owned()
        } else {
            locale.cluster(n)
        }));
        plain::set(&self.count, "data-count", &crate::i18n::decimal(n as u64));
        if n == 0 {
            plain::set(&self.list, "hidden", "");
        } else {
            plain::unset(&self.list, "hidden");
        }
        self.open.set_text_content(None);
        self.changed.set_text_content(None);
        for e in &entries {
            let li = plain::create(doc, "li");
            let b = plain::create(doc, "button");
            b.set_class_name("image-chat-btn");
            plain::set(&b, "type", "button");
            plain::set(&b, "data-chat-id", e.id.as_str());
            if e.changed {
                plain::set(&b, "data-changed", "");
            }
            b.set_text_content(Some(&list_entry(locale, &e.quote, e.comments)));
            plain::append(&li, &b);
            plain::append(if e.changed { &self.changed } else { &self.open }, &li);
        }
        let any_changed = entries.iter().any(|e| e.changed);
        for el in [&self.changed_head, &self.changed] {
            if any_changed {
                plain::unset(el, "hidden");
            } else {
                plain::set(el, "hidden", "");
            }
        }
        self.shown = Some((locale, entries));
    }

    /// Shows the labels in `locale` (the list and count at the next [`TopBar::render`]).
    pub fn relabel(&mut self, locale: Locale) {
        let s = strings(locale);
        plain::set(&self.el, "aria-label", s.bar_label);
        plain::set(&self.el, "lang", locale.tag());
        self.select.set_text_content(Some(s.select_keys));
        self.summary.set_text_content(Some(s.list));
        self.changed_head.set_text_content(Some(s.changed));
        self.shown = None;
    }

    /// The list's button of discussion `id`.
    pub fn entry(&self, id: &ChatId) -> Option<Element> {
        let buttons = plain::query_all(&self.list, "button[data-chat-id]");
        (0..buttons.length())
            .filter_map(|i| buttons.item(i))
            .filter_map(|n| wasm_bindgen::JsCast::dyn_into::<Element>(n).ok())
            .find(|b| b.get_attribute("data-chat-id").as_deref() == Some(id.as_str()))
    }

    /// Mirrors the overlay's `data-state` (the status dot's colour) and theme.
    pub fn mirror(&self, state: &str, theme: &str) {
        // Only on a change: every write is a mutation the widget's observers would see.
        for (name, value) in [("data-state", state), ("data-theme", theme)] {
            if self.el.get_attribute(name).as_deref() != Some(value) {
                plain::set(&self.el, name, value);
            }
        }
    }

    /// Says whether keyboard selection is on.
    pub fn selecting(&self, on: bool) {
        plain::set(
            &self.select,
            "aria-pressed",
            if on { "true" } else { "false" },
        );
    }

    /// Removes the bar.
    pub fn teardown(&self) {
        self.el.remove();
    }
}
