//! Text anchors: where a discussion on page text is attached, and how it is found again after
//! the page's text changed. Pure logic (no DOM, no I/O), compiled for wasm32 (the widget's text
//! bundle) and native (its tests, and the protocol crate's validation).
//!
//! # Offsets
//!
//! A container (the element the site marked with `data-collab-chat`) is flattened to one
//! string: the concatenation of its text nodes in document order, what `Node.textContent`
//! returns. Every offset here — [`TextAnchor::start`], [`TextAnchor::end`], the ranges given to
//! [`describe`] and returned by [`locate`] — counts **UTF-16 code units** of that string from
//! its start: the unit DOM `Range` and `Text` offsets use, so the widget converts nothing.
//! An offset never falls between the two halves of a surrogate pair (`😀` is 2 units).
//!
//! # The anchor
//!
//! [`TextAnchor`] is the W3C Web Annotation `TextQuoteSelector` (`exact`, with up to
//! [`CONTEXT_UNITS`] of `prefix` and `suffix`) plus the `TextPositionSelector` (`start`,
//! `end`). Both are kept: the position finds the text at once while the page is unchanged; the
//! quote and its context find it again when text was inserted or removed elsewhere, or the
//! passage itself was slightly edited.
//!
//! # Re-anchoring ([`locate`])
//!
//! 1. **Position**: the text at `start..end` is still `exact`.
//! 2. **Exact**: `exact` occurs elsewhere; among several occurrences the one whose surroundings
//!    best match `prefix` / `suffix` wins (closeness to `start` breaks ties).
//! 3. **Fuzzy**: an approximate occurrence of `exact` with at most a quarter of its length in
//!    edits (Myers' bit-parallel algorithm, [`fuzzy`]), scored like Hypothesis does on quote,
//!    context and position similarity.
//!
//! Unlike the hosted products it replaces, it prefers no answer to a wrong one: a short quote
//! found only in an unrelated context, or a fuzzy candidate whose overall score is low, is not
//! a match, and [`locate`] returns `None` — the widget then lists the discussion as "on text
//! that changed" (it is never dropped).
//!
//! Module map: [`quote`] (the anchor, its limits and validation, [`describe`]), [`locate`]
//! (the three steps and the scoring), [`fuzzy`] (approximate search and edit distance),
//! [`units`] (UTF-16 helpers).

pub mod fuzzy;
pub mod locate;
pub mod quote;
pub mod units;

pub use locate::{How, Located, locate, locate_in};
pub use quote::{
    AnchorError, CONTEXT_UNITS, MAX_EXACT_UNITS, TextAnchor, describe, describe_in,
    describe_passage,
};
pub use units::FlatText;
