//! The widget's error type. Everything inside the crate returns [`WidgetError`]; it becomes a
//! JavaScript `Error` only at the wasm boundary ([`WidgetError::into_js`]), so messages stay
//! typed and testable.

use thiserror::Error;
use wasm_bindgen::JsValue;

use crate::options::OptionsError;

/// Why mounting or running the widget failed.
#[derive(Debug, Error)]
pub enum WidgetError {
    /// An option is invalid (see [`OptionsError`]).
    #[error(transparent)]
    Options(#[from] OptionsError),
    /// The target selector matched nothing.
    #[error("no element matches {0:?}")]
    NotFound(String),
    /// The target is not an `<img>` element.
    #[error("the target must be an <img> element")]
    NotAnImage,
    /// The image already has a widget.
    #[error("this image already has an image-chat widget; destroy it first")]
    AlreadyMounted,
    /// The image is not in a document (it needs a parent to be wrapped).
    #[error("the image must be attached to the document")]
    Detached,
    /// No `window` / `document` (not running in a browser page).
    #[error("image-chat needs a browser window")]
    NoWindow,
    /// A browser API threw. The message is the JavaScript error's text.
    #[error("browser error: {0}")]
    Js(String),
}

impl WidgetError {
    /// The error as a JavaScript `Error` (what `mount` throws).
    pub fn into_js(self) -> JsValue {
        js_sys::Error::new(&self.to_string()).into()
    }
}

impl From<JsValue> for WidgetError {
    fn from(value: JsValue) -> Self {
        // Errors have a message; other thrown values are shown as strings.
        let text = value
            .dyn_ref::<js_sys::Error>()
            .map(|e| String::from(e.message()))
            .or_else(|| value.as_string())
            .unwrap_or_else(|| format!("{value:?}"));
        WidgetError::Js(text)
    }
}

use wasm_bindgen::JsCast;

/// Result with [`WidgetError`].
pub type Result<T, E = WidgetError> = std::result::Result<T, E>;
