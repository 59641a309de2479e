//! How long re-anchoring takes: 100 discussions on a long article (about 100,000 UTF-16 units,
//! a long read), after the page changed in the three ways `locate` handles — nothing (position),
//! a paragraph inserted at the top (every passage found again by exact quote), and a word
//! edited inside every passage with the paragraph inserted too (fuzzy search) — plus 100
//! deleted passages (the worst case: every step fails). Prints the time per full re-anchoring
//! pass, the figure the widget pays on each change of the container's text.
//!
//! `cargo run --release -p image-chat-anchor --example locate_bench`

use std::time::Instant;

use image_chat_anchor::{FlatText, How, describe_in, locate_in};

/// A deterministic article: sentences of pseudo-random words (a linear congruential
/// generator), with paragraph breaks.
fn article(units: usize) -> String {
    const WORDS: &[&str] = &[
        "harbour", "boats", "the", "morning", "quay", "gulls", "nets", "tide", "light", "water",
        "of", "and", "a", "to", "in", "stone", "bridge", "lantern", "café", "naïve", "😀",
        "window", "garden", "north", "south", "paper", "ink", "letter", "ship", "sailed",
    ];
    let mut seed: u64 = 0x5eed;
    let mut text = String::new();
    let mut n = 0;
    while image_chat_anchor::units::utf16_len(&text) < units {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        text.push_str(WORDS[(seed >> 33) as usize % WORDS.len()]);
        n += 1;
        text.push_str(match n % 97 {
            0 => ".\n\n",
            k if k % 13 == 0 => ". ",
            _ => " ",
        });
    }
    text
}

fn time(label: &str, text: &FlatText, anchors: &[image_chat_anchor::TextAnchor]) {
    let runs = 5;
    let mut found = [0usize; 4];
    let start = Instant::now();
    for _ in 0..runs {
        for a in anchors {
            match locate_in(text, a).map(|l| l.how) {
                Some(How::Position) => found[0] += 1,
                Some(How::Exact) => found[1] += 1,
                Some(How::Fuzzy) => found[2] += 1,
                None => found[3] += 1,
            }
        }
    }
    let per_pass = start.elapsed().as_secs_f64() * 1000.0 / runs as f64;
    let f = found.map(|n| n / runs);
    println!(
        "{label:<44} {per_pass:>8.2} ms per pass of {}   (position {}, exact {}, fuzzy {}, gone {})",
        anchors.len(),
        f[0],
        f[1],
        f[2],
        f[3]
    );
}

fn main() {
    let text = article(100_000);
    let flat = FlatText::new(&text);
    println!("article: {} UTF-16 units", flat.len());
    // 100 passages of about 60 units, spread over the article, on word boundaries.
    let anchors: Vec<_> = (0..100u32)
        .map(|i| {
            let mut start = i * (flat.len() as u32 / 100) + 17;
            while !flat.is_boundary(start as usize)
                || flat.units()[start as usize - 1] != u16::from(b' ')
            {
                start += 1;
            }
            let mut end = start + 60;
            while !flat.is_boundary(end as usize) {
                end += 1;
            }
            describe_in(&flat, start..end).expect("anchors")
        })
        .collect();
    time("unchanged text", &flat, &anchors);
    let inserted = format!("A new first paragraph, written after the discussions began.\n\n{text}");
    time(
        "paragraph inserted at the top",
        &FlatText::new(&inserted),
        &anchors,
    );
    let mut edited = inserted.clone();
    for a in &anchors {
        // Replace the passage by itself with one word changed in its middle.
        let middle = a.exact.len() / 2;
        let cut = a
            .exact
            .char_indices()
            .map(|(i, _)| i)
            .find(|&i| i >= middle)
            .unwrap_or(0);
        let changed = format!("{}X{}", &a.exact[..cut], &a.exact[cut..]);
        edited = edited.replacen(&a.exact, &changed, 1);
    }
    time(
        "…and a letter added inside every passage",
        &FlatText::new(&edited),
        &anchors,
    );
    let mut deleted = inserted;
    for a in &anchors {
        deleted = deleted.replacen(&a.exact, "", 1);
    }
    time("every passage deleted", &FlatText::new(&deleted), &anchors);
}
