//! Fetching the page's language. Only English is compiled into the widget; French, Portuguese
//! and Russian are chunks beside it (`pkg/locales/<tag>.js`, each an ES module whose default
//! export is the table of `locales/<tag>.json`), imported when a widget first wants one
//! (`src/dom/lazy.js`). The loader (`www/embed.js`) starts the page's own language in parallel
//! with the wasm, so it is usually there the moment a widget mounts.
//!
//! Until a table arrives, and for good if it cannot be loaded (offline, blocked, a malformed
//! chunk), widgets speak English: [`crate::i18n::Locale::shown`]. When it arrives, every live
//! widget that wants it switches in place.

use std::cell::RefCell;

use wasm_bindgen::prelude::*;

use crate::browser;
use crate::i18n::{self, LoadError, Locale, PhraseSource};

#[wasm_bindgen(module = "/src/dom/lazy.js")]
extern "C" {
    #[wasm_bindgen(js_name = importLocale)]
    fn import_locale(tag: &str, done: &JsValue);
}

thread_local! {
    /// Locales being fetched: each is asked for once at a time.
    static PENDING: RefCell<Vec<Locale>> = const { RefCell::new(Vec::new()) };
}

/// Starts fetching `locale`'s table unless it is compiled in, loaded or already on its way.
pub fn request(locale: Locale) {
    if locale.shown() == locale {
        return;
    }
    let first = PENDING.with(|pending| {
        let mut pending = pending.borrow_mut();
        let first = !pending.contains(&locale);
        if first {
            pending.push(locale);
        }
        first
    });
    if first {
        let done = Closure::once_into_js(move |table: JsValue| arrived(locale, &table));
        import_locale(locale.tag(), &done);
    }
}

/// The chunk's import settled: `table` is its default export, or `undefined` on failure. A
/// later mount asks again, which only helps where the browser did not remember the failure
/// (browsers keep a failed module in their module map until the page reloads).
fn arrived(locale: Locale, table: &JsValue) {
    PENDING.with(|pending| pending.borrow_mut().retain(|l| *l != locale));
    let failure = if table.is_undefined() {
        "could not be loaded".to_owned()
    } else {
        match add(locale, table) {
            Ok(()) => return,
            Err(e) => e.message(),
        }
    };
    let text = [
        "the ",
        locale.tag(),
        " phrases ",
        &failure,
        ": showing English",
    ]
    .concat();
    browser::log_error("locale", &JsValue::from_str(&text));
}

/// Registers `table` (an object with every key of `locales/<tag>.json`) as `locale`'s phrases
/// and switches every live widget that wants it.
pub fn add(locale: Locale, table: &JsValue) -> Result<(), LoadError> {
    i18n::load(locale, &mut JsTable(table))?;
    crate::relocalize_all();
    Ok(())
}

/// A table as the chunk's JS object.
struct JsTable<'a>(&'a JsValue);

impl JsTable<'_> {
    fn get(&self, key: &str) -> Option<JsValue> {
        js_sys::Reflect::get(self.0, &JsValue::from_str(key)).ok()
    }
}

impl PhraseSource for JsTable<'_> {
    fn text(&mut self, key: &str) -> Option<String> {
        self.get(key)?.as_string()
    }

    fn forms(&mut self, key: &str) -> Option<[String; 3]> {
        let forms: js_sys::Array = self.get(key)?.dyn_into().ok()?;
        if forms.length() != 3 {
            return None;
        }
        Some([
            forms.get(0).as_string()?,
            forms.get(1).as_string()?,
            forms.get(2).as_string()?,
        ])
    }
}
