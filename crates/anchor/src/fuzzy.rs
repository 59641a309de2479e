//! Approximate search: where a pattern occurs in a text with at most `k` edits (insertions,
//! deletions, substitutions of UTF-16 code units), and the edit distance of two short strings
//! (for scoring context).
//!
//! [`search`] is Myers' bit-parallel algorithm (G. Myers, "A fast bit-vector algorithm for
//! approximate string matching based on dynamic programming", J. ACM 46(3), 1999) in its
//! block form for patterns longer than a machine word, as the `approx-string-match` package the
//! Hypothesis annotator uses does: every text unit advances one column of the edit-distance
//! matrix 64 pattern rows at a time, so a search costs `O(⌈m / 64⌉ · n)` word operations (a
//! 4,000-unit quote over a 100,000-unit page: about 6 million). Ends of matches come from the
//! forward pass; each match's start from a second, anchored pass over the reversed pattern
//! just before that end.

/// Bits per block of pattern rows.
const W: usize = 64;

/// At most this many candidate matches (the fewest errors first) are returned: beyond it the
/// text is full of near-repeats and context, not the quote, has to decide anyway.
pub const MAX_MATCHES: usize = 64;

/// One approximate occurrence of a pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Match {
    /// Offset of its first unit in the text.
    pub start: usize,
    /// Offset just past its last unit.
    pub end: usize,
    /// Edits between the pattern and `text[start..end]`.
    pub errors: usize,
}

/// For every distinct unit of the pattern, the bit mask of the rows it occupies, per block.
struct Peq {
    blocks: usize,
    /// Distinct units of the pattern, sorted (binary-searched: no hash map in the wasm).
    units: Vec<u16>,
    /// `blocks` masks per entry of `units`.
    masks: Vec<u64>,
    /// The bit of the pattern's last row within the last block.
    last_row: u64,
    /// For units below 256 (most of any Latin text), their entry in `units` + 1 (0: absent):
    /// a table lookup instead of a binary search for every unit of the text.
    latin: [u16; 256],
}

impl Peq {
    fn new(pattern: impl ExactSizeIterator<Item = u16> + Clone) -> Self {
        let m = pattern.len();
        let blocks = m.div_ceil(W);
        let mut units: Vec<u16> = pattern.clone().collect();
        units.sort_unstable();
        units.dedup();
        let mut masks = vec![0u64; units.len() * blocks];
        for (row, unit) in pattern.enumerate() {
            if let Ok(k) = units.binary_search(&unit) {
                masks[k * blocks + row / W] |= 1 << (row % W);
            }
        }
        let mut latin = [0u16; 256];
        for (k, &unit) in units.iter().enumerate() {
            if let (Some(slot), Ok(k)) = (latin.get_mut(usize::from(unit)), u16::try_from(k + 1)) {
                *slot = k;
            }
        }
        Self {
            blocks,
            units,
            masks,
            last_row: 1 << ((m.max(1) - 1) % W),
            latin,
        }
    }

    fn get(&self, unit: u16) -> Option<&[u64]> {
        let k = match self.latin.get(usize::from(unit)) {
            Some(0) => return None,
            Some(&k) => usize::from(k) - 1,
            None => self.units.binary_search(&unit).ok()?,
        };
        self.masks.get(k * self.blocks..(k + 1) * self.blocks)
    }
}

/// One column of the matrix, as vertical deltas (+1 in `pv`, -1 in `mv`) per block, and the
/// value of its last row.
struct Column {
    pv: Vec<u64>,
    mv: Vec<u64>,
    score: usize,
}

impl Column {
    fn new(peq: &Peq, m: usize) -> Self {
        Self {
            pv: vec![!0; peq.blocks],
            mv: vec![0; peq.blocks],
            score: m,
        }
    }

    /// Advances by one text unit. `top` is the horizontal delta entering row 0: 0 for a
    /// search (a match may start anywhere), +1 for an anchored alignment.
    fn advance(&mut self, peq: &Peq, unit: u16, top: i8) {
        let eqs = peq.get(unit);
        let mut carry = top;
        for b in 0..peq.blocks {
            let eq = eqs.map_or(0, |e| e[b]);
            let high = if b + 1 == peq.blocks {
                peq.last_row
            } else {
                1 << (W - 1)
            };
            carry = advance_block(&mut self.pv[b], &mut self.mv[b], eq, carry, high);
        }
        match carry {
            1 => self.score += 1,
            -1 => self.score -= 1,
            _ => {}
        }
    }
}

/// Myers' step for one block (Fig. 8 of the paper, with the horizontal carry in and out of
/// the block): returns the horizontal delta leaving its last row.
fn advance_block(pv: &mut u64, mv: &mut u64, eq: u64, hin: i8, high: u64) -> i8 {
    let mut eq = eq;
    let xv = eq | *mv;
    if hin < 0 {
        eq |= 1;
    }
    let xh = (((eq & *pv).wrapping_add(*pv)) ^ *pv) | eq;
    let mut ph = *mv | !(xh | *pv);
    let mut mh = *pv & xh;
    let hout = if ph & high != 0 {
        1
    } else if mh & high != 0 {
        -1
    } else {
        0
    };
    ph <<= 1;
    mh <<= 1;
    if hin < 0 {
        mh |= 1;
    } else if hin > 0 {
        ph |= 1;
    }
    *pv = mh | !(xv | ph);
    *mv = ph & xv;
    hout
}

/// The occurrences of `pattern` in `text` with at most `max_errors` edits: in each run of
/// adjacent ends within the budget, the end with the fewest errors, with the start that
/// aligns best before it. At most [`MAX_MATCHES`], the fewest errors first (then in text
/// order). Empty for an empty pattern.
pub fn search(text: &[u16], pattern: &[u16], max_errors: usize) -> Vec<Match> {
    let m = pattern.len();
    if m == 0 {
        return Vec::new();
    }
    let peq = Peq::new(pattern.iter().copied());
    let mut col = Column::new(&peq, m);
    // (end, errors) of the best end in each run of ends within the budget.
    let mut ends: Vec<(usize, usize)> = Vec::new();
    let mut in_run = false;
    for (j, &unit) in text.iter().enumerate() {
        col.advance(&peq, unit, 0);
        if col.score <= max_errors {
            match ends.last_mut() {
                Some(last) if in_run => {
                    if col.score < last.1 {
                        *last = (j + 1, col.score);
                    }
                }
                _ => ends.push((j + 1, col.score)),
            }
            in_run = true;
        } else {
            in_run = false;
        }
    }
    ends.sort_by_key(|&(end, errors)| (errors, end));
    ends.truncate(MAX_MATCHES);
    let reversed = Peq::new(pattern.iter().rev().copied());
    let mut found: Vec<Match> = ends
        .into_iter()
        .map(|(end, errors)| align_start(text, &reversed, m, end, errors))
        .collect();
    found.sort_by_key(|f| (f.errors, f.start));
    found.dedup_by_key(|f| (f.start, f.end));
    found
}

/// The start of the best alignment of the whole pattern ending exactly at `end`: the reversed
/// pattern aligned against the text read backwards from `end` (anchored there), over at most
/// `m + errors` units. Among equally good starts, the match closest to the pattern's length.
fn align_start(text: &[u16], reversed: &Peq, m: usize, end: usize, errors: usize) -> Match {
    let lo = end.saturating_sub(m + errors);
    let mut col = Column::new(reversed, m);
    let mut best = Match {
        start: end,
        end,
        errors: m,
    };
    for (taken, &unit) in text[lo..end].iter().rev().enumerate() {
        col.advance(reversed, unit, 1);
        let len = taken + 1;
        let closer = len.abs_diff(m) < (end - best.start).abs_diff(m);
        if col.score < best.errors || (col.score == best.errors && closer) {
            best = Match {
                start: end - len,
                end,
                errors: col.score,
            };
        }
    }
    best
}

/// `ed(pattern, text[..i])` for every `i` from 0 to `text.len()`: the edit distance between the
/// pattern and each prefix of the text (an anchored alignment, Myers' algorithm with the top
/// row counting), in `O(⌈m / 64⌉ · n)`.
pub fn prefix_distances(pattern: &[u16], text: impl Iterator<Item = u16>) -> Vec<usize> {
    let m = pattern.len();
    let mut out = vec![m];
    if m == 0 {
        out.extend(text.enumerate().map(|(i, _)| i + 1));
        return out;
    }
    let peq = Peq::new(pattern.iter().copied());
    let mut col = Column::new(&peq, m);
    for unit in text {
        col.advance(&peq, unit, 1);
        out.push(col.score);
    }
    out
}

/// The Levenshtein distance between `a` and `b` (unit costs), in `O(|a| · |b|)`: for context
/// strings of a few dozen units.
pub fn edit_distance(a: &[u16], b: &[u16]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, &x) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &y) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(x != y);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    #[test]
    fn finds_exact_and_approximate_occurrences() {
        let text = u("the quick brown fox jumps over the lazy dog");
        let found = search(&text, &u("brown"), 0);
        assert_eq!(
            found,
            vec![Match {
                start: 10,
                end: 15,
                errors: 0
            }]
        );
        // One substitution.
        let found = search(&text, &u("brawn"), 1);
        assert_eq!((found[0].start, found[0].end, found[0].errors), (10, 15, 1));
        // One deletion in the text ("jumps" → pattern "jumXps" has an insertion).
        let found = search(&text, &u("jumXps"), 1);
        assert_eq!((found[0].start, found[0].end, found[0].errors), (20, 25, 1));
        assert!(search(&text, &u("zebra"), 1).is_empty());
        assert!(search(&text, &[], 3).is_empty());
    }

    #[test]
    fn long_patterns_span_several_blocks() {
        let words: Vec<String> = (0..200).map(|i| format!("w{i}")).collect();
        let text = words.join(" ");
        let units = u(&text);
        let pattern: Vec<u16> = units[300..500].to_vec();
        let mut edited = pattern.clone();
        edited[70] = u16::from(b'#');
        edited.remove(130);
        edited.insert(190, u16::from(b'%'));
        let found = search(&units, &edited, 10);
        assert_eq!(found[0].errors, 3);
        assert_eq!((found[0].start, found[0].end), (300, 500));
    }

    #[test]
    fn prefix_distances_are_edit_distances_of_prefixes() {
        let pattern = u("kitten");
        let text = u("sitting on");
        let costs = prefix_distances(&pattern, text.iter().copied());
        for (i, cost) in costs.iter().enumerate() {
            assert_eq!(*cost, edit_distance(&pattern, &text[..i]), "prefix {i}");
        }
        let long: Vec<u16> = (0..150u16).map(|i| 97 + i % 23).collect();
        let mut other = long.clone();
        other[3] = 0;
        other.insert(100, 1);
        let costs = prefix_distances(&long, other.iter().copied());
        assert_eq!(costs[other.len()], 2);
        assert_eq!(
            costs[other.len() - 1],
            edit_distance(&long, &other[..other.len() - 1])
        );
    }

    #[test]
    fn edit_distance_is_levenshtein() {
        assert_eq!(edit_distance(&u("kitten"), &u("sitting")), 3);
        assert_eq!(edit_distance(&u(""), &u("abc")), 3);
        assert_eq!(edit_distance(&u("abc"), &u("abc")), 0);
        assert_eq!(edit_distance(&u("flaw"), &u("lawn")), 2);
    }
}
