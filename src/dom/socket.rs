//! A WebSocket whose handlers are owned by this struct and detached on drop (after which the
//! socket is closed with 1000 if still open). The widget reports every event to the sync engine
//! tagged with the engine's connection id, so a late event from an abandoned socket is harmless.

use std::rc::Rc;

use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{CloseEvent, Event, MessageEvent, WebSocket};

#[wasm_bindgen::prelude::wasm_bindgen(module = "/src/dom/bulk.js")]
extern "C" {
    /// The UTF-8 bytes of a JS string, encoded natively: a snapshot frame is ~400 KB, which
    /// wasm-bindgen's `String` conversion copies a character at a time in (cold) JS.
    fn utf8(text: &js_sys::JsString) -> js_sys::Uint8Array;
}

/// What the socket reported, already decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum SocketEvent {
    /// `open`.
    Open,
    /// A text frame (binary frames are not part of the protocol and are dropped).
    Text(String),
    /// `close` with its code (1006 when the connection dropped without a close frame).
    Closed(u16),
    /// `error` (always followed by `close`).
    Error,
}

/// An open (or opening) WebSocket and the handlers that feed [`SocketEvent`]s to one callback.
pub struct Socket {
    /// The browser socket.
    ws: WebSocket,
    /// Owned handlers; the socket keeps only references, cleared in `Drop`.
    _on_open: Closure<dyn FnMut(Event)>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
    _on_error: Closure<dyn FnMut(Event)>,
}

impl Socket {
    /// Opens a socket to `url`; every event goes to `on_event`. Fails when the browser refuses
    /// the URL outright (bad syntax, blocked port).
    pub fn open(
        url: &str,
        on_event: Rc<dyn Fn(SocketEvent)>,
    ) -> Result<Self, wasm_bindgen::JsValue> {
        let ws = WebSocket::new(url)?;
        let cb = on_event.clone();
        let on_open = Closure::<dyn FnMut(Event)>::new(move |_| cb(SocketEvent::Open));
        let cb = on_event.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            if let Some(text) = e.data().dyn_ref::<js_sys::JsString>()
                && let Ok(text) = String::from_utf8(utf8(text).to_vec())
            {
                cb(SocketEvent::Text(text));
            }
        });
        let cb = on_event.clone();
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |e: CloseEvent| {
            cb(SocketEvent::Closed(e.code()))
        });
        let cb = on_event;
        let on_error = Closure::<dyn FnMut(Event)>::new(move |_| cb(SocketEvent::Error));
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        ws.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        Ok(Self {
            ws,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
            _on_error: on_error,
        })
    }

    /// Sends a text frame. Errors (socket not open any more) are dropped: the `close` event
    /// that follows tells the engine.
    pub fn send(&self, text: &str) {
        let _ = self.ws.send_with_str(text);
    }

    /// Detaches the handlers and closes with `code` and `reason`.
    pub fn close(self, code: u16, reason: &str) {
        self.detach();
        let _ = self.ws.close_with_code_and_reason(code, reason);
    }

    fn detach(&self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        self.ws.set_onerror(None);
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.detach();
        // Already closing / closed sockets ignore this; 1000 = "going away on purpose".
        if self.ws.ready_state() <= WebSocket::OPEN {
            let _ = self.ws.close_with_code_and_reason(1000, "bye");
        }
    }
}
