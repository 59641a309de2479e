//! image-chat widget (compiled to WebAssembly).
pub mod geometry;
pub mod i18n;
pub mod options;
pub mod reltime;
