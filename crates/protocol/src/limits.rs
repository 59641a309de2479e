//! Sizes, ranges and the validation both sides run before anything reaches the network or the
//! database. The widget checks first (to show the person a precise message at once); the server
//! checks again, because every frame it receives is untrusted.

use thiserror::Error;

/// Longest accepted client frame, in bytes. A maximal comment (4,000 chars of 4-byte UTF-8
/// escaped as `\uXXXX\uXXXX` pairs would be larger, but such text is rejected by the text rules
/// long before) fits comfortably.
pub const MAX_CLIENT_FRAME_BYTES: usize = 32 * 1024;
/// Longest comment, in Unicode scalar values (what a person perceives as characters).
pub const MAX_TEXT_CHARS: usize = 4_000;
/// Longest display name, in Unicode scalar values.
pub const MAX_NAME_CHARS: usize = 64;
/// Longest tenant id, in bytes.
pub const MAX_TENANT_ID_BYTES: usize = 64;
/// Longest image id, and page id, in bytes.
pub const MAX_IMAGE_ID_BYTES: usize = 512;
/// Longest quoted passage of a text anchor, in UTF-16 code units (the anchor crate's limit).
pub const MAX_EXACT_UNITS: usize = image_chat_anchor::MAX_EXACT_UNITS;
/// Longest `prefix` / `suffix` of a text anchor, in UTF-16 code units.
pub const MAX_CONTEXT_UNITS: usize = image_chat_anchor::CONTEXT_UNITS;
/// Coordinates are stored with this many decimal places: 1/100,000 of the image side is below
/// a pixel for any image up to 100,000 px, and it keeps a marker creation frame short.
pub const COORDINATE_DECIMALS: i32 = 5;

/// Why a value was refused. Each variant maps to one wire error code.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ValidationError {
    /// An id is not in its required format.
    #[error("{what} is not in the required format")]
    InvalidId {
        /// Which field.
        what: &'static str,
    },
    /// A coordinate is NaN, infinite, or outside [0, 1].
    #[error("coordinates must be finite fractions of the image size between 0 and 1")]
    InvalidCoordinates,
    /// A comment is empty or only whitespace.
    #[error("the comment is empty")]
    EmptyText,
    /// A comment is longer than [`MAX_TEXT_CHARS`].
    #[error("the comment is longer than {max} characters")]
    TextTooLong {
        /// The limit.
        max: usize,
    },
    /// Text contains control characters other than tab and line breaks.
    #[error("the text contains control characters")]
    ControlCharacters,
    /// A display name is empty or longer than [`MAX_NAME_CHARS`].
    #[error("the name must be 1 to {max} characters")]
    InvalidName {
        /// The limit.
        max: usize,
    },
    /// A comment is made only of invisible characters (spaces, zero-width and format
    /// characters such as bidi controls): it would show as nothing. Reported as `empty-text`.
    #[error("the comment has no visible characters")]
    InvisibleText,
    /// A display name is made only of invisible characters: it would show as nothing (or let
    /// its bearer pass for someone else). Reported as `invalid-name`.
    #[error("the name has no visible characters")]
    InvisibleName,
    /// A text anchor breaks its rules (see [`image_chat_anchor::TextAnchor`]). Reported as
    /// `invalid-anchor`.
    #[error("invalid text anchor: {0}")]
    InvalidAnchor(#[from] image_chat_anchor::AnchorError),
    /// A text anchor on an image, or a point or region on a page. Reported as
    /// `wrong-anchor-kind`.
    #[error("{0}")]
    WrongAnchorKind(&'static str),
}

/// Whether `c` shows as nothing by itself: white space (`White_Space`), format characters
/// (general category `Cf`: zero-width space and joiners, bidi marks, embeddings, overrides and
/// isolates, the byte-order mark, soft hyphen, tag characters…), the rest of Unicode's
/// `Default_Ignorable_Code_Point` (variation selectors, Hangul fillers, Mongolian free
/// variation selectors…) and the Braille blank, which fonts draw empty. Unicode 16 data, kept
/// as a hand-written table so the widget does not link a Unicode database.
pub fn is_invisible(c: char) -> bool {
    // Ranges, sorted, inclusive.
    const INVISIBLE: &[(u32, u32)] = &[
        (0x0009, 0x000D),
        (0x0020, 0x0020),
        (0x0085, 0x0085),
        (0x00A0, 0x00A0),
        (0x00AD, 0x00AD),
        (0x034F, 0x034F),
        (0x0600, 0x0605),
        (0x061C, 0x061C),
        (0x06DD, 0x06DD),
        (0x070F, 0x070F),
        (0x0890, 0x0891),
        (0x08E2, 0x08E2),
        (0x115F, 0x1160),
        (0x1680, 0x1680),
        (0x17B4, 0x17B5),
        (0x180B, 0x180F),
        (0x2000, 0x200F),
        (0x2028, 0x202F),
        (0x205F, 0x206F),
        (0x2800, 0x2800),
        (0x3000, 0x3000),
        (0x3164, 0x3164),
        (0xFE00, 0xFE0F),
        (0xFEFF, 0xFEFF),
        (0xFFA0, 0xFFA0),
        (0xFFF0, 0xFFFB),
        (0x110BD, 0x110BD),
        (0x110CD, 0x110CD),
        (0x13430, 0x1343F),
        (0x1BCA0, 0x1BCA3),
        (0x1D173, 0x1D17A),
        (0xE0000, 0xE0FFF),
    ];
    let c = u32::from(c);
    // A binary search over 32 pairs; ASCII letters leave at the first comparison.
    c >= 0x09
        && INVISIBLE
            .binary_search_by(|&(lo, hi)| {
                if hi < c {
                    std::cmp::Ordering::Less
                } else if lo > c {
                    std::cmp::Ordering::Greater
                } else {
                    std::cmp::Ordering::Equal
                }
            })
            .is_ok()
}

/// Whether `text` has at least one character that shows (see [`is_invisible`]; control
/// characters do not show either).
pub fn has_visible(text: &str) -> bool {
    text.chars().any(|c| !c.is_control() && !is_invisible(c))
}

/// Checks a comment body: not blank, at most [`MAX_TEXT_CHARS`], no control characters other
/// than tab, line feed and carriage return, and something visible (not only zero-width or
/// format characters).
pub fn validate_text(text: &str) -> Result<(), ValidationError> {
    if text.trim().is_empty() {
        return Err(ValidationError::EmptyText);
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(ValidationError::TextTooLong {
            max: MAX_TEXT_CHARS,
        });
    }
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(ValidationError::ControlCharacters);
    }
    if !has_visible(text) {
        return Err(ValidationError::InvisibleText);
    }
    Ok(())
}

/// Checks a display name: 1 to [`MAX_NAME_CHARS`] characters after trimming, no control chars,
/// and something visible (not only zero-width or format characters).
pub fn validate_name(name: &str) -> Result<(), ValidationError> {
    let trimmed = name.trim();
    let count = trimmed.chars().count();
    if count == 0 || count > MAX_NAME_CHARS || trimmed.chars().any(char::is_control) {
        return Err(ValidationError::InvalidName {
            max: MAX_NAME_CHARS,
        });
    }
    if !has_visible(trimmed) {
        return Err(ValidationError::InvisibleName);
    }
    Ok(())
}

/// Checks one coordinate: finite and within [0, 1].
pub fn validate_fraction(v: f64) -> Result<(), ValidationError> {
    if v.is_finite() && (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(ValidationError::InvalidCoordinates)
    }
}

/// Rounds a valid fraction to [`COORDINATE_DECIMALS`] places, so every side stores and shows
/// the same value and frames stay short. `-0.0` becomes `0.0` (adding `+0.0` does exactly
/// that), so the canonical form has one spelling on the wire.
pub fn quantize_fraction(v: f64) -> f64 {
    let scale = 10f64.powi(COORDINATE_DECIMALS);
    (v * scale).round() / scale + 0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_limits_both_sides() {
        assert_eq!(validate_text("hi"), Ok(()));
        assert_eq!(validate_text(&"a".repeat(MAX_TEXT_CHARS)), Ok(()));
        assert_eq!(
            validate_text(&"a".repeat(MAX_TEXT_CHARS + 1)),
            Err(ValidationError::TextTooLong {
                max: MAX_TEXT_CHARS
            })
        );
        // Counted in characters, not bytes.
        assert_eq!(validate_text(&"é".repeat(MAX_TEXT_CHARS)), Ok(()));
        assert_eq!(validate_text(""), Err(ValidationError::EmptyText));
        assert_eq!(validate_text(" \n\t "), Err(ValidationError::EmptyText));
        assert_eq!(validate_text("line\nbreak\ttab\r"), Ok(()));
        assert_eq!(
            validate_text("nul\0"),
            Err(ValidationError::ControlCharacters)
        );
        assert_eq!(
            validate_text("bell\u{7}"),
            Err(ValidationError::ControlCharacters)
        );
        assert_eq!(validate_text("<script>alert(1)</script>"), Ok(()));
    }

    #[test]
    fn name_limits_both_sides() {
        assert_eq!(validate_name("Ada"), Ok(()));
        assert_eq!(validate_name(&"n".repeat(MAX_NAME_CHARS)), Ok(()));
        assert!(validate_name(&"n".repeat(MAX_NAME_CHARS + 1)).is_err());
        assert!(validate_name("   ").is_err());
        assert!(validate_name("a\u{1b}b").is_err());
    }

    #[test]
    fn invisible_only_text_and_names_are_refused() {
        // Each of these renders as nothing: zero-width space / joiners, bidi controls
        // (marks, embeddings, overrides, isolates), BOM, soft hyphen, word joiner, Hangul
        // filler, Braille blank, variation selector, tag characters, ideographic space.
        let invisible = [
            "\u{200B}",
            "\u{200C}\u{200D}",
            "\u{200E}\u{200F}",
            "\u{202A}\u{202B}\u{202C}\u{202D}\u{202E}",
            "\u{2066}\u{2067}\u{2068}\u{2069}",
            "\u{FEFF}",
            "\u{00AD}",
            "\u{2060}",
            "\u{3164}",
            "\u{2800}",
            "\u{FE0F}",
            "\u{E0041}\u{E007F}",
            "\u{3000}\u{200B} \u{00A0}",
            "\u{180E}\u{061C}",
        ];
        for s in invisible {
            assert_eq!(
                validate_text(s),
                Err(ValidationError::InvisibleText),
                "{s:?}"
            );
            assert_eq!(
                validate_name(s),
                Err(ValidationError::InvisibleName),
                "{s:?}"
            );
            // The server reports them with the codes that already existed.
            assert_eq!(
                crate::ErrorCode::from(&ValidationError::InvisibleText),
                crate::ErrorCode::EmptyText
            );
            assert_eq!(
                crate::ErrorCode::from(&ValidationError::InvisibleName),
                crate::ErrorCode::InvalidName
            );
        }
        // One visible character among them is enough (the bidi override stays; the widget
        // isolates it when it renders).
        for s in [
            "\u{202E}Ada",
            "A\u{200B}",
            "\u{200D}😀",
            "مرحبا\u{200F}",
            "Ж",
            "\u{0301}",
        ] {
            assert_eq!(validate_text(s), Ok(()), "{s:?}");
            assert_eq!(validate_name(s), Ok(()), "{s:?}");
        }
        assert!(is_invisible(' ') && !is_invisible('a') && !is_invisible('\u{0}'));
        assert!(!is_invisible('\u{E1000}') && is_invisible('\u{E0FFF}'));
    }

    #[test]
    fn fraction_limits_both_sides() {
        for ok in [0.0, 1.0, 0.5, f64::MIN_POSITIVE] {
            assert_eq!(validate_fraction(ok), Ok(()), "{ok}");
        }
        for bad in [
            -0.000_001,
            1.000_001,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -1.0,
        ] {
            assert_eq!(
                validate_fraction(bad),
                Err(ValidationError::InvalidCoordinates),
                "{bad}"
            );
        }
    }

    #[test]
    fn quantize_keeps_five_decimals_and_range() {
        assert_eq!(quantize_fraction(0.123_456_789), 0.123_46);
        assert_eq!(quantize_fraction(0.999_999_9), 1.0);
        assert_eq!(quantize_fraction(0.0), 0.0);
    }
}
