//! A `ResizeObserver` and a `MutationObserver` that disconnect when dropped.

use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::*;
use web_sys::{Element, Node, ResizeObserver};

/// Watches elements' sizes; calls back after layout, before paint.
pub struct ResizeWatch {
    /// The observer, disconnected on drop.
    observer: ResizeObserver,
    /// Owns the JS callback while the observer may call it.
    _callback: Closure<dyn FnMut()>,
}

impl ResizeWatch {
    /// Calls `callback` whenever any of `targets` changes size (and once after observing).
    pub fn new(
        targets: &[&Element],
        callback: impl FnMut() + 'static,
    ) -> Result<Self, wasm_bindgen::JsValue> {
        let callback = Closure::<dyn FnMut()>::new(callback);
        let observer = ResizeObserver::new(callback.as_ref().unchecked_ref())?;
        for target in targets {
            observer.observe(target);
        }
        Ok(Self {
            observer,
            _callback: callback,
        })
    }
}

impl Drop for ResizeWatch {
    fn drop(&mut self) {
        self.observer.disconnect();
    }
}

#[wasm_bindgen]
extern "C" {
    /// `MutationObserver`, bound here (its constructor and methods do not throw for a function
    /// and a valid options object) rather than through web-sys's throwing signatures.
    type MutationObserver;
    #[wasm_bindgen(constructor)]
    fn new(callback: &JsValue) -> MutationObserver;
    #[wasm_bindgen(method)]
    fn observe(this: &MutationObserver, target: &Node, options: &JsValue);
    #[wasm_bindgen(method)]
    fn disconnect(this: &MutationObserver);
    #[wasm_bindgen(method, js_name = takeRecords)]
    fn take_records(this: &MutationObserver) -> js_sys::Array;
}

/// Watches a subtree for added or removed nodes and changed attributes (anything that may move
/// an element without resizing it); calls back with the batch of `MutationRecord`s.
pub struct MutationWatch {
    /// The observer, disconnected on drop.
    observer: MutationObserver,
    /// Owns the JS callback while the observer may call it.
    _callback: Closure<dyn FnMut(js_sys::Array)>,
}

impl MutationWatch {
    /// Watches `root` and everything under it.
    pub fn new(root: &Node, callback: impl FnMut(js_sys::Array) + 'static) -> Self {
        Self::with_options(root, &["childList", "subtree", "attributes"], callback)
    }

    /// Watches `root` for what `keys` name (`MutationObserverInit` flags set to true, e.g.
    /// `characterData` for text changes).
    pub fn with_options(
        root: &Node,
        keys: &[&str],
        callback: impl FnMut(js_sys::Array) + 'static,
    ) -> Self {
        let callback = Closure::<dyn FnMut(js_sys::Array)>::new(callback);
        let observer = MutationObserver::new(callback.as_ref());
        let options = js_sys::Object::new();
        for &key in keys {
            let _ = js_sys::Reflect::set(&options, &key.into(), &JsValue::TRUE);
        }
        observer.observe(root, &options);
        Self {
            observer,
            _callback: callback,
        }
    }
}

impl MutationWatch {
    /// Forgets the changes not yet reported (the widget's own, just made).
    pub fn discard(&self) {
        let _ = self.observer.take_records();
    }
}

impl Drop for MutationWatch {
    fn drop(&mut self) {
        self.observer.disconnect();
    }
}
