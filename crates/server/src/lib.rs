//! image-chat server (work in progress).

pub mod store;
