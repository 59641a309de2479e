//! Which markers overlap, and where the members of a group go when it is expanded: pure
//! geometry in CSS pixels, tested natively.
//!
//! On a busy image, markers drawn on top of each other cannot be clicked (measured: 179 of
//! 1,000 random markers on a 1000×600 image fully covered). [`groups`] gathers overlapping
//! markers so the widget can draw one numbered cluster button per group instead; [`fan`] lays
//! the members of an expanded group out around it, apart from each other.
//!
//! The grouping is greedy "leader" clustering in creation order: the oldest marker not yet in
//! a group leads a new one, and every later free marker whose centre is closer to the leader's
//! than one marker diameter joins it. Leaders are therefore at least a diameter apart, so what
//! remains drawn (lone markers, and cluster buttons at their leaders' centres) never overlaps,
//! and a marker's group only changes when markers near it change. Chaining (A overlaps B, B
//! overlaps C) does not merge a whole dense image into one group. Markers are bucketed into a
//! grid of cells at least a diameter wide, so each leader only looks at the cells around it.

/// A group of two or more overlapping markers.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    /// Indexes (into the centres given to [`groups`]) of the members, leader first, then in
    /// creation order.
    pub members: Vec<usize>,
    /// Where the group is drawn: its leader's centre, in px.
    pub at: (f64, f64),
}

impl Group {
    /// The leader: the oldest member, whose centre the group is drawn at.
    pub fn leader(&self) -> usize {
        self.members[0]
    }
}

/// The groups of overlapping markers among `centres` (px, in creation order), for markers
/// `size` px across. Markers overlapping nothing are in no group. Non-finite centres (an
/// image not laid out yet) are left alone.
pub fn groups(centres: &[(f64, f64)], size: f64) -> Vec<Group> {
    // `size` may be NaN: only a positive size groups anything.
    if size.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) || centres.len() < 2 {
        return Vec::new();
    }
    let grid = Grid::new(centres, size);
    let mut taken = vec![false; centres.len()];
    let mut out = Vec::new();
    for leader in 0..centres.len() {
        let Some((cx, cy)) = grid.cell_of(leader) else {
            continue;
        };
        if taken[leader] {
            continue;
        }
        taken[leader] = true;
        let (lx, ly) = centres[leader];
        let mut members = vec![leader];
        // Cells are at least `size` wide: every marker within `size` is in the 3×3 around.
        for y in cy.saturating_sub(1)..=(cy + 1).min(grid.rows - 1) {
            for x in cx.saturating_sub(1)..=(cx + 1).min(grid.cols - 1) {
                for &i in grid.points(x, y) {
                    let (px, py) = centres[i as usize];
                    let (dx, dy) = (px - lx, py - ly);
                    if !taken[i as usize] && dx * dx + dy * dy < size * size {
                        taken[i as usize] = true;
                        members.push(i as usize);
                    }
                }
            }
        }
        if members.len() > 1 {
            // Creation order after the leader. Groups are small: an insertion sort, which
            // also keeps core's sort routines out of the widget.
            for i in 2..members.len() {
                let mut j = i;
                while j > 1 && members[j - 1] > members[j] {
                    members.swap(j - 1, j);
                    j -= 1;
                }
            }
            out.push(Group {
                members,
                at: (lx, ly),
            });
        }
    }
    out
}

/// The centres bucketed into square cells (a counting sort by cell: linear, no comparison
/// sort), so a leader looks only at the markers in the cells around its own.
struct Grid {
    cols: usize,
    rows: usize,
    /// `start[c]..start[c + 1]` indexes `items` for cell `c`.
    start: Vec<u32>,
    /// Marker indexes, by cell.
    items: Vec<u32>,
    /// Each marker's cell (`u32::MAX` for a non-finite centre).
    cell_of: Vec<u32>,
}

impl Grid {
    fn new(centres: &[(f64, f64)], size: f64) -> Self {
        let finite = |p: &(f64, f64)| p.0.is_finite() && p.1.is_finite();
        let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        for p in centres.iter().filter(|p| finite(p)) {
            (x0, y0, x1, y1) = (x0.min(p.0), y0.min(p.1), x1.max(p.0), y1.max(p.1));
        }
        // About as many cells as markers at most (memory stays linear), never smaller than
        // a marker.
        let n = centres.len().max(1) as f64;
        let area = ((x1 - x0).max(0.0) + size) * ((y1 - y0).max(0.0) + size);
        let cell = size.max((area / n).sqrt());
        let cols = (((x1 - x0).max(0.0) / cell) as usize).saturating_add(1);
        let rows = (((y1 - y0).max(0.0) / cell) as usize).saturating_add(1);
        let cell_of: Vec<u32> = centres
            .iter()
            .map(|p| {
                if !finite(p) {
                    return u32::MAX;
                }
                let cx = (((p.0 - x0) / cell) as usize).min(cols - 1);
                let cy = (((p.1 - y0) / cell) as usize).min(rows - 1);
                u32::try_from(cy * cols + cx).unwrap_or(u32::MAX)
            })
            .collect();
        let cells = cols * rows;
        let mut start = vec![0u32; cells + 1];
        for &c in cell_of.iter().filter(|&&c| c != u32::MAX) {
            start[c as usize + 1] += 1;
        }
        for c in 0..cells {
            start[c + 1] += start[c];
        }
        let mut fill = start.clone();
        let mut items = vec![0u32; start[cells] as usize];
        for (i, &c) in cell_of.iter().enumerate() {
            if c != u32::MAX {
                items[fill[c as usize] as usize] = i as u32;
                fill[c as usize] += 1;
            }
        }
        Self {
            cols,
            rows,
            start,
            items,
            cell_of,
        }
    }

    /// The cell (column, row) of marker `i`; `None` for a non-finite centre.
    fn cell_of(&self, i: usize) -> Option<(usize, usize)> {
        let c = *self.cell_of.get(i)?;
        (c != u32::MAX).then(|| (c as usize % self.cols, c as usize / self.cols))
    }

    /// The markers in cell (x, y), in creation order.
    fn points(&self, x: usize, y: usize) -> &[u32] {
        let c = y * self.cols + x;
        &self.items[self.start[c] as usize..self.start[c + 1] as usize]
    }
}

/// Where the `n` members of a group drawn at `at` go when it is expanded: on square rings
/// around it (8 places on the first, 16 on the second…), clockwise from the top, `gap` px
/// apart, so no two overlap and none covers the cluster button. The whole fan is shifted, when
/// it can be, to stay inside a `width` × `height` box (a margin of half a place kept); a place
/// that the shift brings onto the button (a group in a corner) is skipped for the next one.
/// Positions are centres in px. No trigonometry, so no libm in the widget.
pub fn fan(at: (f64, f64), n: usize, gap: f64, width: f64, height: f64) -> Vec<(f64, f64)> {
    let mut slots: Vec<(i32, i32)> = Vec::with_capacity(n);
    let mut ring = 1;
    let mut take = n;
    // Each round takes as many more places as the last one had to skip; the places within
    // `gap` of any point are at most four, so this settles in a round or two (and `take`
    // grows every round, so the bound below ends it whatever happens).
    loop {
        while slots.len() < take {
            slots.extend(ring_slots(ring));
            ring += 1;
        }
        let place = |&(dx, dy): &(i32, i32)| (f64::from(dx) * gap, f64::from(dy) * gap);
        let offsets: Vec<(f64, f64)> = slots[..take].iter().map(place).collect();
        let (sx, sy) = shift_inside(&offsets, at, gap, width, height);
        // Relative to the button: a place closer than `gap` to it would cover it (squared:
        // `hypot` would bring libm in).
        let clear = |&(x, y): &(f64, f64)| {
            let (x, y) = (x + sx, y + sy);
            x * x + y * y >= gap * gap
        };
        let kept: Vec<(f64, f64)> = offsets.iter().copied().filter(clear).take(n).collect();
        if kept.len() == n || take >= n + 8 {
            return kept
                .into_iter()
                .map(|(x, y)| (at.0 + x + sx, at.1 + y + sy))
                .collect();
        }
        take += n - kept.len();
    }
}

/// Ring `k` of the fan's places (8k of them), as steps from the middle: clockwise from
/// straight above, along the top to the right, down the right side, back along the bottom, up
/// the left side.
fn ring_slots(k: i32) -> Vec<(i32, i32)> {
    let mut ring = Vec::with_capacity(8 * k as usize);
    for dx in 0..=k {
        ring.push((dx, -k));
    }
    for dy in -k + 1..=k {
        ring.push((k, dy));
    }
    for dx in (-k..k).rev() {
        ring.push((dx, k));
    }
    for dy in (-k..k).rev() {
        ring.push((-k, dy));
    }
    for dx in -k + 1..0 {
        ring.push((dx, -k));
    }
    ring
}

/// How far to move the whole fan (`offsets` from `at`, px) so that it stays inside a
/// `width` × `height` box with half a place of margin; not at all along an axis where it is
/// too big to fit (moving each place instead could pile members up on an edge).
fn shift_inside(
    offsets: &[(f64, f64)],
    at: (f64, f64),
    gap: f64,
    width: f64,
    height: f64,
) -> (f64, f64) {
    if offsets.is_empty() {
        return (0.0, 0.0);
    }
    let shift = |lo: f64, hi: f64, limit: f64| {
        let margin = gap / 2.0;
        if hi - lo > limit - 2.0 * margin {
            0.0
        } else if lo < margin {
            margin - lo
        } else if hi > limit - margin {
            limit - margin - hi
        } else {
            0.0
        }
    };
    let span = |f: fn(&(f64, f64)) -> f64| {
        offsets
            .iter()
            .map(f)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            })
    };
    let (x0, x1) = span(|p| p.0);
    let (y0, y1) = span(|p| p.1);
    (
        shift(at.0 + x0, at.0 + x1, width),
        shift(at.1 + y0, at.1 + y1, height),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dist(a: (f64, f64), b: (f64, f64)) -> f64 {
        ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt()
    }

    #[test]
    fn apart_markers_form_no_group() {
        assert!(groups(&[(10.0, 10.0), (40.0, 10.0), (10.0, 40.0)], 28.0).is_empty());
        assert!(groups(&[(10.0, 10.0)], 28.0).is_empty());
        assert!(groups(&[], 28.0).is_empty());
        // Exactly one diameter apart: touching, not overlapping.
        assert!(groups(&[(0.0, 0.0), (28.0, 0.0)], 28.0).is_empty());
    }

    #[test]
    fn overlapping_markers_group_under_the_oldest() {
        let g = groups(
            &[(100.0, 100.0), (300.0, 300.0), (110.0, 95.0), (90.0, 100.0)],
            28.0,
        );
        assert_eq!(
            g,
            vec![Group {
                members: vec![0, 2, 3],
                at: (100.0, 100.0)
            }]
        );
        assert_eq!(g[0].leader(), 0);
        // Identical positions (the same spot twice) group too.
        let g = groups(&[(5.0, 5.0), (5.0, 5.0)], 28.0);
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].members, vec![0, 1]);
    }

    #[test]
    fn a_chain_does_not_merge_into_one_group() {
        // A–B and B–C overlap, A and C do not: B joins A; C stays alone, and C does not
        // overlap the cluster drawn at A.
        let centres = [(0.0, 0.0), (20.0, 0.0), (40.0, 0.0)];
        let g = groups(&centres, 28.0);
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].members, vec![0, 1]);
        assert!(dist(g[0].at, centres[2]) >= 28.0);
    }

    #[test]
    fn unlaid_out_markers_are_left_alone() {
        let g = groups(&[(f64::NAN, 0.0), (0.0, 0.0), (1.0, 1.0)], 28.0);
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].members, vec![1, 2]);
        assert!(groups(&[(0.0, 0.0), (1.0, 1.0)], 0.0).is_empty());
    }

    /// A small deterministic generator (SplitMix64), so the dense case is reproducible.
    fn random_centres(n: usize, w: f64, h: f64, seed: u64) -> Vec<(f64, f64)> {
        let mut s = seed;
        let mut next = move || {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        };
        (0..n).map(|_| (next() * w, next() * h)).collect()
    }

    #[test]
    fn a_dense_image_leaves_nothing_covered() {
        let size = 28.0;
        let centres = random_centres(1000, 1000.0, 600.0, 7);
        let g = groups(&centres, size);
        let mut seen = vec![0usize; centres.len()];
        for group in &g {
            assert!(group.members.len() >= 2);
            for &m in &group.members {
                seen[m] += 1;
                assert!(
                    dist(centres[m], group.at) < size,
                    "a member overlaps its leader"
                );
                assert!(m >= group.leader(), "the leader is the oldest");
            }
        }
        assert!(seen.iter().all(|&n| n <= 1), "a marker in two groups");
        // What stays drawn: lone markers and one cluster per group, pairwise apart.
        let drawn: Vec<(f64, f64)> = (0..centres.len())
            .filter(|&i| seen[i] == 0)
            .map(|i| centres[i])
            .chain(g.iter().map(|g| g.at))
            .collect();
        for (i, a) in drawn.iter().enumerate() {
            for b in &drawn[i + 1..] {
                assert!(dist(*a, *b) >= size, "{a:?} and {b:?} overlap");
            }
        }
        // Dense indeed: many groups, and far fewer things drawn than markers.
        assert!(g.len() > 50, "{}", g.len());
        assert!(drawn.len() < 900, "{}", drawn.len());
    }

    #[test]
    fn fanned_members_are_apart_and_clear_of_the_cluster() {
        for n in [2, 5, 8, 9, 30] {
            let at = (500.0, 300.0);
            let spots = fan(at, n, 32.0, 1000.0, 600.0);
            assert_eq!(spots.len(), n);
            for (i, a) in spots.iter().enumerate() {
                assert!(dist(*a, at) >= 32.0, "covers the cluster button");
                for b in &spots[i + 1..] {
                    assert!(dist(*a, *b) >= 32.0, "{n}: {a:?} {b:?}");
                }
            }
        }
        // The first place is straight above, the next ones clockwise.
        let spots = fan((100.0, 100.0), 3, 10.0, 1000.0, 1000.0);
        assert_eq!(spots, vec![(100.0, 90.0), (110.0, 90.0), (110.0, 100.0)]);
    }

    #[test]
    fn a_fan_near_an_edge_is_shifted_inside() {
        let spots = fan((5.0, 5.0), 8, 30.0, 400.0, 300.0);
        for (x, y) in &spots {
            assert!(*x >= 15.0 && *y >= 15.0, "{x},{y}");
        }
        let spots = fan((395.0, 295.0), 8, 30.0, 400.0, 300.0);
        for (x, y) in &spots {
            assert!(*x <= 385.0 && *y <= 285.0, "{x},{y}");
        }
        // Too big to fit: left where it is rather than squeezed.
        let spots = fan((50.0, 50.0), 8, 30.0, 60.0, 60.0);
        assert_eq!(spots[0], (50.0, 20.0));
    }

    #[test]
    fn a_fan_shifted_inside_leaves_the_cluster_button_clear() {
        // Groups in the corners and on the edges of a box, and the phone case that found it
        // (a touch fan 52.8 px apart in the corner of a 390 × 244 px picture): the shift brought
        // a place onto the button, and that member was half under it.
        let cases = [
            ((395.0, 295.0), 30.0, 400.0, 300.0),
            ((5.0, 5.0), 30.0, 400.0, 300.0),
            ((200.0, 295.0), 30.0, 400.0, 300.0),
            ((378.3, 231.6), 52.8, 390.0, 243.75),
            ((12.0, 120.0), 52.8, 390.0, 243.75),
        ];
        for (at, gap, width, height) in cases {
            for n in [2, 5, 8, 9, 12] {
                let spots = fan(at, n, gap, width, height);
                assert_eq!(spots.len(), n, "{at:?} {n}");
                for (i, a) in spots.iter().enumerate() {
                    assert!(
                        dist(*a, at) >= gap - 1e-9,
                        "{at:?} {n}: {a:?} covers the button"
                    );
                    for b in &spots[i + 1..] {
                        assert!(dist(*a, *b) >= gap - 1e-9, "{at:?} {n}: {a:?} {b:?}");
                    }
                }
                // Inside wherever the fan fits (12 around the bottom edge of the phone's
                // picture does not: three rows of 52.8 px, with margins, exceed 244).
                let fits = |(x, y): (f64, f64)| {
                    x >= gap / 2.0 - 1e-9
                        && y >= gap / 2.0 - 1e-9
                        && x <= width - gap / 2.0 + 1e-9
                        && y <= height - gap / 2.0 + 1e-9
                };
                if n <= 8 {
                    assert!(spots.iter().all(|&p| fits(p)), "{at:?} {n}: {spots:?}");
                }
            }
        }
    }
}
