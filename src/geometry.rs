//! Where things go on the image, as pure arithmetic (tested natively).
//!
//! Markers are stored as fractions of the image's *content box* (inside border and padding),
//! which is what the person sees as "the picture". The overlay is sized to exactly that box and
//! markers are positioned inside it by percentage, so any later resize, lazy load or re-layout
//! keeps each marker on its spot without recomputing it: only the overlay box is remeasured.

use image_chat_protocol::limits::quantize_fraction;
use image_chat_protocol::number;

/// An axis-aligned rectangle in CSS pixels.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rect {
    /// Distance from the reference's left edge.
    pub left: f64,
    /// Distance from the reference's top edge.
    pub top: f64,
    /// Width.
    pub width: f64,
    /// Height.
    pub height: f64,
}

/// Border and padding widths of an element, per side, in CSS pixels.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Insets {
    /// Top.
    pub top: f64,
    /// Right.
    pub right: f64,
    /// Bottom.
    pub bottom: f64,
    /// Left.
    pub left: f64,
}

impl Rect {
    /// The rectangle shrunk by `insets` (border box → content box). Never negative in size.
    pub fn inset(self, insets: Insets) -> Rect {
        Rect {
            left: self.left + insets.left,
            top: self.top + insets.top,
            width: (self.width - insets.left - insets.right).max(0.0),
            height: (self.height - insets.top - insets.bottom).max(0.0),
        }
    }

    /// The rectangle relative to `origin`'s top-left corner.
    pub fn relative_to(self, origin: Rect) -> Rect {
        Rect {
            left: self.left - origin.left,
            top: self.top - origin.top,
            ..self
        }
    }

    /// Whether there is anything to click on.
    pub fn is_empty(self) -> bool {
        !(self.width > 0.0 && self.height > 0.0)
    }
}

/// Parses a computed CSS length such as `"12px"` or `"0.5px"`; anything else is 0.
pub fn parse_px(value: &str) -> f64 {
    value
        .trim()
        .strip_suffix("px")
        // Approximate is fine for pixels; core's parser would link its tables.
        .and_then(|v| number::parse(v.trim()))
        .map(|d| d.value)
        .filter(|v| v.is_finite())
        .unwrap_or(0.0)
}

/// A point on the image as fractions of its width and height, each in [0, 1].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fraction {
    /// Fraction of the width, from the left.
    pub x: f64,
    /// Fraction of the height, from the top.
    pub y: f64,
}

impl Fraction {
    /// The centre of the image.
    pub const CENTER: Fraction = Fraction { x: 0.5, y: 0.5 };

    /// The fraction clamped to [0, 1] and quantized as the wire stores it (NaN becomes 0.5).
    pub fn clamped(self) -> Fraction {
        let fix = |v: f64| {
            if v.is_nan() {
                0.5
            } else {
                quantize_fraction(v.clamp(0.0, 1.0))
            }
        };
        Fraction {
            x: fix(self.x),
            y: fix(self.y),
        }
    }

    /// Moved by (`dx`, `dy`) fractions, staying on the image (keyboard placement).
    pub fn nudged(self, dx: f64, dy: f64) -> Fraction {
        Fraction {
            x: self.x + dx,
            y: self.y + dy,
        }
        .clamped()
    }
}

/// The point under the pointer at (`client_x`, `client_y`), given the image's content box in the
/// same (viewport) coordinates. `None` when the box is empty (image not laid out yet) or the
/// point is outside it by more than half a pixel (rounding at the edges is forgiven).
pub fn pointer_to_fraction(content: Rect, client_x: f64, client_y: f64) -> Option<Fraction> {
    if content.is_empty() || !client_x.is_finite() || !client_y.is_finite() {
        return None;
    }
    let x = (client_x - content.left) / content.width;
    let y = (client_y - content.top) / content.height;
    let slack_x = 0.5 / content.width;
    let slack_y = 0.5 / content.height;
    let inside = |v: f64, slack: f64| (-slack..=1.0 + slack).contains(&v);
    if !inside(x, slack_x) || !inside(y, slack_y) {
        return None;
    }
    Some(Fraction { x, y }.clamped())
}

/// A fraction as a CSS percentage (`0.375` → `"37.5%"`), exact to the wire's precision
/// (fractions carry 5 decimals, so percentages carry 3).
pub fn percent(fraction: f64) -> String {
    let mut out = String::new();
    push_percent(&mut out, fraction);
    out
}

/// Appends [`percent`]'s text to `out`, allocating nothing of its own (a snapshot writes two
/// per marker, for a thousand markers).
pub fn push_percent(out: &mut String, fraction: f64) {
    push_fixed3(out, fraction.clamp(0.0, 1.0) * 100.0);
    out.push('%');
}

/// A CSS pixel length (`12.5` → `"12.5px"`), to a thousandth of a pixel.
pub fn px(value: f64) -> String {
    let mut out = fixed3(value);
    out.push_str("px");
    out
}

/// `v` rounded to 3 decimals without trailing zeros (`12.345`, `-0.5`, `7`). Written with
/// integer arithmetic: Rust's float formatting would add ~15 KB to the wasm bundle, and
/// `core::fmt` itself is kept out of it (see [`crate::i18n::decimal`]).
pub fn fixed3(v: f64) -> String {
    let mut out = String::new();
    push_fixed3(&mut out, v);
    out
}

/// Appends [`fixed3`]'s text to `out`.
pub fn push_fixed3(out: &mut String, v: f64) {
    if !v.is_finite() {
        out.push('0');
        return;
    }
    let thousandths = (v * 1000.0).round();
    let negative = thousandths < 0.0;
    let n = thousandths.abs().min(9.0e15) as u64;
    let (int, mut frac) = (n / 1000, n % 1000);
    if negative && n > 0 {
        out.push('-');
    }
    number::write_u64(int, out);
    if frac > 0 {
        let mut digits = 3;
        while frac % 10 == 0 {
            frac /= 10;
            digits -= 1;
        }
        // `frac` has `digits` digits once its leading zeros are put back (`.05` is 5 of 2).
        out.push('.');
        let written = if frac >= 100 {
            3
        } else if frac >= 10 {
            2
        } else {
            1
        };
        for _ in written..digits {
            out.push('0');
        }
        number::write_u64(frac, out);
    }
}

/// The overlay's box: the image's content box relative to the positioned wrapper that holds
/// both, in whole-device-pixel-friendly CSS pixels (as measured; no rounding).
pub fn overlay_box(image_border_box: Rect, image_insets: Insets, frame: Rect) -> Rect {
    image_border_box.inset(image_insets).relative_to(frame)
}

/// Which way the thread panel opens from its marker, so it stays over the image as much as
/// possible: towards the larger free side horizontally and vertically.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PanelPlacement {
    /// Open to the left of the marker (marker in the right half).
    pub left: bool,
    /// Open above the marker (marker in the bottom half).
    pub above: bool,
}

impl PanelPlacement {
    /// The placement for a marker at `at`.
    pub fn for_marker(at: Fraction) -> PanelPlacement {
        PanelPlacement {
            left: at.x > 0.5,
            above: at.y > 0.6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMG: Rect = Rect {
        left: 100.0,
        top: 50.0,
        width: 400.0,
        height: 200.0,
    };

    #[test]
    fn pointer_maps_to_fractions_of_the_content_box() {
        assert_eq!(
            pointer_to_fraction(IMG, 200.0, 100.0),
            Some(Fraction { x: 0.25, y: 0.25 })
        );
        assert_eq!(
            pointer_to_fraction(IMG, 100.0, 250.0),
            Some(Fraction { x: 0.0, y: 1.0 })
        );
        // Half a pixel of slack at the edges, clamped.
        assert_eq!(
            pointer_to_fraction(IMG, 500.4, 49.6),
            Some(Fraction { x: 1.0, y: 0.0 })
        );
        assert_eq!(pointer_to_fraction(IMG, 501.0, 100.0), None);
        assert_eq!(pointer_to_fraction(IMG, 99.0, 100.0), None);
        assert_eq!(pointer_to_fraction(Rect::default(), 0.0, 0.0), None);
        assert_eq!(pointer_to_fraction(IMG, f64::NAN, 100.0), None);
    }

    #[test]
    fn fractions_are_quantized_like_the_wire() {
        let f = pointer_to_fraction(IMG, 100.0 + 400.0 / 3.0, 50.0).unwrap();
        assert_eq!(f.x, 0.33333);
    }

    #[test]
    fn percent_strings_are_exact() {
        assert_eq!(percent(0.375), "37.5%");
        assert_eq!(percent(0.0), "0%");
        assert_eq!(percent(1.0), "100%");
        assert_eq!(percent(0.12345), "12.345%");
        assert_eq!(percent(0.33333), "33.333%");
        assert_eq!(percent(2.0), "100%");
    }

    #[test]
    fn content_box_excludes_border_and_padding() {
        let border_box = Rect {
            left: 10.0,
            top: 20.0,
            width: 224.0,
            height: 124.0,
        };
        let insets = Insets {
            top: 12.0,
            right: 12.0,
            bottom: 12.0,
            left: 12.0,
        };
        let frame = Rect {
            left: 10.0,
            top: 20.0,
            width: 224.0,
            height: 130.0,
        };
        assert_eq!(
            overlay_box(border_box, insets, frame),
            Rect {
                left: 12.0,
                top: 12.0,
                width: 200.0,
                height: 100.0
            }
        );
        assert!(
            border_box
                .inset(Insets {
                    left: 300.0,
                    ..insets
                })
                .width
                == 0.0
        );
    }

    #[test]
    fn fixed_point_formatting() {
        assert_eq!(fixed3(12.5), "12.5");
        assert_eq!(fixed3(0.0), "0");
        assert_eq!(fixed3(-0.0004), "0");
        assert_eq!(fixed3(-3.25), "-3.25");
        assert_eq!(fixed3(7.0), "7");
        assert_eq!(fixed3(0.05), "0.05");
        assert_eq!(fixed3(100.001), "100.001");
        assert_eq!(fixed3(1.0 / 3.0), "0.333");
        assert_eq!(fixed3(f64::NAN), "0");
        assert_eq!(px(399.9999), "400px");
    }

    #[test]
    fn px_parsing() {
        assert_eq!(parse_px("12px"), 12.0);
        assert_eq!(parse_px(" 0.5px "), 0.5);
        assert_eq!(parse_px("auto"), 0.0);
        assert_eq!(parse_px(""), 0.0);
        assert_eq!(parse_px("NaNpx"), 0.0);
    }

    #[test]
    fn nudging_stays_on_the_image() {
        let f = Fraction::CENTER.nudged(0.6, -0.02);
        assert_eq!(f, Fraction { x: 1.0, y: 0.48 });
        assert_eq!(
            Fraction {
                x: f64::NAN,
                y: -1.0
            }
            .clamped(),
            Fraction { x: 0.5, y: 0.0 }
        );
    }

    #[test]
    fn panel_opens_towards_free_space() {
        let p = PanelPlacement::for_marker(Fraction { x: 0.9, y: 0.9 });
        assert!(p.left && p.above);
        let p = PanelPlacement::for_marker(Fraction { x: 0.1, y: 0.1 });
        assert!(!p.left && !p.above);
    }
}
