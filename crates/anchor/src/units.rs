//! The container's flattened text as UTF-16 code units (the offsets of the whole crate, see the
//! crate docs), and the helpers that keep offsets off the middle of a surrogate pair.

/// A container's text, flattened and encoded once as UTF-16: build it once per change of the
/// page and re-anchor every discussion against it ([`crate::locate_in`],
/// [`crate::describe_in`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlatText {
    units: Vec<u16>,
}

impl FlatText {
    /// Encodes `text` (the container's `textContent`).
    pub fn new(text: &str) -> Self {
        Self {
            units: text.encode_utf16().collect(),
        }
    }

    /// The text's UTF-16 code units.
    pub fn units(&self) -> &[u16] {
        &self.units
    }

    /// Length in UTF-16 code units.
    pub fn len(&self) -> usize {
        self.units.len()
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    /// Whether `offset` is inside the text and not between the halves of a surrogate pair.
    pub fn is_boundary(&self, offset: usize) -> bool {
        is_boundary(&self.units, offset)
    }

    /// The text of `start..end`, when both are boundaries and `start <= end`.
    pub fn slice(&self, start: usize, end: usize) -> Option<String> {
        if start > end || !self.is_boundary(start) || !self.is_boundary(end) {
            return None;
        }
        String::from_utf16(&self.units[start..end]).ok()
    }
}

/// Length of `s` in UTF-16 code units.
pub fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// Whether `offset` is within `units` (the end included) and not between a high and a low
/// surrogate.
pub fn is_boundary(units: &[u16], offset: usize) -> bool {
    match units.get(offset) {
        None => offset == units.len(),
        Some(&unit) => !(is_low(unit) && offset > 0 && is_high(units[offset - 1])),
    }
}

/// `offset` moved back onto a boundary (by one unit at most).
pub(crate) fn floor_boundary(units: &[u16], offset: usize) -> usize {
    if is_boundary(units, offset) {
        offset
    } else {
        offset - 1
    }
}

/// `offset` moved forward onto a boundary (by one unit at most).
pub(crate) fn ceil_boundary(units: &[u16], offset: usize) -> usize {
    if is_boundary(units, offset) {
        offset
    } else {
        offset + 1
    }
}

fn is_high(unit: u16) -> bool {
    (0xD800..=0xDBFF).contains(&unit)
}

fn is_low(unit: u16) -> bool {
    (0xDC00..=0xDFFF).contains(&unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_count_utf16_units() {
        let t = FlatText::new("a😀é");
        assert_eq!(t.len(), 4);
        assert_eq!(utf16_len("a😀é"), 4);
        assert!(t.is_boundary(0) && t.is_boundary(1) && !t.is_boundary(2));
        assert!(t.is_boundary(3) && t.is_boundary(4) && !t.is_boundary(5));
        assert_eq!(t.slice(1, 3).as_deref(), Some("😀"));
        assert_eq!(t.slice(1, 2), None);
        assert_eq!(t.slice(3, 1), None);
        assert_eq!(floor_boundary(t.units(), 2), 1);
        assert_eq!(ceil_boundary(t.units(), 2), 3);
    }
}
