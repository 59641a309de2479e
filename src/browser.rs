//! Thin helpers over browser APIs that the widget reads: clocks, randomness, the page's
//! location and languages, `localStorage`, and the console. Failures degrade quietly (a page
//! without storage just forgets the anonymous identity on reload).

use wasm_bindgen::{JsCast, JsValue};
use web_sys::{HtmlImageElement, Window};

use crate::options::PageEnv;

/// Milliseconds since the Unix epoch (`Date.now()`). The engine's clock: optimistic comments
/// are stamped with it, so it must be wall-clock time, not `performance.now()`.
pub fn now() -> u64 {
    js_sys::Date::now().max(0.0) as u64
}

/// A 64-bit seed for the engine's ids and jitter, from `crypto.getRandomValues` (falling back
/// to `Math.random` where there is no `crypto`, e.g. very old embedded browsers).
pub fn seed(window: &Window) -> u64 {
    let mut bytes = [0u8; 8];
    let ok = window
        .crypto()
        .ok()
        .and_then(|c| c.get_random_values_with_u8_array(&mut bytes).ok())
        .is_some();
    if ok {
        u64::from_le_bytes(bytes)
    } else {
        let hi = (js_sys::Math::random() * f64::from(u32::MAX)) as u64;
        let lo = (js_sys::Math::random() * f64::from(u32::MAX)) as u64;
        (hi << 32) ^ lo ^ now()
    }
}

/// The page facts option defaults come from.
pub fn page_env(window: &Window, img: &HtmlImageElement) -> PageEnv {
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
    PageEnv {
        protocol: location.protocol().unwrap_or_default(),
        host: location.host().unwrap_or_default(),
        origin: location.origin().unwrap_or_default(),
        path: location.pathname().unwrap_or_default(),
        languages,
        image_src: img.src(),
    }
}

/// `navigator.onLine` (true when unknown).
pub fn online(window: &Window) -> bool {
    window.navigator().on_line()
}

/// Reads a `localStorage` item.
pub fn load(window: &Window, key: &str) -> Option<String> {
    window.local_storage().ok().flatten()?.get_item(key).ok().flatten()
}

/// Writes a `localStorage` item (ignored when storage is unavailable or full).
pub fn store(window: &Window, key: &str, value: &str) {
    if let Ok(Some(storage)) = window.local_storage() {
        let _ = storage.set_item(key, value);
    }
}

/// Logs an unexpected browser error to the console (the widget keeps running).
pub fn log_error(context: &str, err: &JsValue) {
    web_sys::console::error_2(&JsValue::from_str(&format!("image-chat: {context}")), err);
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
