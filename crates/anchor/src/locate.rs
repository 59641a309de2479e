//! Re-anchoring: where an anchor's passage is in the container's text now (position, then
//! exact quote, then fuzzy quote), or `None` when it is gone.
//!
//! Every candidate is scored as Hypothesis scores quote matches: similarity of the quote
//! (weight 50), of the `prefix` and `suffix` to the text around the candidate (20 each, as
//! `1 - edits / length`, the far end of the context free), and closeness to the old `start`
//! (2, a tie-breaker), normalised to [0, 1]. A fuzzy match's ends are then moved to where quote
//! and context together match best (edit distance alone prefers a truncated passage). Unlike Hypothesis, which takes the best candidate whatever its score, a candidate
//! here must also have at least one side of its context essentially intact
//! ([`INTACT_SIDE`]) — only a long quote found verbatim ([`VERBATIM_UNITS`]) is trusted on its
//! own — and a fuzzy one must reach [`ACCEPT_SCORE`]. So a deleted passage is reported gone
//! rather than pinned to an unrelated occurrence of the same words, while a passage with a
//! paragraph inserted right before it (its prefix changed, its suffix not) is still found.

use crate::fuzzy::{prefix_distances, search};
use crate::quote::TextAnchor;
use crate::units::{FlatText, ceil_boundary, floor_boundary};

/// The lowest normalised score a fuzzy candidate needs: one with a quarter of its length in
/// edits (the most the fuzzy step allows) needs both sides of its context intact; one with a
/// word changed in a sentence, one side.
pub const ACCEPT_SCORE: f64 = 0.75;

/// How similar (`1 - edits / length`) the text on at least one side of a candidate must be to
/// the recorded `prefix` or `suffix`.
pub const INTACT_SIDE: f64 = 0.9;

/// At the old position, a passage at least this long is taken as is, whatever its context
/// became: the same text at the same offset is the same passage. Shorter ones ("the") need a
/// side of their context intact.
pub const POSITION_TRUST_UNITS: usize = 8;

/// A quote at least this long found verbatim elsewhere is taken even when its context changed
/// on both sides (a moved sentence); a shorter one is too likely to be another occurrence of
/// the same words.
pub const VERBATIM_UNITS: usize = 32;

/// How many exact occurrences are scored at most (the nearest to the old position first):
/// a one-letter quote can occur thousands of times.
const MAX_EXACT_CANDIDATES: usize = 2_048;

/// How an anchor was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum How {
    /// The passage is still at its recorded position.
    Position,
    /// The passage was found, unchanged, elsewhere (text was inserted or removed before it).
    Exact,
    /// A slightly different passage was found where the context says it should be (it was
    /// edited).
    Fuzzy,
}

/// Where an anchor's passage is now (offsets in UTF-16 code units of the container's text).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Located {
    /// Offset of its first unit.
    pub start: u32,
    /// Offset just past its last unit.
    pub end: u32,
    /// Which step found it.
    pub how: How,
}

/// Finds `anchor`'s passage in `text` (the container's flattened text now): by position, then
/// exact quote, then fuzzy quote; `None` when it cannot be found with confidence.
pub fn locate(text: &str, anchor: &TextAnchor) -> Option<Located> {
    locate_in(&FlatText::new(text), anchor)
}

/// [`locate`] on text already encoded: the widget encodes a container once per change and
/// re-anchors every discussion against it.
pub fn locate_in(text: &FlatText, anchor: &TextAnchor) -> Option<Located> {
    let quote: Vec<u16> = anchor.exact.encode_utf16().collect();
    if quote.is_empty() {
        return None;
    }
    let scorer = Scorer {
        text: text.units(),
        prefix: anchor.prefix.encode_utf16().collect(),
        suffix: anchor.suffix.encode_utf16().collect(),
        hint: anchor.start as usize,
    };
    let units = text.units();
    let m = quote.len();

    // 1. Position.
    let (start, end) = (anchor.start as usize, anchor.end as usize);
    if units.get(start..end) == Some(&quote[..])
        && (m >= POSITION_TRUST_UNITS || scorer.score(1.0, start, end).1 >= INTACT_SIDE)
    {
        return located(start, end, How::Position);
    }

    // 2. Exact quote elsewhere, the best context first.
    let mut exact = occurrences(units, &quote);
    exact.sort_by_key(|&s| s.abs_diff(scorer.hint));
    exact.truncate(MAX_EXACT_CANDIDATES);
    let best = exact
        .into_iter()
        .map(|s| (scorer.score(1.0, s, s + m), s))
        .filter(|((_, side), _)| m >= VERBATIM_UNITS || *side >= INTACT_SIDE)
        .max_by(|a, b| a.0.0.total_cmp(&b.0.0).then(b.1.cmp(&a.1)));
    if let Some((_, s)) = best {
        return located(s, s + m, How::Exact);
    }

    // 3. Fuzzy quote: at most a quarter of its length in edits.
    let budget = (m / 4).min(256);
    if budget == 0 {
        return None;
    }
    // Near the old position first (the usual edit: text inserted or removed nearby), the
    // whole text only when nothing acceptable is there: a search costs its span.
    let reach = NEAR_UNITS + 8 * m;
    // (The old position may lie past the end of a shortened text.)
    let near_start = scorer.hint.saturating_sub(reach).min(units.len());
    let near = near_start..(scorer.hint + m + reach).clamp(near_start, units.len());
    let whole = near.start == 0 && near.end == units.len();
    let best = match fuzzy_best(units, near, &quote, budget, &scorer) {
        Some(best) => best,
        None if !whole => fuzzy_best(units, 0..units.len(), &quote, budget, &scorer)?,
        None => return None,
    };
    let (_, start, end) = best;
    // Edit distance alone prefers a truncated passage ("leave before " over "leave before
    // 5 a.m." for "leave before six"): the context says where it really ends and starts.
    let end = refine_end(units, start, end, &quote, &scorer.suffix, budget);
    let start = refine_start(units, start, end, &quote, &scorer.prefix, budget);
    located(start, end, How::Fuzzy)
}

/// Units on each side of the old position (plus eight times the quote's length) searched
/// first by the fuzzy step.
const NEAR_UNITS: usize = 4_096;

/// The best acceptable fuzzy candidate within `span` of the text: `((score, side), start, end)`.
fn fuzzy_best(
    units: &[u16],
    span: std::ops::Range<usize>,
    quote: &[u16],
    budget: usize,
    scorer: &Scorer<'_>,
) -> Option<((f64, f64), usize, usize)> {
    let m = quote.len();
    let offset = span.start;
    search(&units[span], quote, budget)
        .into_iter()
        .filter(|f| f.errors > 0)
        .map(|f| {
            let start = floor_boundary(units, offset + f.start);
            let end = ceil_boundary(units, offset + f.end);
            let quote_score = 1.0 - f.errors as f64 / m as f64;
            (scorer.score(quote_score, start, end), start, end)
        })
        .filter(|&((score, side), start, end)| {
            score >= ACCEPT_SCORE && side >= INTACT_SIDE && start < end
        })
        .max_by(|a, b| a.0.0.total_cmp(&b.0.0).then(b.1.cmp(&a.1)))
}

/// Units of context that must follow (precede) a fuzzy match exactly for its end (start) to be
/// moved there: the first (last) this many of the suffix (prefix), or all of it if shorter but
/// at least [`MIN_SNAP_UNITS`].
const SNAP_UNITS: usize = 16;
/// Shorter recorded context (a passage at the container's edge) moves nothing.
const MIN_SNAP_UNITS: usize = 8;

/// Moves a fuzzy match's end to where the recorded suffix resumes exactly: the nearest such
/// end within `reach` (after `start`), when the current end is not followed by it and the move
/// costs fewer edits (quote edits up to the new end + context edits after it) than staying.
fn refine_end(
    units: &[u16],
    start: usize,
    end: usize,
    quote: &[u16],
    suffix: &[u16],
    reach: usize,
) -> usize {
    let probe = &suffix[..suffix.len().min(SNAP_UNITS)];
    if probe.len() < MIN_SNAP_UNITS || units[end..].starts_with(probe) {
        return end;
    }
    let last = (end + reach).min(units.len());
    let Some(snapped) = (1..=reach)
        .flat_map(|d| [end.checked_sub(d), end.checked_add(d)])
        .flatten()
        .filter(|&e| e > start && e <= last)
        .find(|&e| units[e..].starts_with(probe) && crate::units::is_boundary(units, e))
    else {
        return end;
    };
    let costs = prefix_distances(quote, units[start..last].iter().copied());
    let cost = |e: usize| costs[e - start] + suffix_edits(units, e, suffix);
    if cost(snapped) < cost(end) {
        snapped
    } else {
        end
    }
}

/// Moves a fuzzy match's start to where the recorded prefix ends exactly, as [`refine_end`]
/// does for the end.
fn refine_start(
    units: &[u16],
    start: usize,
    end: usize,
    quote: &[u16],
    prefix: &[u16],
    reach: usize,
) -> usize {
    let probe = &prefix[prefix.len().saturating_sub(SNAP_UNITS)..];
    if probe.len() < MIN_SNAP_UNITS || units[..start].ends_with(probe) {
        return start;
    }
    let first = start.saturating_sub(reach);
    let Some(snapped) = (1..=reach)
        .flat_map(|d| [start.checked_sub(d), start.checked_add(d)])
        .flatten()
        .filter(|&s| s >= first && s < end)
        .find(|&s| units[..s].ends_with(probe) && crate::units::is_boundary(units, s))
    else {
        return start;
    };
    let reversed: Vec<u16> = quote.iter().rev().copied().collect();
    // costs[i] = edits between the quote and the `i` units before `end`.
    let costs = prefix_distances(&reversed, units[first..end].iter().rev().copied());
    let cost = |s: usize| costs[end - s] + prefix_edits(units, s, prefix);
    if cost(snapped) < cost(start) {
        snapped
    } else {
        start
    }
}

fn located(start: usize, end: usize, how: How) -> Option<Located> {
    Some(Located {
        start: u32::try_from(start).ok()?,
        end: u32::try_from(end).ok()?,
        how,
    })
}

/// Every offset where `needle` occurs in `haystack` (overlapping occurrences included).
fn occurrences(haystack: &[u16], needle: &[u16]) -> Vec<usize> {
    let Some((&first, _)) = needle.split_first() else {
        return Vec::new();
    };
    let mut found = Vec::new();
    if needle.len() > haystack.len() {
        return found;
    }
    for s in 0..=haystack.len() - needle.len() {
        if haystack[s] == first && haystack[s..s + needle.len()] == *needle {
            found.push(s);
        }
    }
    found
}

/// Scores candidates against an anchor's context and position (see the module docs).
struct Scorer<'a> {
    text: &'a [u16],
    prefix: Vec<u16>,
    suffix: Vec<u16>,
    hint: usize,
}

impl Scorer<'_> {
    const QUOTE: f64 = 50.0;
    const SIDE: f64 = 20.0;
    const POSITION: f64 = 2.0;

    /// The normalised score of the candidate `start..end` whose quote similarity is `quote`,
    /// and the similarity of its better side of context.
    fn score(&self, quote: f64, start: usize, end: usize) -> (f64, f64) {
        let distance = start.abs_diff(self.hint) as f64;
        let position = 1.0 - distance / self.text.len().max(1) as f64;
        let (prefix, suffix) = (
            similarity(&self.prefix, prefix_edits(self.text, start, &self.prefix)),
            similarity(&self.suffix, suffix_edits(self.text, end, &self.suffix)),
        );
        let raw = Self::QUOTE * quote
            + Self::SIDE * (prefix + suffix)
            + Self::POSITION * position.max(0.0);
        let score = raw / (Self::QUOTE + 2.0 * Self::SIDE + Self::POSITION);
        (score, prefix.max(suffix))
    }
}

/// `1 - edits / |expected|` for a context found with `edits`, at least 0; an empty expected
/// context (the passage was at the container's edge) matches anything.
fn similarity(expected: &[u16], edits: usize) -> f64 {
    if expected.is_empty() {
        return 1.0;
    }
    (1.0 - edits as f64 / expected.len() as f64).max(0.0)
}

/// Edits between `suffix` and the text from `end` on, the text's end of the comparison free
/// (semi-global, as Hypothesis searches context): text inserted inside the suffix costs its
/// length once, not again as a shifted tail.
fn suffix_edits(units: &[u16], end: usize, suffix: &[u16]) -> usize {
    let window = &units[end..(end + 2 * suffix.len()).min(units.len())];
    prefix_distances(suffix, window.iter().copied())
        .into_iter()
        .min()
        .unwrap_or(suffix.len())
}

/// Edits between `prefix` and the text before `start`, the text's start free.
fn prefix_edits(units: &[u16], start: usize, prefix: &[u16]) -> usize {
    let window = &units[start.saturating_sub(2 * prefix.len())..start];
    let reversed: Vec<u16> = prefix.iter().rev().copied().collect();
    prefix_distances(&reversed, window.iter().rev().copied())
        .into_iter()
        .min()
        .unwrap_or(prefix.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quote::describe;

    const TEXT: &str = "It was the best of times, it was the worst of times, it was the age of \
                        wisdom, it was the age of foolishness, it was the epoch of belief.";

    fn find(text: &str, anchor: &TextAnchor) -> Option<(String, How)> {
        let l = locate(text, anchor)?;
        let t = FlatText::new(text);
        Some((t.slice(l.start as usize, l.end as usize)?, l.how))
    }

    #[test]
    fn unchanged_text_is_found_at_its_position() {
        let a = describe(TEXT, 26..51).expect("anchor");
        assert_eq!(a.exact, "it was the worst of times");
        assert_eq!(
            locate(TEXT, &a),
            Some(Located {
                start: 26,
                end: 51,
                how: How::Position
            })
        );
    }

    #[test]
    fn text_inserted_before_moves_it() {
        let a = describe(TEXT, 26..51).expect("anchor");
        let edited = format!("A new opening paragraph.\n{TEXT}");
        let l = locate(&edited, &a).expect("found");
        assert_eq!((l.start, l.end, l.how), (51, 76, How::Exact));
    }

    #[test]
    fn repeated_phrases_are_told_apart_by_context() {
        // "it was the age of" occurs twice; the anchor is the second.
        let second = TEXT.rfind("it was the age of").expect("phrase") as u32;
        let a = describe(TEXT, second..second + 17).expect("anchor");
        let edited = format!("Preface. {TEXT}");
        let l = locate(&edited, &a).expect("found");
        assert_eq!(l.start, second + 9);
        assert_eq!(l.how, How::Exact);
    }

    #[test]
    fn an_edited_passage_is_found_fuzzily() {
        let a = describe(TEXT, 26..51).expect("anchor");
        let edited = TEXT.replace("the worst of times", "the worst of all times");
        assert_eq!(
            find(&format!("Intro. {edited}"), &a),
            Some(("it was the worst of all times".into(), How::Fuzzy))
        );
    }

    #[test]
    fn a_fuzzy_match_ends_where_its_context_resumes() {
        let text = "The harbour at dawn\n\nFishing boats leave before six; by seven the quay.";
        let a = describe(text, 21..51).expect("anchor");
        assert_eq!(a.exact, "Fishing boats leave before six");
        let edited = text.replace("six", "5 a.m.");
        assert_eq!(
            find(&edited, &a),
            Some(("Fishing boats leave before 5 a.m.".into(), How::Fuzzy))
        );
        // A word added against an edited passage is not taken into it unless that is
        // cheaper in edits than leaving it out (here it costs the same).
        let edited = text.replace("Fishing", "Small fishing");
        assert_eq!(
            find(&edited, &a),
            Some(("fishing boats leave before six".into(), How::Fuzzy))
        );
    }

    #[test]
    fn an_old_position_past_the_end_of_a_shortened_text_is_harmless() {
        let long = format!("{}{}", "filler words here. ".repeat(400), TEXT);
        let at = long.find("worst of").expect("passage") as u32;
        let a = describe(&long, at..at + 18).expect("anchor");
        assert_eq!(a.exact, "worst of times, it");
        let edited = TEXT.replace("worst of times", "worst of all times");
        assert_eq!(
            find(&edited, &a),
            Some(("worst of all times, it".into(), How::Fuzzy))
        );
        assert_eq!(find("short", &a), None);
    }

    #[test]
    fn a_deleted_passage_is_not_found_elsewhere() {
        // The anchored sentence is deleted; the text keeps many of its words.
        let a = describe(TEXT, 26..51).expect("anchor");
        let edited = TEXT.replace("it was the worst of times, ", "");
        assert_eq!(find(&edited, &a), None);
        // A short quote whose every other occurrence has another context ("worst of times"
        // has a similar prefix, "It was the best of " → "it was the worst of ", but not
        // an intact one).
        let a = describe(TEXT, 19..24).expect("anchor");
        assert_eq!(a.exact, "times");
        let edited = TEXT.replace("It was the best of times, ", "");
        assert_eq!(find(&edited, &a), None);
        assert_eq!(find("", &a), None);
    }

    #[test]
    fn astral_characters_keep_offsets_in_utf16_units() {
        // "😀 smile 😀 and the " is 2 + 7 + 2 + 9 = 20 units (17 characters).
        let text = "😀 smile 😀 and the fox 🦊 runs";
        let a = describe(text, 20..26).expect("anchor");
        assert_eq!(a.exact, "fox 🦊");
        let l = locate(&format!("🦊🦊{text}"), &a).expect("found");
        assert_eq!((l.start, l.end, l.how), (24, 30, How::Exact));
    }
}
