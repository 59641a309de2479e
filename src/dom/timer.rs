//! A one-shot `setTimeout` that is cleared when dropped, and an animation frame request that is
//! cancelled when dropped.

use wasm_bindgen::closure::Closure;

/// A pending timeout; dropping it cancels the call.
pub struct Timeout {
    /// The browser's handle, for `clearTimeout`.
    id: i32,
    /// Owns the JS function for as long as the browser may call it.
    _callback: Closure<dyn FnMut()>,
}

impl Timeout {
    /// Calls `callback` once after `millis` milliseconds (clamped to what `setTimeout` takes).
    /// `None` when there is no window.
    pub fn new(millis: f64, callback: impl FnMut() + 'static) -> Option<Self> {
        let window = crate::browser::window()?;
        let callback = Closure::<dyn FnMut()>::new(callback);
        let delay = millis.clamp(0.0, f64::from(i32::MAX)) as i32;
        let id = super::plain::set_timeout(&window, callback.as_ref(), delay);
        Some(Self {
            id,
            _callback: callback,
        })
    }
}

impl Drop for Timeout {
    fn drop(&mut self) {
        if let Some(window) = crate::browser::window() {
            window.clear_timeout_with_handle(self.id);
        }
    }
}

/// A pending `requestAnimationFrame`; dropping it cancels the call.
pub struct Frame {
    /// The browser's handle, for `cancelAnimationFrame`.
    id: i32,
    /// Owns the JS function for as long as the browser may call it.
    _callback: Closure<dyn FnMut()>,
}

impl Frame {
    /// Calls `callback` once before the next paint. `None` when there is no window.
    pub fn new(callback: impl FnMut() + 'static) -> Option<Self> {
        let window = crate::browser::window()?;
        let callback = Closure::<dyn FnMut()>::new(callback);
        let id = super::plain::request_frame(&window, callback.as_ref());
        Some(Self {
            id,
            _callback: callback,
        })
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        if let Some(window) = crate::browser::window() {
            super::plain::cancel_frame(&window, self.id);
        }
    }
}
