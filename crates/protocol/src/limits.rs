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
/// Longest image id, in bytes.
pub const MAX_IMAGE_ID_BYTES: usize = 512;
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
}

/// Checks a comment body: not blank, at most [`MAX_TEXT_CHARS`], no control characters other
/// than tab, line feed and carriage return.
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
    Ok(())
}

/// Checks a display name: 1 to [`MAX_NAME_CHARS`] characters after trimming, no control chars.
pub fn validate_name(name: &str) -> Result<(), ValidationError> {
    let trimmed = name.trim();
    let count = trimmed.chars().count();
    if count == 0 || count > MAX_NAME_CHARS || trimmed.chars().any(char::is_control) {
        return Err(ValidationError::InvalidName {
            max: MAX_NAME_CHARS,
        });
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
