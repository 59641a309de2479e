//! The widget's DOM: building it, patching it from the engine's [`ViewUpdate`]s, and tearing it
//! down. Nothing here talks to the engine or the network; [`crate::widget`] decides, this module
//! draws. All user text goes through `textContent` (never `innerHTML`), so markup in a comment
//! shows as text.
//!
//! Structure (the DOM contract is in docs/WIDGET.md):
//!
//! ```text
//! div.image-chat-overlays           one per page, at the end of <body> (crate::overlay)
//!   div.image-chat[data-state]       one widget's overlay, over the visible part of its
//!                                    image's drawn picture (the site's <img> is untouched)
//!     div.image-chat-regions         the same box: div.image-chat-region, the boxes of region
//!                                    discussions (and of the one being drawn out)
//!     div.image-chat-layer           the whole picture box: button.image-chat-marker[data-chat-id]
//!     div.image-chat-clusters        the same box: button.image-chat-cluster[data-count]
//!                                    (crate::clusters)
//!     span.image-chat-crosshair      keyboard placement point (visible on focus)
//!     button.image-chat-marker[data-draft]   the marker being placed (before posting)
//!     div.image-chat-thread[data-place]      the open thread (one at a time), placed on screen
//!     div.image-chat-bar             span.image-chat-status + span.image-chat-online
//!                                    + button.image-chat-toggle[aria-pressed] (show markers)
//!                                    + button.image-chat-filter[aria-pressed] (show resolved)
//!                                    + span.image-chat-locked (shown while locked)
//!                                    + button.image-chat-lock[aria-pressed] (moderators:
//!                                      lock / unlock the image)
//!     div.image-chat-sr[aria-live]   announcements for screen readers
//! ```
//!
//! The root carries the picture box as `--ic-l`, `--ic-t`, `--ic-w`, `--ic-h` (px, relative to
//! itself): the marker layer is that box, and the crosshair and draft marker are placed in it
//! with `--x` / `--y` (percent numbers).

use std::borrow::Cow;
use std::cell::Cell;
use std::rc::Rc;

use image_chat_protocol::number::write_u64;
use image_chat_protocol::{ChatId, CommentId};
use image_chat_sync::sorted::SortedMap;
use image_chat_sync::{ChatView, CommentView, ConnectionStatus, FailReason, OpKind, OpState};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Document, Element, HtmlImageElement, HtmlInputElement, HtmlTextAreaElement};

use crate::action::Action;
use crate::clusters::Clusters;
use crate::dom::Clones;
use crate::dom::clones::{FlagChange, flag_children};
use crate::dom::plain::{self, focus, set_style};
use crate::geometry::{
    Fraction, OverlayBox, PanelInput, Rect, Side, place_panel, place_style, push_fixed3,
    push_percent, push_place_style, px,
};
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
fn make(doc: &Document, tag: &str, class: &str) -> Element {
    let e = plain::create(doc, tag);
    if !class.is_empty() {
        e.set_class_name(class);
    }
    e
}

/// Creates `<tag class=…>` at the end of `parent`.
fn child(doc: &Document, parent: &Element, tag: &str, class: &str) -> Element {
    let e = make(doc, tag, class);
    plain::append(parent, &e);
    e
}

/// Creates a `<button type=button class=image-chat-btn data-action=…>` with a text label.
fn button(doc: &Document, action: Action, label: &str) -> Element {
    let b = make(doc, "button", "image-chat-btn");
    plain::set(&b, "type", "button");
    plain::set(&b, "data-action", action.as_attr());
    b.set_text_content(Some(label));
    b
}

/// A padlock, `<svg class=image-chat-icon aria-hidden=true>` with one path, for the lock badge
/// and button. Not the 🔒 emoji: a page (or a CI browser) without an emoji font shows a box
/// for it, and emoji fonts draw it in their own colours and sizes. The path is filled with
/// `currentColor` by the stylesheet; the holder's `aria-label` names it.
fn lock_icon(doc: &Document) -> Element {
    let svg = plain::create_svg(doc, "svg");
    for (name, value) in [
        ("class", "image-chat-icon"),
        ("viewBox", "3 1 10 14"),
        ("aria-hidden", "true"),
    ] {
        plain::set(&svg, name, value);
    }
    let path = plain::create_svg(doc, "path");
    // Shackle (an arch 2 units thick) over a 10 × 8 body, 14 units tall in all: the view box
    // is the shape's own, so the icon is no wider than it looks (the bar is one line). The
    // inner subpath winds the other way, so the nonzero fill leaves the shackle's hole open.
    plain::set(
        &path,
        "d",
        "M4 7V5a4 4 0 0 1 8 0v2h1v8H3V7zm2 0h4V5a2 2 0 0 0-4 0z",
    );
    plain::append(&svg, &path);
    svg
}

/// Creates `<tag class=…>` holding `text`, at the end of `parent`.
fn text_child(doc: &Document, parent: &Element, tag: &str, class: &str, text: &str) -> Element {
    let e = child(doc, parent, tag, class);
    e.set_text_content(Some(text));
    e
}

/// The marker of `chat_id` in `layer`, whose children are the markers of `order` but its last
/// `uncreated`: the child at its place in creation order (two calls into JS), checked by its
/// `data-chat-id`; else (something else in the layer, or `order` changed ahead of the DOM
/// during a move) found among all the children.
fn find_marker(
    layer: &Element,
    order: &[Rc<ChatView>],
    uncreated: usize,
    chat_id: &ChatId,
) -> Option<Element> {
    let created = order.len().saturating_sub(uncreated);
    let at = order[..created].iter().position(|c| c.id == *chat_id)?;
    let is_it = |m: &Element| m.get_attribute("data-chat-id").as_deref() == Some(chat_id.as_str());
    let children = layer.children();
    let guess = u32::try_from(at).ok().and_then(|i| children.item(i));
    guess.filter(is_it).or_else(|| {
        (0..children.length())
            .filter_map(|i| children.item(i))
            .find(is_it)
    })
}

/// Sets (`on`) or removes the empty attribute `name`.
fn set_flag(e: &Element, name: &str, on: bool) {
    if on {
        plain::set(e, name, "");
    } else {
        plain::unset(e, name);
    }
}

/// The overlay's `aria-label` and `data-read-only`, which say whether changes are allowed.
fn set_overlay_label(root: &Element, locale: Locale, read_only: bool) {
    let s = locale.strings();
    let label = if read_only {
        s.overlay_label_read_only
    } else {
        s.overlay_label
    };
    plain::set(root, "aria-label", label);
    set_flag(root, "data-read-only", read_only);
}

/// Puts the crosshair or the draft marker at `at` in the picture box (`--x`, `--y`: percent).
fn place(e: &Element, at: Fraction) {
    for (name, v) in [("--x", at.x), ("--y", at.y)] {
        let mut value = String::new();
        push_fixed3(&mut value, v.clamp(0.0, 1.0) * 100.0);
        set_style(e, name, &value);
    }
}

/// The tallest a thread panel grows (its comment list scrolls beyond), except as a sheet.
const PANEL_MAX: f64 = 420.0;

/// The first comment's text, shortened for a marker's accessible name.
fn excerpt(text: &str) -> Cow<'_, str> {
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
        return Cow::Borrowed(text);
    }
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    Cow::Owned(if one_line.chars().count() <= MAX {
        one_line
    } else {
        one_line.chars().take(MAX - 1).collect::<String>() + "…"
    })
}

/// Where a marker sits, as fractions of the picture (a page discussion has no point: centred).
fn marker_point(chat: &ChatView) -> (f64, f64) {
    chat.point().unwrap_or((0.5, 0.5))
}

/// A marker's position as its `style` attribute ([`place_style`]).
fn marker_style(chat: &ChatView) -> String {
    place_style(marker_point(chat))
}

/// Appends a marker's accessible name (who started the discussion, how, and how many
/// comments; whether it is resolved) to `out`.
fn push_marker_label(out: &mut String, locale: Locale, chat: &ChatView) {
    let author = chat.author().map(|u| u.name.as_str()).unwrap_or_default();
    let first = chat.comments.first().map(|c| c.text.as_str());
    let excerpt = excerpt(first.unwrap_or_default());
    locale.push_marker_label(out, author, &excerpt, chat.comments.len(), chat.resolved);
}

/// The attributes of [`marker_flags`], in order.
const MARKER_FLAGS: [&str; 5] = [
    "data-pending",
    "data-failed",
    "data-mine",
    "data-resolved",
    "data-movable",
];

/// A marker's [`MARKER_FLAGS`]: `data-pending` and `data-failed` summarise the whole
/// discussion (a failure anywhere wins over pending); `data-movable` marks the ones this
/// person may drag (author or moderator).
fn marker_flags(chat: &ChatView) -> [bool; 5] {
    let failed = chat.state.is_failed() || chat.comments.iter().any(|c| c.state.is_failed());
    let pending =
        !failed && (chat.state.is_pending() || chat.comments.iter().any(|c| c.state.is_pending()));
    [pending, failed, chat.mine, chat.resolved, chat.can_delete]
}

/// The markers of `chats` for one [`Clones`] call: id, position, name, comment count and
/// flags, written straight into the batch (a snapshot creates a thousand, and a string of
/// their own for each field was most of the allocations of the widget's share). A marker for
/// which `hidden` holds (hidden in a group) gets no position: `Ui::recluster` creates it without
/// (`insert_picked`'s `alt_skip`), so building it would be wasted.
fn marker_batch(chats: &[Rc<ChatView>], locale: Locale, hidden: &[bool]) -> Clones {
    let mut batch = Clones::new("data-chat-id style aria-label");
    for (i, chat) in chats.iter().enumerate() {
        batch.value(chat.id.as_str());
        if hidden.get(i) == Some(&true) {
            batch.value("");
        } else {
            batch.value_with(|out| push_place_style(out, marker_point(chat)));
        }
        batch.value_with(|out| push_marker_label(out, locale, chat));
        batch.value_with(|out| write_u64(chat.comments.len() as u64, out));
        // The flags that are set, gathered on the stack by a plain loop (an iterator chain
        // here was a tenth of the gathering, in V8's baseline tier).
        let mut flags = [""; MARKER_FLAGS.len()];
        let mut set = 0;
        for (on, name) in marker_flags(chat).into_iter().zip(MARKER_FLAGS) {
            if on {
                flags[set] = name;
                set += 1;
            }
        }
        batch.flags(&flags[..set]);
    }
    batch
}

/// A region's box as its `style` attribute (percent of the picture box).
fn region_style((x, y, w, h): (f64, f64, f64, f64)) -> String {
    let mut style = String::with_capacity(48);
    for (name, v) in [("left:", x), (";top:", y), (";width:", w), (";height:", h)] {
        style.push_str(name);
        push_percent(&mut style, v);
    }
    style
}

/// The fragment naming a discussion in a page's URL: `#image-chat=<chat id>` (documented in
/// docs/WIDGET.md, "Links to a discussion").
pub const FRAGMENT_PREFIX: &str = "#image-chat=";

/// An avatar image URL that may be shown: `https:` only (a signed user's data is the site's,
/// but the widget never loads `http:`, `data:` or `javascript:` URLs).
fn safe_avatar(url: Option<&str>) -> Option<&str> {
    url.filter(|u| u.len() > 8 && u[..8].eq_ignore_ascii_case("https://"))
}

/// The marker being placed and its composer, before the first comment is posted.
pub struct Draft {
    /// Where it goes (a region's top-left corner).
    pub at: Fraction,
    /// The region's width and height, for a discussion about an area.
    pub region: Option<(f64, f64)>,
    /// `button.image-chat-marker[data-draft]`.
    marker: Element,
    /// `.image-chat-thread[data-draft]`.
    panel: Element,
    /// The first comment's box.
    pub textarea: HtmlTextAreaElement,
    /// The display-name field (anonymous people only).
    pub name: Option<HtmlInputElement>,
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
    /// Resolve / reopen (author or moderator; absent in read-only mode).
    resolve: Option<Element>,
    /// "Copy link", which says "Link copied" once used.
    copy_link: Element,
    /// "Show the whole discussion", under a resolved discussion's collapsed thread.
    show_thread: Element,
    /// The person expanded this resolved discussion's thread.
    pub expanded: bool,
    /// The reply whose Delete button asks for confirmation (kept across re-renders).
    pub confirm_reply: Option<CommentId>,
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
    /// The site's image, or text container in text mode (never moved or changed).
    pub target: Element,
    /// The page's overlay layer (`div.image-chat-overlays`), shared by every widget.
    pub host: Element,
    /// `.image-chat`, the overlay root, in `host`.
    pub root: Element,
    layer: Element,
    crosshair: Element,
    status: Element,
    /// "Reconnect now" (`button[data-action=reconnect]` in the bar).
    reconnect: Element,
    online: Element,
    live: Element,
    /// A detached `button.image-chat-marker` with the attributes every marker shares and the
    /// commonest text ("1"), cloned for each new one.
    marker_template: Element,
    /// The same with `data-clustered`, cloned for a new marker that is in a group.
    clustered_template: Element,
    /// The discussions in creation order (= the markers' order in the layer, and tab order).
    /// Markers are not kept as handles (keeping 1,000 is a call into JS each): [`Ui::marker`]
    /// finds one by its place here. Each is the view last shown (the one in `chats`), shared
    /// rather than its id copied: a snapshot's thousand discussions were two id copies each
    /// here and in the cluster buttons (docs/BENCHMARKS.md, "First paint (issue 18, session 8)").
    order: Vec<Rc<ChatView>>,
    /// How many of `order`'s last discussions have no marker yet: they are created at once,
    /// when the engine's updates are drained (see [`Ui::flush`]).
    uncreated: usize,
    /// Whether each marker of `order` carries `data-clustered`, as written (a gathered one: as
    /// it will be created, so `false` until a regrouping picks its template). Kept here so a
    /// regrouping touches only the markers whose flag changes, not the thousand shown.
    clustered: Vec<bool>,
    /// The last view of every discussion shown (to render a thread when it opens).
    pub chats: SortedMap<ChatId, Rc<ChatView>>,
    /// The open thread, if any.
    pub panel: Option<Panel>,
    /// The marker being placed, if any.
    pub draft: Option<Draft>,
    /// Keyboard placement point.
    pub crosshair_at: Fraction,
    /// Connection status as last shown.
    pub connection: ConnectionStatus,
    /// Cluster buttons over overlapping markers.
    clusters: Clusters,
    /// Markers came, went or moved, or the overlay was resized, since the last regrouping.
    cluster_dirty: bool,
    /// The overlay's size in px, as last laid out.
    box_size: (f64, f64),
    /// The show/hide markers toggle in the bar.
    toggle: Element,
    /// The markers are hidden (the toggle).
    pub markers_hidden: bool,
    /// The first-post form's name field and its value: `None` shows no field (a signed user,
    /// whose name is the site's).
    pub name_field: Option<String>,
    /// `div.image-chat-regions`: the boxes of region discussions, under the markers.
    regions: Element,
    /// Each region discussion's box.
    region_boxes: SortedMap<ChatId, Element>,
    /// The box being drawn out for a new region discussion.
    draft_region: Option<Element>,
    /// The bar's filter: resolved discussions are hidden.
    pub resolved_hidden: bool,
    /// The bar's "show resolved" filter button.
    filter: Element,
    /// The bar's lock badge (shown while the image is locked).
    locked: Element,
    /// The bar's lock / unlock button (moderators only).
    lock: Element,
    /// What the lock badge and button show: (locked, moderator); `None` before the first.
    lock_state: Option<(bool, bool)>,
    /// Text mode: where the open thread goes (its passage's last line), as a fraction of the
    /// container's box.
    #[cfg(feature = "text")]
    pub spot: Option<Fraction>,
    /// Text mode: where focus returns when the thread closes (the top bar's entry that
    /// opened it).
    #[cfg(feature = "text")]
    pub return_focus: Option<Element>,
}

impl Ui {
    /// Builds the overlay in the page's overlay layer (the image is left alone); hidden until
    /// [`Ui::layout`] puts it over the picture.
    pub fn build(doc: &Document, target: &Element, opts: &Options) -> JsResult<Ui> {
        let locale = opts.locale;
        let root = make(doc, "div", "image-chat");
        for (name, value) in [
            ("role", "group"),
            ("tabindex", "0"),
            ("lang", locale.tag()),
            ("data-theme", opts.theme.as_str()),
        ] {
            plain::set(&root, name, value);
        }
        set_overlay_label(&root, locale, opts.read_only);
        set_style(&root, "--image-chat-marker-size", &px(opts.marker_size));
        let layer = make(doc, "div", "image-chat-layer");
        let crosshair = make(doc, "span", "image-chat-crosshair");
        plain::set(&crosshair, "aria-hidden", "true");
        let bar = make(doc, "div", "image-chat-bar");
        let status = child(doc, &bar, "span", "image-chat-status");
        // Shown only while a reconnect delay is counted down (see `show_status`).
        let reconnect = button(doc, Action::Reconnect, locale.strings().reconnect_now);
        plain::set(&reconnect, "hidden", "");
        plain::append(&bar, &reconnect);
        let online = child(doc, &bar, "span", "image-chat-online");
        let toggle = child(doc, &bar, "button", "image-chat-toggle");
        for (name, value) in [
            ("type", "button"),
            ("data-action", Action::ToggleMarkers.as_attr()),
            ("aria-pressed", "true"),
            ("aria-label", locale.strings().markers_toggle),
            ("title", locale.strings().markers_toggle),
        ] {
            plain::set(&toggle, name, value);
        }
        toggle.set_text_content(Some("◉"));
        let filter = child(doc, &bar, "button", "image-chat-filter");
        for (name, value) in [
            ("type", "button"),
            ("data-action", Action::ToggleResolved.as_attr()),
            ("aria-pressed", "true"),
            ("aria-label", locale.strings().show_resolved),
            ("title", locale.strings().show_resolved),
        ] {
            plain::set(&filter, name, value);
        }
        filter.set_text_content(Some("✓"));
        // Shown while a moderator has locked the image; the button only to moderators.
        let locked = child(doc, &bar, "span", "image-chat-locked");
        plain::append(&locked, &lock_icon(doc));
        plain::set(&locked, "hidden", "");
        let lock = child(doc, &bar, "button", "image-chat-lock");
        for (name, value) in [
            ("type", "button"),
            ("data-action", Action::ToggleLock.as_attr()),
            ("aria-pressed", "false"),
            ("hidden", ""),
        ] {
            plain::set(&lock, name, value);
        }
        plain::append(&lock, &lock_icon(doc));
        let regions = make(doc, "div", "image-chat-regions");
        plain::set(&regions, "aria-hidden", "true");
        let clusters = Clusters::new(doc, opts.marker_size);
        let live = make(doc, "div", "image-chat-sr");
        plain::set(&live, "aria-live", "polite");
        plain::set(&live, "role", "status");
        for child in [&regions, &layer, &clusters.el, &crosshair, &bar, &live] {
            plain::append(&root, child);
        }
        plain::set(&root, "hidden", "");
        let host = crate::overlay::acquire_layer(doc);
        plain::append(&host, &root);
        let marker_template = make(doc, "button", "image-chat-marker");
        for (name, value) in [
            ("type", "button"),
            ("aria-haspopup", "dialog"),
            ("aria-expanded", "false"),
        ] {
            plain::set(&marker_template, name, value);
        }
        // Most discussions have one comment: clones keep this text unless theirs differs.
        marker_template.set_text_content(Some("1"));
        // The same marker in a group (hidden under its cluster button), so that a snapshot's
        // markers are created with `data-clustered` rather than given it one call each after.
        let clustered_template: Element = marker_template.clone_node_with_deep(true)?.dyn_into()?;
        plain::set(&clustered_template, "data-clustered", "");

        let ui = Ui {
            doc: doc.clone(),
            locale,
            read_only: opts.read_only,
            target: target.clone(),
            host,
            root,
            layer,
            crosshair,
            status,
            reconnect,
            online,
            live,
            marker_template,
            clustered_template,
            order: Vec::new(),
            uncreated: 0,
            clustered: Vec::new(),
            chats: SortedMap::new(),
            panel: None,
            draft: None,
            crosshair_at: Fraction::CENTER,
            connection: ConnectionStatus::Connecting { attempt: 0 },
            clusters,
            cluster_dirty: false,
            box_size: (0.0, 0.0),
            toggle,
            markers_hidden: false,
            name_field: None,
            regions,
            region_boxes: SortedMap::new(),
            draft_region: None,
            resolved_hidden: false,
            filter,
            locked,
            lock,
            lock_state: None,
            #[cfg(feature = "text")]
            spot: None,
            #[cfg(feature = "text")]
            return_focus: None,
        };
        place(&ui.crosshair, ui.crosshair_at);
        Ok(ui)
    }

    /// The image's absolute `src` (empty for a text container).
    pub fn src(&self) -> String {
        self.target
            .dyn_ref::<HtmlImageElement>()
            .map(HtmlImageElement::src)
            .unwrap_or_default()
    }

    /// Removes everything the widget added (the layer goes with the last widget).
    pub fn teardown(&mut self) {
        self.panel = None;
        self.draft = None;
        self.root.remove();
        crate::overlay::release_layer(&self.host);
    }

    /// Shows the overlay over the picture: `b` in the page layer's coordinates (see
    /// [`crate::geometry::overlay_box`]).
    pub fn layout(&mut self, b: &OverlayBox) {
        let v = b.visible;
        let p = b.picture;
        // The markers' box: regroup them when its size changes.
        if self.box_size != (p.width, p.height) {
            self.box_size = (p.width, p.height);
            self.cluster_dirty = true;
        }
        for (prop, value) in [
            ("left", v.left),
            ("top", v.top),
            ("width", v.width),
            ("height", v.height),
            ("--ic-l", p.left),
            ("--ic-t", p.top),
            ("--ic-w", p.width),
            ("--ic-h", p.height),
        ] {
            set_style(&self.root, prop, &px(value));
        }
        let c = b.clip;
        let clip = [
            "inset(",
            &px(c.top),
            " ",
            &px(c.right),
            " ",
            &px(c.bottom),
            " ",
            &px(c.left),
            ")",
        ]
        .concat();
        set_style(&self.layer, "clip-path", &clip);
        set_style(&self.regions, "clip-path", &clip);
        set_style(&self.clusters.el, "clip-path", &clip);
        // A thumbnail's status line is shortened: the people count gives way first.
        set_flag(&self.root, "data-compact", v.width < 240.0);
        plain::unset(&self.root, "hidden");
    }

    /// Hides the overlay (the image is detached, hidden or scrolled out of its clip).
    pub fn hide(&self) {
        plain::set(&self.root, "hidden", "");
    }

    /// The open thread or draft panel and the point it belongs to.
    pub fn open_panel_el(&self) -> Option<(Element, Fraction)> {
        if let Some(d) = &self.draft {
            return Some((d.panel.clone(), d.at));
        }
        let p = self.panel.as_ref()?;
        #[cfg(feature = "text")]
        if let Some(at) = self.spot {
            return Some((p.el.clone(), at));
        }
        let chat = self.chats.get(&p.chat_id)?;
        // A region's thread opens by its bottom-left corner, so it does not hide the area.
        let (x, y) = match chat.region() {
            Some((x, y, _, h)) => (x, y + h),
            None => chat.point()?,
        };
        Some((p.el.clone(), Fraction { x, y }))
    }

    /// Places the open panel where it is fully on screen (see [`place_panel`]): `picture` and
    /// `visible` are the picture and the overlay root in viewport coordinates, `viewport` the
    /// screen's size.
    pub fn place_panel(&self, picture: Rect, visible: Rect, viewport: (f64, f64), marker: f64) {
        let Some((el, at)) = self.open_panel_el() else {
            return;
        };
        // Measured as a plain, uncapped panel.
        plain::unset(&el, "data-place");
        set_style(&el, "max-height", "none");
        let r = el.get_bounding_client_rect();
        let mut b = place_panel(PanelInput {
            viewport,
            anchor: (
                picture.left + at.x * picture.width,
                picture.top + at.y * picture.height,
            ),
            radius: marker / 2.0,
            size: (r.width(), r.height().min(PANEL_MAX)),
        });
        plain::set(&el, "data-place", b.side.as_str());
        if b.side == Side::Sheet {
            set_style(&el, "left", "");
            set_style(&el, "top", "");
        } else {
            b.max_height = b.max_height.min(PANEL_MAX);
            set_style(&el, "left", &px(b.left - visible.left));
            set_style(&el, "top", &px(b.top - visible.top));
        }
        set_style(&el, "max-height", &px(b.max_height));
    }

    // ---------------------------------------------------------------------------------------
    // Connection status
    // ---------------------------------------------------------------------------------------

    /// Shows the connection status (`data-state`, status line) at `now`.
    pub fn show_status(&mut self, connection: ConnectionStatus, now: u64) {
        self.connection = connection;
        plain::set(&self.root, "data-state", status::data_state(connection));
        let text = status::status_text(self.locale, connection, now);
        if self.status.text_content().as_deref() != Some(text.as_str()) {
            self.status.set_text_content(Some(&text));
        }
        set_flag(
            &self.reconnect,
            "hidden",
            !status::can_reconnect_now(connection),
        );
        match connection.stopped() {
            Some(reason) => plain::set(
                &self.status,
                "title",
                status::stop_detail(self.locale, reason),
            ),
            None => plain::unset(&self.status, "title"),
        }
    }

    /// Switches between read-only and writable (the `readOnly` option, or the server's verdict
    /// in `welcome`). An open draft or thread was built for the other mode, so it is closed.
    pub fn set_read_only(&mut self, read_only: bool) {
        if read_only == self.read_only {
            return;
        }
        self.read_only = read_only;
        set_overlay_label(&self.root, self.locale, read_only);
        self.close_draft();
        self.close_panel();
    }

    /// Speaks another language (`instance.update({locale})`): the overlay's own texts change
    /// here; an open draft or thread closes, and the caller renders the discussions again.
    pub fn set_locale(&mut self, locale: Locale) {
        if locale == self.locale {
            return;
        }
        self.locale = locale;
        let s = locale.strings();
        plain::set(&self.root, "lang", locale.tag());
        set_overlay_label(&self.root, locale, self.read_only);
        self.reconnect.set_text_content(Some(s.reconnect_now));
        for (el, label) in [
            (&self.toggle, s.markers_toggle),
            (&self.filter, s.show_resolved),
        ] {
            plain::set(el, "aria-label", label);
            plain::set(el, "title", label);
        }
        // Relabelled in the new language, without announcing anything.
        if let Some((locked, moderator)) = self.lock_state.take() {
            self.show_lock(locked, moderator);
        }
        self.close_draft();
        self.close_panel();
        self.clear_chats();
    }

    /// Sets the colour theme (`data-theme`).
    pub fn set_theme(&self, theme: crate::options::Theme) {
        plain::set(&self.root, "data-theme", theme.as_str());
    }

    /// Shows the live viewer count (only while live: a stale count would mislead).
    pub fn show_online(&self, online: u32) {
        plain::set(&self.online, "data-count", &decimal(u64::from(online)));
        let text = if self.connection.is_live() && online > 0 {
            self.locale.online(online)
        } else {
            String::new()
        };
        self.online.set_text_content(Some(&text));
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
    pub fn upsert_chat(&mut self, index: usize, chat: Rc<ChatView>, now: u64) -> JsResult<()> {
        // One search of the table, not two (the place is kept for the `put` below).
        let (slot, old) = self.chats.take(&chat.id);
        match old {
            None => self.add_marker(index, &chat)?,
            Some(old) => {
                if self.gathered().iter().any(|c| c.id == chat.id) {
                    // Added earlier in this batch: create it now, to update it.
                    self.flush()?;
                }
                self.update_marker(index, &old, &chat)?;
                // `order` holds the view shown (at `index` unless it could not be moved there).
                let at = match self.order.get(index) {
                    Some(c) if c.id == chat.id => Some(index),
                    _ => self.order.iter().position(|c| c.id == chat.id),
                };
                if let Some(slot) = at.and_then(|at| self.order.get_mut(at)) {
                    *slot = Rc::clone(&chat);
                }
            }
        }
        self.show_region(&chat);
        let open = self.panel.as_ref().is_some_and(|p| p.chat_id == chat.id);
        if open {
            self.render_panel(&chat, now);
        }
        self.chats.put(slot, chat.id.clone(), chat);
        Ok(())
    }

    /// Draws (or updates, or removes) the box of a region discussion.
    fn show_region(&mut self, chat: &ChatView) {
        let Some(region) = chat.region() else {
            if let Some(old) = self.region_boxes.remove(&chat.id) {
                old.remove();
            }
            return;
        };
        let el = match self.region_boxes.get(&chat.id) {
            Some(el) => el.clone(),
            None => {
                let el = child(&self.doc, &self.regions, "div", "image-chat-region");
                plain::set(&el, "data-chat-id", chat.id.as_str());
                self.region_boxes.insert(chat.id.clone(), el.clone());
                el
            }
        };
        plain::set(&el, "style", &region_style(region));
        set_flag(&el, "data-resolved", chat.resolved);
        set_flag(&el, "data-mine", chat.mine);
    }

    /// Shows a marker (and its region's box) at `anchor` while it is dragged or moved with
    /// the keyboard, before anything is sent; [`Ui::end_move`] puts it back.
    pub fn preview_move(&self, chat_id: &ChatId, anchor: &image_chat_protocol::Anchor) {
        let Some(chat) = self.chats.get(chat_id) else {
            return;
        };
        let moved = ChatView {
            anchor: anchor.clone(),
            ..ChatView::clone(chat)
        };
        if let Some(m) = self.marker(chat_id) {
            plain::set(&m, "style", &marker_style(&moved));
            plain::set(&m, "data-moving", "");
        }
        if let (Some(el), Some(region)) = (self.region_boxes.get(chat_id), moved.region()) {
            plain::set(el, "style", &region_style(region));
        }
    }

    /// Ends a move preview: the marker shows its discussion's anchor as the view has it.
    pub fn end_move(&self, chat_id: &ChatId) {
        let Some(chat) = self.chats.get(chat_id) else {
            return;
        };
        if let Some(m) = self.marker(chat_id) {
            plain::set(&m, "style", &marker_style(chat));
            plain::unset(&m, "data-moving");
        }
        if let (Some(el), Some(region)) = (self.region_boxes.get(chat_id), chat.region()) {
            plain::set(el, "style", &region_style(region));
        }
    }

    /// Draws the box being dragged out for a new region discussion (`None` removes it).
    pub fn draw_region(&mut self, region: Option<(f64, f64, f64, f64)>) {
        match region {
            Some(r) => {
                let el = match &self.draft_region {
                    Some(el) => el.clone(),
                    None => {
                        let el = child(&self.doc, &self.regions, "div", "image-chat-region");
                        plain::set(&el, "data-draft", "");
                        self.draft_region = Some(el.clone());
                        el
                    }
                };
                plain::set(&el, "style", &region_style(r));
            }
            None => {
                if let Some(el) = self.draft_region.take() {
                    el.remove();
                }
            }
        }
    }

    /// Shows the image's lock: the badge (with its explanation) while locked, and to a
    /// moderator the button that locks or unlocks it; says so when it changes from a known
    /// state (not at the first welcome).
    pub fn show_lock(&mut self, locked: bool, moderator: bool) {
        let previous = self.lock_state.replace((locked, moderator));
        if previous == Some((locked, moderator)) {
            return;
        }
        let s = self.locale.strings();
        set_flag(&self.root, "data-locked", locked);
        set_flag(&self.locked, "hidden", !locked);
        plain::set(&self.locked, "title", s.locked_notice);
        plain::set(&self.locked, "aria-label", s.locked_notice);
        set_flag(&self.lock, "hidden", !moderator);
        plain::set(
            &self.lock,
            "aria-pressed",
            if locked { "true" } else { "false" },
        );
        let label = if locked { s.unlock_image } else { s.lock_image };
        plain::set(&self.lock, "aria-label", label);
        plain::set(&self.lock, "title", label);
        if previous.is_some_and(|(was, _)| was != locked) {
            self.announce(if locked {
                s.announce_locked
            } else {
                s.announce_unlocked
            });
        }
    }

    /// Shows or hides resolved discussions (the bar's filter), and says so.
    pub fn toggle_resolved(&mut self) {
        let s = self.locale.strings();
        self.resolved_hidden = !self.resolved_hidden;
        let hidden = self.resolved_hidden;
        set_flag(&self.root, "data-open-only", hidden);
        plain::set(
            &self.filter,
            "aria-pressed",
            if hidden { "false" } else { "true" },
        );
        self.cluster_dirty = true;
        self.announce(if hidden {
            s.announce_resolved_hidden
        } else {
            s.announce_resolved_shown
        });
    }

    /// Makes room for `shown` discussions in all, so the tables grow once rather than by
    /// doubling (with hash maps that rehashed every id each time: ~5 ms of a 1,000-marker
    /// snapshot in a profile; the sorted maps now only copy).
    pub fn reserve(&mut self, shown: usize) {
        let more = shown.saturating_sub(self.chats.len());
        self.chats.reserve(more);
        self.order.reserve(more);
        self.clustered.reserve(more);
    }

    /// Gathers a new marker for [`Ui::flush`]: at the end of the layer (a snapshot's markers
    /// all come this way), or created at once before the marker that follows it.
    fn add_marker(&mut self, index: usize, chat: &Rc<ChatView>) -> JsResult<()> {
        let index = index.min(self.order.len());
        let appended = index == self.order.len();
        let mut next = None;
        if !appended {
            // The markers gathered so far come before this one's successor: create them first.
            self.flush()?;
            next = self.order.get(index).and_then(|c| self.marker(&c.id));
        }
        self.order.insert(index, Rc::clone(chat));
        self.clustered.insert(index, false);
        self.cluster_dirty = true;
        if appended {
            self.uncreated += 1;
            return Ok(());
        }
        marker_batch(std::slice::from_ref(chat), self.locale, &[]).insert(
            &self.layer,
            next.as_ref().map(AsRef::as_ref),
            &self.marker_template,
        )
    }

    /// Brings an existing marker up to date with `chat`, writing only what changed from `old`
    /// (and looking the marker up only then).
    fn update_marker(&mut self, index: usize, old: &ChatView, chat: &ChatView) -> JsResult<()> {
        if self.order.get(index).is_none_or(|c| c.id != chat.id) {
            self.move_marker(index, &chat.id)?;
        }
        let count = chat.comments.len();
        let recount = old.comments.len() != count;
        let relabel = recount
            || old.resolved != chat.resolved
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
            plain::set(marker, "style", &marker_style(chat));
            self.cluster_dirty = true;
        }
        if recount {
            marker.set_text_content(Some(&decimal(count as u64)));
        }
        if relabel {
            plain::set(marker, "aria-label", &self.marker_label(chat));
        }
        for ((was, now), name) in was.into_iter().zip(now).zip(MARKER_FLAGS) {
            if was != now {
                set_flag(marker, name, now);
            }
        }
        Ok(())
    }

    /// A marker's accessible name: who started the discussion, how, and how many comments.
    fn marker_label(&self, chat: &ChatView) -> String {
        let mut label = String::new();
        push_marker_label(&mut label, self.locale, chat);
        label
    }

    /// Moves an existing marker to `index` in creation order (rare: a retried create goes
    /// last), in `order` and in the DOM.
    fn move_marker(&mut self, index: usize, id: &ChatId) -> JsResult<()> {
        // Its new successor may be among the markers gathered but not created yet.
        self.flush()?;
        let Some(marker) = self.marker(id) else {
            return Ok(());
        };
        let Some(at) = self.order.iter().position(|c| c.id == *id) else {
            return Ok(());
        };
        let moved = self.order.remove(at);
        let flag = self.clustered.remove(at);
        let index = index.min(self.order.len());
        // Found before `order` changes, so by its place in the layer.
        let next = self.order.get(index).and_then(|c| self.marker(&c.id));
        self.order.insert(index, moved);
        self.clustered.insert(index, flag);
        self.layer
            .insert_before(&marker, next.as_ref().map(AsRef::as_ref))?;
        Ok(())
    }

    /// Creates the markers gathered by [`Ui::upsert_chat`] at the end of the layer. Call once
    /// the engine's updates are drained, before anything reads the DOM.
    pub fn flush(&mut self) -> JsResult<()> {
        if self.uncreated == 0 {
            return Ok(());
        }
        let batch = marker_batch(self.gathered(), self.locale, &[]);
        self.uncreated = 0;
        batch.insert(&self.layer, None, &self.marker_template)
    }

    /// Removes one discussion's marker (and closes its thread, unless it holds text the person
    /// has not sent: see [`Ui::orphan_panel`]). Returns whether its thread was closed, so focus
    /// can be moved somewhere sensible.
    pub fn remove_chat(&mut self, chat_id: &ChatId) -> bool {
        if self.uncreated > 0 {
            // It may be gathered but not created yet (rare): create, then remove like any other.
            let _ = self.flush();
        }
        if let Some(m) = self.marker(chat_id) {
            m.remove();
        }
        if let Some(at) = self.order.iter().position(|c| c.id == *chat_id) {
            self.order.remove(at);
            self.clustered.remove(at);
        }
        self.chats.remove(chat_id);
        if let Some(el) = self.region_boxes.remove(chat_id) {
            el.remove();
        }
        self.cluster_dirty = true;
        let open = self.panel.as_ref().is_some_and(|p| &p.chat_id == chat_id);
        if open && !self.orphan_panel() {
            self.close_panel();
            return true;
        }
        false
    }

    /// The discussions whose markers are gathered but not created yet: the last `uncreated`
    /// of `order`.
    fn gathered(&self) -> &[Rc<ChatView>] {
        &self.order[self.order.len().saturating_sub(self.uncreated)..]
    }

    /// Removes every marker (before a full re-render).
    pub fn clear_chats(&mut self) {
        self.uncreated = 0;
        self.clustered.clear();
        // The layer holds only markers: one call empties it.
        self.layer.set_text_content(None);
        for el in std::mem::replace(&mut self.region_boxes, SortedMap::new()).into_values() {
            el.remove();
        }
        self.order.clear();
        self.chats.clear();
        self.clusters.clear();
        self.cluster_dirty = true;
        self.close_panel();
    }

    /// The page's pointer changed between touch and mouse: markers are grouped by a different
    /// reach ([`Clusters`]), so regroup them now.
    pub fn pointer_changed(&mut self) -> JsResult<()> {
        self.cluster_dirty = true;
        self.recluster()
    }

    /// The `(pointer:coarse)` query the grouping depends on.
    pub fn pointer_query(&self) -> Option<&web_sys::MediaQueryList> {
        self.clusters.pointer_query()
    }

    /// The marker of a discussion, if created: the layer's child at its place in creation
    /// order (two calls into JS), checked by its `data-chat-id`; else (something else in the
    /// layer, or `order` changed ahead of the DOM during a move) found among all the children.
    pub fn marker(&self, chat_id: &ChatId) -> Option<Element> {
        find_marker(&self.layer, &self.order, self.uncreated, chat_id)
    }

    // ---------------------------------------------------------------------------------------
    // Clusters and the markers toggle
    // ---------------------------------------------------------------------------------------

    /// Regroups overlapping markers if markers came, went or moved, or the overlay was
    /// resized, since the last time, and creates the markers gathered so far (see
    /// [`Ui::flush`]), each already with `data-clustered` if it is in a group: on a dense
    /// image, a snapshot's markers nearly all are, and setting it on each after its creation
    /// was one more DOM call per marker (docs/BENCHMARKS.md, "First paint (issue 18,
    /// session 8)").
    pub fn recluster(&mut self) -> JsResult<()> {
        if !self.cluster_dirty {
            return self.flush();
        }
        self.cluster_dirty = false;
        let hidden = |c: &ChatView| self.resolved_hidden && c.resolved;
        let (width, height) = self.box_size;
        let groups = self.clusters.groups(&self.order, width, height, &hidden);
        let Some(groups) = groups else {
            return self.flush();
        };
        let mut clustered = vec![false; self.order.len()];
        for g in &groups {
            for &m in &g.members {
                clustered[m] = true;
            }
        }
        // The gathered markers are the last of `order` (see `Ui::add_marker`).
        let created = self.order.len() - self.uncreated;
        // A marker hidden in a group is created without its position (`style`), and gets it
        // when it is shown: it left the group (below) or the group fanned out
        // (`Clusters::expand`). Each marker's own position defeats Chromium's cache of matched
        // styles, so on a dense image the hidden ones were half of the first paint's style
        // recalc (docs/BENCHMARKS.md, "Hidden markers without a position").
        if self.uncreated > 0 {
            let hidden = &clustered[created..];
            let batch = marker_batch(self.gathered(), self.locale, hidden);
            self.uncreated = 0;
            let pick: Vec<u8> = hidden.iter().map(|&c| u8::from(c)).collect();
            batch.insert_picked(
                &self.layer,
                None,
                &self.marker_template,
                &self.clustered_template,
                &pick,
                "style",
            )?;
        }
        // Kept beside `order` by every change to it (add, move, remove, clear).
        debug_assert_eq!(self.clustered.len(), clustered.len());
        let old = std::mem::replace(&mut self.clustered, clustered);
        let change: Vec<FlagChange> = old[..created]
            .iter()
            .zip(&self.clustered)
            .map(|(&was, &now)| FlagChange::between(was, now))
            .collect();
        flag_children(&self.layer, &change, "data-clustered")?;
        for (chat, _) in self
            .order
            .iter()
            .zip(change)
            .filter(|&(_, c)| c == FlagChange::Remove)
        {
            if let Some(m) = self.marker(&chat.id) {
                plain::set(&m, "style", &marker_style(chat));
            }
        }
        let Ui {
            clusters,
            layer,
            order,
            chats,
            box_size,
            locale,
            ..
        } = self;
        let find = |id: &ChatId| find_marker(layer, order, 0, id);
        clusters.update(order, &groups, chats, *box_size, *locale, &find)
    }

    /// Expands the cluster led by `leader` (its first member then has the focus), or folds
    /// it if it is expanded.
    pub fn toggle_cluster(&mut self, leader: &ChatId) {
        let _ = self.flush();
        let Ui {
            clusters,
            layer,
            order,
            chats,
            box_size,
            ..
        } = self;
        let find = |id: &ChatId| find_marker(layer, order, 0, id);
        clusters.toggle(leader, chats, box_size.0, box_size.1, &find);
    }

    /// Folds the expanded cluster, if any, and focuses its button. Returns whether one was.
    pub fn fold_cluster(&mut self) -> bool {
        let Ui {
            clusters,
            layer,
            order,
            uncreated,
            ..
        } = self;
        let find = |id: &ChatId| find_marker(layer, order, *uncreated, id);
        match clusters.collapse(&find) {
            Some(leader) => {
                clusters.focus(&leader);
                true
            }
            None => false,
        }
    }

    /// Shows or hides every marker and cluster (the bar's toggle), and says so.
    pub fn toggle_markers(&mut self) {
        let s = self.locale.strings();
        self.markers_hidden = !self.markers_hidden;
        let hidden = self.markers_hidden;
        if hidden {
            self.fold_cluster();
        }
        set_flag(&self.root, "data-markers-hidden", hidden);
        plain::set(
            &self.toggle,
            "aria-pressed",
            if hidden { "false" } else { "true" },
        );
        self.toggle
            .set_text_content(Some(if hidden { "○" } else { "◉" }));
        self.announce(if hidden {
            s.announce_markers_hidden
        } else {
            s.announce_markers_shown
        });
    }

    /// Moves the keyboard crosshair.
    pub fn move_crosshair(&mut self, to: Fraction) {
        self.crosshair_at = to;
        place(&self.crosshair, to)
    }

    // ---------------------------------------------------------------------------------------
    // Draft
    // ---------------------------------------------------------------------------------------

    /// Starts placing a marker at `at`: a dashed marker and a composer, focused. With a
    /// `region` (`w`, `h`), the discussion is about that area, whose top-left corner is `at`.
    pub fn open_draft(&mut self, at: Fraction, region: Option<(f64, f64)>) {
        self.close_panel();
        self.close_draft();
        let s = self.locale.strings();
        let marker = make(&self.doc, "button", "image-chat-marker");
        plain::set(&marker, "type", "button");
        plain::set(&marker, "data-draft", "");
        plain::set(&marker, "aria-label", s.new_discussion);
        marker.set_text_content(Some("+"));
        place(&marker, at);

        let (panel, _) = self.panel_shell(s.new_discussion);
        plain::set(&panel, "data-draft", "");
        let (compose, textarea, error, _) = self.compose_box(
            &panel,
            s.placeholder_new,
            (Action::Post, s.post),
            (Action::CancelDraft, s.cancel, None),
        );
        let name = self.name_field.as_deref().map(|value| {
            let input = self.name_input(value);
            let textarea: &Element = textarea.as_ref();
            plain::insert(&compose, input.0.as_ref(), Some(textarea.as_ref()));
            input.1
        });

        plain::insert(&self.root, &marker, self.crosshair.next_sibling().as_ref());
        plain::insert(&self.root, &panel, marker.next_sibling().as_ref());
        focus(&textarea);
        self.draw_region(region.map(|(w, h)| (at.x, at.y, w, h)));
        self.draft = Some(Draft {
            region,
            at,
            marker,
            panel,
            textarea,
            name,
            error,
        });
    }

    /// The first-post form's name field, holding `value`: a label wrapping its text and an
    /// input isolated for bidirectional text (`dir=auto`), capped at the protocol's length,
    /// with the default name as placeholder. Returns the label and the input.
    fn name_input(&self, value: &str) -> (Element, HtmlInputElement) {
        let s = self.locale.strings();
        let label = make(&self.doc, "label", "image-chat-name-field");
        text_child(&self.doc, &label, "span", "", s.name_label);
        let input: HtmlInputElement =
            child(&self.doc, &label, "input", "image-chat-name").unchecked_into();
        for (name, v) in [
            ("type", "text"),
            ("dir", "auto"),
            ("autocomplete", "nickname"),
            ("placeholder", s.guest),
            (
                "maxlength",
                &decimal(image_chat_protocol::limits::MAX_NAME_CHARS as u64),
            ),
        ] {
            plain::set(&input, name, v);
        }
        input.set_value(value);
        (label, input)
    }

    /// Shows a local validation message in the draft's composer.
    pub fn draft_error(&self, message: &str) {
        if let Some(d) = &self.draft {
            d.error.set_text_content(Some(message));
            plain::unset(&d.error, "hidden");
        }
    }

    /// Removes the draft marker and composer.
    pub fn close_draft(&mut self) -> Option<Draft> {
        let d = self.draft.take()?;
        self.draw_region(None);
        d.marker.remove();
        d.panel.remove();
        Some(d)
    }

    // ---------------------------------------------------------------------------------------
    // Thread panel
    // ---------------------------------------------------------------------------------------

    /// A compose box at the end of `parent`: a text area (capped at the protocol's length), a
    /// hidden error line, and a primary and a secondary button (`(action, label)`, plus an
    /// optional flag attribute for the secondary). Returns the box, the text area, the error
    /// line and the secondary button.
    fn compose_box(
        &self,
        parent: &Element,
        placeholder: &str,
        primary: (Action, &str),
        secondary: (Action, &str, Option<&str>),
    ) -> (Element, HtmlTextAreaElement, Element, Element) {
        let doc = &self.doc;
        let compose = make(doc, "div", "image-chat-compose");
        let textarea: HtmlTextAreaElement = make(doc, "textarea", "").unchecked_into();
        textarea.set_placeholder(placeholder);
        plain::set(&textarea, "aria-label", placeholder);
        plain::set(
            &textarea,
            "maxlength",
            &decimal(image_chat_protocol::limits::MAX_TEXT_CHARS as u64),
        );
        plain::append(&compose, &textarea);
        let error = child(doc, &compose, "p", "image-chat-error");
        plain::set(&error, "role", "alert");
        plain::set(&error, "hidden", "");
        let actions = child(doc, &compose, "div", "image-chat-actions");
        let first = button(doc, primary.0, primary.1);
        plain::set(&first, "data-primary", "");
        plain::append(&actions, &first);
        let second = button(doc, secondary.0, secondary.1);
        if let Some(flag) = secondary.2 {
            plain::set(&second, flag, "");
        }
        plain::append(&actions, &second);
        plain::append(parent, &compose);
        (compose, textarea, error, second)
    }

    /// An empty panel with a heading and a close button; returns it and its title. The widget
    /// places it on screen ([`Ui::place_panel`]) once it is laid out.
    fn panel_shell(&self, heading: &str) -> (Element, Element) {
        let s = self.locale.strings();
        let doc = &self.doc;
        let panel = make(doc, "div", "image-chat-thread");
        plain::set(&panel, "role", "dialog");
        plain::set(&panel, "tabindex", "-1");
        let head = child(doc, &panel, "div", "image-chat-head");
        let title = text_child(doc, &head, "span", "", heading);
        let title_id = unique_id("title");
        title.set_id(&title_id);
        plain::set(&panel, "aria-labelledby", &title_id);
        let close = button(doc, Action::Close, "×");
        close.set_class_name("image-chat-btn image-chat-close");
        plain::set(&close, "aria-label", s.close);
        plain::set(&close, "title", s.close);
        plain::append(&head, &close);
        (panel, title)
    }

    /// Opens the thread of `chat_id` (closing any other thread or draft) and focuses it.
    pub fn open_panel(&mut self, chat_id: &ChatId, now: u64) {
        let Some(chat) = self.chats.get(chat_id).cloned() else {
            return;
        };
        self.close_draft();
        self.close_panel();
        let s = self.locale.strings();
        let (el_panel, title) = self.panel_shell(s.discussion);
        plain::set(&el_panel, "data-chat-id", chat.id.as_str());
        // A row of its own under the heading, so the title keeps its line.
        let tools = child(&self.doc, &el_panel, "div", "image-chat-tools");
        let copy_link = button(&self.doc, Action::CopyLink, s.copy_link);
        plain::append(&tools, &copy_link);
        let resolve = (!self.read_only).then(|| {
            let b = button(&self.doc, Action::Resolve, s.resolve);
            plain::append(&tools, &b);
            b
        });
        let list = child(&self.doc, &el_panel, "ol", "image-chat-comments");
        let show_thread = child(&self.doc, &el_panel, "div", "image-chat-actions");
        plain::set(&show_thread, "data-show-thread", "");
        plain::append(
            &show_thread,
            &button(&self.doc, Action::ShowThread, s.show_thread),
        );
        let chat_error = child(&self.doc, &el_panel, "div", "image-chat-chat-error");
        plain::set(&chat_error, "hidden", "");
        let compose = if self.read_only {
            None
        } else {
            let (box_, textarea, error, delete) = self.compose_box(
                &el_panel,
                s.placeholder_reply,
                (Action::Reply, s.reply),
                (Action::Delete, s.delete, Some("data-danger")),
            );
            Some(Compose {
                box_,
                textarea,
                error,
                delete,
            })
        };
        plain::insert(
            &self.root,
            &el_panel,
            self.crosshair.next_sibling().as_ref(),
        );
        if let Some(m) = self.marker(chat_id) {
            plain::set(&m, "aria-expanded", "true");
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
            resolve,
            copy_link,
            show_thread,
            expanded: false,
            confirm_reply: None,
        });
        self.render_panel(&chat, now);
        focus(&el_panel);
    }

    /// Expands the open thread's collapsed (resolved) discussion.
    pub fn show_thread(&mut self, now: u64) {
        let Some(panel) = self.panel.as_mut() else {
            return;
        };
        panel.expanded = true;
        let id = panel.chat_id.clone();
        if let Some(chat) = self.chats.get(&id).cloned() {
            self.render_panel(&chat, now);
        }
        if let Some(p) = &self.panel
            && let Some(second) = p.comments.get(1)
        {
            plain::set(&second.el, "tabindex", "-1");
            focus(&second.el);
        }
    }

    /// "Copy link" says "Link copied".
    pub fn link_copied(&self) {
        if let Some(p) = &self.panel {
            p.copy_link
                .set_text_content(Some(self.locale.strings().link_copied));
        }
    }

    /// Closes the open thread, if any; returns which discussion it showed.
    pub fn close_panel(&mut self) -> Option<ChatId> {
        let p = self.panel.take()?;
        p.el.remove();
        if let Some(m) = self.marker(&p.chat_id) {
            plain::set(&m, "aria-expanded", "false");
        }
        Some(p.chat_id)
    }

    /// Brings the open thread up to date with `chat`, touching only what changed: unchanged
    /// comments, the reply box (and what is being typed in it) and an edit in progress stay.
    pub fn render_panel(&mut self, chat: &ChatView, now: u64) {
        let locale = self.locale;
        let read_only = self.read_only;
        let doc = self.doc.clone();
        let Some(panel) = self.panel.as_mut() else {
            return;
        };
        let s = locale.strings();
        let mut title = [s.discussion, " · ", &locale.comments(chat.comments.len())].concat();
        if chat.resolved {
            title.push_str(" · ");
            title.push_str(s.resolved);
        }
        panel.title.set_text_content(Some(&title));
        // A resolved discussion shows its opening comment only, until expanded.
        let collapsed = chat.resolved && !panel.expanded && chat.comments.len() > 1;
        set_flag(&panel.el, "data-resolved", chat.resolved);
        set_flag(&panel.el, "data-collapsed", collapsed);
        set_flag(&panel.show_thread, "hidden", !collapsed);
        if let Some(b) = &panel.resolve {
            b.set_text_content(Some(if chat.resolved { s.reopen } else { s.resolve }));
            set_flag(b, "hidden", !chat.can_delete || chat.state.is_pending());
        }

        // Comments, in order; unchanged ones are kept as they are.
        let mut old: SortedMap<CommentId, CommentEntry> = panel
            .comments
            .drain(..)
            .map(|c| (c.id.clone(), c))
            .collect();
        let mut prev: Option<web_sys::Node> = None;
        for (i, view) in chat.comments.iter().enumerate() {
            let reply = i > 0;
            let editing = panel.editing.as_ref().is_some_and(|(id, _)| id == &view.id);
            let entry = match old.remove(&view.id) {
                Some(e) if e.view == *view || editing => CommentEntry {
                    view: view.clone(),
                    ..e
                },
                Some(e) => {
                    let confirming = panel.confirm_reply.as_ref() == Some(&view.id);
                    let fresh = comment_el(&doc, locale, read_only, reply, confirming, view, now);
                    plain::replace(&e.el, &fresh);
                    CommentEntry {
                        id: view.id.clone(),
                        view: view.clone(),
                        el: fresh,
                    }
                }
                None => CommentEntry {
                    id: view.id.clone(),
                    view: view.clone(),
                    el: comment_el(&doc, locale, read_only, reply, false, view, now),
                },
            };
            let expected_next = match &prev {
                Some(p) => p.next_sibling(),
                None => panel.list.first_child(),
            };
            let node: &web_sys::Node = entry.el.as_ref();
            if expected_next.as_ref() != Some(node) {
                plain::insert(&panel.list, node, expected_next.as_ref());
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

        // A failed delete, resolve or move is a discussion-level failure.
        match &chat.state {
            OpState::Failed {
                op,
                kind: OpKind::Delete | OpKind::Resolve | OpKind::Move,
                reason,
                retryable,
            } => {
                panel.chat_error.set_text_content(None);
                failure(
                    &doc,
                    &panel.chat_error,
                    locale,
                    op.as_str(),
                    *reason,
                    *retryable,
                );
                plain::unset(&panel.chat_error, "hidden");
            }
            _ => {
                panel.chat_error.set_text_content(None);
                plain::set(&panel.chat_error, "hidden", "");
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
            set_flag(&c.box_, "hidden", failed_create);
            set_flag(&c.delete, "hidden", !chat.can_delete || creating);
        }
    }

    /// The reply box of the open thread.
    pub fn reply_box(&self) -> Option<&HtmlTextAreaElement> {
        self.panel.as_ref()?.compose.as_ref().map(|c| &c.textarea)
    }

    /// Shows (or clears, with `None`) a local validation message under the reply box.
    pub fn reply_error(&self, message: Option<&str>) {
        if let Some(c) = self.panel.as_ref().and_then(|p| p.compose.as_ref()) {
            c.error.set_text_content(message);
            set_flag(&c.error, "hidden", message.is_none());
        }
    }

    /// Turns the delete button into its confirmation step (or back).
    pub fn confirm_delete(&mut self, on: bool) {
        let s = self.locale.strings();
        if let Some(p) = self.panel.as_mut() {
            p.confirm_delete = on;
            if let Some(c) = &p.compose {
                c.delete
                    .set_text_content(Some(if on { s.delete_confirm } else { s.delete }));
            }
        }
    }

    /// Replaces a comment's text with an editor holding `text`, focused.
    pub fn start_edit(&mut self, comment_id: &CommentId, text: &str) {
        let s = self.locale.strings();
        let doc = self.doc.clone();
        let now = crate::browser::now();
        self.cancel_edit(now);
        let Some(panel) = self.panel.as_mut() else {
            return;
        };
        let Some(entry) = panel.comments.iter().find(|c| &c.id == comment_id) else {
            return;
        };
        let textarea: HtmlTextAreaElement =
            make(&doc, "textarea", "image-chat-edit").unchecked_into();
        textarea.set_value(text);
        plain::set(&textarea, "aria-label", s.edit);
        let actions = make(&doc, "div", "image-chat-actions");
        let save = button(&doc, Action::SaveEdit, s.save);
        plain::set(&save, "data-primary", "");
        plain::append(&actions, &save);
        plain::append(&actions, &button(&doc, Action::CancelEdit, s.cancel));
        // The editor replaces the text and the comment's own buttons.
        let editor: &Element = textarea.as_ref();
        for (selector, new) in [
            (".image-chat-text", editor),
            (".image-chat-actions", &actions),
        ] {
            match plain::query(&entry.el, selector) {
                Some(old) => plain::replace(&old, new),
                None => plain::append(&entry.el, new),
            }
        }
        focus(&textarea);
        panel.editing = Some((comment_id.clone(), textarea));
    }

    /// Leaves edit mode, re-rendering the comment from its view; returns the comment edited.
    pub fn cancel_edit(&mut self, now: u64) -> Option<CommentId> {
        let locale = self.locale;
        let read_only = self.read_only;
        let doc = self.doc.clone();
        let panel = self.panel.as_mut()?;
        let (id, _) = panel.editing.take()?;
        if let Some((i, entry)) = panel
            .comments
            .iter_mut()
            .enumerate()
            .find(|(_, c)| c.id == id)
        {
            let fresh = comment_el(&doc, locale, read_only, i > 0, false, &entry.view, now);
            plain::replace(&entry.el, &fresh);
            entry.el = fresh;
        }
        Some(id)
    }

    /// Focuses the edit button of comment `id` in the open thread (after its edit ends).
    pub fn focus_edit_button(&self, id: &CommentId) {
        let entry = self
            .panel
            .as_ref()
            .and_then(|p| p.comments.iter().find(|c| &c.id == id));
        if let Some(button) = entry.and_then(|c| plain::query(&c.el, Action::Edit.selector())) {
            focus(&button);
        }
    }

    /// Re-renders relative times in the open thread.
    pub fn refresh_times(&self, now: u64) {
        let Some(panel) = &self.panel else { return };
        for entry in &panel.comments {
            if let Some(t) = plain::query(&entry.el, ".image-chat-time") {
                t.set_text_content(Some(&time_text(self.locale, entry.view.created_at, now)));
            }
        }
    }

    /// The open thread's discussion was deleted (by someone else, or from another tab) while
    /// the person had unsent text in it (a reply being typed, an edit in progress). Closing the
    /// thread would throw that text away, so the thread stays open in a "deleted" state: its
    /// comments and buttons go, a visible alert says what happened, and the text stays in a
    /// read-only box with a "Copy" button (`[data-action=copy]`), focused and selected, until
    /// the person closes it. Returns false (nothing changed) when there was no unsent text.
    pub fn orphan_panel(&mut self) -> bool {
        let s = self.locale.strings();
        let doc = self.doc.clone();
        let Some(panel) = self.panel.as_mut() else {
            return false;
        };
        let edit = panel.editing.as_ref().map(|(_, t)| t.value());
        let reply = panel.compose.as_ref().map(|c| c.textarea.value());
        let Some(text) = [edit, reply]
            .into_iter()
            .flatten()
            .find(|t| !t.trim().is_empty())
        else {
            return false;
        };
        panel.list.remove();
        panel.chat_error.remove();
        if let Some(c) = panel.compose.take() {
            c.box_.remove();
        }
        panel.comments.clear();
        panel.editing = None;
        panel.confirm_delete = false;
        plain::set(&panel.el, "data-deleted", "");
        let notice = text_child(&doc, &panel.el, "p", "image-chat-error", s.deleted_kept);
        plain::set(&notice, "role", "alert");
        let kept: HtmlTextAreaElement = make(&doc, "textarea", "image-chat-kept").unchecked_into();
        kept.set_value(&text);
        kept.set_read_only(true);
        plain::set(&kept, "aria-label", s.deleted_kept);
        plain::append(&panel.el, &kept);
        let actions = child(&doc, &panel.el, "div", "image-chat-actions");
        let copy = button(&doc, Action::Copy, s.copy);
        plain::set(&copy, "data-primary", "");
        plain::append(&actions, &copy);
        focus(&kept);
        kept.select();
        true
    }

    /// The text kept by [`Ui::orphan_panel`], selected (so Ctrl+C copies it too), and the
    /// "Copy" button, which now says "Copied".
    pub fn kept_text(&self) -> Option<String> {
        let panel = self.panel.as_ref()?;
        let kept: HtmlTextAreaElement = plain::query(&panel.el, ".image-chat-kept")?
            .dyn_into()
            .ok()?;
        kept.select();
        if let Some(copy) = plain::query(&panel.el, Action::Copy.selector()) {
            copy.set_text_content(Some(self.locale.strings().copied));
        }
        Some(kept.value())
    }

    /// Whether keyboard focus is inside the widget.
    pub fn has_focus(&self) -> bool {
        let active = self.doc.active_element();
        let node: Option<&web_sys::Node> = active.as_ref().map(AsRef::as_ref);
        node.is_some_and(|n| self.root.contains(Some(n)))
    }

    /// Puts focus back inside the widget if it fell out (to `<body>`): re-rendering after an
    /// action replaces the element that had it (a saved edit's text box, a Retry button that
    /// goes once the op is pending, "Reconnect now" once the attempt starts). The open thread
    /// (where Esc, Tab and the buttons work again) or the draft, else the overlay.
    pub fn keep_focus(&self) {
        if self.has_focus() {
            return;
        }
        match (&self.panel, &self.draft) {
            (Some(p), _) => focus(&p.el),
            (None, Some(d)) => focus(&d.textarea),
            (None, None) => focus(&self.root),
        }
    }

    /// The element that should get focus after the open thread closes: its marker, or the
    /// overlay.
    pub fn focus_after_close(&self, chat_id: Option<&ChatId>) {
        #[cfg(feature = "text")]
        if let Some(el) = &self.return_focus {
            focus(el);
            return;
        }
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

/// A failure at the end of `parent`: what went wrong, then retry (when it may help) and
/// dismiss buttons for the failed op `op`.
fn failure(
    doc: &Document,
    parent: &Element,
    locale: Locale,
    op: &str,
    reason: FailReason,
    retryable: bool,
) {
    let s = locale.strings();
    text_child(
        doc,
        parent,
        "p",
        "image-chat-error",
        status::fail_text(locale, reason),
    );
    let actions = child(doc, parent, "div", "image-chat-actions");
    if retryable {
        let retry = button(doc, Action::Retry, s.retry);
        plain::set(&retry, "data-op", op);
        plain::set(&retry, "data-primary", "");
        plain::append(&actions, &retry);
    }
    let dismiss = button(doc, Action::Dismiss, s.dismiss);
    plain::set(&dismiss, "data-op", op);
    plain::append(&actions, &dismiss);
}

/// The badges after an author's name: signed in, moderator, and "you" on the person's own
/// comments. Elements of their own, outside the name's `<bdi>` and styled as badges, so no
/// display name ("Alice (you)", an invisible one) can imitate them; each carries
/// `data-badge` for site CSS and tests.
fn badges(doc: &Document, meta: &Element, locale: Locale, c: &CommentView) {
    let s = locale.strings();
    for (on, kind, label) in [
        (c.mine, "you", s.you),
        (c.author.signed_in, "signed-in", s.badge_signed_in),
        (c.author.is_moderator, "moderator", s.badge_moderator),
    ] {
        if on {
            let badge = text_child(doc, meta, "span", "image-chat-badge", label);
            plain::set(&badge, "data-badge", kind);
        }
    }
}

/// One comment: author, time, text (as text), its op state and its buttons.
fn comment_el(
    doc: &Document,
    locale: Locale,
    read_only: bool,
    reply: bool,
    confirming: bool,
    c: &CommentView,
    now: u64,
) -> Element {
    let s = locale.strings();
    let li = make(doc, "li", "image-chat-comment");
    plain::set(&li, "data-comment-id", c.id.as_str());
    set_flag(&li, "data-pending", c.state.is_pending());
    set_flag(&li, "data-failed", c.state.is_failed());
    set_flag(&li, "data-mine", c.mine);

    let meta = child(doc, &li, "div", "image-chat-meta");
    avatar(doc, &meta, &c.author);
    // `<bdi>`: the name is isolated from what follows, so a right-to-left override in it
    // cannot reorder the badges, the time or anything else on the line.
    text_child(doc, &meta, "bdi", "image-chat-author", &c.author.name);
    badges(doc, &meta, locale, c);
    let time = text_child(
        doc,
        &meta,
        "time",
        "image-chat-time",
        &time_text(locale, c.created_at, now),
    );
    let date = js_sys::Date::new(&JsValue::from_f64(c.created_at as f64));
    if let Some(iso) = date.to_iso_string().as_string() {
        plain::set(&time, "datetime", &iso);
    }
    plain::set(&time, "title", &absolute_time(locale, c.created_at));
    if c.edited_at.is_some() {
        text_child(doc, &meta, "span", "image-chat-edited", s.edited);
    }
    if c.state.is_pending() {
        text_child(doc, &meta, "span", "image-chat-sending", s.sending);
    }
    // `dir=auto` + `unicode-bidi: isolate` (stylesheet): the text takes its direction from its
    // own first strong character and cannot spill into the surrounding layout.
    let text = text_child(doc, &li, "p", "image-chat-text", &c.text);
    plain::set(&text, "dir", "auto");

    if let OpState::Failed {
        op,
        reason,
        retryable,
        ..
    } = &c.state
    {
        failure(doc, &li, locale, op.as_str(), *reason, *retryable);
    } else if c.can_edit && !read_only && !c.state.is_pending() {
        let actions = child(doc, &li, "div", "image-chat-actions");
        plain::append(&actions, &button(doc, Action::Edit, s.edit));
        // The opening comment goes only with its discussion ("Delete discussion").
        if reply {
            let label = if confirming {
                s.delete_confirm
            } else {
                s.delete_reply
            };
            let delete = button(doc, Action::DeleteComment, label);
            plain::set(&delete, "data-danger", "");
            set_flag(&delete, "data-confirm", confirming);
            plain::append(&actions, &delete);
        }
    }
    li
}

/// A comment author's avatar: their picture (`https:` only) or, failing that, their initial,
/// decorative either way (the name follows). `img.image-chat-avatar` / `span.image-chat-avatar`.
fn avatar(doc: &Document, meta: &Element, author: &image_chat_protocol::User) {
    match safe_avatar(author.avatar_url.as_deref()) {
        Some(url) => {
            let img = child(doc, meta, "img", "image-chat-avatar");
            for (name, value) in [
                ("src", url),
                ("alt", ""),
                ("loading", "lazy"),
                ("referrerpolicy", "no-referrer"),
                ("decoding", "async"),
            ] {
                plain::set(&img, name, value);
            }
        }
        None => {
            // Upper-cased by the stylesheet (`text-transform`): Rust's case tables would
            // cost the bundle kilobytes for one letter.
            let initial: String = author
                .name
                .chars()
                .find(|c| !image_chat_protocol::limits::is_invisible(*c) && !c.is_control())
                .map(String::from)
                .unwrap_or_default();
            let span = text_child(doc, meta, "span", "image-chat-avatar", &initial);
            plain::set(&span, "aria-hidden", "true");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{excerpt, region_style, safe_avatar};

    #[test]
    fn avatars_are_https_only() {
        assert_eq!(
            safe_avatar(Some("https://example.com/a.png")),
            Some("https://example.com/a.png")
        );
        assert_eq!(safe_avatar(Some("HTTPS://x.y/a")), Some("HTTPS://x.y/a"));
        for bad in [
            "http://example.com/a.png",
            "javascript:alert(1)",
            "data:image/png;base64,AAAA",
            "//example.com/a.png",
            "https://",
            " https://x.y/a",
        ] {
            assert_eq!(safe_avatar(Some(bad)), None, "{bad}");
        }
        assert_eq!(safe_avatar(None), None);
    }

    #[test]
    fn region_boxes_are_percent_of_the_picture() {
        assert_eq!(
            region_style((0.1, 0.2, 0.3, 0.25)),
            "left:10%;top:20%;width:30%;height:25%"
        );
    }

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
