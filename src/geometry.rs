//! Where things go on the image, as pure arithmetic (tested natively).
//!
//! Markers are stored as fractions of the image's *drawn picture*: the natural image as the
//! browser paints it inside the element's content box (inside border and padding), after
//! `object-fit` and `object-position`, scaled by any CSS transform. The widget measures the
//! element (in the browser) and this module turns the measurements into the picture's
//! rectangle ([`drawn_picture`]), the overlay's boxes ([`overlay_box`]) and the thread panel's
//! place on screen ([`place_panel`]). Markers are percentages of the picture box, so a resize
//! or re-layout only moves that box.

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

/// The point of the picture nearest the pointer, for a drag that may leave the picture: like
/// [`pointer_to_fraction`], but clamped to the picture instead of `None` outside it.
pub fn drag_to_fraction(content: Rect, client_x: f64, client_y: f64) -> Option<Fraction> {
    if content.is_empty() || !client_x.is_finite() || !client_y.is_finite() {
        return None;
    }
    Some(
        Fraction {
            x: (client_x - content.left) / content.width,
            y: (client_y - content.top) / content.height,
        }
        .clamped(),
    )
}

/// The rectangle between two corners of a drag, as `(x, y, w, h)` fractions (top-left corner
/// first, whichever way the drag went).
pub fn region_between(a: Fraction, b: Fraction) -> (f64, f64, f64, f64) {
    let (x, y) = (a.x.min(b.x), a.y.min(b.y));
    (x, y, (a.x - b.x).abs(), (a.y - b.y).abs())
}

/// A fraction as a CSS percentage (`0.375` → `"37.5%"`), exact to the wire's precision
/// (fractions carry 5 decimals, so percentages carry 3).
pub fn percent(fraction: f64) -> String {
    let mut out = String::new();
    push_percent(&mut out, fraction);
    out
}

/// An element's place in the overlay as its one `style` attribute (`left:37.5%;top:10%`):
/// a marker's or a cluster button's. One attribute is the cheapest to write (one call instead
/// of two `style.setProperty`), and is parsed once.
pub fn place_style(at: (f64, f64)) -> String {
    let mut style = String::with_capacity(24);
    push_place_style(&mut style, at);
    style
}

/// Appends [`place_style`]'s text to `out` (a snapshot writes a thousand into one string).
pub fn push_place_style(out: &mut String, (x, y): (f64, f64)) {
    out.push_str("left:");
    push_percent(out, x);
    out.push_str(";top:");
    push_percent(out, y);
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

/// How the picture is fitted into the element's content box (CSS `object-fit`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectFit {
    /// Stretched to the box (the default).
    Fill,
    /// Scaled to fit inside, letterboxed.
    Contain,
    /// Scaled to cover the box, cropped.
    Cover,
    /// Natural size, cropped or letterboxed.
    None,
    /// `none` or `contain`, whichever is smaller.
    ScaleDown,
}

impl ObjectFit {
    /// The computed `object-fit` value (anything unknown is `fill`, CSS's initial value).
    pub fn parse(value: &str) -> ObjectFit {
        match value.trim() {
            "contain" => ObjectFit::Contain,
            "cover" => ObjectFit::Cover,
            "none" => ObjectFit::None,
            "scale-down" => ObjectFit::ScaleDown,
            _ => ObjectFit::Fill,
        }
    }
}

/// One axis of `object-position`: `fraction` of the free space (box − picture) plus `px`
/// (so `right 10px` is 100 % − 10 px).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Offset {
    /// Share of the free space, 0 = start edge, 1 = end edge.
    pub fraction: f64,
    /// Fixed offset in CSS pixels (layout pixels, before transforms).
    pub px: f64,
}

impl Offset {
    const CENTER: Offset = Offset {
        fraction: 0.5,
        px: 0.0,
    };
}

/// `object-position`, resolved per axis.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ObjectPosition {
    /// Horizontal.
    pub x: Offset,
    /// Vertical.
    pub y: Offset,
}

impl Default for ObjectPosition {
    fn default() -> Self {
        ObjectPosition {
            x: Offset::CENTER,
            y: Offset::CENTER,
        }
    }
}

impl ObjectPosition {
    /// Parses a computed `object-position`: browsers give two `<length-percentage>`s, `50% 50%`,
    /// `10px 0%`, or `calc(100% - 10px) 0px` for an offset from the far edge (`right 10px`).
    /// Anything else is centred.
    pub fn parse(value: &str) -> ObjectPosition {
        // Split at the spaces outside parentheses.
        let mut parts = Vec::new();
        let (mut depth, mut start) = (0u32, 0);
        for (i, c) in value.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth = depth.saturating_sub(1),
                ' ' if depth == 0 => {
                    parts.push(&value[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        parts.push(&value[start..]);
        parts.retain(|p| !p.is_empty());
        match parts.as_slice() {
            [x, y] => match (Offset::parse(x), Offset::parse(y)) {
                (Some(x), Some(y)) => ObjectPosition { x, y },
                _ => ObjectPosition::default(),
            },
            _ => ObjectPosition::default(),
        }
    }
}

impl Offset {
    /// `N%`, `Npx`, `0` or `calc(…)` of those added and subtracted.
    fn parse(token: &str) -> Option<Offset> {
        let inner = token
            .strip_prefix("calc(")
            .and_then(|t| t.strip_suffix(')'))
            .unwrap_or(token);
        let mut off = Offset {
            fraction: 0.0,
            px: 0.0,
        };
        let mut sign = 1.0;
        for t in inner.split_whitespace() {
            let num = |v: &str| number::parse(v).map(|d| sign * d.value);
            match t {
                "+" => sign = 1.0,
                "-" => sign = -1.0,
                "0" => {}
                _ => {
                    if let Some(p) = t.strip_suffix('%') {
                        off.fraction += num(p)? / 100.0;
                    } else {
                        off.px += num(t.strip_suffix("px")?)?;
                    }
                }
            }
        }
        Some(off)
    }
}

/// The rectangle the picture is drawn in, in the same coordinates as `content` (the element's
/// content box as it appears on screen), for a picture of `natural` size (CSS pixels; zero when
/// unknown) fitted by `fit` at `position`. `scale` is the element's on-screen size over its
/// layout size (1 unless a CSS transform scales it or an ancestor): natural sizes and pixel
/// offsets are layout pixels and scale with it. With `cover` or `none` the result may extend
/// past `content` (the browser crops what does).
pub fn drawn_picture(
    content: Rect,
    natural: (f64, f64),
    fit: ObjectFit,
    position: ObjectPosition,
    scale: (f64, f64),
) -> Rect {
    let (nw, nh) = (natural.0 * scale.0, natural.1 * scale.1);
    if fit == ObjectFit::Fill || !(nw > 0.0 && nh > 0.0) || content.is_empty() {
        return content;
    }
    let contain = (content.width / nw).min(content.height / nh);
    let factor = match fit {
        ObjectFit::Contain => contain,
        ObjectFit::Cover => (content.width / nw).max(content.height / nh),
        ObjectFit::None => 1.0,
        ObjectFit::ScaleDown | ObjectFit::Fill => contain.min(1.0),
    };
    let (w, h) = (nw * factor, nh * factor);
    Rect {
        left: content.left + position.x.fraction * (content.width - w) + position.x.px * scale.0,
        top: content.top + position.y.fraction * (content.height - h) + position.y.px * scale.1,
        width: w,
        height: h,
    }
}

impl Rect {
    /// The overlap of two rectangles (empty, at `self`'s corner, when they do not meet).
    pub fn intersect(self, other: Rect) -> Rect {
        let left = self.left.max(other.left);
        let top = self.top.max(other.top);
        let right = (self.left + self.width).min(other.left + other.width);
        let bottom = (self.top + self.height).min(other.top + other.height);
        Rect {
            left,
            top,
            width: (right - left).max(0.0),
            height: (bottom - top).max(0.0),
        }
    }

    /// Whether every edge is within `tolerance` of `other`'s.
    pub fn near(self, other: Rect, tolerance: f64) -> bool {
        (self.left - other.left).abs() <= tolerance
            && (self.top - other.top).abs() <= tolerance
            && (self.width - other.width).abs() <= tolerance
            && (self.height - other.height).abs() <= tolerance
    }
}

/// Where the overlay goes, in the page layer's coordinates: the visible part of the picture
/// (the clickable box), the whole picture relative to it (markers are percentages of it), and
/// the clip that hides markers on parts of the picture the page does not show.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OverlayBox {
    /// The visible picture: drawn picture ∩ content box ∩ clipping ancestors.
    pub visible: Rect,
    /// The drawn picture, relative to `visible`'s corner.
    pub picture: Rect,
    /// `clip-path: inset(…)` of the marker layer (the picture box): negative on the sides where
    /// the picture ends (a marker on its edge shows whole), the cropped amount elsewhere.
    pub clip: Insets,
}

/// The overlay for a picture drawn at `picture`, of which `visible` shows (both in viewport
/// coordinates), in a layer whose corner is at `origin`. `slack` is how far past the picture's
/// own edges markers may show (half a marker).
pub fn overlay_box(picture: Rect, visible: Rect, origin: (f64, f64), slack: f64) -> OverlayBox {
    let cut = |cropped: f64| if cropped > 0.5 { cropped } else { -slack };
    OverlayBox {
        visible: Rect {
            left: visible.left - origin.0,
            top: visible.top - origin.1,
            ..visible
        },
        picture: picture.relative_to(visible),
        clip: Insets {
            top: cut(visible.top - picture.top),
            left: cut(visible.left - picture.left),
            bottom: cut(picture.top + picture.height - visible.top - visible.height),
            right: cut(picture.left + picture.width - visible.left - visible.width),
        },
    }
}

/// Where the thread panel opens relative to its marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Under the marker.
    Below,
    /// Over the marker.
    Above,
    /// To its right.
    Right,
    /// To its left.
    Left,
    /// A sheet along the bottom of the screen (narrow screens).
    Sheet,
}

impl Side {
    /// The `data-place` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Below => "below",
            Side::Above => "above",
            Side::Right => "right",
            Side::Left => "left",
            Side::Sheet => "sheet",
        }
    }
}

/// Screens narrower than this (CSS px) get the panel as a bottom sheet.
pub const SHEET_BELOW: f64 = 560.0;
/// Distance kept between the panel and the screen's edges.
pub const EDGE: f64 = 8.0;
/// The shortest useful panel: below this, another side (or the sheet) is taken.
pub const MIN_PANEL: f64 = 160.0;

/// What [`place_panel`] needs, in viewport CSS pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PanelInput {
    /// The viewport's width and height.
    pub viewport: (f64, f64),
    /// The marker's centre.
    pub anchor: (f64, f64),
    /// The marker's radius.
    pub radius: f64,
    /// The panel's width and its height without a cap.
    pub size: (f64, f64),
}

/// Where the panel goes: its side, corner (viewport coordinates; unused for the sheet) and
/// height cap (the comment list scrolls inside).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PanelBox {
    /// Which side of the marker.
    pub side: Side,
    /// Left edge.
    pub left: f64,
    /// Top edge.
    pub top: f64,
    /// Height cap.
    pub max_height: f64,
}

/// Places the thread panel so it is fully on screen: below the marker if it fits, else above,
/// else beside it, else on the side with the most room with its height capped; a bottom sheet
/// on narrow screens. A marker scrolled out of view takes its panel with it (no clamping on
/// the axis it left by).
pub fn place_panel(i: PanelInput) -> PanelBox {
    let (vw, vh) = i.viewport;
    let (ax, ay) = i.anchor;
    let (pw, ph) = i.size;
    let gap = i.radius + 6.0;
    let full = (vh - 2.0 * EDGE).max(0.0);
    if vw < SHEET_BELOW {
        return PanelBox {
            side: Side::Sheet,
            left: 0.0,
            top: 0.0,
            max_height: (vh * 0.7).floor(),
        };
    }
    let below = vh - EDGE - (ay + gap);
    let above = ay - gap - EDGE;
    let right = vw - EDGE - (ax + gap);
    let left = ax - gap - EDGE;
    let x_under = (ax - i.radius).min(vw - EDGE - pw).max(EDGE);
    let on_screen = (0.0..=vh).contains(&ay);
    let y_beside = |h: f64| {
        let top = ay - h / 2.0;
        if on_screen {
            top.min(vh - EDGE - h).max(EDGE)
        } else {
            top
        }
    };
    let vertical = |side: Side, room: f64| {
        let h = ph.min(room.max(0.0));
        PanelBox {
            side,
            left: x_under,
            top: if side == Side::Below {
                ay + gap
            } else {
                ay - gap - h
            },
            max_height: room.max(0.0),
        }
    };
    if ph <= below {
        return vertical(Side::Below, below);
    }
    if ph <= above {
        return vertical(Side::Above, above);
    }
    let beside = if pw <= right {
        Some((Side::Right, ax + gap))
    } else if pw <= left {
        Some((Side::Left, ax - gap - pw))
    } else {
        None
    };
    if let Some((side, x)) = beside {
        let h = ph.min(full);
        return PanelBox {
            side,
            left: x,
            top: y_beside(h),
            max_height: full,
        };
    }
    let (side, room) = if below >= above {
        (Side::Below, below)
    } else {
        (Side::Above, above)
    };
    if room < MIN_PANEL {
        return PanelBox {
            side: Side::Sheet,
            left: 0.0,
            top: 0.0,
            max_height: (vh * 0.7).floor(),
        };
    }
    vertical(side, room)
}

#[cfg(test)]
mod tests {

    #[test]
    fn drags_are_clamped_to_the_picture_and_regions_normalized() {
        let pic = Rect {
            left: 10.0,
            top: 20.0,
            width: 200.0,
            height: 100.0,
        };
        let at = |x, y| drag_to_fraction(pic, x, y).map(|f| (f.x, f.y));
        assert_eq!(at(110.0, 70.0), Some((0.5, 0.5)));
        assert_eq!(at(-50.0, 500.0), Some((0.0, 1.0)), "clamped, not refused");
        assert_eq!(at(f64::NAN, 0.0), None);
        assert_eq!(
            drag_to_fraction(Rect::default(), 1.0, 1.0).map(|f| f.x),
            None
        );
        let f = |x, y| Fraction { x, y };
        assert_eq!(
            region_between(f(0.5, 0.75), f(0.25, 0.5)),
            (0.25, 0.5, 0.25, 0.25)
        );
    }

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
        assert_eq!(
            border_box.inset(insets),
            Rect {
                left: 22.0,
                top: 32.0,
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

    const BOX: Rect = Rect {
        left: 10.0,
        top: 20.0,
        width: 400.0,
        height: 400.0,
    };

    fn r(left: f64, top: f64, width: f64, height: f64) -> Rect {
        Rect {
            left,
            top,
            width,
            height,
        }
    }

    #[test]
    fn object_fit_gives_the_drawn_picture() {
        let centre = ObjectPosition::default();
        let one = (1.0, 1.0);
        // An 800×400 picture in a 400×400 box.
        let natural = (800.0, 400.0);
        assert_eq!(
            drawn_picture(BOX, natural, ObjectFit::Fill, centre, one),
            BOX
        );
        assert_eq!(
            drawn_picture(BOX, natural, ObjectFit::Contain, centre, one),
            r(10.0, 120.0, 400.0, 200.0)
        );
        assert_eq!(
            drawn_picture(BOX, natural, ObjectFit::Cover, centre, one),
            r(-190.0, 20.0, 800.0, 400.0)
        );
        assert_eq!(
            drawn_picture(BOX, natural, ObjectFit::None, centre, one),
            r(-190.0, 20.0, 800.0, 400.0)
        );
        assert_eq!(
            drawn_picture(BOX, natural, ObjectFit::ScaleDown, centre, one),
            r(10.0, 120.0, 400.0, 200.0)
        );
        // scale-down of a small picture is its natural size.
        assert_eq!(
            drawn_picture(BOX, (100.0, 50.0), ObjectFit::ScaleDown, centre, one),
            r(160.0, 195.0, 100.0, 50.0)
        );
        // Unknown natural size (not loaded): the box.
        assert_eq!(
            drawn_picture(BOX, (0.0, 0.0), ObjectFit::Cover, centre, one),
            BOX
        );
        // object-position: left top, and right 10px bottom 20px (as computed).
        let left_top = ObjectPosition::parse("0% 0%");
        assert_eq!(
            drawn_picture(BOX, natural, ObjectFit::Cover, left_top, one),
            r(10.0, 20.0, 800.0, 400.0)
        );
        let edges = ObjectPosition::parse("calc(100% - 10px) calc(100% - 20px)");
        assert_eq!(
            drawn_picture(BOX, (100.0, 100.0), ObjectFit::None, edges, one),
            r(300.0, 300.0, 100.0, 100.0)
        );
        // Scaled by a transform to half size: the box is measured at half size, natural sizes
        // and pixel offsets shrink with it.
        let half = r(10.0, 20.0, 200.0, 200.0);
        assert_eq!(
            drawn_picture(half, (100.0, 100.0), ObjectFit::None, edges, (0.5, 0.5)),
            r(155.0, 160.0, 50.0, 50.0)
        );
        assert_eq!(
            drawn_picture(half, natural, ObjectFit::Contain, centre, (0.5, 0.5)),
            r(10.0, 70.0, 200.0, 100.0)
        );
    }

    #[test]
    fn object_position_forms() {
        // As Chromium computes `object-position` (keywords and edge offsets resolved).
        let at = |v: &str| {
            let p = ObjectPosition::parse(v);
            (p.x.fraction, p.x.px, p.y.fraction, p.y.px)
        };
        assert_eq!(at("50% 50%"), (0.5, 0.0, 0.5, 0.0));
        assert_eq!(at("10px 30%"), (0.0, 10.0, 0.3, 0.0));
        assert_eq!(at("0% 0%"), (0.0, 0.0, 0.0, 0.0));
        assert_eq!(at("100% 0px"), (1.0, 0.0, 0.0, 0.0));
        assert_eq!(
            at("calc(100% - 10px) calc(100% - 20px)"),
            (1.0, -10.0, 1.0, -20.0)
        );
        assert_eq!(at("calc(50% + 2px) 0px"), (0.5, 2.0, 0.0, 0.0));
        assert_eq!(at("calc(2.5px + 20%) 0"), (0.2, 2.5, 0.0, 0.0));
        // Not a pair of lengths: centred.
        assert_eq!(at("left top"), (0.5, 0.0, 0.5, 0.0));
        assert_eq!(at("50%"), (0.5, 0.0, 0.5, 0.0));
        assert_eq!(at(""), (0.5, 0.0, 0.5, 0.0));
    }

    #[test]
    fn overlay_box_clips_only_cropped_sides() {
        // A cover-cropped picture (wider than its box) inside a scroller that hides its top.
        let picture = r(-190.0, 20.0, 800.0, 400.0);
        let visible = BOX
            .intersect(picture)
            .intersect(r(0.0, 50.0, 1000.0, 1000.0));
        assert_eq!(visible, r(10.0, 50.0, 400.0, 370.0));
        let b = overlay_box(picture, visible, (5.0, -100.0), 14.0);
        assert_eq!(b.visible, r(5.0, 150.0, 400.0, 370.0));
        assert_eq!(b.picture, r(-200.0, -30.0, 800.0, 400.0));
        assert_eq!(
            b.clip,
            Insets {
                top: 30.0,
                left: 200.0,
                bottom: -14.0,
                right: 200.0,
            }
        );
        assert!(
            r(0.0, 0.0, 1.0, 1.0)
                .intersect(r(5.0, 5.0, 1.0, 1.0))
                .is_empty()
        );
        assert!(b.visible.near(r(5.3, 150.0, 400.0, 369.7), 0.5));
    }

    #[test]
    fn panel_stays_on_screen() {
        let fits = |b: PanelBox, i: PanelInput| {
            let h = i.size.1.min(b.max_height);
            b.left >= EDGE - 1e-9
                && b.top >= EDGE - 1e-9
                && b.left + i.size.0 <= i.viewport.0 - EDGE + 1e-9
                && b.top + h <= i.viewport.1 - EDGE + 1e-9
        };
        // Phone (390×844): a bottom sheet, capped.
        let phone = PanelInput {
            viewport: (390.0, 844.0),
            anchor: (16.0 + 358.0 * 0.9, 100.0 + 224.0 * 0.85),
            radius: 14.0,
            size: (300.0, 900.0),
        };
        let b = place_panel(phone);
        assert_eq!(b.side, Side::Sheet);
        assert_eq!(b.max_height, 590.0);
        // A 1000×250 banner near the top of a desktop page, marker low on the right: below.
        let banner = PanelInput {
            viewport: (1280.0, 800.0),
            anchor: (100.0 + 900.0, 60.0 + 212.0),
            radius: 14.0,
            size: (300.0, 420.0),
        };
        let b = place_panel(banner);
        assert_eq!(b.side, Side::Below);
        assert!(fits(b, banner), "{b:?}");
        // Marker near the bottom of the screen: above.
        let low = PanelInput {
            anchor: (400.0, 700.0),
            ..banner
        };
        let b = place_panel(low);
        assert_eq!(b.side, Side::Above);
        assert!(fits(b, low), "{b:?}");
        assert_eq!(b.top + 420.0, 700.0 - 20.0);
        // A long thread on a short screen, marker in the middle: beside, capped to the screen.
        let long = PanelInput {
            viewport: (1280.0, 600.0),
            anchor: (900.0, 300.0),
            radius: 14.0,
            size: (300.0, 2000.0),
        };
        let b = place_panel(long);
        assert_eq!(b.side, Side::Right);
        assert_eq!(b.max_height, 584.0);
        assert!(fits(b, long), "{b:?}");
        // Too narrow beside, too short above and below: the larger side, capped.
        let squeezed = PanelInput {
            viewport: (600.0, 700.0),
            anchor: (300.0, 250.0),
            radius: 14.0,
            size: (300.0, 2000.0),
        };
        let b = place_panel(squeezed);
        assert_eq!(b.side, Side::Below);
        assert_eq!(b.max_height, 700.0 - 8.0 - 270.0);
        assert!(fits(b, squeezed), "{b:?}");
        // The panel never leaves the screen on the right or the left.
        let edge = PanelInput {
            anchor: (1275.0, 100.0),
            ..banner
        };
        assert!(fits(place_panel(edge), edge));
        // A marker scrolled off the top takes its (beside) panel with it.
        let gone = PanelInput {
            anchor: (900.0, -400.0),
            ..long
        };
        let b = place_panel(gone);
        assert!(b.top < 0.0, "{b:?}");
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
}
