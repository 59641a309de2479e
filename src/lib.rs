//! image-chat widget: real-time discussion markers on any image, compiled to WebAssembly.
//!
//! The widget is browser glue around the sans-I/O sync engine (`image-chat-sync`): it turns
//! clicks, keys, socket events and timers into engine inputs, and the engine's outputs into
//! socket frames and DOM patches. Everything that can be decided without a browser lives in
//! pure modules with native tests (`cargo test -p image-chat --lib`); browser tests live in
//! `tests/` (`wasm-pack test --headless --chrome`). docs/WIDGET.md documents the public API,
//! the DOM contract and the CSS custom properties.
//!
//! Module map:
//! - [`options`] (pure): mount options, defaults and validation; default image id.
//! - [`i18n`] (pure): every human-readable string in en / fr / pt / ru, plural rules, error
//!   code and validation-error translations; English built in, the others loaded.
//! - [`locales`]: fetching the page's language as a separate chunk, and switching to it.
//! - [`geometry`] (pure): the drawn picture (`object-fit`, `object-position`, transforms),
//!   pointer → fraction of it, fraction → CSS percentage, overlay boxes, thread panel placement.
//! - [`grouping`] (pure): which markers overlap (clusters) and where an expanded cluster's
//!   members go.
//! - [`reltime`] (pure): "5 minutes ago" bucketing.
//! - [`status`] (pure): connection status, failures and announcements as text.
//! - [`style`]: the stylesheet (CSS custom properties, light / dark), injected once.
//! - [`overlay`]: the page's overlay layer and measuring where the image's picture is.
//! - [`dom`]: owners of browser resources released on drop (listener, timeout, WebSocket,
//!   ResizeObserver) — no `Closure::forget` anywhere.
//! - [`ui`]: the widget's DOM: build, incremental patches, teardown.
//! - [`clusters`]: the cluster buttons over overlapping markers and their fan-out.
//! - [`widget`]: one mounted widget: engine plumbing and event handling.
//! - [`invalid`]: the notice shown in place of a widget whose options are invalid.
//! - [`browser`]: clocks, randomness, location, storage, console.
//! - [`error`]: [`error::WidgetError`], converted to a JS `Error` only here at the boundary.
//! - `text` (cargo feature `text`, the second bundle): text mode — discussions on passages of
//!   an article (`ImageChat.mountText`), on the same widget.

pub mod action;
pub mod browser;
pub mod clusters;
pub mod dom;
pub mod error;
pub mod geometry;
pub mod grouping;
pub mod i18n;
pub mod invalid;
pub mod locales;
pub mod options;
pub mod overlay;
pub mod reltime;
pub mod status;
pub mod style;
#[cfg(feature = "text")]
pub mod text;
pub mod ui;
pub mod widget;

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::prelude::*;

use crate::error::WidgetError;
use crate::options::RawOptions;
use crate::widget::Shell;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** Secure SSO payload signed by the site's backend (see docs/SECURITY.md). */
export interface ImageChatSsoAuth {
  type: "sso";
  /** Base64 of the user JSON. */
  userData: string;
  /** Milliseconds since the Unix epoch at signing time. */
  timestamp: number;
  /** Hex HMAC-SHA256(secret, timestamp + userData). */
  hash: string;
}

/** An anonymous person (the default). `token` is managed by the widget. */
export interface ImageChatAnonymousAuth {
  type: "anonymous";
  name: string;
  token?: string;
}

export type ImageChatAuth = ImageChatSsoAuth | ImageChatAnonymousAuth;

/** Options of `ImageChat.mount` (all optional). `data-*` attributes of the image (and of the
 *  loader's script tag) use the same names in kebab-case: `data-server`, `data-image-id`… */
export interface ImageChatOptions {
  /** WebSocket endpoint (`wss://chat.example.com/ws`), server base URL
   *  (`https://chat.example.com` → `wss://chat.example.com/ws`) or path (`/ws`).
   *  Default: `/ws` on the page's own host (`wss` on https pages). */
  server?: string;
  /** Tenant id. Default: `"demo"`. */
  tenant?: string;
  /** Names the image. Default: page origin + path, `|`, the image's absolute `src`. */
  imageId?: string;
  /** UI language: `en`, `fr`, `pt`, `ru` (any BCP 47 tag). Default: `navigator.languages`.
   *  Other than English, fetched as a small chunk (English until it arrives, or if it fails). */
  locale?: string;
  /** Show discussions without allowing changes. Default: false. */
  readOnly?: boolean;
  /** Marker diameter in CSS pixels, 16 to 96. Default: 28. */
  markerSize?: number;
  /** Colour theme. Default: `"auto"` (follows `prefers-color-scheme`). */
  theme?: "light" | "dark" | "auto";
  /** Who the person is; omitted = anonymous (needs a tenant that allows it). */
  auth?: ImageChatAuth;
  /** Display name of an anonymous person. Default: "Guest", translated. */
  name?: string;
}

/** The overlay's connection state (also its `data-state` attribute). */
export type ImageChatState = "connecting" | "live" | "reconnecting" | "offline" | "stopped" | "destroyed";

/** What `instance.update()` may change without a remount. */
export type ImageChatUpdate = Pick<ImageChatOptions, "locale" | "theme" | "readOnly" | "auth" | "name">;

/** `detail` of the `image-chat:state` event: the new connection state. */
export interface ImageChatStateDetail { state: ImageChatState }
/** `detail` of `image-chat:count`: how many discussions the image has, and how many of them
 *  are resolved (fired once the first state arrived, then on every change of either). */
export interface ImageChatCountDetail { count: number; resolved: number }
/** `detail` of `image-chat:open`: the discussion whose thread just opened. */
export interface ImageChatOpenDetail { chatId: string }
/** `detail` of `image-chat:op-failed`: one of the person's changes failed (it shows as failed
 *  in the widget, with retry where that can help). `reason` is a server error code
 *  (`forbidden`, `rate-limited`…) or `offline`, `not-connected`, `connection-lost`, `refused`. */
export interface ImageChatOpFailedDetail {
  op: string;
  kind: "create" | "reply" | "edit" | "delete" | "delete-comment" | "resolve" | "move";
  reason: string;
}
/** The bubbling `CustomEvent`s the widget dispatches on its `<img>`. */
export interface ImageChatEventMap {
  "image-chat:state": CustomEvent<ImageChatStateDetail>;
  "image-chat:count": CustomEvent<ImageChatCountDetail>;
  "image-chat:open": CustomEvent<ImageChatOpenDetail>;
  "image-chat:op-failed": CustomEvent<ImageChatOpFailedDetail>;
}
declare global {
  interface HTMLElementEventMap extends ImageChatEventMap {}
}
"#;

#[wasm_bindgen]
extern "C" {
    /// `ImageChatOptions` in TypeScript.
    #[wasm_bindgen(typescript_type = "ImageChatOptions")]
    pub type ImageChatOptions;
    /// What `mount` accepts.
    #[wasm_bindgen(typescript_type = "HTMLImageElement | string")]
    pub type MountTarget;
    /// What `autoMount` returns.
    #[wasm_bindgen(typescript_type = "ImageChat[]")]
    pub type ImageChatList;
    /// What `setAuth` accepts.
    #[wasm_bindgen(typescript_type = "ImageChatAuth | null | undefined")]
    pub type AuthArg;
    /// What `update` accepts.
    #[wasm_bindgen(typescript_type = "ImageChatUpdate")]
    pub type UpdateArg;
}

/// The allocator: TLSF (`rlsf`, constant-time allocation and deallocation) instead of std's
/// dlmalloc port, for the size of the wasm (about 5 KB less code). Installed without `unsafe`
/// (`GlobalTlsf::new` is a safe `const fn`); single-threaded wasm (no `atomics`) needs no lock.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: rlsf::GlobalTlsf<AllocatorOptions> = rlsf::GlobalTlsf::new();

/// [`ALLOCATOR`]'s options: no in-place reallocation routine (a growing buffer is copied, as
/// most growth is anyway; the routine costs code), but consecutive memory grows merged into one
/// pool, which rlsf warns is needed for allocations about as large as a 64 KiB wasm page (a
/// snapshot frame is hundreds of KB).
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
struct AllocatorOptions;

#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
impl rlsf::GlobalTlsfOptions for AllocatorOptions {
    const ENABLE_REALLOCATION: bool = false;
    const COALESCE_POOLS: bool = true;
}

thread_local! {
    /// Every live widget. The registry, not the JS handle, keeps a widget alive: a page that
    /// drops (or lets the garbage collector finalize) its handle keeps its widget until
    /// `destroy()` or until the image leaves the document.
    static LIVE: RefCell<Vec<Rc<Shell>>> = const { RefCell::new(Vec::new()) };
}

fn register(shell: &Rc<Shell>) {
    LIVE.with(|live| {
        let mut live = live.borrow_mut();
        prune(&mut live, None);
        live.push(shell.clone());
    });
}

/// The live widget on `target` (an image, or a text container), if any.
pub(crate) fn mounted_on(target: &web_sys::Element) -> Option<Rc<Shell>> {
    LIVE.with(|live| {
        live.borrow()
            .iter()
            .find(|s| &s.target == target && !s.is_destroyed())
            .cloned()
    })
}

fn unregister(shell: &Rc<Shell>) {
    LIVE.with(|live| prune(&mut live.borrow_mut(), Some(shell)));
}

/// Lets every live widget switch to a language table that just arrived (`locales`).
pub(crate) fn relocalize_all() {
    let live = LIVE.with(|live| live.borrow().clone());
    for shell in &live {
        shell.relocalize();
    }
}

/// Drops destroyed widgets from the registry, and `gone` (whose teardown may still be pending
/// while it is busy). One `retain` for both callers: each closure type would be its own copy.
fn prune(live: &mut Vec<Rc<Shell>>, gone: Option<&Rc<Shell>>) {
    live.retain(|s| !s.is_destroyed() && gone.is_none_or(|g| !Rc::ptr_eq(s, g)));
}

/// Reads a JS options object (see [`browser::read_options`]).
fn raw_options(value: &JsValue) -> Result<RawOptions, WidgetError> {
    Ok(browser::read_options(value)?)
}

/// A mounted widget. `ImageChat.mount(img, options)` creates one; `destroy()` removes it.
#[wasm_bindgen]
pub struct ImageChat {
    shell: Rc<Shell>,
}

#[wasm_bindgen]
impl ImageChat {
    /// Mounts a widget on an `<img>` element (or the first element a CSS selector matches).
    /// An image that already has a widget (e.g. from the loader's auto-mount) hands that one
    /// over: the handle returned controls it (its `destroy()` removes it) and `options` are not
    /// applied. Throws an `Error` on an invalid option or a missing or non-image target.
    pub fn mount(
        target: MountTarget,
        options: Option<ImageChatOptions>,
    ) -> Result<ImageChat, JsValue> {
        let existing = browser::window()
            .and_then(|w| w.document())
            .and_then(|doc| browser::resolve_target(&doc, &target).ok())
            .and_then(|e| e.dyn_into::<web_sys::HtmlImageElement>().ok())
            .and_then(|img| mounted_on(&img));
        if let Some(shell) = existing {
            return Ok(ImageChat { shell });
        }
        let js = match &options {
            Some(o) => raw_options(o).map_err(WidgetError::into_js)?,
            None => RawOptions::default(),
        };
        let shell =
            widget::mount(&target, RawOptions::default(), js).map_err(WidgetError::into_js)?;
        register(&shell);
        Ok(ImageChat { shell })
    }

    /// Mounts on every `img[data-image-chat]` in the document that has no widget yet, with
    /// `defaults` (the loader script tag's `data-*` values) under each image's own `data-*`
    /// attributes. Images that fail to mount are reported on the console and skipped.
    #[wasm_bindgen(js_name = autoMount)]
    pub fn auto_mount(defaults: Option<ImageChatOptions>) -> ImageChatList {
        // A plain JS array: cheaper in the bundle than returning `Vec<ImageChat>`.
        let list = js_sys::Array::new();
        let defaults = match &defaults {
            Some(d) => raw_options(d).unwrap_or_else(|e| {
                browser::log_error("autoMount defaults", &e.into_js());
                RawOptions::default()
            }),
            None => RawOptions::default(),
        };
        let images = browser::window()
            .and_then(|w| w.document())
            .map(|doc| dom::plain::query_all(&doc, "img[data-image-chat]"));
        if let Some(images) = images {
            for i in 0..images.length() {
                let Some(img) = images.item(i) else { continue };
                match widget::mount(&img, defaults.clone(), RawOptions::default()) {
                    Ok(shell) => {
                        register(&shell);
                        list.push(&JsValue::from(ImageChat { shell }));
                    }
                    // Mounted before (by an earlier call or by `mount`): nothing to do.
                    Err(WidgetError::AlreadyMounted) => {}
                    Err(e) => browser::log_error("autoMount", &e.into_js()),
                }
            }
        }
        list.unchecked_into()
    }

    /// Removes the widget: closes its socket, clears its timers, removes its listeners and
    /// elements, and puts the image back as it was. Safe to call twice.
    pub fn destroy(&self) {
        self.shell.destroy();
        unregister(&self.shell);
    }

    /// The connection state: `connecting`, `live`, `reconnecting`, `offline`, `stopped`, or
    /// `destroyed` after `destroy()`.
    #[wasm_bindgen(getter, unchecked_return_type = "ImageChatState")]
    pub fn state(&self) -> String {
        self.shell.state()
    }

    /// Replaces the auth used for the next connections (e.g. a refreshed SSO signature); a
    /// widget stopped by an authentication failure connects again. `null` = anonymous.
    #[wasm_bindgen(js_name = setAuth)]
    pub fn set_auth(&self, auth: AuthArg) -> Result<(), JsValue> {
        let value: &JsValue = &auth;
        let auth = if value.is_null() || value.is_undefined() {
            None
        } else {
            let fields = browser::read_auth(value)
                .map_err(|e| WidgetError::from(options::OptionsError::InvalidAuth(e)).into_js())?;
            Some(
                fields
                    .to_auth()
                    .map_err(|e| WidgetError::from(e).into_js())?,
            )
        };
        self.shell.set_auth(auth);
        Ok(())
    }

    /// Opens the thread of discussion `chatId` (a permalink's id), bringing its marker into
    /// view. Returns whether this image shows that discussion (false also before the widget's
    /// first connection: retry on `image-chat:count`).
    pub fn open(&self, #[wasm_bindgen(js_name = chatId)] chat_id: String) -> bool {
        self.shell.open(&image_chat_protocol::ChatId::new(chat_id))
    }

    /// Changes `locale`, `theme`, `readOnly`, `auth` or `name` in place (what is left out
    /// stays). New `auth` reconnects at once. Throws on an invalid value, or on `server`,
    /// `tenant`, `imageId` or `markerSize` (destroy and mount again for those); nothing changes
    /// then.
    pub fn update(&self, options: UpdateArg) -> Result<(), JsValue> {
        let change = raw_options(&options).map_err(WidgetError::into_js)?;
        self.shell.update(change).map_err(WidgetError::into_js)
    }

    /// Every widget on the page that is not destroyed (mounted by `mount` or `autoMount`), in
    /// mounting order. Destroyed widgets, and those whose image left the page for good, leave
    /// the list.
    #[wasm_bindgen(getter = instances)]
    pub fn instances() -> ImageChatList {
        let list = js_sys::Array::new();
        LIVE.with(|live| {
            let mut live = live.borrow_mut();
            prune(&mut live, None);
            for shell in live.iter() {
                list.push(&JsValue::from(ImageChat {
                    shell: shell.clone(),
                }));
            }
        });
        list.unchecked_into()
    }

    /// The widget version (the crate version).
    #[wasm_bindgen(getter = version)]
    pub fn version() -> String {
        env!("CARGO_PKG_VERSION").to_owned()
    }
}

#[cfg(feature = "text")]
#[wasm_bindgen(typescript_custom_section)]
const TS_TEXT_TYPES: &'static str = r#"
/** Options of `ImageChat.mountText` (all optional): those of images except `imageId` and
 *  `markerSize`, plus `pageId` and `topBarTarget`. `data-*` attributes of the container (and
 *  of the loader's script tag) use the same names in kebab-case. */
export interface ImageChatTextOptions extends Omit<ImageChatOptions, "imageId" | "markerSize"> {
  /** Names the page's discussions. Default: page origin + path, `#`, the container's
   *  `data-collab-chat` value. */
  pageId?: string;
  /** Where the top bar goes: a CSS selector or an element (first in it), `"none"`, or
   *  omitted (first in the container). */
  topBarTarget?: string | Element;
}
"#;

#[cfg(feature = "text")]
#[wasm_bindgen]
extern "C" {
    /// `ImageChatTextOptions` in TypeScript.
    #[wasm_bindgen(typescript_type = "ImageChatTextOptions")]
    pub type ImageChatTextOptions;
    /// What `mountText` accepts.
    #[wasm_bindgen(typescript_type = "Element | string")]
    pub type MountTextTarget;
}

#[cfg(feature = "text")]
#[wasm_bindgen]
impl ImageChat {
    /// Mounts text mode on a container (an element holding text, e.g. `<article>`, or the
    /// first element a CSS selector matches): readers select text to discuss it, and every
    /// discussion is highlighted in place. A container that already has a widget hands that
    /// one over, as `mount` does. Throws an `Error` on an invalid option or target.
    #[wasm_bindgen(js_name = mountText)]
    pub fn mount_text(
        target: MountTextTarget,
        options: Option<ImageChatTextOptions>,
    ) -> Result<ImageChat, JsValue> {
        let existing = browser::window()
            .and_then(|w| w.document())
            .and_then(|doc| browser::resolve_target(&doc, &target).ok())
            .and_then(|e| mounted_on(&e));
        if let Some(shell) = existing {
            return Ok(ImageChat { shell });
        }
        let value: &JsValue = match &options {
            Some(o) => o,
            None => &JsValue::UNDEFINED,
        };
        let js = raw_options(value).map_err(WidgetError::into_js)?;
        let text =
            widget::text::TextOptions::read(value).map_err(|e| WidgetError::from(e).into_js())?;
        let shell = widget::text::mount_text(&target, RawOptions::default(), js, text)
            .map_err(WidgetError::into_js)?;
        register(&shell);
        Ok(ImageChat { shell })
    }

    /// Mounts text mode on every `[data-collab-chat]` element that has no widget yet, with
    /// `defaults` (the loader script tag's `data-*` values) under each container's own
    /// `data-*` attributes. Containers that fail to mount are reported on the console.
    #[wasm_bindgen(js_name = autoMountText)]
    pub fn auto_mount_text(defaults: Option<ImageChatTextOptions>) -> ImageChatList {
        let list = js_sys::Array::new();
        let value: &JsValue = match &defaults {
            Some(d) => d,
            None => &JsValue::UNDEFINED,
        };
        let raw = raw_options(value).unwrap_or_else(|e| {
            browser::log_error("autoMountText defaults", &e.into_js());
            RawOptions::default()
        });
        let text = widget::text::TextOptions::read(value).unwrap_or_default();
        let found = browser::window()
            .and_then(|w| w.document())
            .map(|doc| dom::plain::query_all(&doc, "[data-collab-chat]"));
        if let Some(found) = found {
            for i in 0..found.length() {
                let Some(el) = found.item(i) else { continue };
                // The container's own `data-top-bar-target` wins over the script tag's.
                let own = el
                    .dyn_ref::<web_sys::Element>()
                    .and_then(|e| e.get_attribute("data-top-bar-target"))
                    .map(|v| JsValue::from_str(&v));
                let text = widget::text::TextOptions {
                    page_id: None,
                    top_bar: own.or_else(|| text.top_bar.clone()),
                };
                let mounted =
                    widget::text::mount_text(&el, raw.clone(), RawOptions::default(), text);
                match mounted {
                    Ok(shell) => {
                        register(&shell);
                        list.push(&JsValue::from(ImageChat { shell }));
                    }
                    Err(WidgetError::AlreadyMounted) => {}
                    Err(e) => browser::log_error("autoMountText", &e.into_js()),
                }
            }
        }
        list.unchecked_into()
    }
}
