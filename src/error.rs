//! The widget's error type. Everything inside the crate returns [`WidgetError`]; it becomes a
//! JavaScript `Error` only at the wasm boundary ([`WidgetError::into_js`]), so messages stay
//! typed and testable.
//!
//! Messages are built by concatenation ([`WidgetError::message`]), not by `Display` and
//! `format!`: that keeps `core::fmt` out of the wasm bundle. `Display` forwards to the same
//! text for native code and tests.

use wasm_bindgen::{JsCast, JsValue};

use crate::options::OptionsError;

/// Why mounting or running the widget failed.
#[derive(Debug)]
pub enum WidgetError {
    /// An option is invalid (see [`OptionsError`]).
    Options(OptionsError),
    /// The target selector matched nothing.
    NotFound(String),
    /// The target is not an `<img>` element.
    NotAnImage,
    /// The image already has a widget.
    AlreadyMounted,
    /// Text mode's target cannot hold text (an `<img>`, a form field, a canvas, a video).
    #[cfg(feature = "text")]
    NotAContainer,
    /// The image is not in a document (the overlay is placed by measuring it).
    Detached,
    /// No `window` / `document` (not running in a browser page).
    NoWindow,
    /// A browser API threw. The message is the JavaScript error's text.
    Js(String),
}

impl WidgetError {
    /// The message a person (the site's developer) reads.
    pub fn message(&self) -> String {
        match self {
            WidgetError::Options(e) => e.message(),
            WidgetError::NotFound(selector) => ["no element matches \"", selector, "\""].concat(),
            WidgetError::NotAnImage => "the target must be an <img> element".to_owned(),
            WidgetError::AlreadyMounted => {
                "this image already has an image-chat widget; destroy it first".to_owned()
            }
            #[cfg(feature = "text")]
            WidgetError::NotAContainer => {
                "the target must be an element holding text, such as <article>".to_owned()
            }
            WidgetError::Detached => "the image must be attached to the document".to_owned(),
            WidgetError::NoWindow => "image-chat needs a browser window".to_owned(),
            WidgetError::Js(text) => ["browser error: ", text].concat(),
        }
    }

    /// The error as a JavaScript `Error` (what `mount` throws).
    pub fn into_js(self) -> JsValue {
        js_sys::Error::new(&self.message()).into()
    }
}

impl std::fmt::Display for WidgetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for WidgetError {}

impl From<OptionsError> for WidgetError {
    fn from(e: OptionsError) -> Self {
        WidgetError::Options(e)
    }
}

impl From<JsValue> for WidgetError {
    fn from(value: JsValue) -> Self {
        // Errors have a message; other thrown values are shown as strings, anything else by
        // its type (JsValue's `Debug` would bring a large formatter into the JS glue).
        let text = value
            .dyn_ref::<js_sys::Error>()
            .map(|e| String::from(e.message()))
            .or_else(|| value.as_string())
            .unwrap_or_else(|| {
                let kind = value.js_typeof().as_string().unwrap_or_default();
                ["a thrown ", &kind, " value"].concat()
            });
        WidgetError::Js(text)
    }
}

/// Result with [`WidgetError`].
pub type Result<T, E = WidgetError> = std::result::Result<T, E>;
