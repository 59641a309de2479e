//! An event listener that is removed when dropped.

use wasm_bindgen::closure::Closure;
use web_sys::{Event, EventTarget};

use super::plain;

/// A callback registered with `addEventListener`, unregistered on drop.
pub struct Listener {
    /// Kept to call `removeEventListener` on the same target.
    target: EventTarget,
    /// The event type, needed again for removal.
    kind: &'static str,
    /// Registered for the capture phase (removal must say so too).
    capture: bool,
    /// Owns the JS function; dropping it invalidates the function, so it must outlive the
    /// registration (it does: we remove the listener first).
    callback: Closure<dyn FnMut(Event)>,
}

impl Listener {
    /// Registers `callback` for `kind` events on `target`.
    pub fn new(
        target: &EventTarget,
        kind: &'static str,
        callback: impl FnMut(Event) + 'static,
    ) -> Self {
        Self::with_phase(target, kind, false, callback)
    }

    /// Registers `callback` for `kind` events on `target` in the capture phase, so it also
    /// hears events that do not bubble from below (`scroll` of any scrolling element).
    pub fn capture(
        target: &EventTarget,
        kind: &'static str,
        callback: impl FnMut(Event) + 'static,
    ) -> Self {
        Self::with_phase(target, kind, true, callback)
    }

    fn with_phase(
        target: &EventTarget,
        kind: &'static str,
        capture: bool,
        callback: impl FnMut(Event) + 'static,
    ) -> Self {
        let callback = Closure::<dyn FnMut(Event)>::new(callback);
        // addEventListener does not throw for a function argument.
        if capture {
            plain::listen_capture(target, kind, callback.as_ref());
        } else {
            plain::listen(target, kind, callback.as_ref());
        }
        Self {
            target: target.clone(),
            kind,
            capture,
            callback,
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if self.capture {
            plain::unlisten_capture(&self.target, self.kind, self.callback.as_ref());
        } else {
            plain::unlisten(&self.target, self.kind, self.callback.as_ref());
        }
    }
}
