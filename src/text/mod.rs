//! Text mode (cargo feature `text`, the second bundle): live discussions on passages of an
//! article. `ImageChat.mountText(container)` (or `<article data-collab-chat="…">` with the
//! loader) mounts the same [`crate::widget::Widget`] as on an image — same engine, thread
//! panel, status, people, moderation, themes and locales — with a text container as its
//! target. This module owns what differs:
//!
//! - [`dom`]: the DOM glue — the container's flattened text, DOM `Range` ↔ UTF-16 offsets,
//!   hit tests, the selection, highlights (CSS Custom Highlight API, else wrapping);
//! - [`prompt`]: the small toolbar at a selection (*Discuss this text*, *Copy*, *Cancel*);
//! - [`topbar`]: the top bar (status, people online, discussion count or hint, the list of
//!   discussions with those on text that changed);
//! - [`strings`]: their strings in the four locales;
//! - [`TextMode`]: where each discussion is in the text now (re-anchored through
//!   `image-chat-anchor`, which holds the pure describe / locate logic) and what is painted.
//!
//! The browser-event side (selection, clicks on highlights, keys, the mutation observer) is
//! `crate::widget::text`, which sees the widget's internals.

pub mod dom;
pub mod prompt;
pub mod strings;
pub mod topbar;

use std::rc::Rc;

use image_chat_anchor::{AnchorError, FlatText, TextAnchor};
use image_chat_protocol::{Anchor, ChatId};
use image_chat_sync::ChatView;
use wasm_bindgen::JsValue;
use web_sys::{Document, Element, Range};

use crate::geometry::{Fraction, Rect};
use dom::Flat;

/// The highlight names (`::highlight(image-chat)` …) and, in the fallback, the `data-kind` of
/// the marks: every open discussion, resolved ones, and the one whose thread (or draft) is
/// open.
pub const HIGHLIGHTS: [&str; 3] = ["image-chat", "image-chat-resolved", "image-chat-open"];

/// A discussion's text anchor, if it is about text.
pub fn text_anchor(chat: &ChatView) -> Option<&TextAnchor> {
    match &chat.anchor {
        Anchor::Text(t) => Some(t),
        _ => None,
    }
}

/// Where a discussion's passage is in the container's text now, or `None` when its text is
/// not found any more (listed as "on text that changed").
pub type Place = Option<(u32, u32)>;

/// Finds `anchor` in `text` (`image-chat-anchor`: position, then exact quote, then fuzzy).
pub fn locate(text: &FlatText, anchor: &TextAnchor) -> Place {
    image_chat_anchor::locate_in(text, anchor).map(|found| (found.start, found.end))
}

/// Describes `[start, end)` of `text` as an anchor (`image-chat-anchor`); fails on a passage
/// that is blank or longer than the protocol allows.
pub fn describe(text: &FlatText, (start, end): (u32, u32)) -> Result<TextAnchor, AnchorError> {
    image_chat_anchor::describe_in(text, start..end)
}

/// What is painted for one discussion.
#[derive(Clone, Debug, PartialEq)]
struct Painted {
    id: ChatId,
    place: Place,
    resolved: bool,
}

/// Text mode's state in a widget.
pub struct TextMode {
    /// The site's container (never changed, except by the fallback's marks).
    pub container: Element,
    doc: Document,
    /// This widget's identity in the page-wide highlight registry.
    owner: JsValue,
    /// The CSS Custom Highlight API is there (else the fallback wraps).
    highlight_api: bool,
    /// The container's text nodes and text as last read (`None`: to be read again).
    flat: Option<(Flat, FlatText)>,
    /// The discussions and where each is, as last painted (creation order).
    painted: Vec<Painted>,
    /// The discussion whose thread is open, as last painted.
    painted_open: Option<ChatId>,
    /// The draft's passage, as last painted.
    painted_draft: Option<(u32, u32)>,
    /// The passage of the draft being written, and its anchor.
    pub draft: Option<((u32, u32), TextAnchor)>,
    /// The fallback's marks (to remove before painting again).
    marks: Vec<js_sys::Array>,
    /// The selection offered in the prompt.
    pub selected: Option<(u32, u32)>,
}

impl TextMode {
    /// Text mode on `container`.
    pub fn new(doc: &Document, container: &Element) -> TextMode {
        TextMode {
            container: container.clone(),
            doc: doc.clone(),
            owner: js_sys::Object::new().into(),
            highlight_api: dom::has_highlight_api(),
            flat: None,
            painted: Vec::new(),
            painted_open: None,
            painted_draft: None,
            draft: None,
            marks: Vec::new(),
            selected: None,
        }
    }

    /// Uses the wrapping fallback even where the Highlight API exists (tests of the fallback).
    pub fn force_fallback(&mut self) {
        self.highlight_api = false;
    }

    /// The container's text changed: read it again, locate and paint everything again at the
    /// next [`TextMode::paint`] (the old ranges may have collapsed with the nodes they were in).
    pub fn invalidate(&mut self) {
        self.flat = None;
        self.painted.clear();
    }

    /// The container's text nodes and flattened text now.
    fn read(&mut self) -> &(Flat, FlatText) {
        self.flat.get_or_insert_with(|| {
            let flat = Flat::read(&self.container);
            let text = FlatText::new(&flat.content());
            (flat, text)
        })
    }

    /// The container's text nodes now.
    pub fn flat(&mut self) -> &Flat {
        &self.read().0
    }

    /// The container's flattened text now.
    pub fn text(&mut self) -> &FlatText {
        &self.read().1
    }

    /// Where each discussion is in the text now, in creation order.
    pub fn places<'a>(
        &mut self,
        chats: impl Iterator<Item = &'a ChatView>,
    ) -> Vec<(ChatId, Place)> {
        let text = self.text();
        chats
            .filter_map(|c| Some((c.id.clone(), locate(text, text_anchor(c)?))))
            .collect()
    }

    /// Where `id` is now, as last painted.
    pub fn place_of(&self, id: &ChatId) -> Place {
        self.painted
            .iter()
            .find(|p| &p.id == id)
            .and_then(|p| p.place)
    }

    /// A DOM range over `[start, end)` of the text now.
    pub fn range(&mut self, (start, end): (u32, u32)) -> Option<Range> {
        self.flat().range_of(start, end)
    }

    /// The discussion whose passage is under the viewport point, if any (the shortest, when
    /// passages overlap).
    pub fn hit(&mut self, x: f64, y: f64) -> Option<ChatId> {
        let at = self.flat().offset_under(x, y)?;
        let mut best: Option<(u32, ChatId)> = None;
        let candidates: Vec<(ChatId, (u32, u32))> = self
            .painted
            .iter()
            .filter_map(|p| Some((p.id.clone(), p.place?)))
            .filter(|(_, (s, e))| *s <= at && at <= *e)
            .collect();
        for (id, span) in candidates {
            let len = span.1 - span.0;
            if best.as_ref().is_some_and(|(l, _)| *l <= len) {
                continue;
            }
            if self
                .range(span)
                .is_some_and(|r| dom::contains_point(&r, x, y))
            {
                best = Some((len, id));
            }
        }
        best.map(|(_, id)| id)
    }

    /// Paints the discussions (`chats`, creation order) and the open one (`open`: a thread's
    /// discussion; the draft's passage is painted open too). Does nothing when nothing
    /// changed. Returns whether it painted (the fallback's marks changed the DOM).
    pub fn paint(&mut self, chats: &[Rc<ChatView>], open: Option<&ChatId>) -> bool {
        let places = self.places(chats.iter().map(Rc::as_ref));
        let painted: Vec<Painted> = places
            .into_iter()
            .map(|(id, place)| {
                let resolved = chats.iter().any(|c| c.id == id && c.resolved);
                Painted {
                    id,
                    place,
                    resolved,
                }
            })
            .collect();
        let open = open.cloned();
        let draft = self.draft.as_ref().map(|(span, _)| *span);
        if painted == self.painted && open == self.painted_open && draft == self.painted_draft {
            return false;
        }
        self.painted = painted;
        self.painted_open = open;
        self.painted_draft = draft;
        self.repaint();
        true
    }

    /// Paints [`TextMode::painted`] again from the text as it is now.
    fn repaint(&mut self) {
        let mut groups: [Vec<(String, Range)>; 3] = Default::default();
        let spans: Vec<(String, (u32, u32), usize)> = self
            .painted
            .iter()
            .filter_map(|p| {
                let kind = if self.painted_open.as_ref() == Some(&p.id) {
                    2
                } else if p.resolved {
                    1
                } else {
                    0
                };
                Some((p.id.as_str().to_owned(), p.place?, kind))
            })
            .chain(
                self.draft
                    .as_ref()
                    .map(|(span, _)| (String::new(), *span, 2)),
            )
            .collect();
        if self.highlight_api {
            for (id, span, kind) in spans {
                if let Some(r) = self.range(span) {
                    groups[kind].push((id, r));
                }
            }
            for (name, group) in HIGHLIGHTS.iter().zip(&groups) {
                let ranges: Vec<Range> = group.iter().map(|(_, r)| r.clone()).collect();
                dom::paint(name, &self.owner, &ranges);
            }
        } else {
            self.unwrap_all();
            for (id, span, kind) in spans {
                // Read again for each: wrapping moves text nodes, which collapses the other
                // live ranges (the flattened text itself does not change).
                self.flat = None;
                if let Some(r) = self.range(span) {
                    self.marks.push(dom::wrap(&r, &id, HIGHLIGHTS[kind]));
                }
            }
            self.flat = None;
        }
    }

    /// Removes the fallback's marks.
    fn unwrap_all(&mut self) {
        for marks in self.marks.drain(..) {
            dom::unwrap(&marks);
        }
        self.flat = None;
    }

    /// The discussions whose text is not found any more, in creation order.
    pub fn changed(&self) -> Vec<ChatId> {
        self.painted
            .iter()
            .filter(|p| p.place.is_none())
            .map(|p| p.id.clone())
            .collect()
    }

    /// Where the thread or prompt of `span` goes, as a fraction of the container's box
    /// (`picture`): under the start of its last line. `None` when it is not laid out.
    pub fn spot(&mut self, span: (u32, u32), picture: Rect) -> Option<Fraction> {
        let r = self.range(span)?;
        let (left, _, _, bottom) = dom::last_line_of(&r)?;
        if picture.width <= 0.0 || picture.height <= 0.0 {
            return None;
        }
        Some(Fraction {
            x: ((left - picture.left) / picture.width).clamp(0.0, 1.0),
            y: ((bottom - picture.top) / picture.height).clamp(0.0, 1.0),
        })
    }

    /// The document.
    pub fn doc(&self) -> &Document {
        &self.doc
    }

    /// Removes every highlight and mark of this widget.
    pub fn teardown(&mut self) {
        if self.highlight_api {
            for name in HIGHLIGHTS {
                dom::paint(name, &self.owner, &[]);
            }
        } else {
            self.unwrap_all();
        }
        self.painted.clear();
        self.draft = None;
    }
}
