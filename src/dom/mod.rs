//! Small owners of browser resources, each released on drop (the gloo pattern): an event
//! listener, a timeout, an animation frame, a WebSocket with its handlers, a ResizeObserver and
//! a MutationObserver. Nothing in the widget
//! calls `Closure::forget`, so dropping the widget leaves no callback behind. And [`Clones`]:
//! many elements built by one call into JS, and [`plain`]: DOM calls bound without `catch`.

pub mod clones;
pub mod listener;
pub mod observer;
pub mod plain;
pub mod socket;
pub mod timer;

pub use clones::Clones;
pub use listener::Listener;
pub use observer::{MutationWatch, ResizeWatch};
pub use socket::{Socket, SocketEvent};
pub use timer::{Frame, Timeout};
