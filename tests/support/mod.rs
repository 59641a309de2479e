//! What every browser test file shares (`mod support;` in `tests/widget.rs` and
//! `tests/text.rs`): the page's document and bounded waits on real timers. A wait polls a DOM
//! condition and fails with what it was waiting for; no test sleeps for a fixed time to let
//! something happen.

use wasm_bindgen_futures::JsFuture;

/// The test page's document.
pub fn doc() -> web_sys::Document {
    web_sys::window().unwrap().document().unwrap()
}

/// Resolves after `ms` milliseconds of the page's own timer.
pub async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        web_sys::window()
            .unwrap()
            .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms)
            .unwrap();
    });
    JsFuture::from(promise).await.unwrap();
}

/// Polls `cond` every 10 ms for up to 5 s; panics with `what` on timeout.
pub async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        sleep(10).await;
    }
    panic!("timed out waiting for: {what}");
}
