//! A `ResizeObserver` that disconnects when dropped.

use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{Element, ResizeObserver};

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
