//! One mounted widget: the glue between the browser and the sync engine. It only translates:
//! browser events (clicks, keys, socket events, timers, `online` / `offline`, resizes) become
//! engine inputs or UI changes, and after each one [`Widget::drive`] drains the engine's
//! outputs (socket actions, frames to send, view updates) into the socket and the DOM, then
//! re-arms the one engine timer.
//!
//! Ownership: a [`Shell`] owns the [`Widget`] in a `RefCell`; every browser callback holds only
//! a `Weak<Shell>` and is owned by the widget (listeners, socket handlers, timers, the resize
//! observer), so dropping the widget removes every callback. Callbacks borrow the widget with
//! `try_borrow_mut` and do nothing if it is busy or gone; page-visible `CustomEvent`s are
//! dispatched only after the borrow is released, so a page handler may call `destroy()`.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use image_chat_protocol::{Anchor, Auth, ChatId, CommentId};
use image_chat_sync::{
    Action, Command, Config, ConnectionId, Engine, LocalError, TransportEvent, ViewUpdate,
};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Element, Event, EventTarget, HtmlImageElement, KeyboardEvent, Window};

use crate::action::Action as UiAction;
use crate::browser;
use crate::dom::{
    Frame, Listener, MutationWatch, ResizeWatch, Socket, SocketEvent, Timeout, plain,
};
use crate::error::WidgetError;
use crate::geometry::{
    Fraction, drag_to_fraction, overlay_box, pointer_to_fraction, region_between,
};
use crate::i18n::Locale;
use crate::invalid;
use crate::options::{NAME_STORAGE_KEY, Options, RawOptions, token_storage_key};
use crate::overlay::{self, Clip, Measured};
use crate::status;
use crate::style;
use crate::ui::Ui;

/// Keyboard crosshair steps, as fractions of the image (arrow keys; with Shift).
const STEP: f64 = 0.02;
const BIG_STEP: f64 = 0.1;
/// A press that moves this far (CSS px) is a drag (a marker moved, a region drawn), not a
/// click.
const DRAG_PX: f64 = 5.0;
/// The smallest region drawn out, as a fraction of each side: anything smaller is a slip of
/// the hand, not an area.
const MIN_REGION: f64 = 0.01;
/// How often relative times refresh while a thread is open.
const TIME_REFRESH_MS: u64 = 30_000;
/// Upper bound on drain rounds per input (each round is caused by new engine output; the
/// engine settles in one or two, this only guards against a livelock bug).
const MAX_DRIVE_ROUNDS: usize = 16;
/// After anything that may move the image (a DOM change, a scroll, a transition starting), the
/// overlay is re-measured every frame until it has not moved for this many frames: a CSS
/// transition or animation set off by the change is followed to its end, and a quiet page
/// costs nothing.
const SETTLE_FRAMES: u8 = 12;
/// How long the image may stay out of the document before the widget destroys itself (closing
/// its socket). A framework that moves it, or a keep-alive that brings it back, is quicker.
pub const DETACHED_DESTROY_MS: f64 = 3_000.0;

/// Owner of one widget, shared by the JS handle (through the registry) and, weakly, by every
/// callback.
pub struct Shell {
    /// The site's image, or text container in text mode (to hand this widget over to a later
    /// `mount` on it).
    pub target: Element,
    widget: RefCell<Widget>,
    /// `destroy()` was asked for while the widget was busy: done when the callback returns.
    doomed: Cell<bool>,
}

impl Shell {
    /// Tears the widget down now, or as soon as the running callback returns.
    pub fn destroy(&self) {
        match self.widget.try_borrow_mut() {
            Ok(mut w) => w.teardown(),
            Err(_) => self.doomed.set(true),
        }
    }

    /// Whether the widget was torn down.
    pub fn is_destroyed(&self) -> bool {
        self.widget
            .try_borrow()
            .map(|w| w.destroyed)
            .unwrap_or(false)
    }

    /// The overlay's `data-state`.
    pub fn state(&self) -> String {
        self.widget
            .try_borrow()
            .map(|w| {
                if w.destroyed {
                    "destroyed".to_owned()
                } else {
                    status::data_state(w.engine.status()).to_owned()
                }
            })
            .unwrap_or_default()
    }

    /// Opens the thread of discussion `id` if this image shows it; returns whether it does.
    pub fn open(self: &Rc<Self>, id: &ChatId) -> bool {
        let opened = Cell::new(false);
        with_widget(&Rc::downgrade(self), |w| {
            opened.set(w.open_linked(id, browser::now()));
        });
        opened.get()
    }

    /// Applies `instance.update(change)` (see `RawOptions::updated`); nothing changes on an
    /// error.
    pub fn update(self: &Rc<Self>, change: RawOptions) -> Result<(), WidgetError> {
        let mut result = Ok(());
        with_widget(&Rc::downgrade(self), |w| result = w.update(change));
        result
    }

    /// Switches to the wanted language if its table just arrived (see `Widget::relocalize`).
    pub fn relocalize(self: &Rc<Self>) {
        with_widget(&Rc::downgrade(self), |w| {
            if let Err(e) = w.relocalize() {
                browser::log_error("locale", &e.into_js());
            }
        });
    }

    /// Replaces the auth for later connections (see `Engine::set_auth`).
    pub fn set_auth(self: &Rc<Self>, auth: Option<Auth>) {
        with_widget(&Rc::downgrade(self), |w| {
            if auth.is_none() {
                w.token_key = Some(token_storage_key(&w.opts.server_url, &w.opts.tenant));
            } else {
                w.token_key = None;
            }
            let auth = auth.or_else(|| {
                Some(Auth::Anonymous {
                    name: w.opts.name.clone(),
                    token: w.stored_token.clone(),
                })
            });
            w.engine.set_auth(browser::now(), auth);
        });
    }
}

/// Runs `f` on the widget behind `weak` (if it still exists and is not busy), drives the engine,
/// then dispatches the page events it queued.
fn with_widget(weak: &Weak<Shell>, f: impl FnOnce(&mut Widget)) {
    let mut f = Some(f);
    with_widget_dyn(weak, &mut |w| {
        if let Some(f) = f.take() {
            f(w);
        }
    });
}

/// [`with_widget`]'s body, compiled once: generic over the callback, it was copied into every
/// caller (timers, socket, listeners, resize).
fn with_widget_dyn(weak: &Weak<Shell>, f: &mut dyn FnMut(&mut Widget)) {
    let Some(shell) = weak.upgrade() else { return };
    let (outbox, target, self_destroy) = {
        let Ok(mut w) = shell.widget.try_borrow_mut() else {
            return;
        };
        if w.destroyed {
            return;
        }
        // Whatever this callback re-renders, focus that was in the widget stays there.
        let had_focus = w.ui.has_focus();
        let was_open = w.ui.panel.as_ref().map(|p| p.chat_id.clone());
        f(&mut w);
        if !w.destroyed {
            w.drive();
            w.watch_panel();
            if had_focus {
                w.ui.keep_focus();
            }
            w.report(was_open);
        }
        let target: EventTarget = w.ui.target.clone().into();
        (std::mem::take(&mut w.outbox), target, w.self_destroy)
    };
    for (name, detail) in outbox {
        dispatch(&target, name, &detail);
    }
    if self_destroy || shell.doomed.get() {
        shell.destroy();
    }
}

/// A page event's `detail`: its fields, in order.
type Detail = Vec<(&'static str, JsValue)>;

fn dispatch(target: &EventTarget, name: &str, fields: &Detail) {
    let detail = js_sys::Object::new();
    for (key, value) in fields {
        let _ = js_sys::Reflect::set(&detail, &JsValue::from_str(key), value);
    }
    let init = web_sys::CustomEventInit::new();
    init.set_bubbles(true);
    init.set_detail(&detail);
    if let Ok(event) = web_sys::CustomEvent::new_with_event_init_dict(name, &init) {
        plain::dispatch(target, &event);
    }
}

/// Whether `node` is in one of the widget's own elements outside its overlay (text mode's top
/// bar).
#[cfg(feature = "text")]
fn own(node: &web_sys::Node) -> bool {
    crate::text::dom::is_own(node)
}

#[cfg(not(feature = "text"))]
fn own(_: &web_sys::Node) -> bool {
    false
}

/// A callback for `addEventListener` that runs `f` on the widget.
fn handler(weak: &Weak<Shell>, f: fn(&mut Widget, Event)) -> impl FnMut(Event) + 'static {
    let weak = weak.clone();
    move |e: Event| with_widget(&weak, |w| f(w, e))
}

/// One mounted widget.
pub struct Widget {
    window: Window,
    /// Resolved options.
    opts: Options,
    /// The options as layered at mount (and changed by `update`), before defaults.
    raw: RawOptions,
    /// The sync engine: all protocol and connection logic.
    engine: Engine,
    /// The DOM.
    ui: Ui,
    /// The current socket and the engine's id for it.
    socket: Option<(ConnectionId, Socket)>,
    /// The engine's next deadline and the timer set for it.
    engine_timer: Option<(u64, Timeout)>,
    /// UI refresh (reconnect countdown, relative times) and when it fires.
    tick_timer: Option<(u64, Timeout)>,
    /// DOM and window listeners (click, keydown, img load, online, offline).
    listeners: Vec<Listener>,
    /// Re-measures when the image (or the open panel) changes size.
    resize: Option<ResizeWatch>,
    /// Re-measures after DOM changes anywhere in the document (they may move the image).
    mutations: Option<MutationWatch>,
    /// Watches the open panel's size, to place it on screen (and which panel it watches).
    panel_watch: Option<(Element, ResizeWatch)>,
    /// The next re-measure, and how many more quiet frames to measure.
    frame: Option<Frame>,
    settle: u8,
    /// The image's clipping ancestors (`None`: to be found again after a DOM change).
    clips: Option<Vec<Clip>>,
    /// The last measurement shown (`None` while hidden).
    shown: Option<Measured>,
    /// The `--image-chat-*` values copied from the image's ancestors.
    inherited: Vec<String>,
    /// Destroys the widget if the image stays out of the document.
    detached: Option<Timeout>,
    /// For new callbacks.
    weak: Weak<Shell>,
    /// `localStorage` key of the anonymous token (anonymous sessions only).
    token_key: Option<String>,
    /// The token as stored, to notice when the server issues a new one.
    stored_token: Option<String>,
    /// Whether we have been live since mount (to announce "connection lost/restored" only
    /// after the first connection).
    was_live: bool,
    /// Page events to dispatch after the borrow is released: (event name, detail).
    outbox: Vec<(&'static str, Detail)>,
    /// The discussion count and resolved count last reported with `image-chat:count`.
    reported_count: Option<(usize, usize)>,
    /// The pointer press in progress on a marker (a drag moves it) or on the picture (a drag
    /// draws out a region).
    gesture: Option<Gesture>,
    /// The click that ends a drag does nothing else.
    swallow_click: bool,
    /// A marker being moved with the arrow keys: where it would go (Enter puts it there).
    key_move: Option<(ChatId, Anchor)>,
    /// An area being marked out with the keyboard: its first corner (the crosshair is the
    /// other; Enter opens the draft about it).
    key_region: Option<Fraction>,
    /// A discussion named by the page's URL (`#image-chat=<id>`), opened once it is shown.
    linked: Option<ChatId>,
    /// The last state announced with `image-chat:state` (it fires on a change only).
    states: status::StateChanges,
    /// The image left the document: destroy after this callback.
    self_destroy: bool,
    /// Torn down; every callback is a no-op.
    destroyed: bool,
    /// Text mode: the container's text, highlights, prompt and top bar (`None` on an image).
    #[cfg(feature = "text")]
    text: Option<Box<text::Text>>,
}

/// Text mode's browser events on a widget (it needs the widget's internals).
#[cfg(feature = "text")]
#[path = "text/bridge.rs"]
pub(crate) mod text;

/// Mounts a widget on `target` (an `<img>` or a selector). `defaults` come from the loader's
/// script tag, `js` from the options object; the image's own `data-*` attributes sit between.
pub fn mount(
    target: &JsValue,
    defaults: RawOptions,
    js: RawOptions,
) -> Result<Rc<Shell>, WidgetError> {
    let window = crate::browser::window().ok_or(WidgetError::NoWindow)?;
    let doc = window.document().ok_or(WidgetError::NoWindow)?;
    let element = browser::resolve_target(&doc, target)?;
    let img: HtmlImageElement = element.dyn_into().map_err(|_| WidgetError::NotAnImage)?;
    if crate::mounted_on(&img).is_some() {
        return Err(WidgetError::AlreadyMounted);
    }
    if !img.is_connected() {
        return Err(WidgetError::Detached);
    }
    let env = browser::page_env(&window, img.src());
    let (raw, opts) = resolve(&doc, &img, defaults, js, &env)?;
    let (tenant, image) = (opts.tenant.clone(), opts.image_id.clone());
    assemble(
        window,
        doc,
        img.into(),
        raw,
        opts,
        |auth| Config::new(tenant, image, Some(auth)),
        #[cfg(feature = "text")]
        None,
    )
}

/// The options of a widget on `target`: `defaults` (the loader's script tag), the target's own
/// `data-*` attributes, then `js` (the options object). An invalid one is shown after the
/// target, in the page's language, and returned.
fn resolve(
    doc: &web_sys::Document,
    target: &Element,
    defaults: RawOptions,
    js: RawOptions,
    env: &crate::options::PageEnv,
) -> Result<(RawOptions, Options), WidgetError> {
    let mut attrs = RawOptions::from_attributes(|name| target.get_attribute(name));
    attrs.auth = target
        .get_attribute("data-auth")
        .filter(|a| !a.trim().is_empty())
        .map(|a| browser::read_auth(&JsValue::from_str(&a)));
    let (raw, auth_dropped) = RawOptions::layered(defaults, attrs, js, env);
    if auth_dropped {
        browser::log_error(
            "mount",
            &JsValue::from_str(
                "this image's data-server names another server than the page's: \
                 the page's auth is not sent there (the widget connects anonymously)",
            ),
        );
    }
    invalid::clear(target);
    // Visible on the page, not only thrown or logged.
    // The page's language, unless already loaded, is fetched now and shown when it arrives
    // (English until then: `crate::locales`).
    crate::locales::request(raw.wanted_locale(env));
    let opts = raw
        .resolve(env)
        .inspect_err(|err| invalid::show(doc, target, raw.locale(env), err))?;
    Ok((raw, opts))
}

/// Builds and starts a widget on `target` (an image, or a text container with `text`), whose
/// engine gets `config(auth)`.
fn assemble(
    window: Window,
    doc: web_sys::Document,
    target: Element,
    raw: RawOptions,
    mut opts: Options,
    config: impl FnOnce(Auth) -> Config,
    #[cfg(feature = "text")] text: Option<Box<text::Text>>,
) -> Result<Rc<Shell>, WidgetError> {
    // The name the person chose on this site before (checked again: storage is the page's).
    let remembered = browser::load(&window, NAME_STORAGE_KEY)
        .filter(|n| image_chat_protocol::limits::validate_name(n).is_ok())
        .map(|n| n.trim().to_owned());
    if opts.auth.is_none()
        && let Some(name) = &remembered
    {
        opts.name = name.clone();
    }

    let (auth, token_key, stored_token) = match &opts.auth {
        Some(auth) => (auth.clone(), None, None),
        None => {
            let key = token_storage_key(&opts.server_url, &opts.tenant);
            let stored = browser::load(&window, &key);
            let auth = Auth::Anonymous {
                name: opts.name.clone(),
                token: stored.clone(),
            };
            (auth, Some(key), stored)
        }
    };
    let mut config = config(auth);
    config.online = browser::online(&window);
    let now = browser::now();
    let mut ids = browser::CryptoIds::new(&window)?;
    let engine = Engine::new(now, config, ids.seed(), Box::new(ids));

    let mut ui = Ui::build(&doc, &target, &opts)?;
    // Anonymous people choose their name in the first-post form (prefilled unless it is the
    // default); a signed user's name is the site's.
    if opts.auth.is_none() {
        let default = opts.name == opts.locale.strings().guest;
        ui.name_field = Some(if default {
            String::new()
        } else {
            opts.name.clone()
        });
    }
    style::acquire(&doc);
    let shell = Rc::new_cyclic(|weak| Shell {
        target: target.clone(),
        widget: RefCell::new(Widget {
            window,
            opts,
            raw,
            engine,
            ui,
            socket: None,
            engine_timer: None,
            tick_timer: None,
            listeners: Vec::new(),
            resize: None,
            mutations: None,
            panel_watch: None,
            frame: None,
            settle: 0,
            clips: None,
            shown: None,
            inherited: Vec::new(),
            detached: None,
            weak: weak.clone(),
            token_key,
            stored_token,
            was_live: false,
            outbox: Vec::new(),
            reported_count: None,
            gesture: None,
            swallow_click: false,
            key_move: None,
            key_region: None,
            linked: None,
            states: status::StateChanges::default(),
            self_destroy: false,
            destroyed: false,
            #[cfg(feature = "text")]
            text,
        }),
        doomed: Cell::new(false),
    });
    {
        let mut w = shell
            .widget
            .try_borrow_mut()
            .map_err(|_| WidgetError::Js("widget busy during mount".into()))?;
        w.linked = w.linked_chat();
        let attached = w.attach();
        #[cfg(feature = "text")]
        let attached = attached.and_then(|()| w.text_attach());
        if let Err(e) = attached {
            w.teardown();
            return Err(e.into());
        }
        let status = w.engine.status();
        w.ui.show_status(status, now);
        w.on_moved_now();
        w.layout();
    }
    // The first drive opens the socket.
    with_widget(&Rc::downgrade(&shell), |_| {});
    Ok(shell)
}

impl Widget {
    /// Registers the listeners and the resize observer.
    fn attach(&mut self) -> Result<(), JsValue> {
        let root: EventTarget = self.ui.root.clone().into();
        let img: EventTarget = self.ui.target.clone().into();
        let window: EventTarget = self.window.clone().into();
        let doc: EventTarget = self
            .window
            .document()
            .ok_or_else(|| JsValue::from_str("no document"))?
            .into();
        let weak = self.weak.clone();
        self.listeners = vec![
            Listener::new(&root, "click", handler(&weak, Widget::on_click)),
            Listener::new(&root, "keydown", handler(&weak, Widget::on_keydown)),
            Listener::new(
                &root,
                "pointerdown",
                handler(&weak, Widget::on_pointer_down),
            ),
            Listener::new(
                &root,
                "pointermove",
                handler(&weak, Widget::on_pointer_move),
            ),
            Listener::new(&root, "pointerup", handler(&weak, Widget::on_pointer_up)),
            Listener::new(
                &root,
                "pointercancel",
                handler(&weak, |w, _| w.cancel_gesture()),
            ),
            Listener::new(
                &window,
                "hashchange",
                handler(&weak, |w, _| {
                    if let Some(id) = w.linked_chat() {
                        w.open_linked(&id, browser::now());
                    }
                }),
            ),
            Listener::new(&img, "load", handler(&weak, |w, _| w.request_layout())),
            Listener::new(&window, "resize", handler(&weak, Widget::on_moved)),
            // Scrolling of any element (scroll events do not bubble: captured at the document).
            Listener::capture(&doc, "scroll", handler(&weak, |w, _| w.request_layout())),
            // A transition or animation may move the image without any DOM change.
            Listener::capture(&doc, "transitionrun", handler(&weak, Widget::on_moved)),
            Listener::capture(&doc, "animationstart", handler(&weak, Widget::on_moved)),
            Listener::new(
                &window,
                "online",
                handler(&weak, |w, _| {
                    w.engine.handle_network(browser::now(), true);
                }),
            ),
            Listener::new(
                &window,
                "offline",
                handler(&weak, |w, _| {
                    w.engine.handle_network(browser::now(), false);
                }),
            ),
        ];
        if let Some(query) = self.ui.pointer_query() {
            let target: EventTarget = query.clone().into();
            self.listeners.push(Listener::new(
                &target,
                "change",
                handler(&weak, |w, _| {
                    if let Err(e) = w.ui.pointer_changed() {
                        browser::log_error("render", &e);
                    }
                }),
            ));
        }
        if let Some(doc) = self.window.document() {
            let target: EventTarget = doc.into();
            self.listeners.push(Listener::new(
                &target,
                "visibilitychange",
                handler(&weak, |w, _| {
                    if w.window.document().is_some_and(|d| !d.hidden()) {
                        w.engine.handle_visible(browser::now());
                    }
                }),
            ));
        }
        let weak = self.weak.clone();
        let img_el: &Element = &self.ui.target;
        // Measured in the observer's callback (after layout, before paint): no frame shows the
        // overlay at the old size.
        self.resize = Some(ResizeWatch::new(&[img_el], move || {
            with_widget(&weak, Widget::on_resized);
        })?);
        let weak = self.weak.clone();
        let host = self.ui.host.clone();
        let root: web_sys::Node = doc.unchecked_into();
        self.mutations = Some(MutationWatch::new(&root, move |records| {
            // Our own changes (markers, panels, the status line, text mode's top bar) do not
            // move the image.
            let theirs = records.iter().any(|r| {
                js_sys::Reflect::get(&r, &"target".into())
                    .ok()
                    .and_then(|t| t.dyn_into::<web_sys::Node>().ok())
                    .is_some_and(|t| !host.contains(Some(&t)) && !own(&t))
            });
            if theirs {
                with_widget(&weak, |w| {
                    w.clips = None;
                    w.on_moved_now();
                });
            }
        }));
        Ok(())
    }

    /// Stops everything and restores the page: the socket is closed (1000), timers cleared,
    /// listeners removed, the overlay removed and the image put back in place.
    pub fn teardown(&mut self) {
        if self.destroyed {
            return;
        }
        self.destroyed = true;
        self.engine.destroy(browser::now());
        while self.engine.poll_action().is_some() {}
        while self.engine.poll_transmit().is_some() {}
        while self.engine.poll_view().is_some() {}
        if let Some((_, socket)) = self.socket.take() {
            socket.close(1000, "bye");
        }
        self.engine_timer = None;
        self.tick_timer = None;
        self.listeners.clear();
        self.resize = None;
        self.mutations = None;
        self.panel_watch = None;
        self.frame = None;
        self.detached = None;
        #[cfg(feature = "text")]
        self.text_teardown();
        self.ui.teardown();
        if let Some(doc) = self.window.document() {
            style::release(&doc);
        }
    }

    // ---------------------------------------------------------------------------------------
    // Engine plumbing
    // ---------------------------------------------------------------------------------------

    /// Drains the engine into the socket and the DOM, then re-arms the timers.
    fn drive(&mut self) {
        let now = browser::now();
        for _ in 0..MAX_DRIVE_ROUNDS {
            let mut more = false;
            while let Some(action) = self.engine.poll_action() {
                more = true;
                self.act(now, action);
            }
            while let Some(frame) = self.engine.poll_transmit() {
                if let Some((_, socket)) = &self.socket {
                    socket.send(&frame);
                }
            }
            // A snapshot adds a thousand discussions at once: size the UI's tables once.
            self.ui.reserve(self.engine.view().chats.len());
            while let Some(update) = self.engine.poll_view() {
                if let Err(e) = self.apply(update, now) {
                    browser::log_error("render", &e);
                }
            }
            if let Err(e) = self.ui.recluster() {
                browser::log_error("render", &e);
            }
            more |= self.persist_token(now);
            if !more {
                break;
            }
        }
        #[cfg(feature = "text")]
        self.text_sync();
        self.arm_timers(now);
    }

    fn act(&mut self, now: u64, action: Action) {
        match action {
            Action::Connect { conn } => {
                if let Some((_, old)) = self.socket.take() {
                    old.close(1000, "replaced");
                }
                let weak = self.weak.clone();
                let on_event = Rc::new(move |ev: SocketEvent| {
                    with_widget(&weak, |w| w.on_socket(conn, ev));
                });
                match Socket::open(&self.opts.server_url, on_event) {
                    Ok(socket) => self.socket = Some((conn, socket)),
                    // The browser refused the URL outright (e.g. a blocked port): the same as
                    // a connection that dropped at once, so the engine backs off and retries.
                    Err(_) => self.engine.handle_transport(
                        now,
                        conn,
                        TransportEvent::Closed { code: 1006 },
                    ),
                }
            }
            Action::Close { conn, code, reason } => {
                if self.socket.as_ref().is_some_and(|(c, _)| *c == conn)
                    && let Some((_, socket)) = self.socket.take()
                {
                    socket.close(code, reason);
                }
            }
        }
    }

    fn on_socket(&mut self, conn: ConnectionId, event: SocketEvent) {
        let event = match event {
            SocketEvent::Open => TransportEvent::Opened,
            SocketEvent::Text(text) => TransportEvent::Message(text),
            SocketEvent::Error => TransportEvent::Error,
            SocketEvent::Closed(code) => {
                if self.socket.as_ref().is_some_and(|(c, _)| *c == conn) {
                    self.socket = None;
                }
                TransportEvent::Closed { code }
            }
        };
        self.engine.handle_transport(browser::now(), conn, event);
    }

    /// Stores a newly issued anonymous token (and uses it for later `hello`s). Returns whether
    /// the engine may have new output.
    fn persist_token(&mut self, now: u64) -> bool {
        let Some(key) = &self.token_key else {
            return false;
        };
        let Some(token) = self.engine.anonymous_token() else {
            return false;
        };
        if self.stored_token.as_deref() == Some(token) {
            return false;
        }
        let token = token.to_owned();
        browser::store(&self.window, key, &token);
        self.stored_token = Some(token.clone());
        self.engine.set_auth(
            now,
            Some(Auth::Anonymous {
                name: self.opts.name.clone(),
                token: Some(token),
            }),
        );
        true
    }

    fn apply(&mut self, update: ViewUpdate, now: u64) -> Result<(), JsValue> {
        let locale = self.ui.locale;
        match update {
            ViewUpdate::Chat { index, chat } => {
                // Taken only for the linked discussion (not an id copy per discussion).
                let linked = self.linked.take_if(|id| *id == chat.id);
                self.ui.upsert_chat(index, chat, now)?;
                if let Some(id) = linked {
                    self.open_linked(&id, now);
                }
            }
            ViewUpdate::ChatRemoved { chat_id } => {
                if self.ui.remove_chat(&chat_id) {
                    self.ui.focus_after_close(None);
                }
            }
            ViewUpdate::Connection(connection) => {
                let live = connection.is_live();
                if live && self.was_live && !self.ui.connection.is_live() {
                    self.ui.announce(locale.strings().announce_live);
                } else if !live && self.ui.connection.is_live() {
                    self.ui.announce(locale.strings().announce_lost);
                }
                self.was_live |= live;
                self.ui.show_status(connection, now);
                self.ui.show_online(self.engine.view().online);
                // Who we are is known from the welcome on: a moderator gets the lock button.
                if live {
                    self.show_lock();
                }
                if let Some(state) = self.states.changed(connection) {
                    self.outbox
                        .push(("image-chat:state", vec![("state", state.into())]));
                    if let Some(image_chat_sync::StopReason::Refused(code)) = connection.stopped() {
                        self.explain_refusal(code);
                    }
                }
            }
            ViewUpdate::Online(n) => self.ui.show_online(n),
            // A locked image is read-only for everyone but moderators.
            ViewUpdate::ReadOnly(_) | ViewUpdate::Locked(_) => {
                self.ui
                    .set_read_only(self.opts.read_only || !self.engine.may_write());
                self.show_lock();
            }
            ViewUpdate::Announce(a) => self.ui.announce(&status::announcement(locale, &a)),
            ViewUpdate::OpFailed { op, kind, reason } => {
                self.ui.announce(status::fail_text(locale, reason));
                self.outbox.push((
                    "image-chat:op-failed",
                    vec![
                        ("op", op.as_str().into()),
                        ("kind", status::op_kind_name(kind).into()),
                        ("reason", reason.key().into()),
                    ],
                ));
            }
        }
        Ok(())
    }

    /// The lock badge, and the lock button for a moderator, as the engine now knows them.
    fn show_lock(&mut self) {
        let moderator = self.engine.you().is_some_and(|you| you.is_moderator);
        self.ui.show_lock(self.engine.view().locked, moderator);
    }

    /// Tells the site's developer, in the console, why the server refused this page for good
    /// (the page's origin, the tenant, the sign-in) and what to change.
    fn explain_refusal(&self, code: image_chat_protocol::CloseCode) {
        let origin = self.window.location().origin().unwrap_or_default();
        let message = status::refusal_explanation(code, &origin, self.opts.tenant.as_str());
        web_sys::console::error_1(&JsValue::from_str(&message));
    }

    fn arm_timers(&mut self, now: u64) {
        match self.engine.poll_timeout() {
            Some(deadline) => {
                if self.engine_timer.as_ref().map(|(d, _)| *d) != Some(deadline) {
                    let weak = self.weak.clone();
                    self.engine_timer =
                        Timeout::new(deadline.saturating_sub(now) as f64, move || {
                            with_widget(&weak, |w| {
                                w.engine_timer = None;
                                w.engine.handle_timeout(browser::now());
                            });
                        })
                        .map(|t| (deadline, t));
                }
            }
            None => self.engine_timer = None,
        }

        let countdown = status::status_refresh_in(self.ui.connection, now);
        let times = self.ui.panel.is_some().then_some(TIME_REFRESH_MS);
        let wanted = match (countdown, times) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match wanted {
            None => self.tick_timer = None,
            Some(delay) => {
                let at = now.saturating_add(delay);
                if self.tick_timer.as_ref().is_none_or(|(t, _)| *t > at) {
                    let weak = self.weak.clone();
                    self.tick_timer = Timeout::new(delay as f64, move || {
                        with_widget(&weak, |w| {
                            w.tick_timer = None;
                            let now = browser::now();
                            w.ui.show_status(w.engine.status(), now);
                            w.ui.refresh_times(now);
                        });
                    })
                    .map(|t| (at, t));
                }
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // Layout
    // ---------------------------------------------------------------------------------------

    /// Where the picture is now (viewport coordinates), or `None` when it is not shown.
    fn measure(&mut self) -> Option<Measured> {
        if self.clips.is_none() {
            self.clips = Some(overlay::clip_ancestors(&self.window, &self.ui.target));
        }
        let clips = self.clips.as_deref().unwrap_or_default();
        #[cfg(feature = "text")]
        if self.text.is_some() {
            return overlay::measure_box(&self.ui.target, clips);
        }
        // Not text mode: the target is the `<img>` `mount` checked.
        overlay::measure(&self.window, self.ui.target.unchecked_ref(), clips)
    }

    /// Measures the picture and puts the overlay (and the open panel) over it, or hides it.
    /// Returns whether anything moved.
    fn layout(&mut self) -> bool {
        let Some(doc) = self.window.document() else {
            return false;
        };
        if !self.ui.host.is_connected() {
            // The page replaced the body's content: put the layer back.
            overlay::attach_layer(&doc, &self.ui.host);
        }
        let seen = self.measure().filter(|m| !m.visible.is_empty());
        let moved = seen != self.shown;
        match seen {
            None => {
                if moved {
                    self.ui.hide();
                }
                if !self.ui.target.is_connected() {
                    if self.detached.is_none() {
                        let weak = self.weak.clone();
                        self.detached = Timeout::new(DETACHED_DESTROY_MS, move || {
                            with_widget(&weak, |w| {
                                w.detached = None;
                                // Gone for good (not moved, not brought back): no socket left.
                                w.self_destroy = !w.ui.target.is_connected();
                            });
                        });
                    }
                } else {
                    self.detached = None;
                }
            }
            Some(m) => {
                self.detached = None;
                if moved {
                    let host = self.ui.host.get_bounding_client_rect();
                    let slack = self.opts.marker_size / 2.0 + 4.0;
                    let b = overlay_box(m.picture, m.visible, (host.left(), host.top()), slack);
                    self.ui.layout(&b);
                    if let Err(e) = self.ui.recluster() {
                        browser::log_error("render", &e);
                    }
                }
                if moved || self.panel_watch.is_some() {
                    let viewport = doc.document_element().map_or((0.0, 0.0), |e| {
                        (f64::from(e.client_width()), f64::from(e.client_height()))
                    });
                    self.ui
                        .place_panel(m.picture, m.visible, viewport, self.opts.marker_size);
                }
            }
        }
        self.shown = seen;
        moved
    }

    /// Something may have moved the image: measure every frame until it settles.
    fn request_layout(&mut self) {
        self.settle = SETTLE_FRAMES;
        self.next_frame();
    }

    fn next_frame(&mut self) {
        if self.frame.is_none() {
            let weak = self.weak.clone();
            self.frame = Frame::new(move || with_widget(&weak, Widget::on_frame));
        }
    }

    fn on_frame(&mut self) {
        self.frame = None;
        if self.layout() {
            self.settle = SETTLE_FRAMES;
        } else {
            self.settle = self.settle.saturating_sub(1);
        }
        if self.settle > 0 {
            self.next_frame();
        }
    }

    /// A resize, a transition or a DOM change: the ancestors that clip it may differ too, and
    /// the site's custom properties may have changed.
    fn on_moved(&mut self, e: Event) {
        // Our own transitions (a marker's hover) move nothing of the page's.
        let ours = e
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Node>().ok())
            .is_some_and(|t| self.ui.host.contains(Some(&t)));
        if ours {
            return;
        }
        self.clips = None;
        self.on_moved_now();
    }

    fn on_moved_now(&mut self) {
        let values = overlay::inherited_properties(&self.window, &self.ui.target, &self.ui.host);
        if values != self.inherited {
            overlay::apply_properties(&self.ui.root, &values);
            self.inherited = values;
        }
        self.request_layout();
    }

    /// The image (or the open panel) changed size: follow at once, then until it settles.
    fn on_resized(&mut self) {
        self.layout();
        self.request_layout();
    }

    /// Watches the open panel's size (it is placed on screen as soon as it is laid out, and
    /// again whenever its content grows or shrinks).
    fn watch_panel(&mut self) {
        let open = self.ui.open_panel_el().map(|(el, _)| el);
        if open.as_ref() == self.panel_watch.as_ref().map(|(el, _)| el) {
            return;
        }
        self.panel_watch = open.and_then(|el| {
            let weak = self.weak.clone();
            ResizeWatch::new(&[&el], move || with_widget(&weak, Widget::on_resized))
                .ok()
                .map(|watch| (el, watch))
        });
    }

    // ---------------------------------------------------------------------------------------
    // People
    // ---------------------------------------------------------------------------------------

    fn on_click(&mut self, e: Event) {
        if std::mem::take(&mut self.swallow_click) {
            // The end of a drag (a marker moved, a region drawn), not a click.
            return;
        }
        self.cancel_key_move();
        if self.key_region.take().is_some() {
            self.ui.draw_region(None);
        }
        let Some(target) = e.target().and_then(|t| t.dyn_into::<Element>().ok()) else {
            return;
        };
        let now = browser::now();
        if let Some(action) = plain::closest(&target, "[data-action]") {
            self.action(&action, now);
            return;
        }
        // In text mode the overlay holds only the thread, the draft and the prompt.
        #[cfg(feature = "text")]
        if self.text.is_some() {
            self.text_click(&target, now);
            return;
        }
        if let Some(cluster) = plain::closest(&target, ".image-chat-cluster") {
            if let Some(leader) = cluster.get_attribute("data-cluster") {
                self.ui.toggle_cluster(&ChatId::new(leader));
            }
            return;
        }
        if let Some(marker) = plain::closest(&target, ".image-chat-marker") {
            if marker.has_attribute("data-draft") {
                if let Some(d) = &self.ui.draft {
                    plain::focus(&d.textarea);
                }
                return;
            }
            if let Some(id) = marker.get_attribute("data-chat-id") {
                let id = ChatId::new(id);
                if self.ui.panel.as_ref().is_some_and(|p| p.chat_id == id) {
                    self.ui.close_panel();
                    self.ui.focus_after_close(Some(&id));
                } else {
                    self.ui.open_panel(&id, now);
                }
            }
            return;
        }
        if plain::closest(&target, ".image-chat-thread").is_some() {
            return;
        }
        // A click (or tap) on the image itself.
        if self.ui.draft.is_none() && self.ui.panel.is_none() && self.ui.fold_cluster() {
            // First click outside an expanded cluster folds it.
            return;
        }
        if self.ui.draft.is_some() || self.ui.panel.is_some() {
            // First click outside closes what is open; typed text is never thrown away.
            if let Some(d) = &self.ui.draft
                && !d.textarea.value().trim().is_empty()
            {
                plain::focus(&d.textarea);
                return;
            }
            self.ui.close_draft();
            self.ui.close_panel();
            return;
        }
        if self.ui.read_only {
            return;
        }
        let coord = |name: &str| {
            js_sys::Reflect::get(&e, &JsValue::from_str(name))
                .ok()
                .and_then(|v| v.as_f64())
                .unwrap_or(f64::NAN)
        };
        let picture = self.measure().map(|m| m.picture).unwrap_or_default();
        if let Some(at) = pointer_to_fraction(picture, coord("clientX"), coord("clientY")) {
            self.ui.move_crosshair(at);
            self.ui.open_draft(at, None);
        }
    }

    fn on_keydown(&mut self, e: Event) {
        let Some(k) = e.dyn_ref::<KeyboardEvent>() else {
            return;
        };
        let key = k.key();
        let target = e.target().and_then(|t| t.dyn_into::<Element>().ok());
        let now = browser::now();
        if key == "Escape" && self.key_region.take().is_some() {
            self.ui.draw_region(None);
            e.prevent_default();
            e.stop_propagation();
            return;
        }
        if key == "Escape" && self.cancel_key_move() {
            e.prevent_default();
            e.stop_propagation();
            return;
        }
        if key == "Escape" {
            let handled = self.escape(now);
            if handled {
                e.prevent_default();
                e.stop_propagation();
            }
            return;
        }
        let Some(target) = target else { return };
        if self.marker_key(&target, &key, k.shift_key(), now) {
            e.prevent_default();
            return;
        }
        let on_root = target == self.ui.root;
        if on_root {
            let step = if k.shift_key() { BIG_STEP } else { STEP };
            let (dx, dy) = match key.as_str() {
                "ArrowLeft" => (-step, 0.0),
                "ArrowRight" => (step, 0.0),
                "ArrowUp" => (0.0, -step),
                "ArrowDown" => (0.0, step),
                "Enter" | " " => {
                    e.prevent_default();
                    if !self.ui.read_only {
                        self.place_from_keyboard(key == "Enter" && k.shift_key());
                    }
                    return;
                }
                _ => return,
            };
            e.prevent_default();
            let at = self.ui.crosshair_at.nudged(dx, dy);
            self.ui.move_crosshair(at);
            if let Some(start) = self.key_region {
                self.ui.draw_region(Some(region_between(start, at)));
            }
            return;
        }
        // Ctrl/Cmd+Enter in a text box submits it.
        if key == "Enter" && (k.ctrl_key() || k.meta_key()) && target.tag_name() == "TEXTAREA" {
            e.prevent_default();
            let action = if target.class_list().contains("image-chat-edit") {
                UiAction::SaveEdit
            } else if self.ui.draft.is_some() {
                UiAction::Post
            } else {
                UiAction::Reply
            };
            self.run(action, None, None, now);
        }
    }

    /// Escape: leaves an edit, else closes the draft or thread (focus back to its marker or the
    /// overlay). Returns whether anything was closed.
    fn escape(&mut self, now: u64) -> bool {
        if let Some(id) = self.ui.cancel_edit(now) {
            self.ui.focus_edit_button(&id);
            return true;
        }
        if self.ui.close_draft().is_some() {
            self.ui.focus_after_close(None);
            return true;
        }
        if let Some(id) = self.ui.close_panel() {
            self.ui.focus_after_close(Some(&id));
            return true;
        }
        self.ui.fold_cluster()
    }

    /// A click on a `[data-action]` button. An unknown value (a page's own button inside the
    /// widget's box) runs no action, but still ends a pending delete confirmation, as before.
    fn action(&mut self, button: &Element, now: u64) {
        let Some(action) = button
            .get_attribute("data-action")
            .as_deref()
            .and_then(UiAction::from_attr)
        else {
            self.ui.confirm_delete(false);
            return;
        };
        // Deleting a reply asks once, on the button itself ("Really delete?").
        if action == UiAction::DeleteComment && !button.has_attribute("data-confirm") {
            self.ui.confirm_delete(false);
            let reply = plain::closest(button, "[data-comment-id]")
                .and_then(|c| c.get_attribute("data-comment-id"))
                .map(CommentId::new);
            if let Some(panel) = self.ui.panel.as_mut() {
                panel.confirm_reply = reply;
            }
            plain::set(button, "data-confirm", "");
            button.set_text_content(Some(self.ui.locale.strings().delete_confirm));
            return;
        }
        let op = button.get_attribute("data-op");
        let comment = plain::closest(button, "[data-comment-id]")
            .and_then(|c| c.get_attribute("data-comment-id"))
            .map(CommentId::new);
        self.run(action, op, comment, now);
    }

    fn run(&mut self, action: UiAction, op: Option<String>, comment: Option<CommentId>, now: u64) {
        let locale = self.ui.locale;
        let open_chat = self.ui.panel.as_ref().map(|p| p.chat_id.clone());
        if action != UiAction::Delete {
            self.ui.confirm_delete(false);
        }
        match action {
            UiAction::Close => {
                let id = self.ui.close_panel();
                self.ui.close_draft();
                self.ui.focus_after_close(id.as_ref());
            }
            UiAction::CancelDraft => {
                self.ui.close_draft();
                self.ui.focus_after_close(None);
            }
            UiAction::ToggleMarkers => self.ui.toggle_markers(),
            UiAction::Post => {
                let Some(d) = &self.ui.draft else {
                    return;
                };
                let (at, region, text) = (d.at, d.region, d.textarea.value());
                let name = d.name.as_ref().map(|n| n.value());
                // The text first: a refused comment must not rename the person.
                if let Err(err) = image_chat_protocol::limits::validate_text(&text) {
                    self.ui.draft_error(&locale.validation(&err));
                    return;
                }
                if let Some(name) = name
                    && !self.choose_name(&name)
                {
                    return;
                }
                let cmd = self.draft_command(at, region, text);
                let result = self.engine.handle_local(now, cmd);
                match result {
                    Ok(op) | Err(LocalError::NotConnected { op, .. }) => {
                        // Show the new (pending or failed) discussion, then open its thread.
                        self.ui.close_draft();
                        self.drive();
                        self.ui.open_panel(&op.chat_id, now);
                    }
                    Err(LocalError::Invalid(err)) => self.ui.draft_error(&locale.validation(&err)),
                    Err(_) => self.ui.draft_error(locale.strings().err_generic),
                }
            }
            UiAction::Reply => {
                let (Some(chat_id), Some(reply)) = (open_chat, self.ui.reply_box().cloned()) else {
                    return;
                };
                let result = self.engine.handle_local(
                    now,
                    Command::Reply {
                        chat_id,
                        text: reply.value(),
                    },
                );
                match result {
                    // A failed reply shows in the thread with its text and a retry button.
                    Ok(_) | Err(LocalError::NotConnected { .. }) => {
                        reply.set_value("");
                        self.ui.reply_error(None);
                    }
                    Err(LocalError::Invalid(err)) => {
                        self.ui.reply_error(Some(&locale.validation(&err)));
                    }
                    Err(LocalError::NotAllowed) => {
                        self.ui.reply_error(Some(locale.strings().err_forbidden));
                    }
                    Err(_) => self.ui.reply_error(Some(locale.strings().err_generic)),
                }
            }
            UiAction::Edit => {
                let (Some(chat_id), Some(comment_id)) = (open_chat, comment) else {
                    return;
                };
                let text = self
                    .ui
                    .chats
                    .get(&chat_id)
                    .and_then(|c| c.comments.iter().find(|c| c.id == comment_id))
                    .map(|c| c.text.clone())
                    .unwrap_or_default();
                self.ui.start_edit(&comment_id, &text);
            }
            UiAction::CancelEdit => {
                self.escape(now);
            }
            UiAction::SaveEdit => {
                let Some(chat_id) = open_chat else {
                    return;
                };
                let Some((comment_id, textarea)) =
                    self.ui.panel.as_ref().and_then(|p| p.editing.clone())
                else {
                    return;
                };
                let result = self.engine.handle_local(
                    now,
                    Command::Edit {
                        chat_id,
                        comment_id,
                        text: textarea.value(),
                    },
                );
                match result {
                    Ok(_) | Err(LocalError::NotConnected { .. }) => {
                        self.ui.cancel_edit(now);
                    }
                    Err(LocalError::Invalid(err)) => {
                        self.ui.reply_error(Some(&locale.validation(&err)));
                    }
                    Err(LocalError::NotAllowed) => {
                        self.ui.reply_error(Some(locale.strings().err_forbidden));
                    }
                    Err(_) => self.ui.reply_error(Some(locale.strings().err_generic)),
                }
            }
            UiAction::Delete => {
                let Some(chat_id) = open_chat else {
                    return;
                };
                let confirming = self.ui.panel.as_ref().is_some_and(|p| p.confirm_delete);
                if !confirming {
                    self.ui.confirm_delete(true);
                    return;
                }
                self.ui.confirm_delete(false);
                if let Err(LocalError::NotAllowed) =
                    self.engine.handle_local(now, Command::Delete { chat_id })
                {
                    self.ui.reply_error(Some(locale.strings().err_forbidden));
                }
            }
            UiAction::DeleteComment => {
                let (Some(chat_id), Some(comment_id)) = (open_chat, comment) else {
                    return;
                };
                if let Err(LocalError::NotAllowed) = self.engine.handle_local(
                    now,
                    Command::DeleteComment {
                        chat_id,
                        comment_id,
                    },
                ) {
                    self.ui.reply_error(Some(locale.strings().err_forbidden));
                }
            }
            UiAction::Resolve => {
                let Some(chat_id) = open_chat else {
                    return;
                };
                let resolved = !self.ui.chats.get(&chat_id).is_some_and(|c| c.resolved);
                if let Err(LocalError::NotAllowed) = self
                    .engine
                    .handle_local(now, Command::Resolve { chat_id, resolved })
                {
                    self.ui.reply_error(Some(locale.strings().err_forbidden));
                }
            }
            UiAction::ShowThread => self.ui.show_thread(now),
            UiAction::ToggleResolved => self.ui.toggle_resolved(),
            UiAction::ToggleLock => {
                let locked = self.engine.view().locked;
                // The badge and button change when the server's `lock` frame arrives.
                match self.engine.set_lock(!locked) {
                    Ok(()) => {}
                    Err(LocalError::Offline) => self.ui.announce(locale.strings().err_offline),
                    Err(_) => self.ui.announce(locale.strings().err_forbidden),
                }
            }
            UiAction::CopyLink => {
                let Some(chat_id) = open_chat else {
                    return;
                };
                let href = self.window.location().href().unwrap_or_default();
                // A byte scan, not `split('#')`: that links core's memchr for one character.
                let end = href.bytes().position(|b| b == b'#').unwrap_or(href.len());
                let page = &href[..end];
                let link = [page, crate::ui::FRAGMENT_PREFIX, chat_id.as_str()].concat();
                browser::copy_text(&self.window, &link);
                self.ui.link_copied();
            }
            UiAction::Reconnect => self.engine.reconnect_now(now),
            UiAction::Copy => {
                if let Some(text) = self.ui.kept_text() {
                    browser::copy_text(&self.window, &text);
                }
            }
            UiAction::Retry | UiAction::Dismiss => {
                let Some(op) = op else { return };
                let op = image_chat_protocol::BroadcastId::new(op);
                let cmd = if action == UiAction::Retry {
                    Command::Retry { op }
                } else {
                    Command::Dismiss { op }
                };
                // Failures show in the view (the op stays failed, with a fresh reason).
                let _ = self.engine.handle_local(now, cmd);
            }
        }
    }
}

impl Widget {
    /// The command creating the draft's discussion: about its passage in text mode, else at
    /// its point or about its area.
    fn draft_command(&self, at: Fraction, region: Option<(f64, f64)>, text: String) -> Command {
        #[cfg(feature = "text")]
        if let Some((_, anchor)) = self.text.as_ref().and_then(|t| t.mode.draft.as_ref()) {
            return Command::CreateText {
                anchor: anchor.clone(),
                text,
            };
        }
        match region {
            Some((w, h)) => Command::CreateRegion {
                x: at.x,
                y: at.y,
                w,
                h,
                text,
            },
            None => Command::CreateChat {
                x: at.x,
                y: at.y,
                text,
            },
        }
    }

    /// The name typed in the first-post form: checked (the protocol's rules, shown in the
    /// person's language), used for this post and the later ones, and remembered on this site.
    /// A blank field keeps the current name. Returns whether the post may go ahead.
    fn choose_name(&mut self, typed: &str) -> bool {
        let typed = typed.trim();
        if typed.is_empty() || typed == self.opts.name {
            return true;
        }
        match self.engine.set_name(typed) {
            Ok(()) => {
                self.opts.name = typed.to_owned();
                self.ui.name_field = Some(typed.to_owned());
                browser::store(&self.window, NAME_STORAGE_KEY, typed);
                true
            }
            Err(LocalError::Invalid(err)) => {
                self.ui.draft_error(&self.ui.locale.validation(&err));
                if let Some(input) = self.ui.draft.as_ref().and_then(|d| d.name.as_ref()) {
                    plain::focus(input);
                }
                false
            }
            // A signed user (the field is not shown to them): their name is the site's.
            Err(_) => true,
        }
    }
}

/// A pointer press on the overlay, until it is released.
#[derive(Clone, Debug)]
enum Gesture {
    /// On a marker this person may move: dragging moves it.
    Marker {
        chat_id: ChatId,
        from: (f64, f64),
        dragging: bool,
    },
    /// On the bare picture: dragging draws out a region.
    Region {
        from: (f64, f64),
        start: Fraction,
        dragging: bool,
    },
}

impl Widget {
    /// The `clientX` / `clientY` of a pointer event.
    fn client_xy(e: &Event) -> (f64, f64) {
        let coord = |name: &str| {
            js_sys::Reflect::get(e, &JsValue::from_str(name))
                .ok()
                .and_then(|v| v.as_f64())
                .unwrap_or(f64::NAN)
        };
        (coord("clientX"), coord("clientY"))
    }

    /// Where a drag is on the picture (clamped to it).
    fn drag_point(&mut self, (x, y): (f64, f64)) -> Option<Fraction> {
        let picture = self.measure().map(|m| m.picture).unwrap_or_default();
        drag_to_fraction(picture, x, y)
    }

    /// A primary press on a movable marker, or on the bare picture, may become a drag.
    fn on_pointer_down(&mut self, e: Event) {
        self.gesture = None;
        // Text mode draws no regions and moves no markers.
        #[cfg(feature = "text")]
        if self.text.is_some() {
            return;
        }
        let primary = js_sys::Reflect::get(&e, &JsValue::from_str("button"))
            .ok()
            .and_then(|v| v.as_f64())
            == Some(0.0);
        if !primary || self.ui.read_only {
            return;
        }
        let Some(target) = e.target().and_then(|t| t.dyn_into::<Element>().ok()) else {
            return;
        };
        let from = Self::client_xy(&e);
        if let Some(marker) = plain::closest(&target, ".image-chat-marker[data-movable]") {
            if let Some(id) = marker.get_attribute("data-chat-id") {
                self.gesture = Some(Gesture::Marker {
                    chat_id: ChatId::new(id),
                    from,
                    dragging: false,
                });
            }
            return;
        }
        let elsewhere = plain::closest(
            &target,
            ".image-chat-marker,.image-chat-cluster,.image-chat-thread,.image-chat-bar,[data-action]",
        )
        .is_some();
        if elsewhere || self.ui.draft.is_some() || self.ui.panel.is_some() {
            return;
        }
        let picture = self.measure().map(|m| m.picture).unwrap_or_default();
        if let Some(start) = pointer_to_fraction(picture, from.0, from.1) {
            self.gesture = Some(Gesture::Region {
                from,
                start,
                dragging: false,
            });
        }
    }

    fn on_pointer_move(&mut self, e: Event) {
        let Some(gesture) = self.gesture.clone() else {
            return;
        };
        let xy = Self::client_xy(&e);
        let (from, dragging) = match &gesture {
            Gesture::Marker { from, dragging, .. } | Gesture::Region { from, dragging, .. } => {
                (*from, *dragging)
            }
        };
        let (dx, dy) = (xy.0 - from.0, xy.1 - from.1);
        if !dragging && dx * dx + dy * dy < DRAG_PX * DRAG_PX {
            return;
        }
        let Some(at) = self.drag_point(xy) else {
            return;
        };
        if !dragging {
            // From now on the pointer is ours until released, even outside the overlay.
            if let (Some(target), Some(id)) = (
                e.target().and_then(|t| t.dyn_into::<Element>().ok()),
                js_sys::Reflect::get(&e, &JsValue::from_str("pointerId"))
                    .ok()
                    .and_then(|v| v.as_f64()),
            ) {
                let _ = target.set_pointer_capture(id as i32);
            }
        }
        match gesture {
            Gesture::Marker { chat_id, from, .. } => {
                if let Some(chat) = self.ui.chats.get(&chat_id) {
                    let anchor = chat.anchor.moved_to(at.x, at.y);
                    self.ui.preview_move(&chat_id, &anchor);
                }
                self.gesture = Some(Gesture::Marker {
                    chat_id,
                    from,
                    dragging: true,
                });
            }
            Gesture::Region { from, start, .. } => {
                self.ui.draw_region(Some(region_between(start, at)));
                self.gesture = Some(Gesture::Region {
                    from,
                    start,
                    dragging: true,
                });
            }
        }
        e.prevent_default();
    }

    fn on_pointer_up(&mut self, e: Event) {
        let Some(gesture) = self.gesture.take() else {
            return;
        };
        let at = self.drag_point(Self::client_xy(&e));
        let now = browser::now();
        match gesture {
            Gesture::Marker {
                chat_id,
                dragging: true,
                ..
            } => {
                self.swallow_click = true;
                self.ui.end_move(&chat_id);
                let anchor = at.and_then(|at| {
                    let chat = self.ui.chats.get(&chat_id)?;
                    Some(chat.anchor.moved_to(at.x, at.y))
                });
                if let Some(anchor) = anchor {
                    self.move_chat(chat_id, anchor, now);
                }
            }
            Gesture::Region {
                start,
                dragging: true,
                ..
            } => {
                self.swallow_click = true;
                self.ui.draw_region(None);
                let Some(at) = at else { return };
                let (x, y, w, h) = region_between(start, at);
                if w >= MIN_REGION && h >= MIN_REGION {
                    self.ui.open_draft(Fraction { x, y }, Some((w, h)));
                }
            }
            _ => {}
        }
    }

    /// Enter (or Space) on the overlay: a draft at the crosshair, or about the area marked out
    /// from where Shift+Enter started it (`area`: Shift+Enter, which starts marking one out).
    fn place_from_keyboard(&mut self, area: bool) {
        let at = self.ui.crosshair_at;
        if let Some(start) = self.key_region.take() {
            self.ui.draw_region(None);
            let (x, y, w, h) = region_between(start, at);
            if w >= MIN_REGION && h >= MIN_REGION {
                self.ui.open_draft(Fraction { x, y }, Some((w, h)));
            }
            return;
        }
        if area {
            self.key_region = Some(at);
            self.ui.draw_region(Some((at.x, at.y, 0.0, 0.0)));
            self.ui.announce(self.ui.locale.strings().region_hint);
            return;
        }
        self.ui.open_draft(at, None);
    }

    /// A drag was interrupted (the browser took the pointer, e.g. to scroll): nothing moves.
    fn cancel_gesture(&mut self) {
        match self.gesture.take() {
            Some(Gesture::Marker { chat_id, .. }) => self.ui.end_move(&chat_id),
            Some(Gesture::Region { .. }) => self.ui.draw_region(None),
            None => {}
        }
    }

    /// Sends a move, unless the marker did not actually move.
    fn move_chat(&mut self, chat_id: ChatId, anchor: Anchor, now: u64) {
        let same = self
            .ui
            .chats
            .get(&chat_id)
            .is_some_and(|c| c.anchor == anchor.canonical());
        if !same {
            // A refusal (offline, not allowed) shows on the marker, with retry / dismiss.
            let _ = self
                .engine
                .handle_local(now, Command::Move { chat_id, anchor });
        }
    }

    /// Arrow keys on a focused marker this person may move start moving it by the keyboard
    /// crosshair's steps; Enter puts it there (Escape, see `on_keydown`, cancels). Returns
    /// whether the key was used.
    fn marker_key(&mut self, target: &Element, key: &str, shift: bool, now: u64) -> bool {
        if self.ui.read_only
            || !target
                .matches(".image-chat-marker[data-movable]")
                .unwrap_or(false)
        {
            return false;
        }
        let Some(id) = target.get_attribute("data-chat-id").map(ChatId::new) else {
            return false;
        };
        let step = if shift { BIG_STEP } else { STEP };
        let (dx, dy) = match key {
            "ArrowLeft" => (-step, 0.0),
            "ArrowRight" => (step, 0.0),
            "ArrowUp" => (0.0, -step),
            "ArrowDown" => (0.0, step),
            "Enter" => {
                let Some((moving, anchor)) = self.key_move.take() else {
                    return false;
                };
                self.ui.end_move(&moving);
                if moving == id {
                    self.move_chat(id, anchor, now);
                }
                return true;
            }
            _ => return false,
        };
        let current = match &self.key_move {
            Some((moving, anchor)) if *moving == id => anchor.clone(),
            _ => {
                self.cancel_key_move();
                self.ui.announce(self.ui.locale.strings().move_hint);
                match self.ui.chats.get(&id) {
                    Some(chat) => chat.anchor.clone(),
                    None => return false,
                }
            }
        };
        let (x, y) = current.corner();
        let to = Fraction { x, y }.nudged(dx, dy);
        let anchor = current.moved_to(to.x, to.y);
        self.ui.preview_move(&id, &anchor);
        self.key_move = Some((id, anchor));
        true
    }

    /// Ends a keyboard move without moving anything. Returns whether one was under way.
    fn cancel_key_move(&mut self) -> bool {
        match self.key_move.take() {
            Some((id, _)) => {
                self.ui.end_move(&id);
                true
            }
            None => false,
        }
    }

    /// `instance.update(change)`: language, theme, read-only and auth change in place (new
    /// auth reconnects at once, so it applies now); nothing changes on an invalid option.
    fn update(&mut self, change: RawOptions) -> Result<(), WidgetError> {
        let env = browser::page_env(&self.window, self.ui.src());
        let (raw, opts) = self.raw.updated(change, &env)?;
        let now = browser::now();
        self.raw = raw;
        if opts.theme != self.opts.theme {
            self.ui.set_theme(opts.theme);
        }
        if opts.read_only != self.opts.read_only {
            let server = self.engine.view().read_only;
            self.ui.set_read_only(opts.read_only || server);
        }
        if opts.auth != self.opts.auth || (opts.auth.is_none() && opts.name != self.opts.name) {
            self.token_key = opts
                .auth
                .is_none()
                .then(|| token_storage_key(&opts.server_url, &opts.tenant));
            let auth = opts.auth.clone().or_else(|| {
                Some(Auth::Anonymous {
                    name: opts.name.clone(),
                    token: self.stored_token.clone(),
                })
            });
            let reconnect = opts.auth != self.opts.auth;
            self.engine.set_auth(now, auth);
            if reconnect && let Some((conn, socket)) = self.socket.take() {
                // A live session keeps the identity it was admitted with: start a new one
                // (the engine reconnects, resuming, as after any drop).
                socket.close(1000, "new auth");
                self.engine
                    .handle_transport(now, conn, TransportEvent::Closed { code: 1000 });
            }
        }
        if opts.locale != self.opts.locale {
            self.show_locale(opts.locale, now)?;
        }
        crate::locales::request(self.raw.wanted_locale(&env));
        self.opts = opts;
        Ok(())
    }

    /// Renders the overlay and every discussion in `locale`.
    fn show_locale(&mut self, locale: Locale, now: u64) -> Result<(), WidgetError> {
        self.ui.set_locale(locale);
        #[cfg(feature = "text")]
        self.text_relabel(locale);
        let chats = self.engine.view().chats.clone();
        self.ui.reserve(chats.len());
        for (index, chat) in chats.into_iter().enumerate() {
            self.ui.upsert_chat(index, chat, now)?;
        }
        self.ui.show_status(self.engine.status(), now);
        self.ui.show_online(self.engine.view().online);
        Ok(())
    }

    /// A language table arrived (`crate::locales`): switches to it if this widget wants it.
    /// The default name follows the language ("Guest" becomes "Invité") unless the person or
    /// the site chose one.
    fn relocalize(&mut self) -> Result<(), WidgetError> {
        let env = browser::page_env(&self.window, self.ui.src());
        let locale = self.raw.locale(&env);
        if locale == self.opts.locale {
            return Ok(());
        }
        let now = browser::now();
        let guest = locale.strings().guest;
        if self.opts.auth.is_none() && self.opts.name == self.opts.locale.strings().guest {
            self.opts.name = guest.to_owned();
            self.engine.set_auth(
                now,
                Some(Auth::Anonymous {
                    name: self.opts.name.clone(),
                    token: self.stored_token.clone(),
                }),
            );
        }
        self.opts.locale = locale;
        self.show_locale(locale, now)
    }

    /// The discussion the page's URL names (`#image-chat=<id>`), if any.
    fn linked_chat(&self) -> Option<ChatId> {
        let hash = self.window.location().hash().ok()?;
        let id = hash.strip_prefix(crate::ui::FRAGMENT_PREFIX)?;
        image_chat_protocol::ids::is_canonical_id(id).then(|| ChatId::new(id))
    }

    /// Opens a discussion named from outside (a link, `open()`), bringing its marker into
    /// view; returns whether it is shown here.
    pub fn open_linked(&mut self, id: &ChatId, now: u64) -> bool {
        if !self.ui.chats.contains_key(id) {
            return false;
        }
        if self.ui.panel.as_ref().is_none_or(|p| &p.chat_id != id) {
            self.ui.open_panel(id, now);
        }
        #[cfg(feature = "text")]
        if self.text.is_some() {
            self.reveal_passage(id);
            return true;
        }
        if let Some(marker) = self.ui.marker(id) {
            marker.scroll_into_view_with_bool(false);
        }
        true
    }

    /// Queues the page events of what just changed: a thread opened (`image-chat:open`), the
    /// number of discussions or of resolved ones (`image-chat:count`, also once the first
    /// state is known).
    fn report(&mut self, was_open: Option<ChatId>) {
        let open = self.ui.panel.as_ref().map(|p| p.chat_id.clone());
        if let Some(id) = &open
            && open != was_open
        {
            self.outbox
                .push(("image-chat:open", vec![("chatId", id.as_str().into())]));
        }
        if self.engine.position().is_none() {
            return;
        }
        let chats = &self.engine.view().chats;
        let count = (chats.len(), chats.iter().filter(|c| c.resolved).count());
        if self.reported_count != Some(count) {
            self.reported_count = Some(count);
            let (count, resolved) = count;
            self.outbox.push((
                "image-chat:count",
                vec![
                    ("count", (count as f64).into()),
                    ("resolved", (resolved as f64).into()),
                ],
            ));
        }
    }
}

impl Drop for Widget {
    fn drop(&mut self) {
        self.teardown();
    }
}
