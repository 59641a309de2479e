//! The widget's DOM: building it, patching it from the engine's [`ViewUpdate`]s, and tearing it
//! down. Nothing here talks to the engine or the network; [`crate::widget`] decides, this module
//! draws. All user text goes through `textContent` (never `innerHTML`), so markup in a comment
//! shows as text.
//!
//! Structure (the DOM contract is in docs/WIDGET.md):
//!
//! ```text
//! span.image-chat-frame              wraps the site's <img>, position: relative
//!   img                              the site's image, untouched
//!   div.image-chat[data-state]       the overlay, sized to the image's content box
//!     div.image-chat-layer           markers: button.image-chat-marker[data-chat-id]
//!     span.image-chat-crosshair      keyboard placement point (visible on focus)
//!     button.image-chat-marker[data-draft]   the marker being placed (before posting)
//!     div.image-chat-thread          the open thread (one at a time)
//!     div.image-chat-bar             span.image-chat-status + span.image-chat-online
//!     div.image-chat-sr[aria-live]   announcements for screen readers
//! ```

use std::cell::Cell;

use image_chat_protocol::{ChatId, CommentId};
use image_chat_sync::sorted::SortedMap;
use image_chat_sync::{ChatView, CommentView, ConnectionStatus, OpKind, OpState};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Document, Element, HtmlElement, HtmlImageElement, HtmlTextAreaElement};

use crate::dom::Clones;
use crate::geometry::{Fraction, PanelPlacement, percent, push_percent, px};
use crate::i18n::{Locale, decimal};
use crate::options::Options;
use crate::reltime::relative;
use crate::status;

/// DOM calls return `Result<_, JsValue>`; they fail only on programming errors (bad tag
/// names), which the caller logs.
pub type JsResult<T> = Result<T, JsValue>;

thread_local! {
    /// Source of unique element ids (for `aria-labelledby`).
    static NEXT_ID: Cell<u32> = const { Cell::new(0) };
}

fn unique_id(what: &str) -> String {
    let n = NEXT_ID.with(|c| {
        let n = c.get().wrapping_add(1);
        c.set(n);
        n
    });
    ["image-chat-", what, "-", &decimal(u64::from(n))].concat()
}

/// Creates `<tag class=…>`.
fn el(doc: &Document, tag: &str, class: &str) -> JsResult<Element> {
    let e = doc.create_element(tag)?;
    if !class.is_empty() {
        e.set_class_name(class);
    }
    Ok(e)
}

/// Creates a `<button type=button class=image-chat-btn data-action=…>` with a text label.
fn button(doc: &Document, action: &str, label: &str) -> JsResult<Element> {
    let b = el(doc, "button", "image-chat-btn")?;
    b.set_attribute("type", "button")?;
    b.set_attribute("data-action", action)?;
    b.set_text_content(Some(label));
    Ok(b)
}

fn flag(e: &Element, name: &str, on: bool) -> JsResult<()> {
    if on {
        e.set_attribute(name, "")
    } else {
        e.remove_attribute(name)
    }
}

fn html(e: &Element) -> Option<&HtmlElement> {
    e.dyn_ref::<HtmlElement>()
}

fn set_style(e: &Element, prop: &str, value: &str) -> JsResult<()> {
    match html(e) {
        Some(h) => h.style().set_property(prop, value),
        None => Ok(()),
    }
}

fn place(e: &Element, at: Fraction) -> JsResult<()> {
    set_style(e, "left", &percent(at.x))?;
    set_style(e, "top", &percent(at.y))
}

fn focus(e: &Element) {
    if let Some(h) = html(e) {
        let _ = h.focus();
    }
}

/// The first comment's text, shortened for a marker's accessible name.
fn excerpt(text: &str) -> String {
    const MAX: usize = 60;
    // Most are short ASCII with single spaces: taken as they are, without splitting and
    // joining (a snapshot makes a thousand).
    let bytes = text.as_bytes();
    if text.len() <= MAX
        && bytes.first() != Some(&b' ')
        && bytes.last() != Some(&b' ')
        && !bytes.windows(2).any(|w| w == b"  ")
        && bytes
            .iter()
            .all(|&b| b.is_ascii() && !(b'\t'..=b'\r').contains(&b))
    {
        return text.to_owned();
    }
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= MAX {
        one_line
    } else {
        one_line.chars().take(MAX - 1).collect::<String>() + "…"
    }
}

/// A marker's position as its one `style` attribute: the cheapest to write (one call instead of
/// two `style.setProperty`), and parsed once. Written into one string (a snapshot makes a
/// thousand).
fn marker_style(chat: &ChatView) -> String {
    let (x, y) = chat.point().unwrap_or((0.5, 0.5));
    let mut style = String::with_capacity(24);
    style.push_str("left:");
    push_percent(&mut style, x);
    style.push_str(";top:");
    push_percent(&mut style, y);
    style
}

/// A marker's `data-pending`, `data-failed` and `data-mine` flags: they summarise the whole
/// discussion (a failure anywhere wins over pending).
fn marker_flags(chat: &ChatView) -> (bool, bool, bool) {
    let failed = chat.state.is_failed() || chat.comments.iter().any(|c| c.state.is_failed());
    let pending =
        !failed && (chat.state.is_pending() || chat.comments.iter().any(|c| c.state.is_pending()));
    (pending, failed, chat.mine)
}

/// The marker being placed and its composer, before the first comment is posted.
pub struct Draft {
    /// Where it goes.
    pub at: Fraction,
    /// `button.image-chat-marker[data-draft]`.
    marker: Element,
    /// `.image-chat-thread[data-draft]`.
    panel: Element,
    /// The first comment's box.
    pub textarea: HtmlTextAreaElement,
    /// Local validation message.
    error: Element,
}

/// One rendered comment, with the view it was rendered from (to skip unchanged ones).
struct CommentEntry {
    id: CommentId,
    view: CommentView,
    el: Element,
}

/// The open thread panel.
pub struct Panel {
    /// Which discussion.
    pub chat_id: ChatId,
    el: Element,
    title: Element,
    list: Element,
    comments: Vec<CommentEntry>,
    /// The reply composer (absent in read-only mode).
    compose: Option<Compose>,
    /// Discussion-level failure (a failed delete).
    chat_error: Element,
    /// The comment whose text is being edited, and its textarea.
    pub editing: Option<(CommentId, HtmlTextAreaElement)>,
    /// The delete button asks for confirmation first.
    pub confirm_delete: bool,
}

struct Compose {
    box_: Element,
    textarea: HtmlTextAreaElement,
    error: Element,
    delete: Element,
}

/// The widget's DOM and the UI-only state the engine does not know about.
pub struct Ui {
    doc: Document,
    /// UI language.
    pub locale: Locale,
    /// No changes allowed.
    pub read_only: bool,
    /// The site's image.
    pub img: HtmlImageElement,
    /// Our wrapper around it.
    pub frame: Element,
    /// `.image-chat`, the overlay root.
    pub root: Element,
    layer: Element,
    crosshair: Element,
    status: Element,
    online: Element,
    live: Element,
    /// A detached `button.image-chat-marker` with the attributes every marker shares, cloned
    /// for each new one.
    marker_template: Element,
    /// New markers gathered, to be created at once (see [`Ui::flush`]).
    new_markers: Option<Clones>,
    /// The discussions in creation order (= the markers' order in the layer, and tab order).
    /// Markers are not kept as handles (keeping 1,000 is a call into JS each): [`Ui::marker`]
    /// finds one by its place here.
    order: Vec<ChatId>,
    /// How many of `order`'s last discussions are gathered in `new_markers`, not created yet.
    uncreated: usize,
    /// The last view of every discussion shown (to render a thread when it opens).
    pub chats: SortedMap<ChatId, ChatView>,
    /// The open thread, if any.
    pub panel: Option<Panel>,
    /// The marker being placed, if any.
    pub draft: Option<Draft>,
    /// Keyboard placement point.
    pub crosshair_at: Fraction,
    /// Connection status as last shown.
    pub connection: ConnectionStatus,
}

impl Ui {
    /// Wraps `img` and builds the overlay.
    pub fn build(doc: &Document, img: &HtmlImageElement, opts: &Options) -> JsResult<Ui> {
        let locale = opts.locale;
        let s = locale.strings();
        let parent = img
            .parent_node()
            .ok_or_else(|| JsValue::from_str("detached image"))?;
        let frame = el(doc, "span", "image-chat-frame")?;
        // A block-level image keeps block layout inside a block wrapper.
        let block = web_sys::window()
            .and_then(|w| w.get_computed_style(img).ok().flatten())
            .and_then(|cs| cs.get_property_value("display").ok())
            .is_some_and(|d| d == "block" || d == "flex" || d == "grid" || d == "table");
        flag(&frame, "data-block", block)?;
        parent.insert_before(&frame, Some(img))?;
        frame.append_child(img)?;

        let root = el(doc, "div", "image-chat")?;
        root.set_attribute("role", "group")?;
        root.set_attribute("tabindex", "0")?;
        root.set_attribute("lang", locale.tag())?;
        root.set_attribute("data-theme", opts.theme.as_str())?;
        root.set_attribute(
            "aria-label",
            if opts.read_only {
                s.overlay_label_read_only
            } else {
                s.overlay_label
            },
        )?;
        flag(&root, "data-read-only", opts.read_only)?;
        set_style(&root, "--image-chat-marker-size", &px(opts.marker_size))?;
        let layer = el(doc, "div", "image-chat-layer")?;
        let crosshair = el(doc, "span", "image-chat-crosshair")?;
        crosshair.set_attribute("aria-hidden", "true")?;
        let bar = el(doc, "div", "image-chat-bar")?;
        let status = el(doc, "span", "image-chat-status")?;
        let online = el(doc, "span", "image-chat-online")?;
        bar.append_child(&status)?;
        bar.append_child(&online)?;
        let live = el(doc, "div", "image-chat-sr")?;
        live.set_attribute("aria-live", "polite")?;
        live.set_attribute("role", "status")?;
        for child in [&layer, &crosshair, &bar, &live] {
            root.append_child(child)?;
        }
        frame.append_child(&root)?;
        let marker_template = el(doc, "button", "image-chat-marker")?;
        marker_template.set_attribute("type", "button")?;
        marker_template.set_attribute("aria-haspopup", "dialog")?;
        marker_template.set_attribute("aria-expanded", "false")?;

        let ui = Ui {
            doc: doc.clone(),
            locale,
            read_only: opts.read_only,
            img: img.clone(),
            frame,
            root,
            layer,
            crosshair,
            status,
            online,
            live,
            marker_template,
            new_markers: None,
            order: Vec::new(),
            uncreated: 0,
            chats: SortedMap::new(),
            panel: None,
            draft: None,
            crosshair_at: Fraction::CENTER,
            connection: ConnectionStatus::Connecting { attempt: 0 },
        };
        place(&ui.crosshair, ui.crosshair_at)?;
        Ok(ui)
    }

    /// Puts the image back where it was and removes everything the widget added.
    pub fn teardown(&mut self) {
        self.panel = None;
        self.draft = None;
        if let Some(parent) = self.frame.parent_node() {
            let _ = parent.insert_before(&self.img, Some(&self.frame));
        }
        self.frame.remove();
    }

    /// Sizes the overlay to the image's content box.
    pub fn layout(&self, rect: crate::geometry::Rect) -> JsResult<()> {
        set_style(&self.root, "left", &px(rect.left))?;
        set_style(&self.root, "top", &px(rect.top))?;
        set_style(&self.root, "width", &px(rect.width))?;
        set_style(&self.root, "height", &px(rect.height))
    }

    // ---------------------------------------------------------------------------------------
    // Connection status
    // ---------------------------------------------------------------------------------------

    /// Shows the connection status (`data-state`, status line) at `now`.
    pub fn show_status(&mut self, connection: ConnectionStatus, now: u64) -> JsResult<()> {
        self.connection = connection;
        self.root
            .set_attribute("data-state", status::data_state(connection))?;
        let text = status::status_text(self.locale, connection, now);
        if self.status.text_content().as_deref() != Some(text.as_str()) {
            self.status.set_text_content(Some(&text));
        }
        match connection.stopped() {
            Some(reason) => self
                .status
                .set_attribute("title", status::stop_detail(self.locale, reason))?,
            None => self.status.remove_attribute("title")?,
        }
        Ok(())
    }

    /// Switches between read-only and writable (the `readOnly` option, or the server's verdict
    /// in `welcome`). An open draft or thread was built for the other mode, so it is closed.
    pub fn set_read_only(&mut self, read_only: bool) -> JsResult<()> {
        if read_only == self.read_only {
            return Ok(());
        }
        self.read_only = read_only;
        let s = self.locale.strings();
        self.root.set_attribute(
            "aria-label",
            if read_only {
                s.overlay_label_read_only
            } else {
                s.overlay_label
            },
        )?;
        flag(&self.root, "data-read-only", read_only)?;
        self.close_draft();
        self.close_panel();
        Ok(())
    }

    /// Shows the live viewer count (only while live: a stale count would mislead).
    pub fn show_online(&self, online: u32) -> JsResult<()> {
        self.online
            .set_attribute("data-count", &decimal(u64::from(online)))?;
        let text = if self.connection.is_live() && online > 0 {
            self.locale.online(online)
        } else {
            String::new()
        };
        self.online.set_text_content(Some(&text));
        Ok(())
    }

    /// Says `message` in the polite live region.
    pub fn announce(&self, message: &str) {
        self.live.set_text_content(Some(message));
    }

    // ---------------------------------------------------------------------------------------
    // Markers
    // ---------------------------------------------------------------------------------------

    /// Renders (or re-renders) one discussion's marker, at `index` in creation order, and its
    /// thread if open.
    ///
    /// Kept O(1) in DOM calls and comparisons per discussion, because a snapshot renders a
    /// thousand of them in one task and a live event must not cost in proportion to what is
    /// shown. New markers are not built here: their attributes and text are gathered, and
    /// [`Ui::flush`] creates them all with one call into JS ([`Clones`]). On an existing marker,
    /// attributes are written only when they change.
    pub fn upsert_chat(&mut self, index: usize, chat: ChatView, now: u64) -> JsResult<()> {
        match self.chats.remove(&chat.id) {
            None => self.add_marker(index, &chat)?,
            Some(old) => {
                let created = self.order.len().saturating_sub(self.uncreated);
                if self
                    .order
                    .get(created..)
                    .is_some_and(|new| new.contains(&chat.id))
                {
                    // Added earlier in this batch: create it now, to update it.
                    self.flush()?;
                }
                self.update_marker(index, &old, &chat)?;
            }
        }
        let open = self.panel.as_ref().is_some_and(|p| p.chat_id == chat.id);
        if open {
            self.render_panel(&chat, now)?;
        }
        self.chats.insert(chat.id.clone(), chat);
        Ok(())
    }

    /// Makes room for `shown` discussions in all, so the tables grow once rather than by
    /// doubling (with hash maps that rehashed every id each time: ~5 ms of a 1,000-marker
    /// snapshot in a profile; the sorted maps now only copy).
    pub fn reserve(&mut self, shown: usize) {
        let more = shown.saturating_sub(self.chats.len());
        self.chats.reserve(more);
        self.order.reserve(more);
    }

    /// Gathers a new marker for [`Ui::flush`]: at the end of the layer (a snapshot's markers
    /// all come this way), or created at once before the marker that follows it.
    fn add_marker(&mut self, index: usize, chat: &ChatView) -> JsResult<()> {
        let index = index.min(self.order.len());
        let appended = index == self.order.len();
        let mut next = None;
        if !appended {
            // The markers gathered so far come before this one's successor: create them first.
            self.flush()?;
            next = self.order.get(index).and_then(|id| self.marker(id));
        }
        self.order.insert(index, chat.id.clone());
        self.uncreated += 1;
        let style = marker_style(chat);
        let label = self.marker_label(chat);
        let count = decimal(chat.comments.len() as u64);
        let flags = marker_flags(chat);
        let flags = [
            (flags.0, "data-pending"),
            (flags.1, "data-failed"),
            (flags.2, "data-mine"),
        ];
        let flags: Vec<&str> = flags.iter().filter(|f| f.0).map(|f| f.1).collect();
        self.new_markers
            .get_or_insert_with(|| Clones::new("data-chat-id style aria-label"))
            .push(&[chat.id.as_str(), &style, &label], &count, &flags);
        if !appended {
            self.create_markers(next.as_ref())?;
        }
        Ok(())
    }

    /// Brings an existing marker up to date with `chat`, writing only what changed from `old`
    /// (and looking the marker up only then).
    fn update_marker(&mut self, index: usize, old: &ChatView, chat: &ChatView) -> JsResult<()> {
        if self.order.get(index) != Some(&chat.id) {
            self.move_marker(index, &chat.id)?;
        }
        let count = chat.comments.len();
        let recount = old.comments.len() != count;
        let relabel = recount
            || old.author().map(|u| &u.name) != chat.author().map(|u| &u.name)
            || old.comments.first().map(|c| &c.text) != chat.comments.first().map(|c| &c.text);
        let (was, now) = (marker_flags(old), marker_flags(chat));
        if old.anchor == chat.anchor && !relabel && was == now {
            return Ok(());
        }
        let Some(marker) = self.marker(&chat.id) else {
            return Ok(());
        };
        let marker = &marker;
        if old.anchor != chat.anchor {
            marker.set_attribute("style", &marker_style(chat))?;
        }
        if recount {
            marker.set_text_content(Some(&decimal(count as u64)));
        }
        if relabel {
            marker.set_attribute("aria-label", &self.marker_label(chat))?;
        }
        if was.0 != now.0 {
            flag(marker, "data-pending", now.0)?;
        }
        if was.1 != now.1 {
            flag(marker, "data-failed", now.1)?;
        }
        if was.2 != now.2 {
            flag(marker, "data-mine", now.2)?;
        }
        Ok(())
    }

    /// A marker's accessible name: who started the discussion, how, and how many comments.
    fn marker_label(&self, chat: &ChatView) -> String {
        let author = chat.author().map(|u| u.name.as_str()).unwrap_or_default();
        let first = chat.comments.first().map(|c| c.text.as_str());
        let excerpt = excerpt(first.unwrap_or_default());
        self.locale
            .marker_label(author, &excerpt, chat.comments.len())
    }

    /// Moves an existing marker to `index` in creation order (rare: a retried create goes
    /// last), in `order` and in the DOM.
    fn move_marker(&mut self, index: usize, id: &ChatId) -> JsResult<()> {
        // Its new successor may be among the markers gathered but not created yet.
        self.flush()?;
        let Some(marker) = self.marker(id) else {
            return Ok(());
        };
        self.order.retain(|o| o != id);
        let index = index.min(self.order.len());
        // Found before `order` changes, so by its place in the layer.
        let next = self.order.get(index).and_then(|id| self.marker(id));
        self.order.insert(index, id.clone());
        self.layer
            .insert_before(&marker, next.as_ref().map(AsRef::as_ref))?;
        Ok(())
    }

    /// Creates the markers gathered by [`Ui::upsert_chat`] at the end of the layer. Call once
    /// the engine's updates are drained, before anything reads the DOM.
    pub fn flush(&mut self) -> JsResult<()> {
        self.create_markers(None)
    }

    /// Creates the markers gathered so far, before `next` (at the end for `None`).
    fn create_markers(&mut self, next: Option<&Element>) -> JsResult<()> {
        let Some(new) = self.new_markers.take() else {
            return Ok(());
        };
        self.uncreated = 0;
        new.insert(&self.layer, next.map(AsRef::as_ref), &self.marker_template)
    }

    /// Removes one discussion's marker (and closes its thread). Returns whether its thread was
    /// open, so focus can be moved somewhere sensible.
    pub fn remove_chat(&mut self, chat_id: &ChatId) -> bool {
        if self.uncreated > 0 {
            // It may be gathered but not created yet (rare): create, then remove like any other.
            let _ = self.flush();
        }
        if let Some(m) = self.marker(chat_id) {
            m.remove();
        }
        self.order.retain(|id| id != chat_id);
        self.chats.remove(chat_id);
        let open = self.panel.as_ref().is_some_and(|p| &p.chat_id == chat_id);
        if open {
            self.close_panel();
        }
        open
    }

    /// Removes every marker (before a full re-render).
    pub fn clear_chats(&mut self) {
        self.new_markers = None;
        self.uncreated = 0;
        // The layer holds only markers: one call empties it.
        self.layer.set_text_content(None);
        self.order.clear();
        self.chats.clear();
        self.close_panel();
    }

    /// The marker of a discussion, if created: the layer's child at its place in creation
    /// order (two calls into JS), checked by its `data-chat-id`; else (something else in the
    /// layer, or `order` changed ahead of the DOM during a move) found among all the children.
    pub fn marker(&self, chat_id: &ChatId) -> Option<Element> {
        let created = self.order.len().saturating_sub(self.uncreated);
        let at = self
            .order
            .get(..created)?
            .iter()
            .position(|id| id == chat_id)?;
        let is_it =
            |m: &Element| m.get_attribute("data-chat-id").as_deref() == Some(chat_id.as_str());
        let children = self.layer.children();
        let guess = u32::try_from(at).ok().and_then(|i| children.item(i));
        guess.filter(is_it).or_else(|| {
            (0..children.length())
                .filter_map(|i| children.item(i))
                .find(is_it)
        })
    }

    /// Moves the keyboard crosshair.
    pub fn move_crosshair(&mut self, to: Fraction) -> JsResult<()> {
        self.crosshair_at = to;
        place(&self.crosshair, to)
    }

    // ---------------------------------------------------------------------------------------
    // Draft
    // ---------------------------------------------------------------------------------------

    /// Starts placing a marker at `at`: a dashed marker and a composer, focused.
    pub fn open_draft(&mut self, at: Fraction) -> JsResult<()> {
        self.close_panel();
        self.close_draft();
        let s = self.locale.strings();
        let marker = el(&self.doc, "button", "image-chat-marker")?;
        marker.set_attribute("type", "button")?;
        marker.set_attribute("data-draft", "")?;
        marker.set_attribute("aria-label", s.new_discussion)?;
        marker.set_text_content(Some("+"));
        place(&marker, at)?;

        let panel = self.panel_shell(at, s.new_discussion)?;
        panel.0.set_attribute("data-draft", "")?;
        let (compose, textarea, error, _) = self.compose_box(
            s.placeholder_new,
            ("post", s.post),
            ("cancel-draft", s.cancel, None),
        )?;
        panel.0.append_child(&compose)?;

        self.root
            .insert_before(&marker, self.crosshair.next_sibling().as_ref())?;
        self.root
            .insert_before(&panel.0, marker.next_sibling().as_ref())?;
        let _ = textarea.focus();
        self.draft = Some(Draft {
            at,
            marker,
            panel: panel.0,
            textarea,
            error,
        });
        Ok(())
    }

    /// Shows a local validation message in the draft's composer.
    pub fn draft_error(&self, message: &str) -> JsResult<()> {
        if let Some(d) = &self.draft {
            d.error.set_text_content(Some(message));
            d.error.remove_attribute("hidden")?;
        }
        Ok(())
    }

    /// Removes the draft marker and composer.
    pub fn close_draft(&mut self) -> Option<Draft> {
        let d = self.draft.take()?;
        d.marker.remove();
        d.panel.remove();
        Some(d)
    }

    // ---------------------------------------------------------------------------------------
    // Thread panel
    // ---------------------------------------------------------------------------------------

    /// A compose box: a text area (capped at the protocol's length), a hidden error line, and
    /// a primary and a secondary button (`(action, label)`, plus an optional flag attribute
    /// for the secondary). Returns the box, the text area, the error line and the secondary
    /// button.
    fn compose_box(
        &self,
        placeholder: &str,
        primary: (&str, &str),
        secondary: (&str, &str, Option<&str>),
    ) -> JsResult<(Element, HtmlTextAreaElement, Element, Element)> {
        let compose = el(&self.doc, "div", "image-chat-compose")?;
        let textarea: HtmlTextAreaElement = el(&self.doc, "textarea", "")?.unchecked_into();
        textarea.set_placeholder(placeholder);
        textarea.set_attribute("aria-label", placeholder)?;
        textarea.set_attribute(
            "maxlength",
            &decimal(image_chat_protocol::limits::MAX_TEXT_CHARS as u64),
        )?;
        let error = el(&self.doc, "p", "image-chat-error")?;
        error.set_attribute("role", "alert")?;
        error.set_attribute("hidden", "")?;
        let actions = el(&self.doc, "div", "image-chat-actions")?;
        let first = button(&self.doc, primary.0, primary.1)?;
        first.set_attribute("data-primary", "")?;
        let second = button(&self.doc, secondary.0, secondary.1)?;
        if let Some(flag) = secondary.2 {
            second.set_attribute(flag, "")?;
        }
        actions.append_child(&first)?;
        actions.append_child(&second)?;
        compose.append_child(&textarea)?;
        compose.append_child(&error)?;
        compose.append_child(&actions)?;
        Ok((compose, textarea, error, second))
    }

    /// An empty panel next to `at` with a heading and a close button; returns it and its title.
    fn panel_shell(&self, at: Fraction, heading: &str) -> JsResult<(Element, Element)> {
        let s = self.locale.strings();
        let panel = el(&self.doc, "div", "image-chat-thread")?;
        panel.set_attribute("role", "dialog")?;
        panel.set_attribute("tabindex", "-1")?;
        let placement = PanelPlacement::for_marker(at);
        flag(&panel, "data-left", placement.left)?;
        flag(&panel, "data-above", placement.above)?;
        // The stylesheet turns `--ic-x` into a `left` clamped inside the overlay, so the panel
        // stays on the picture (and on small screens) at any size without JS layout.
        set_style(&panel, "--ic-x", &percent(at.x))?;
        set_style(&panel, "top", &percent(at.y))?;
        let head = el(&self.doc, "div", "image-chat-head")?;
        let title = el(&self.doc, "span", "")?;
        let title_id = unique_id("title");
        title.set_id(&title_id);
        title.set_text_content(Some(heading));
        panel.set_attribute("aria-labelledby", &title_id)?;
        let close = button(&self.doc, "close", "×")?;
        close.set_class_name("image-chat-btn image-chat-close");
        close.set_attribute("aria-label", s.close)?;
        close.set_attribute("title", s.close)?;
        head.append_child(&title)?;
        head.append_child(&close)?;
        panel.append_child(&head)?;
        Ok((panel, title))
    }

    /// Opens the thread of `chat_id` (closing any other thread or draft) and focuses it.
    pub fn open_panel(&mut self, chat_id: &ChatId, now: u64) -> JsResult<()> {
        let Some(chat) = self.chats.get(chat_id).cloned() else {
            return Ok(());
        };
        self.close_draft();
        self.close_panel();
        let (x, y) = chat.point().unwrap_or((0.5, 0.5));
        let at = Fraction { x, y };
        let s = self.locale.strings();
        let (el_panel, title) = self.panel_shell(at, s.discussion)?;
        el_panel.set_attribute("data-chat-id", chat.id.as_str())?;
        let list = el(&self.doc, "ol", "image-chat-comments")?;
        el_panel.append_child(&list)?;
        let chat_error = el(&self.doc, "div", "image-chat-chat-error")?;
        chat_error.set_attribute("hidden", "")?;
        el_panel.append_child(&chat_error)?;
        let compose = if self.read_only {
            None
        } else {
            let (box_, textarea, error, delete) = self.compose_box(
                s.placeholder_reply,
                ("reply", s.reply),
                ("delete", s.delete, Some("data-danger")),
            )?;
            el_panel.append_child(&box_)?;
            Some(Compose {
                box_,
                textarea,
                error,
                delete,
            })
        };
        self.root
            .insert_before(&el_panel, self.crosshair.next_sibling().as_ref())?;
        if let Some(m) = self.marker(chat_id) {
            m.set_attribute("aria-expanded", "true")?;
        }
        self.panel = Some(Panel {
            chat_id: chat.id.clone(),
            el: el_panel.clone(),
            title,
            list,
            comments: Vec::new(),
            compose,
            chat_error,
            editing: None,
            confirm_delete: false,
        });
        self.render_panel(&chat, now)?;
        focus(&el_panel);
        Ok(())
    }

    /// Closes the open thread, if any; returns which discussion it showed.
    pub fn close_panel(&mut self) -> Option<ChatId> {
        let p = self.panel.take()?;
        p.el.remove();
        if let Some(m) = self.marker(&p.chat_id) {
            let _ = m.set_attribute("aria-expanded", "false");
        }
        Some(p.chat_id)
    }

    /// Brings the open thread up to date with `chat`, touching only what changed: unchanged
    /// comments, the reply box (and what is being typed in it) and an edit in progress stay.
    pub fn render_panel(&mut self, chat: &ChatView, now: u64) -> JsResult<()> {
        let locale = self.locale;
        let read_only = self.read_only;
        let doc = self.doc.clone();
        let Some(panel) = self.panel.as_mut() else {
            return Ok(());
        };
        let s = locale.strings();
        panel.title.set_text_content(Some(
            &[s.discussion, " · ", &locale.comments(chat.comments.len())].concat(),
        ));

        // Comments, in order; unchanged ones are kept as they are.
        let mut old: SortedMap<CommentId, CommentEntry> = panel
            .comments
            .drain(..)
            .map(|c| (c.id.clone(), c))
            .collect();
        let mut prev: Option<web_sys::Node> = None;
        for view in &chat.comments {
            let editing = panel.editing.as_ref().is_some_and(|(id, _)| id == &view.id);
            let entry = match old.remove(&view.id) {
                Some(e) if e.view == *view || editing => CommentEntry {
                    view: view.clone(),
                    ..e
                },
                Some(e) => {
                    let fresh = comment_el(&doc, locale, read_only, view, now)?;
                    e.el.replace_with_with_node_1(&fresh)?;
                    CommentEntry {
                        id: view.id.clone(),
                        view: view.clone(),
                        el: fresh,
                    }
                }
                None => CommentEntry {
                    id: view.id.clone(),
                    view: view.clone(),
                    el: comment_el(&doc, locale, read_only, view, now)?,
                },
            };
            let expected_next = match &prev {
                Some(p) => p.next_sibling(),
                None => panel.list.first_child(),
            };
            let node: &web_sys::Node = entry.el.as_ref();
            if expected_next.as_ref() != Some(node) {
                panel.list.insert_before(node, expected_next.as_ref())?;
            }
            prev = Some(node.clone());
            panel.comments.push(entry);
        }
        for gone in old.into_values() {
            gone.el.remove();
        }
        if let Some((id, _)) = &panel.editing
            && !chat.comments.iter().any(|c| &c.id == id)
        {
            panel.editing = None;
        }

        // A failed delete is a discussion-level failure.
        match &chat.state {
            OpState::Failed {
                op,
                kind: OpKind::Delete,
                reason,
                retryable,
            } => {
                panel.chat_error.set_text_content(None);
                let p = el(&doc, "p", "image-chat-error")?;
                p.set_text_content(Some(status::fail_text(locale, *reason)));
                panel.chat_error.append_child(&p)?;
                let actions = failure_actions(&doc, locale, op.as_str(), *retryable)?;
                panel.chat_error.append_child(&actions)?;
                panel.chat_error.remove_attribute("hidden")?;
            }
            _ => {
                panel.chat_error.set_text_content(None);
                panel.chat_error.set_attribute("hidden", "")?;
            }
        }

        // No replying to (or deleting) a discussion whose creation failed or is still pending.
        if let Some(c) = &panel.compose {
            let creating = matches!(
                chat.state,
                OpState::Failed {
                    kind: OpKind::CreateChat,
                    ..
                } | OpState::Pending {
                    kind: OpKind::CreateChat,
                    ..
                }
            );
            let failed_create = matches!(
                chat.state,
                OpState::Failed {
                    kind: OpKind::CreateChat,
                    ..
                }
            );
            flag(&c.box_, "hidden", failed_create)?;
            flag(&c.delete, "hidden", !chat.can_delete || creating)?;
        }
        Ok(())
    }

    /// The reply box of the open thread.
    pub fn reply_box(&self) -> Option<&HtmlTextAreaElement> {
        self.panel.as_ref()?.compose.as_ref().map(|c| &c.textarea)
    }

    /// Shows (or clears, with `None`) a local validation message under the reply box.
    pub fn reply_error(&self, message: Option<&str>) -> JsResult<()> {
        if let Some(c) = self.panel.as_ref().and_then(|p| p.compose.as_ref()) {
            c.error.set_text_content(message);
            flag(&c.error, "hidden", message.is_none())?;
        }
        Ok(())
    }

    /// Turns the delete button into its confirmation step (or back).
    pub fn confirm_delete(&mut self, on: bool) -> JsResult<()> {
        let s = self.locale.strings();
        if let Some(p) = self.panel.as_mut() {
            p.confirm_delete = on;
            if let Some(c) = &p.compose {
                c.delete
                    .set_text_content(Some(if on { s.delete_confirm } else { s.delete }));
            }
        }
        Ok(())
    }

    /// Replaces a comment's text with an editor holding `text`, focused.
    pub fn start_edit(&mut self, comment_id: &CommentId, text: &str) -> JsResult<()> {
        let s = self.locale.strings();
        let doc = self.doc.clone();
        let now = crate::browser::now();
        self.cancel_edit(now)?;
        let Some(panel) = self.panel.as_mut() else {
            return Ok(());
        };
        let Some(entry) = panel.comments.iter().find(|c| &c.id == comment_id) else {
            return Ok(());
        };
        let textarea: HtmlTextAreaElement =
            el(&doc, "textarea", "image-chat-edit")?.unchecked_into();
        textarea.set_value(text);
        textarea.set_attribute("aria-label", s.edit)?;
        let actions = el(&doc, "div", "image-chat-actions")?;
        let save = button(&doc, "save-edit", s.save)?;
        save.set_attribute("data-primary", "")?;
        actions.append_child(&save)?;
        let cancel = button(&doc, "cancel-edit", s.cancel)?;
        actions.append_child(&cancel)?;
        // The editor replaces the text and the comment's own buttons.
        let old_text = entry.el.query_selector(".image-chat-text")?;
        let old_actions = entry.el.query_selector(".image-chat-actions")?;
        if let Some(t) = old_text {
            t.replace_with_with_node_1(&textarea)?;
        } else {
            entry.el.append_child(&textarea)?;
        }
        if let Some(a) = old_actions {
            a.replace_with_with_node_1(&actions)?;
        } else {
            entry.el.append_child(&actions)?;
        }
        let _ = textarea.focus();
        panel.editing = Some((comment_id.clone(), textarea));
        Ok(())
    }

    /// Leaves edit mode, re-rendering the comment from its view; returns the comment edited.
    pub fn cancel_edit(&mut self, now: u64) -> JsResult<Option<CommentId>> {
        let locale = self.locale;
        let read_only = self.read_only;
        let doc = self.doc.clone();
        let Some(panel) = self.panel.as_mut() else {
            return Ok(None);
        };
        let Some((id, _)) = panel.editing.take() else {
            return Ok(None);
        };
        if let Some(entry) = panel.comments.iter_mut().find(|c| c.id == id) {
            let fresh = comment_el(&doc, locale, read_only, &entry.view, now)?;
            entry.el.replace_with_with_node_1(&fresh)?;
            entry.el = fresh;
        }
        Ok(Some(id))
    }

    /// Re-renders relative times in the open thread.
    pub fn refresh_times(&self, now: u64) {
        let Some(panel) = &self.panel else { return };
        for entry in &panel.comments {
            if let Ok(Some(t)) = entry.el.query_selector(".image-chat-time") {
                t.set_text_content(Some(&time_text(self.locale, entry.view.created_at, now)));
            }
        }
    }

    /// The element that should get focus after the open thread closes: its marker, or the
    /// overlay.
    pub fn focus_after_close(&self, chat_id: Option<&ChatId>) {
        match chat_id.and_then(|id| self.marker(id)) {
            Some(m) => focus(&m),
            None => focus(&self.root),
        }
    }
}

fn time_text(locale: Locale, created_at: u64, now: u64) -> String {
    let absolute = absolute_time(locale, created_at);
    locale.relative(relative(now, created_at), &absolute)
}

fn absolute_time(locale: Locale, ms: u64) -> String {
    let date = js_sys::Date::new(&JsValue::from_f64(ms as f64));
    String::from(date.to_locale_string(locale.tag(), &JsValue::UNDEFINED))
}

/// Retry (when it may help) and dismiss buttons for the failed op `op`.
fn failure_actions(doc: &Document, locale: Locale, op: &str, retryable: bool) -> JsResult<Element> {
    let s = locale.strings();
    let actions = el(doc, "div", "image-chat-actions")?;
    if retryable {
        let retry = button(doc, "retry", s.retry)?;
        retry.set_attribute("data-op", op)?;
        retry.set_attribute("data-primary", "")?;
        actions.append_child(&retry)?;
    }
    let dismiss = button(doc, "dismiss", s.dismiss)?;
    dismiss.set_attribute("data-op", op)?;
    actions.append_child(&dismiss)?;
    Ok(actions)
}

/// One comment: author, time, text (as text), its op state and its buttons.
fn comment_el(
    doc: &Document,
    locale: Locale,
    read_only: bool,
    c: &CommentView,
    now: u64,
) -> JsResult<Element> {
    let s = locale.strings();
    let li = el(doc, "li", "image-chat-comment")?;
    li.set_attribute("data-comment-id", c.id.as_str())?;
    flag(&li, "data-pending", c.state.is_pending())?;
    flag(&li, "data-failed", c.state.is_failed())?;
    flag(&li, "data-mine", c.mine)?;

    let meta = el(doc, "div", "image-chat-meta")?;
    let author = el(doc, "span", "image-chat-author")?;
    let name = if c.mine {
        [&c.author.name, " (", s.you, ")"].concat()
    } else {
        c.author.name.clone()
    };
    author.set_text_content(Some(&name));
    meta.append_child(&author)?;
    let time = el(doc, "time", "image-chat-time")?;
    let date = js_sys::Date::new(&JsValue::from_f64(c.created_at as f64));
    if let Ok(iso) = date.to_iso_string().as_string().ok_or(()) {
        time.set_attribute("datetime", &iso)?;
    }
    time.set_attribute("title", &absolute_time(locale, c.created_at))?;
    time.set_text_content(Some(&time_text(locale, c.created_at, now)));
    meta.append_child(&time)?;
    if c.edited_at.is_some() {
        let edited = el(doc, "span", "image-chat-edited")?;
        edited.set_text_content(Some(s.edited));
        meta.append_child(&edited)?;
    }
    if c.state.is_pending() {
        let sending = el(doc, "span", "image-chat-sending")?;
        sending.set_text_content(Some(s.sending));
        meta.append_child(&sending)?;
    }
    li.append_child(&meta)?;

    let text = el(doc, "p", "image-chat-text")?;
    text.set_text_content(Some(&c.text));
    li.append_child(&text)?;

    if let OpState::Failed {
        op,
        reason,
        retryable,
        ..
    } = &c.state
    {
        let error = el(doc, "p", "image-chat-error")?;
        error.set_text_content(Some(status::fail_text(locale, *reason)));
        li.append_child(&error)?;
        let actions = failure_actions(doc, locale, op.as_str(), *retryable)?;
        li.append_child(&actions)?;
    } else if c.can_edit && !read_only && !c.state.is_pending() {
        let actions = el(doc, "div", "image-chat-actions")?;
        let edit = button(doc, "edit", s.edit)?;
        actions.append_child(&edit)?;
        li.append_child(&actions)?;
    }
    Ok(li)
}

#[cfg(test)]
mod tests {
    use super::excerpt;

    #[test]
    fn excerpts_are_single_line_and_short() {
        assert_eq!(excerpt("a\n  b\tc"), "a b c");
        // What the short-ASCII shortcut must leave to the general case.
        for (text, want) in [
            ("Nice sky", "Nice sky"),
            (" a", "a"),
            ("a ", "a"),
            ("a  b", "a b"),
            ("a\u{b}b", "a b"),
            ("a\u{a0}b", "a b"),
            ("", ""),
        ] {
            assert_eq!(excerpt(text), want, "{text:?}");
        }
        let long = "x".repeat(100);
        let e = excerpt(&long);
        assert_eq!(e.chars().count(), 60);
        assert!(e.ends_with('…'));
    }
}
