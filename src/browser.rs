//! Thin helpers over browser APIs that the widget reads: clocks, randomness, the page's
//! location and languages, `localStorage`, and the console. Failures degrade quietly (a page
//! without storage just forgets the anonymous identity on reload).

use image_chat_sync::ids::IdSource;
use wasm_bindgen::prelude::*;
use web_sys::Window;

use crate::error::WidgetError;

use crate::options::PageEnv;

#[wasm_bindgen]
extern "C" {
    /// `globalThis`, read once.
    #[wasm_bindgen(thread_local_v2, js_name = globalThis)]
    static GLOBAL: JsValue;
}

/// The page's `window` (`None` outside a window, e.g. in a worker). Read from `globalThis`:
/// `web_sys::window()` goes through `js_sys::global()`, which tries four ways to find the
/// global object (`globalThis`, `self`, `window`, `global`), each an import and a glue
/// function, for runtimes older than `globalThis` (2019), which cannot run the widget's
/// ES module glue anyway.
pub fn window() -> Option<Window> {
    GLOBAL.with(|g| g.clone().dyn_into().ok())
}

/// Milliseconds since the Unix epoch (`Date.now()`). The engine's clock: optimistic comments
/// are stamped with it, so it must be wall-clock time, not `performance.now()`.
pub fn now() -> u64 {
    js_sys::Date::now().max(0.0) as u64
}

/// The widget's [`IdSource`]: the 16 bytes of every id it mints (`chatId`, `commentId`,
/// `broadcastId`) from `crypto.getRandomValues`, the browser's cryptographic generator, so no
/// id says anything about the next (see `image_chat_sync::ids`).
#[derive(Debug)]
pub struct CryptoIds(web_sys::Crypto);

impl CryptoIds {
    /// The page's `crypto`; the widget does not run without it (ids would be guessable).
    pub fn new(window: &Window) -> Result<Self, WidgetError> {
        window
            .crypto()
            .map(Self)
            .map_err(|_| WidgetError::Js("crypto.getRandomValues is not available".to_owned()))
    }

    /// A 64-bit seed for the engine's backoff jitter.
    pub fn seed(&mut self) -> u64 {
        let bytes = self.random16();
        u64::from_le_bytes([
            bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
        ])
    }
}

impl IdSource for CryptoIds {
    fn random16(&mut self) -> [u8; 16] {
        let mut bytes = [0u8; 16];
        if let Err(err) = self.0.get_random_values_with_u8_array(&mut bytes) {
            // Web Crypto throws only for more than 65,536 bytes, never for 16. Should a broken
            // environment throw anyway, the id stays all zeros: the server refuses its second
            // use as a duplicate, visibly, and nothing about it is predictable from other ids.
            log_error("crypto.getRandomValues", &err);
        }
        bytes
    }
}

/// The page facts option defaults come from.
pub fn page_env(window: &Window, image_src: String) -> PageEnv {
    let location = window.location();
    let nav = window.navigator();
    let mut languages: Vec<String> = nav
        .languages()
        .iter()
        .filter_map(|v| v.as_string())
        .collect();
    if languages.is_empty()
        && let Some(lang) = nav.language()
    {
        languages.push(lang);
    }
    let [protocol, host, origin, path] = crate::dom::plain::location(&location);
    PageEnv {
        protocol,
        host,
        origin,
        path,
        languages,
        image_src,
    }
}

/// `navigator.onLine` (true when unknown).
pub fn online(window: &Window) -> bool {
    window.navigator().on_line()
}

/// Reads a `localStorage` item.
pub fn load(window: &Window, key: &str) -> Option<String> {
    window
        .local_storage()
        .ok()
        .flatten()?
        .get_item(key)
        .ok()
        .flatten()
}

/// Writes a `localStorage` item (ignored when storage is unavailable or full).
pub fn store(window: &Window, key: &str, value: &str) {
    if let Ok(Some(storage)) = window.local_storage() {
        let _ = storage.set_item(key, value);
    }
}

/// Copies `text` to the clipboard (`navigator.clipboard.writeText`, asynchronous; a refusal,
/// e.g. on a page without a secure context, leaves the text selected for Ctrl+C instead).
pub fn copy_text(window: &Window, text: &str) {
    let clipboard = js_sys::Reflect::get(&window.navigator(), &JsValue::from_str("clipboard"));
    let Ok(clipboard) = clipboard else { return };
    let write = js_sys::Reflect::get(&clipboard, &JsValue::from_str("writeText"));
    if let Ok(write) = write.and_then(|f| f.dyn_into::<js_sys::Function>())
        && let Ok(promise) = write.call1(&clipboard, &JsValue::from_str(text))
    {
        // Swallow a rejection (no permission): the text is selected anyway. The handler is
        // `Boolean` (a built-in: no closure to own, no eval for a site's CSP to refuse).
        let catch = js_sys::Reflect::get(&promise, &JsValue::from_str("catch"));
        let boolean = js_sys::Reflect::get(window, &JsValue::from_str("Boolean"));
        if let (Ok(catch), Ok(boolean)) = (catch, boolean)
            && let Ok(catch) = catch.dyn_into::<js_sys::Function>()
        {
            let _ = catch.call1(&promise, &boolean);
        }
    }
}

/// Logs an unexpected browser error to the console (the widget keeps running).
pub fn log_error(context: &str, err: &JsValue) {
    web_sys::console::error_2(&JsValue::from_str(&["image-chat: ", context].concat()), err);
}

/// Finds the element a selector names, or passes an element through.
pub fn resolve_target(
    doc: &web_sys::Document,
    target: &JsValue,
) -> Result<web_sys::Element, crate::error::WidgetError> {
    use crate::error::WidgetError;
    if let Some(selector) = target.as_string() {
        return doc
            .query_selector(&selector)
            .map_err(WidgetError::from)?
            .ok_or(WidgetError::NotFound(selector));
    }
    target
        .dyn_ref::<web_sys::Element>()
        .cloned()
        .ok_or(WidgetError::NotAnImage)
}

/// Reads a JS options object field by field (no JSON round trip, no serde in the bundle).
/// `undefined` / `null` mean no options.
pub fn read_options(
    value: &JsValue,
) -> Result<crate::options::RawOptions, crate::options::OptionsError> {
    use crate::options::{Loose, OptionsError, RawOptions};
    if value.is_undefined() || value.is_null() {
        return Ok(RawOptions::default());
    }
    if !value.is_object() {
        return Err(OptionsError::NotAnObject);
    }
    let get = |name: &str| {
        js_sys::Reflect::get(value, &JsValue::from_str(name))
            .ok()
            .filter(|v| !v.is_undefined() && !v.is_null())
    };
    let text = |name: &'static str| -> Result<Option<String>, OptionsError> {
        match get(name) {
            None => Ok(None),
            Some(v) => v.as_string().map(Some).ok_or(OptionsError::WrongType {
                option: name,
                expected: "string",
            }),
        }
    };
    let loose = |name: &str| {
        get(name).map(|v| {
            if let Some(b) = v.as_bool() {
                Loose::Bool(b)
            } else if let Some(n) = v.as_f64() {
                Loose::Number(n)
            } else if let Some(s) = v.as_string() {
                Loose::Text(s)
            } else {
                Loose::Other(v.js_typeof().as_string().unwrap_or_default())
            }
        })
    };
    Ok(RawOptions {
        server: text("server")?,
        tenant: text("tenant")?,
        image_id: text("imageId")?,
        locale: text("locale")?,
        read_only: loose("readOnly"),
        marker_size: loose("markerSize"),
        theme: text("theme")?,
        auth: get("auth").map(|a| read_auth(&a)),
        name: text("name")?,
    })
}

/// Reads an `auth` value: an object, or a JSON string of one (the `data-auth` attribute).
pub fn read_auth(value: &JsValue) -> Result<crate::options::AuthFields, String> {
    let object = match value.as_string() {
        Some(json) => {
            js_sys::JSON::parse(&json).map_err(|_| "`auth` is not valid JSON".to_owned())?
        }
        None => value.clone(),
    };
    if !object.is_object() {
        return Err("`auth` must be an object".to_owned());
    }
    let get = |name: &str| js_sys::Reflect::get(&object, &JsValue::from_str(name)).ok();
    let text = |name: &str| get(name).and_then(|v| v.as_string());
    Ok(crate::options::AuthFields {
        kind: text("type"),
        name: text("name"),
        token: text("token"),
        user_data: text("userData"),
        timestamp: get("timestamp").and_then(|v| v.as_f64()),
        hash: text("hash"),
    })
}
