//! The text anchor ([`TextAnchor`]), its limits and validation (shared by the widget and the
//! server through the protocol crate), and [`describe`], which builds one from a selected range
//! ([`TextAnchor::from_quote`] from a quote another tool wrote, cut the same way).

use std::ops::Range;

use thiserror::Error;

use crate::units::{FlatText, utf16_len};

/// Longest quoted passage (`exact`), in UTF-16 code units: several paragraphs. Longer
/// selections are refused ([`AnchorError::TooLong`]); the widget says so.
pub const MAX_EXACT_UNITS: usize = 4_000;

/// Context kept on each side of the passage (`prefix`, `suffix`), in UTF-16 code units: the
/// most [`describe`] takes and the most a server accepts. Enough to tell repeated phrases apart,
/// small enough to keep a new discussion well under 1 KB on the wire.
pub const CONTEXT_UNITS: usize = 32;

/// Where a discussion on page text is attached: a passage of the container's flattened text
/// (offsets in UTF-16 code units, see the crate docs), by quote and by position.
///
/// Invariants ([`TextAnchor::validate`]): `exact` is 1 to [`MAX_EXACT_UNITS`] units and not
/// only white space; `prefix` and `suffix` are at most [`CONTEXT_UNITS`] units each; none of
/// the three holds a control character other than tab, line feed and carriage return;
/// `start < end` and `end - start` is the length of `exact`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TextAnchor {
    /// The passage itself (W3C `TextQuoteSelector.exact`).
    pub exact: String,
    /// Up to [`CONTEXT_UNITS`] of text just before it (empty at the start of the container).
    pub prefix: String,
    /// Up to [`CONTEXT_UNITS`] of text just after it (empty at the end of the container).
    pub suffix: String,
    /// Offset of the passage's first unit (W3C `TextPositionSelector.start`).
    pub start: u32,
    /// Offset just past its last unit (`TextPositionSelector.end`).
    pub end: u32,
}

/// Why a range cannot be anchored, or an anchor is not well-formed. The protocol reports every
/// one of them as `invalid-anchor`, with this text as the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum AnchorError {
    /// The range is empty, or reaches past the end of the text (`start > end` included).
    #[error("the range is empty or outside the text")]
    OutOfRange,
    /// An offset falls between the two halves of a surrogate pair.
    #[error("an offset splits a character")]
    SplitsCharacter,
    /// The passage is longer than [`MAX_EXACT_UNITS`].
    #[error("the quoted text is longer than {max} UTF-16 code units")]
    TooLong {
        /// The limit.
        max: usize,
    },
    /// The passage is empty or only white space.
    #[error("the quoted text is empty or blank")]
    Blank,
    /// `prefix` or `suffix` is longer than [`CONTEXT_UNITS`].
    #[error("the context is longer than {max} UTF-16 code units")]
    ContextTooLong {
        /// The limit.
        max: usize,
    },
    /// A control character other than tab, line feed or carriage return.
    #[error("the quoted text or its context contains control characters")]
    ControlCharacters,
    /// `start >= end`, or `end - start` is not the length of `exact`.
    #[error("start and end must satisfy start < end and end - start = length of exact")]
    BadOffsets,
}

impl TextAnchor {
    /// Checks the invariants listed on [`TextAnchor`].
    pub fn validate(&self) -> Result<(), AnchorError> {
        let exact_len = utf16_len(&self.exact);
        if exact_len > MAX_EXACT_UNITS {
            return Err(AnchorError::TooLong {
                max: MAX_EXACT_UNITS,
            });
        }
        if self.exact.chars().all(char::is_whitespace) {
            return Err(AnchorError::Blank);
        }
        if utf16_len(&self.prefix) > CONTEXT_UNITS || utf16_len(&self.suffix) > CONTEXT_UNITS {
            return Err(AnchorError::ContextTooLong { max: CONTEXT_UNITS });
        }
        let control = |s: &str| {
            s.chars()
                .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
        };
        if control(&self.exact) || control(&self.prefix) || control(&self.suffix) {
            return Err(AnchorError::ControlCharacters);
        }
        let span = self.end.checked_sub(self.start).map(|s| s as usize);
        if self.start >= self.end || span != Some(exact_len) {
            return Err(AnchorError::BadOffsets);
        }
        Ok(())
    }

    /// The passage's offsets as a range.
    pub fn range(&self) -> Range<u32> {
        self.start..self.end
    }

    /// The anchor of a quote written elsewhere (a W3C `TextQuoteSelector`, whose tool may keep
    /// more context): `prefix` and `suffix` cut to the [`CONTEXT_UNITS`] next to `exact` the
    /// way [`describe`] cuts them, placed at `start` (`end` follows from `exact`). Not
    /// validated, so that a caller reports a bad quote like any other anchor
    /// ([`TextAnchor::validate`]); `None` only when `end` would pass `u32::MAX`.
    pub fn from_quote(exact: &str, prefix: &str, suffix: &str, start: u32) -> Option<Self> {
        // The three joined are the text `describe` would have cut from.
        let text = FlatText::new(&[prefix, exact, suffix].concat());
        let at = utf16_len(prefix);
        let len = utf16_len(exact);
        let (exact, prefix, suffix) = with_context(&text, at, at + len)?;
        Some(Self {
            exact,
            prefix,
            suffix,
            start,
            end: start.checked_add(u32::try_from(len).ok()?)?,
        })
    }
}

/// The passage `start..end` of `text` with up to [`CONTEXT_UNITS`] of context on each side,
/// never splitting a character: `(exact, prefix, suffix)`. `None` when an offset is not a
/// boundary of the text.
fn with_context(text: &FlatText, start: usize, end: usize) -> Option<(String, String, String)> {
    let units = text.units();
    let before = crate::units::ceil_boundary(units, start.saturating_sub(CONTEXT_UNITS));
    let after = crate::units::floor_boundary(units, (end + CONTEXT_UNITS).min(units.len()));
    Some((
        text.slice(start, end)?,
        text.slice(before, start)?,
        text.slice(end, after)?,
    ))
}

/// Builds the anchor of `range` in `text` (the container's flattened text; offsets in UTF-16
/// code units): the passage, up to [`CONTEXT_UNITS`] of context on each side (never splitting
/// a character), and the offsets. Fails when the range is empty or outside the text, splits a
/// character, or the result would not be a valid anchor ([`TextAnchor::validate`]).
pub fn describe(text: &str, range: Range<u32>) -> Result<TextAnchor, AnchorError> {
    describe_in(&FlatText::new(text), range)
}

/// [`describe`] on text already encoded (the widget keeps one [`FlatText`] per change).
pub fn describe_in(text: &FlatText, range: Range<u32>) -> Result<TextAnchor, AnchorError> {
    let (start, end) = (range.start as usize, range.end as usize);
    if start >= end || end > text.len() {
        return Err(AnchorError::OutOfRange);
    }
    if !text.is_boundary(start) || !text.is_boundary(end) {
        return Err(AnchorError::SplitsCharacter);
    }
    if end - start > MAX_EXACT_UNITS {
        return Err(AnchorError::TooLong {
            max: MAX_EXACT_UNITS,
        });
    }
    let (exact, prefix, suffix) =
        with_context(text, start, end).ok_or(AnchorError::SplitsCharacter)?;
    let anchor = TextAnchor {
        exact,
        prefix,
        suffix,
        start: range.start,
        end: range.end,
    };
    anchor.validate()?;
    Ok(anchor)
}

/// The anchor of the first occurrence of `passage` in `text`, for tools and tests that know the
/// words rather than the offsets (the offsets counted in UTF-16 units, as [`describe`] wants
/// them). `None` when `passage` is not in `text` or [`describe`] refuses it.
pub fn describe_passage(text: &str, passage: &str) -> Option<TextAnchor> {
    let at = text.find(passage)?;
    let start = u32::try_from(utf16_len(&text[..at])).ok()?;
    let end = start.checked_add(u32::try_from(utf16_len(passage)).ok()?)?;
    describe(text, start..end).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_passage_counts_the_offsets_in_utf16_units() {
        // The fox is two UTF-16 units and four UTF-8 bytes: a byte offset would be off by two.
        let text = "🦊 The quick brown fox jumps.";
        let a = describe_passage(text, "brown fox").expect("found");
        assert_eq!((a.start, a.end), (13, 22));
        assert_eq!(a, describe(text, 13..22).expect("anchor"));
        assert_eq!(describe_passage(text, "lazy dog"), None);
    }

    #[test]
    fn describe_takes_the_passage_context_and_offsets() {
        let text = "The quick brown fox jumps over the lazy dog.";
        let a = describe(text, 10..19).expect("anchor");
        assert_eq!(a.exact, "brown fox");
        assert_eq!(a.prefix, "The quick ");
        assert_eq!(a.suffix, " jumps over the lazy dog.");
        assert_eq!((a.start, a.end), (10, 19));
        assert_eq!(a.validate(), Ok(()));
    }

    #[test]
    fn context_is_capped_and_never_splits_a_character() {
        let text = format!("{}x{}", "😀".repeat(40), "😀".repeat(40));
        let a = describe(&text, 80..81).expect("anchor");
        assert_eq!(a.exact, "x");
        // 32 units of 2-unit characters: 16 emoji each side.
        assert_eq!(a.prefix, "😀".repeat(16));
        assert_eq!(a.suffix, "😀".repeat(16));
        // 32 units back from `x` is the second half of an emoji: the prefix starts after it.
        let a = describe(&format!("{}ax", "😀".repeat(17)), 35..36).expect("anchor");
        assert_eq!(a.prefix, format!("{}a", "😀".repeat(15)));
        let b = describe(&format!("xa{}", "😀".repeat(17)), 0..1).expect("anchor");
        assert_eq!(b.suffix, format!("a{}", "😀".repeat(15)));
    }

    #[test]
    fn a_quote_from_elsewhere_is_cut_like_describe_and_not_validated() {
        // Whatever the range, the quote of its whole surroundings is the anchor `describe`
        // builds: one cut, at the same boundaries (the emoji make 32 units fall mid-pair).
        let text = format!(
            "{}aééxyzd{}b{}",
            "😀".repeat(20),
            "😀".repeat(17),
            "c".repeat(40)
        );
        let flat = FlatText::new(&text);
        let slice = |a: usize, b: usize| flat.slice(a, b).expect("boundaries");
        let around = describe(&text, 43..46).expect("anchor");
        assert_eq!(around.exact, "xyz");
        assert_eq!(
            (utf16_len(&around.prefix), utf16_len(&around.suffix)),
            (31, 31)
        );
        for (start, end) in [(43, 46), (40, 41), (0, 2), (46, flat.len())] {
            let quoted = TextAnchor::from_quote(
                &slice(start, end),
                &slice(0, start),
                &slice(end, flat.len()),
                start as u32,
            );
            let described = describe(&text, start as u32..end as u32).expect("anchor");
            assert_eq!(quoted, Some(described), "{start}..{end}");
        }
        // The position is the caller's; `end` follows from `exact` (😀 is 2 units).
        let a = TextAnchor::from_quote("h😀llo", "", "", 120).expect("placed");
        assert_eq!((a.start, a.end), (120, 126));
        // A bad quote is kept as it is, for the caller's validation to report.
        let blank = TextAnchor::from_quote(" ", "p", "s\u{0}", 3).expect("kept");
        assert_eq!(
            (blank.exact.as_str(), blank.suffix.as_str()),
            (" ", "s\u{0}")
        );
        assert_eq!(blank.validate(), Err(AnchorError::Blank));
        assert_eq!(TextAnchor::from_quote("xy", "", "", u32::MAX - 1), None);
    }

    #[test]
    fn bad_ranges_are_refused() {
        let text = "a😀b";
        assert_eq!(describe(text, 2..2), Err(AnchorError::OutOfRange));
        #[allow(clippy::reversed_empty_ranges, reason = "start > end on purpose")]
        let reversed = 3..1;
        assert_eq!(describe(text, reversed), Err(AnchorError::OutOfRange));
        assert_eq!(describe(text, 0..9), Err(AnchorError::OutOfRange));
        assert_eq!(describe(text, 0..2), Err(AnchorError::SplitsCharacter));
        assert_eq!(describe(text, 2..4), Err(AnchorError::SplitsCharacter));
        assert_eq!(describe("a   b", 1..4), Err(AnchorError::Blank));
        assert_eq!(
            describe("a\u{0}b", 0..3),
            Err(AnchorError::ControlCharacters)
        );
        let long = "x".repeat(MAX_EXACT_UNITS + 1);
        assert_eq!(
            describe(&long, 0..(MAX_EXACT_UNITS as u32 + 1)),
            Err(AnchorError::TooLong {
                max: MAX_EXACT_UNITS
            })
        );
        assert!(describe(&long, 0..MAX_EXACT_UNITS as u32).is_ok());
    }

    #[test]
    fn validation_checks_every_invariant() {
        let good = TextAnchor {
            exact: "fox".into(),
            prefix: "brown ".into(),
            suffix: " jumps".into(),
            start: 10,
            end: 13,
        };
        assert_eq!(good.validate(), Ok(()));
        let with = |f: &dyn Fn(&mut TextAnchor)| {
            let mut a = good.clone();
            f(&mut a);
            a.validate()
        };
        assert_eq!(with(&|a| a.end = 14), Err(AnchorError::BadOffsets));
        assert_eq!(
            with(&|a| {
                a.start = 13;
                a.end = 10
            }),
            Err(AnchorError::BadOffsets)
        );
        assert_eq!(with(&|a| a.exact = " \n".into()), Err(AnchorError::Blank));
        assert_eq!(with(&|a| a.exact = String::new()), Err(AnchorError::Blank));
        assert_eq!(
            with(&|a| a.prefix = "p".repeat(33)),
            Err(AnchorError::ContextTooLong { max: CONTEXT_UNITS })
        );
        assert_eq!(
            with(&|a| a.suffix = "\u{1b}[31m".into()),
            Err(AnchorError::ControlCharacters)
        );
        assert_eq!(with(&|a| a.suffix = "line\nnext".into()), Ok(()));
        assert_eq!(
            with(&|a| {
                a.exact = "😀".into();
                a.end = 12
            }),
            Ok(())
        );
    }
}
