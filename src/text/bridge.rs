//! Text mode on a widget (`crate::widget::text`, a child of the widget module so it can reach
//! the widget's engine and UI): mounting on a container, the selection and its prompt, clicks
//! on highlights, the keyboard path, the top bar, and re-anchoring when the container's text
//! changes. What is text-specific but not event handling is in [`crate::text`].
//!
//! The overlay is the image widget's, laid over the container's box: it lets pointer events
//! through to the text (`data-mode=text`), its markers are not shown, and the thread panel,
//! the draft and the prompt are placed at a passage's last line.

use super::*;

use image_chat_protocol::PageId;

use crate::options::OptionsError;
use web_sys::Document;

use crate::text::dom;
use crate::text::prompt::{Prompt, TextAction};
use crate::text::strings::strings;
use crate::text::topbar::{Entry, TopBar};
use crate::text::{TextMode, describe, text_anchor};

/// After the container's text changes, how long it must stay quiet before the discussions are
/// found again (a burst of changes — a framework re-rendering a list — re-anchors once).
const REANCHOR_MS: f64 = 120.0;

/// How far below a touch selection's last line the prompt goes (CSS px): clear of the
/// selection handles the browser draws there.
const TOUCH_GAP: f64 = 34.0;

/// Where the top bar goes (`topBarTarget`).
#[derive(Clone, Debug, PartialEq)]
pub enum TopBarAt {
    /// First in the container (the default).
    Container,
    /// First in this element.
    Element(Element),
    /// Nowhere (`"none"`): the page shows its own, from the widget's events.
    Nowhere,
}

/// Text mode's options beyond the image widget's: `pageId` and `topBarTarget`.
#[derive(Clone, Debug, Default)]
pub struct TextOptions {
    /// `pageId` (else `data-page-id`, else derived from the page and `data-collab-chat`).
    pub page_id: Option<String>,
    /// `topBarTarget`: a CSS selector, an element, or `"none"`.
    pub top_bar: Option<JsValue>,
}

impl TextOptions {
    /// Reads `pageId` and `topBarTarget` from a JS options object (`undefined` / `null`: none).
    pub fn read(value: &JsValue) -> Result<TextOptions, OptionsError> {
        if value.is_undefined() || value.is_null() {
            return Ok(TextOptions::default());
        }
        let get = |name: &str| {
            js_sys::Reflect::get(value, &JsValue::from_str(name))
                .ok()
                .filter(|v| !v.is_undefined() && !v.is_null())
        };
        let page_id = match get("pageId") {
            None => None,
            Some(v) => Some(v.as_string().ok_or(OptionsError::WrongType {
                option: "pageId",
                expected: "string",
            })?),
        };
        Ok(TextOptions {
            page_id,
            top_bar: get("topBarTarget"),
        })
    }
}

/// The `pageId`: given (checked like an image id), or the page's origin and path, `#`, the
/// container's `data-collab-chat` value.
fn page_id(
    given: Option<String>,
    container: &Element,
    env: &crate::options::PageEnv,
) -> Result<PageId, OptionsError> {
    let given = given.or_else(|| container.get_attribute("data-page-id"));
    let invalid = OptionsError::WrongType {
        option: "pageId",
        expected: "string of 1 to 512 bytes without control characters",
    };
    match given {
        Some(id) => {
            if id.is_empty()
                || id.len() > image_chat_protocol::limits::MAX_IMAGE_ID_BYTES
                || id.chars().any(char::is_control)
            {
                return Err(invalid);
            }
            Ok(PageId::new(id))
        }
        None => {
            let name = container
                .get_attribute("data-collab-chat")
                .unwrap_or_default();
            Ok(crate::options::derive_page_id(
                &env.origin,
                &env.path,
                &name,
            ))
        }
    }
}

/// Where the top bar goes.
fn top_bar_at(doc: &Document, value: Option<JsValue>) -> Result<TopBarAt, OptionsError> {
    let invalid = OptionsError::WrongType {
        option: "topBarTarget",
        expected: "CSS selector that matches an element, an element, or \"none\"",
    };
    let Some(value) = value else {
        return Ok(TopBarAt::Container);
    };
    if let Some(el) = value.dyn_ref::<Element>() {
        return Ok(TopBarAt::Element(el.clone()));
    }
    match value.as_string().as_deref() {
        Some("none") => Ok(TopBarAt::Nowhere),
        Some("") => Ok(TopBarAt::Container),
        Some(selector) => doc
            .query_selector(selector)
            .ok()
            .flatten()
            .map(TopBarAt::Element)
            .ok_or(invalid),
        None => Err(invalid),
    }
}

/// Text mode's parts of a widget.
pub struct Text {
    /// Where each discussion is in the text, and the highlights.
    pub mode: TextMode,
    /// Where the top bar goes.
    top_at: TopBarAt,
    /// The prompt at a selection (built with the overlay).
    prompt: Option<Prompt>,
    /// The top bar, if any.
    topbar: Option<TopBar>,
    /// Watches the container's text.
    watch: Option<MutationWatch>,
    /// The pending re-anchoring after a change of the text.
    reanchor: Option<Timeout>,
    /// A touch or mouse button is down: the selection is still being made.
    pressing: bool,
    /// The last press was a touch: the prompt goes below the selection handles.
    touch: bool,
    /// Keyboard selection is on (the top bar's button has the keys).
    keys: bool,
    /// The document's and the container's listeners.
    listeners: Vec<Listener>,
}

/// Mounts text mode on `target` (an element or a selector). `defaults` and `js` as for
/// [`mount`]; `text` holds `pageId` and `topBarTarget`.
pub fn mount_text(
    target: &JsValue,
    defaults: RawOptions,
    js: RawOptions,
    text: TextOptions,
) -> Result<Rc<Shell>, WidgetError> {
    let window = crate::browser::window().ok_or(WidgetError::NoWindow)?;
    let doc = window.document().ok_or(WidgetError::NoWindow)?;
    let container = browser::resolve_target(&doc, target)?;
    let tag = container.tag_name();
    if ["IMG", "INPUT", "TEXTAREA", "SELECT", "CANVAS", "VIDEO"].contains(&tag.as_str()) {
        return Err(WidgetError::NotAContainer);
    }
    if crate::mounted_on(&container).is_some() {
        return Err(WidgetError::AlreadyMounted);
    }
    if !container.is_connected() {
        return Err(WidgetError::Detached);
    }
    let env = browser::page_env(&window, String::new());
    let (raw, opts) = resolve(&doc, &container, defaults, js, &env)?;
    let page = page_id(text.page_id, &container, &env)?;
    let top_at = top_bar_at(&doc, text.top_bar)?;
    let text = Box::new(Text {
        mode: TextMode::new(&doc, &container),
        top_at,
        prompt: None,
        topbar: None,
        watch: None,
        reanchor: None,
        pressing: false,
        touch: false,
        keys: false,
        listeners: Vec::new(),
    });
    let tenant = opts.tenant.clone();
    assemble(
        window,
        doc,
        container,
        raw,
        opts,
        |auth| Config::new(tenant, page, Some(auth)),
        Some(text),
    )
}

/// A listener running `f` on the widget behind `weak`.
fn on(weak: &Weak<Shell>, f: fn(&mut Widget, Event)) -> impl FnMut(Event) + 'static {
    handler(weak, f)
}

impl Widget {
    /// Sets text mode up once the overlay exists: the overlay lets events through, the prompt
    /// and the top bar are built, the listeners and the text observer registered.
    pub(super) fn text_attach(&mut self) -> Result<(), JsValue> {
        let Some(doc) = self.window.document() else {
            return Ok(());
        };
        let locale = self.opts.locale;
        let theme = self.opts.theme.as_str();
        let root = self.ui.root.clone();
        let weak = self.weak.clone();
        let Some(t) = self.text.as_mut() else {
            return Ok(());
        };
        plain::set(&root, "data-mode", "text");
        plain::unset(&root, "tabindex");
        plain::set(&root, "aria-label", strings(locale).bar_label);
        t.prompt = Some(Prompt::build(&doc, &root, locale));
        if let Some(bar) = plain::query(&root, ".image-chat-bar") {
            let parent = match &t.top_at {
                TopBarAt::Container => Some(t.mode.container.clone()),
                TopBarAt::Element(e) => Some(e.clone()),
                TopBarAt::Nowhere => None,
            };
            t.topbar = parent.map(|p| TopBar::build(&doc, &p, &bar, locale, theme));
        }
        let doc_target: EventTarget = doc.clone().into();
        let container: EventTarget = t.mode.container.clone().into();
        t.listeners = vec![
            Listener::new(
                &doc_target,
                "selectionchange",
                on(&weak, |w, _| w.on_selection_change()),
            ),
            Listener::capture(&doc_target, "pointerdown", on(&weak, Widget::on_press)),
            Listener::capture(&doc_target, "pointerup", on(&weak, Widget::on_release)),
            Listener::capture(&doc_target, "pointercancel", on(&weak, Widget::on_release)),
            Listener::new(&doc_target, "keydown", on(&weak, Widget::on_text_key)),
            Listener::new(&container, "click", on(&weak, Widget::on_text_click)),
        ];
        if let Some(bar) = &t.topbar {
            let bar: EventTarget = bar.el.clone().into();
            t.listeners.push(Listener::new(
                &bar,
                "click",
                on(&weak, Widget::on_bar_click),
            ));
            t.listeners.push(Listener::new(
                &bar,
                "keydown",
                on(&weak, Widget::on_keydown),
            ));
        }
        let watched: web_sys::Node = t.mode.container.clone().into();
        let weak = self.weak.clone();
        t.watch = Some(MutationWatch::with_options(
            &watched,
            &["childList", "subtree", "characterData"],
            move |records| {
                if records.iter().any(|r| !own_change(&r)) {
                    with_widget(&weak, Widget::text_changed);
                }
            },
        ));
        self.text_sync();
        Ok(())
    }

    /// The widget's language changed (or its table arrived): text mode's own labels follow.
    pub(super) fn text_relabel(&mut self, locale: crate::i18n::Locale) {
        let root = self.ui.root.clone();
        if let Some(t) = self.text.as_mut() {
            plain::set(&root, "aria-label", strings(locale).bar_label);
            if let Some(p) = t.prompt.as_mut() {
                p.relabel(locale);
            }
            if let Some(bar) = t.topbar.as_mut() {
                bar.relabel(locale);
            }
        }
    }

    /// Removes text mode's traces: highlights or marks, the top bar, listeners, observer.
    pub(super) fn text_teardown(&mut self) {
        if let Some(t) = self.text.as_mut() {
            t.listeners.clear();
            t.watch = None;
            t.reanchor = None;
            t.mode.teardown();
            if let Some(bar) = t.topbar.take() {
                bar.teardown();
            }
            t.prompt = None;
        }
    }

    /// The container's text changed: find the discussions again once it is quiet.
    fn text_changed(&mut self) {
        let weak = self.weak.clone();
        if let Some(t) = self.text.as_mut() {
            t.reanchor = Timeout::new(REANCHOR_MS, move || {
                with_widget(&weak, |w| {
                    if let Some(t) = w.text.as_mut() {
                        t.reanchor = None;
                        t.mode.invalidate();
                    }
                });
            });
        }
    }

    /// Brings the highlights, the top bar and the open thread's place up to date with the
    /// engine's view (after every drive).
    pub(super) fn text_sync(&mut self) {
        let picture = self.measure().map(|m| m.picture);
        let Some(t) = self.text.as_mut() else { return };
        if self.ui.draft.is_none() {
            t.mode.draft = None;
        }
        let open = self.ui.panel.as_ref().map(|p| p.chat_id.clone());
        let chats = &self.engine.view().chats;
        let painted = t.mode.paint(chats, open.as_ref());
        if painted && let Some(w) = &t.watch {
            // The fallback's marks are our own change, not the page's.
            w.discard();
        }
        self.ui.spot = match (&open, picture) {
            (Some(id), Some(picture)) => Some(
                t.mode
                    .place_of(id)
                    .and_then(|span| t.mode.spot(span, picture))
                    .unwrap_or(Fraction { x: 0.0, y: 0.0 }),
            ),
            _ => None,
        };
        if let Some(bar) = t.topbar.as_mut() {
            let changed = t.mode.changed();
            let entries = chats
                .iter()
                .filter_map(|c| {
                    Some(Entry {
                        id: c.id.clone(),
                        quote: text_anchor(c)?.exact.clone(),
                        comments: c.comments.len(),
                        changed: changed.contains(&c.id),
                    })
                })
                .collect();
            bar.render(t.mode.doc(), self.ui.locale, entries);
            bar.mirror(
                status::data_state(self.engine.status()),
                self.opts.theme.as_str(),
            );
        }
    }

    /// Scrolls discussion `id`'s passage into view (a link, `open()`); nothing for one whose
    /// text changed.
    pub(super) fn reveal_passage(&mut self, id: &ChatId) {
        let Some(t) = self.text.as_mut() else { return };
        let Some(range) = t.mode.place_of(id).and_then(|span| t.mode.range(span)) else {
            return;
        };
        let el = range
            .start_container()
            .ok()
            .and_then(|n| match n.dyn_ref::<Element>() {
                Some(e) => Some(e.clone()),
                None => n.parent_element(),
            });
        if let Some(el) = el {
            el.scroll_into_view_with_bool(false);
        }
    }

    // ---------------------------------------------------------------------------------------
    // Selection and its prompt
    // ---------------------------------------------------------------------------------------

    fn on_press(&mut self, e: Event) {
        let ours = e
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Node>().ok())
            .is_some_and(|n| self.ui.root.contains(Some(&n)));
        let touch = js_sys::Reflect::get(&e, &JsValue::from_str("pointerType"))
            .ok()
            .and_then(|v| v.as_string())
            .is_some_and(|kind| kind == "touch");
        if let Some(t) = self.text.as_mut()
            && !ours
        {
            t.pressing = true;
            t.touch = touch;
        }
    }

    /// The mouse button or finger is up: the selection is made (on touch, once the selection
    /// handles are let go).
    fn on_release(&mut self, _e: Event) {
        let Some(t) = self.text.as_mut() else { return };
        if std::mem::take(&mut t.pressing) {
            self.offer_selection();
        }
    }

    fn on_selection_change(&mut self) {
        let Some(t) = self.text.as_ref() else { return };
        // While a press is under way the selection is still moving: offered on release.
        if !t.pressing {
            self.offer_selection();
        }
    }

    /// Shows the prompt at the selection when it selects text of the container, else hides
    /// it (unless the person is in it).
    fn offer_selection(&mut self) {
        let read_only = self.ui.read_only;
        let drafting = self.ui.draft.is_some();
        let root_rect = self.ui.root.get_bounding_client_rect();
        let in_prompt = self.ui.has_focus()
            && self.text.as_ref().is_some_and(|t| {
                t.prompt.as_ref().is_some_and(|p| {
                    let active: Option<web_sys::Node> = self
                        .window
                        .document()
                        .and_then(|d| d.active_element())
                        .map(Into::into);
                    p.el.contains(active.as_ref())
                })
            });
        let Some(t) = self.text.as_mut() else { return };
        let Some(prompt) = t.prompt.as_ref() else {
            return;
        };
        let selected =
            dom::selection(t.mode.doc()).and_then(|r| Some((t.mode.flat().offsets_of(&r)?, r)));
        match selected {
            Some((span, range)) if !read_only && !drafting => {
                let Some((left, _, _, bottom)) = dom::last_line_of(&range) else {
                    return;
                };
                let was = t.mode.selected.replace(span);
                // Under the last line; on touch, under the selection handles too.
                let gap = if t.touch { TOUCH_GAP } else { 6.0 };
                prompt.show(left - root_rect.left(), bottom - root_rect.top() + gap);
                if was.is_none() {
                    self.ui.announce(strings(self.ui.locale).prompt_hint);
                }
            }
            _ if in_prompt => {}
            _ => {
                t.mode.selected = None;
                prompt.hide();
            }
        }
    }

    /// A prompt or top bar button, or a discussion in the list. Returns whether it was one.
    pub(super) fn text_click(&mut self, target: &Element, now: u64) -> bool {
        if let Some(b) = plain::closest(target, "[data-text-action]") {
            if let Some(action) = b
                .get_attribute("data-text-action")
                .as_deref()
                .and_then(TextAction::from_attr)
            {
                self.text_action(action, now);
            }
            return true;
        }
        if let Some(b) = plain::closest(target, ".image-chat-topbar button[data-chat-id]") {
            if let Some(id) = b.get_attribute("data-chat-id") {
                self.ui.return_focus = Some(b.clone());
                self.ui.open_panel(&ChatId::new(id), now);
            }
            return true;
        }
        false
    }

    fn on_bar_click(&mut self, e: Event) {
        let Some(target) = e.target().and_then(|t| t.dyn_into::<Element>().ok()) else {
            return;
        };
        let now = browser::now();
        if self.text_click(&target, now) {
            return;
        }
        if let Some(action) = plain::closest(&target, "[data-action]") {
            self.action(&action, now);
        }
    }

    fn text_action(&mut self, action: TextAction, now: u64) {
        let _ = now;
        match action {
            TextAction::Discuss => self.discuss(),
            TextAction::Copy => {
                let Some(t) = self.text.as_mut() else { return };
                let Some((start, end)) = t.mode.selected else {
                    return;
                };
                if let Some(copied) = t.mode.text().slice(start as usize, end as usize) {
                    browser::copy_text(&self.window, &copied);
                }
                if let Some(p) = &t.prompt {
                    p.copied();
                }
            }
            TextAction::Cancel => self.dismiss_prompt(true),
            TextAction::SelectKeys => self.toggle_keys(),
        }
    }

    /// Hides the prompt (and, `clear`, the selection).
    fn dismiss_prompt(&mut self, clear: bool) {
        let Some(t) = self.text.as_mut() else { return };
        t.mode.selected = None;
        if let Some(p) = &t.prompt {
            p.hide();
        }
        if clear {
            dom::set_selection(t.mode.doc(), None);
        }
    }

    /// "Discuss this text": a draft about the selected passage, its text box focused.
    fn discuss(&mut self) {
        let picture = self.measure().map(|m| m.picture);
        let Some(t) = self.text.as_mut() else { return };
        let Some(span) = t.mode.selected.take() else {
            return;
        };
        let anchor = match describe(t.mode.text(), span) {
            Ok(anchor) => anchor,
            Err(err) => {
                // Blank, or longer than a discussion may quote: say so, keep the selection.
                t.mode.selected = Some(span);
                let message = match err {
                    image_chat_anchor::AnchorError::TooLong { .. } => {
                        strings(self.ui.locale).too_long
                    }
                    _ => strings(self.ui.locale).blank,
                };
                self.ui.announce(message);
                if let Some(p) = &t.prompt {
                    p.error(message);
                }
                return;
            }
        };
        let at = picture
            .and_then(|p| t.mode.spot(span, p))
            .unwrap_or(Fraction { x: 0.0, y: 0.0 });
        if let Some(p) = &t.prompt {
            p.hide();
        }
        t.mode.draft = Some((span, anchor));
        if t.keys {
            t.keys = false;
            if let Some(bar) = &t.topbar {
                bar.selecting(false);
            }
        }
        // The passage stays shown by its highlight while the selection moves to the text box.
        dom::set_selection(t.mode.doc(), None);
        self.ui.return_focus = None;
        self.ui.open_draft(at, None);
    }

    // ---------------------------------------------------------------------------------------
    // Highlights and keys
    // ---------------------------------------------------------------------------------------

    /// A click on the container: on a highlighted passage (and not the end of a selection),
    /// opens its thread.
    fn on_text_click(&mut self, e: Event) {
        let Some(t) = self.text.as_mut() else { return };
        let on_bar = e
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Node>().ok())
            .is_some_and(|n| dom::is_own(&n));
        if on_bar || dom::selection(t.mode.doc()).is_some() {
            return;
        }
        let (x, y) = Widget::client_xy(&e);
        match t.mode.hit(x, y) {
            Some(id) => {
                self.ui.return_focus = None;
                if self.ui.panel.as_ref().is_none_or(|p| p.chat_id != id) {
                    self.ui.open_panel(&id, browser::now());
                }
            }
            // A click elsewhere in the text closes what is open, as on an image; typed text
            // is never thrown away.
            None => {
                if let Some(d) = &self.ui.draft
                    && !d.textarea.value().trim().is_empty()
                {
                    plain::focus(&d.textarea);
                    return;
                }
                self.ui.close_draft();
                self.ui.close_panel();
            }
        }
    }

    /// Keyboard selection: the top bar's button gives the arrow keys to the selection.
    fn toggle_keys(&mut self) {
        let Some(t) = self.text.as_mut() else { return };
        t.keys = !t.keys;
        if let Some(bar) = &t.topbar {
            bar.selecting(t.keys);
        }
        if t.keys {
            // A caret at the start of the text; the arrows move it, Shift extends it.
            if let Some(r) = t.mode.range((0, 1)) {
                r.collapse_with_to_start(true);
                dom::set_selection(t.mode.doc(), Some(&r));
            }
            self.ui.announce(strings(self.ui.locale).select_help);
        } else {
            self.dismiss_prompt(true);
        }
    }

    /// Keys on the page: in keyboard selection, the arrows move and extend the selection;
    /// with the prompt shown, Enter discusses the selection, Tab reaches the prompt, Escape
    /// dismisses it.
    fn on_text_key(&mut self, e: Event) {
        let Some(k) = e.dyn_ref::<KeyboardEvent>() else {
            return;
        };
        let key = k.key();
        let target = e.target().and_then(|t| t.dyn_into::<Element>().ok());
        let in_widget = target.as_ref().is_some_and(|el| {
            let node: &web_sys::Node = el.as_ref();
            self.ui.root.contains(Some(node))
        });
        let editable = target.as_ref().is_some_and(|el| {
            matches!(el.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT")
                || el.get_attribute("contenteditable").is_some()
        });
        let Some(t) = self.text.as_mut() else { return };
        let in_prompt = t
            .prompt
            .as_ref()
            .zip(target.as_ref())
            .is_some_and(|(p, el)| {
                let node: &web_sys::Node = el.as_ref();
                p.el.contains(Some(node))
            });
        if in_prompt && key == "Escape" {
            e.prevent_default();
            self.dismiss_prompt(true);
            return;
        }
        if in_widget || editable {
            return;
        }
        let on_select_button = t
            .topbar
            .as_ref()
            .zip(target.as_ref())
            .is_some_and(|(bar, el)| *el == bar.select);
        if t.keys && on_select_button {
            let forward = match key.as_str() {
                "ArrowRight" | "ArrowDown" => Some(true),
                "ArrowLeft" | "ArrowUp" => Some(false),
                _ => None,
            };
            if let Some(forward) = forward {
                let step = if matches!(key.as_str(), "ArrowUp" | "ArrowDown") {
                    dom::Step::Line
                } else if k.ctrl_key() || k.alt_key() {
                    dom::Step::Word
                } else {
                    dom::Step::Character
                };
                let alter = if k.shift_key() {
                    dom::Alter::Extend
                } else {
                    dom::Alter::Move
                };
                dom::modify(t.mode.doc(), alter, forward, step);
                e.prevent_default();
                return;
            }
            if key == "Escape" {
                e.prevent_default();
                self.toggle_keys();
                return;
            }
        }
        let shown = t.prompt.as_ref().is_some_and(Prompt::shown) && t.mode.selected.is_some();
        let keys = t.keys;
        if !shown {
            return;
        }
        match key.as_str() {
            "Enter" if !k.shift_key() && !k.ctrl_key() && !k.alt_key() && !k.meta_key() => {
                e.prevent_default();
                self.discuss();
            }
            "Escape" => {
                e.prevent_default();
                self.dismiss_prompt(!keys);
            }
            "Tab" if !k.shift_key() && !on_select_button => {
                e.prevent_default();
                if let Some(p) = &t.prompt {
                    p.focus();
                }
            }
            _ => {}
        }
    }
}

/// Whether a mutation record is the widget's own doing in the container: inside the top bar,
/// or adding or removing only the top bar or the fallback's marks.
fn own_change(record: &JsValue) -> bool {
    let get = |name: &str| js_sys::Reflect::get(record, &JsValue::from_str(name)).ok();
    let Some(target) = get("target").and_then(|t| t.dyn_into::<web_sys::Node>().ok()) else {
        return false;
    };
    if dom::is_own(&target) {
        return true;
    }
    let only_own = |name: &str| {
        get(name)
            .and_then(|list| list.dyn_into::<web_sys::NodeList>().ok())
            .is_some_and(|list| {
                (0..list.length())
                    .filter_map(|i| list.item(i))
                    .all(|n| dom::is_own(&n))
            })
    };
    get("type").and_then(|t| t.as_string()).as_deref() == Some("childList")
        && only_own("addedNodes")
        && only_own("removedNodes")
}
