//! The cluster buttons over groups of overlapping markers, and the fan-out of an expanded
//! group. [`crate::grouping`] decides (pure geometry); this module draws.
//!
//! DOM (docs/WIDGET.md): markers stay `button.image-chat-marker[data-chat-id]` in
//! `.image-chat-layer`; the members of a group get `data-clustered` (hidden), and one
//! `button.image-chat-cluster[data-count][data-cluster]` per group sits in
//! `div.image-chat-clusters` (after the layer, so the layer keeps holding only markers, in
//! creation order). Activating a cluster (click, Enter, Space: it is a button) expands it:
//! its members get `data-fanned` and are shifted (`--ic-fx`, `--ic-fy`) onto places around
//! it, and the first one takes the focus. Groups are recomputed when markers come, go or
//! move, and when the image is resized. On a touch screen markers count as big as their touch
//! area, for grouping and fanning out alike ([`Clusters::reach`]).

use std::rc::Rc;

use image_chat_protocol::ChatId;
use image_chat_protocol::number::write_u64;
use image_chat_sync::ChatView;
use image_chat_sync::sorted::SortedMap;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Document, Element, MediaQueryList};

use crate::dom::Clones;
use crate::dom::clones::children;
use crate::dom::plain::{self, focus, set_style};
use crate::geometry::{place_style, push_place_style, px};
use crate::grouping::{self, Group};
use crate::i18n::{Locale, decimal};
use crate::style::TOUCH_TARGET;

/// One group as drawn.
#[derive(Clone, Debug)]
struct Drawn {
    /// Members, leader first (the cluster's `data-cluster` is the leader's id).
    members: Vec<Rc<ChatView>>,
    /// Where the cluster button is: px, and as fractions of the overlay (its `style`, so it
    /// follows the image between two regroupings).
    at: (f64, f64),
    frac: (f64, f64),
}

/// The clusters of one widget.
pub struct Clusters {
    /// `div.image-chat-clusters`.
    pub el: Element,
    /// A detached `button.image-chat-cluster`, cloned for each cluster.
    template: Element,
    /// Groups as drawn, in their leaders' creation order, with their buttons (the
    /// container's children, in the same order).
    drawn: Vec<(Drawn, Element)>,
    /// The expanded group (by its leader) and the members fanned out.
    expanded: Option<(ChatId, Vec<Rc<ChatView>>)>,
    /// Marker diameter, px (the `markerSize` option).
    size: f64,
    /// `(pointer:coarse)`: whether the page is used by touch, so markers take their touch
    /// area. Read at each regrouping; the widget regroups when it changes (a tablet's trackpad
    /// attached, a laptop's screen folded back).
    coarse: Option<MediaQueryList>,
}

impl Clusters {
    /// An empty container for markers `size` px across.
    pub fn new(doc: &Document, size: f64) -> Self {
        let el = plain::create(doc, "div");
        el.set_class_name("image-chat-clusters");
        let template = plain::create(doc, "button");
        template.set_class_name("image-chat-cluster");
        plain::set(&template, "type", "button");
        plain::set(&template, "aria-expanded", "false");
        let coarse = doc
            .default_view()
            .and_then(|w| w.match_media("(pointer:coarse)").ok().flatten());
        Self {
            el,
            template,
            drawn: Vec::new(),
            expanded: None,
            size,
            coarse,
        }
    }

    /// The `(pointer:coarse)` query grouping depends on, to be told when it changes.
    pub fn pointer_query(&self) -> Option<&MediaQueryList> {
        self.coarse.as_ref()
    }

    /// How far apart two markers' centres must be for each to be clicked or tapped on its
    /// own: their size, or on a coarse pointer their touch area ([`TOUCH_TARGET`]) if larger.
    /// Markers closer than that are grouped, and a group fans out this far apart (×1.2): on a
    /// phone, a touch area reaching over a neighbour's disc sent taps on that disc's edge to
    /// the wrong discussion.
    fn reach(&self) -> f64 {
        if self.coarse.as_ref().is_some_and(MediaQueryList::matches) {
            self.size.max(TOUCH_TARGET)
        } else {
            self.size
        }
    }

    /// The groups of overlapping markers among those of `order` over a `width` × `height`
    /// overlay (indexes into `order`), or `None` before the overlay is laid out (every centre
    /// would be at 0, 0 and all in one group). Markers for which `hidden` holds (filtered out of
    /// view) are left out of every group.
    pub fn groups(
        &self,
        order: &[Rc<ChatView>],
        width: f64,
        height: f64,
        hidden: &dyn Fn(&ChatView) -> bool,
    ) -> Option<Vec<Group>> {
        if width.is_nan() || height.is_nan() || width <= 0.0 || height <= 0.0 {
            return None;
        }
        let centres: Vec<(f64, f64)> = order
            .iter()
            // A hidden marker (a resolved one, filtered out) joins no group.
            .map(
                |c| match Some(c).filter(|c| !hidden(c)).and_then(|c| c.point()) {
                    Some((x, y)) => (x * width, y * height),
                    None => (f64::NAN, f64::NAN),
                },
            )
            .collect();
        Some(grouping::groups(&centres, self.reach()))
    }

    /// Draws `groups` (from [`Clusters::groups`]) over the markers of `order` (their members'
    /// `data-clustered` is the caller's), writing only what changed: the cluster buttons of the
    /// groups that changed (all at once in one call when every group is new, as after a
    /// snapshot).
    pub fn update(
        &mut self,
        order: &[Rc<ChatView>],
        groups: &[Group],
        chats: &SortedMap<ChatId, Rc<ChatView>>,
        (width, height): (f64, f64),
        locale: Locale,
        marker: &dyn Fn(&ChatId) -> Option<Element>,
    ) -> Result<(), JsValue> {
        let drawn: Vec<Drawn> = groups
            .iter()
            .map(|g| drawn(g, order, width, height))
            .collect();
        self.redraw(drawn, locale)?;
        // An expanded group stays expanded while its leader leads a group (re-fanned: the
        // size or its members may have changed); otherwise it folds.
        if let Some((leader, _)) = self.expanded.clone() {
            self.collapse(marker);
            if self.drawn.iter().any(|(d, _)| d.members[0].id == leader) {
                self.expand(&leader, chats, width, height, marker, false);
            }
        }
        Ok(())
    }

    /// Brings the buttons up to `drawn`: a group whose leader already has a button keeps it
    /// (its count, name and place rewritten only if they changed), the others get new ones,
    /// and the buttons of groups that are gone are removed. Compared without the px
    /// positions: a resize that keeps the groups touches nothing (buttons are placed in
    /// percent and follow the image).
    fn redraw(&mut self, drawn: Vec<Drawn>, locale: Locale) -> Result<(), JsValue> {
        let expanded = self.expanded.as_ref().map(|(leader, _)| leader.clone());
        if self.drawn.is_empty() {
            // All new (a snapshot): every button in one call.
            let mut batch = Clones::new("data-cluster data-count style aria-label");
            for d in &drawn {
                // Written straight into the batch, as the markers are (see `Ui::add_marker`).
                let n = d.members.len();
                batch.value(d.members[0].id.as_str());
                batch.value_with(|out| write_u64(n as u64, out));
                batch.value_with(|out| push_place_style(out, d.frac));
                batch.value(&locale.cluster(n));
                batch.value_with(|out| write_u64(n as u64, out));
                batch.flags(&[]);
            }
            if !batch.is_empty() {
                batch.insert(&self.el, None, &self.template)?;
            }
            self.drawn = drawn.into_iter().zip(children(&self.el)).collect();
            return Ok(());
        }
        let mut old: Vec<Option<(Drawn, Element)>> = std::mem::take(&mut self.drawn)
            .into_iter()
            .map(Some)
            .collect();
        // Groups keep their relative order (by leader), so the matching old one is usually
        // the next: a cursor, with a scan as the fallback.
        let mut cursor = 0;
        // Whether the kept buttons are still in their old order (then only new ones need
        // placing), and where the new ones are in `next`.
        let mut in_order = true;
        let mut created = Vec::new();
        let mut next = Vec::with_capacity(drawn.len());
        for d in drawn {
            let leader = &d.members[0].id;
            let found = (cursor..old.len()).chain(0..cursor).find(|&i| {
                old[i]
                    .as_ref()
                    .is_some_and(|(o, _)| &o.members[0].id == leader)
            });
            let button = match found.and_then(|i| {
                in_order &= i >= cursor;
                cursor = i + 1;
                old[i].take()
            }) {
                Some((o, b)) => {
                    if o.members.len() != d.members.len() {
                        let count = decimal(d.members.len() as u64);
                        plain::set(&b, "data-count", &count);
                        b.set_text_content(Some(&count));
                        plain::set(&b, "aria-label", &locale.cluster(d.members.len()));
                    }
                    if o.frac != d.frac {
                        plain::set(&b, "style", &place_style(d.frac));
                    }
                    b
                }
                None => {
                    let b: Element = self.template.clone_node()?.dyn_into()?;
                    let count = decimal(d.members.len() as u64);
                    plain::set(&b, "data-cluster", leader.as_str());
                    plain::set(&b, "data-count", &count);
                    plain::set(&b, "style", &place_style(d.frac));
                    plain::set(&b, "aria-label", &locale.cluster(d.members.len()));
                    plain::set(
                        &b,
                        "aria-expanded",
                        if expanded.as_ref() == Some(leader) {
                            "true"
                        } else {
                            "false"
                        },
                    );
                    b.set_text_content(Some(&count));
                    created.push(next.len());
                    b
                }
            };
            next.push((d, button));
        }
        for (_, gone) in old.into_iter().flatten() {
            gone.remove();
        }
        if in_order {
            // Only the new buttons move: each goes before the one that follows it, placed
            // already (last first). A live event adds one or two, and checking the place of
            // every button was a few calls into JS each.
            for &i in created.iter().rev() {
                let before = next.get(i + 1).map(|(_, b)| b.as_ref());
                plain::insert(&self.el, next[i].1.as_ref(), before);
            }
        } else {
            self.reorder(&next);
        }
        self.drawn = next;
        Ok(())
    }

    /// Puts every button of `next` in its place (a group's leader changed places: rare), and
    /// gives the focus back to a kept button that was moved.
    fn reorder(&self, next: &[(Drawn, Element)]) {
        let focused = self
            .el
            .owner_document()
            .and_then(|doc| doc.active_element());
        let mut after: Option<web_sys::Node> = None;
        for (_, b) in next {
            let expected = match &after {
                Some(a) => a.next_sibling(),
                None => self.el.first_child(),
            };
            let node: &web_sys::Node = b.as_ref();
            if expected.as_ref() != Some(node) {
                plain::insert(&self.el, node, expected.as_ref());
            }
            after = Some(node.clone());
        }
        if let Some(f) = focused
            && self.el.contains(Some(&f))
        {
            focus(&f);
        }
    }

    /// The cluster button of the group led by `leader`.
    fn button(&self, leader: &str) -> Option<Element> {
        self.drawn
            .iter()
            .find(|(d, _)| d.members[0].id.as_str() == leader)
            .map(|(_, b)| b.clone())
    }

    /// Expands the group led by `leader` (folding any other), or folds it if it is the one
    /// expanded. Returns whether it is expanded now.
    #[allow(clippy::too_many_arguments)]
    pub fn toggle(
        &mut self,
        leader: &ChatId,
        chats: &SortedMap<ChatId, Rc<ChatView>>,
        width: f64,
        height: f64,
        marker: &dyn Fn(&ChatId) -> Option<Element>,
    ) -> bool {
        let was = self.collapse(marker);
        if was.as_ref() == Some(leader) {
            return false;
        }
        self.expand(leader, chats, width, height, marker, true)
    }

    /// Fans the members of the group led by `leader` out around its button; `focus_first`
    /// moves the focus to the first member (an expansion the person asked for).
    #[allow(clippy::too_many_arguments)]
    fn expand(
        &mut self,
        leader: &ChatId,
        chats: &SortedMap<ChatId, Rc<ChatView>>,
        width: f64,
        height: f64,
        marker: &dyn Fn(&ChatId) -> Option<Element>,
        focus_first: bool,
    ) -> bool {
        let Some(group) = self
            .drawn
            .iter()
            .find(|(d, _)| d.members[0].id == *leader)
            .map(|(d, _)| d.clone())
        else {
            return false;
        };
        // A little more than a diameter apart, so the rings (and focus outlines) stay clear.
        let gap = self.reach() * 1.2;
        let places = grouping::fan(group.at, group.members.len(), gap, width, height);
        let mut first = None;
        for (member, (x, y)) in group.members.iter().zip(places) {
            let (Some(m), Some(point)) = (
                marker(&member.id),
                chats.get(&member.id).and_then(|c| c.point()),
            ) else {
                continue;
            };
            // Hidden in the group, it may have been created without its place (`Ui::recluster`);
            // the fan shifts it from there.
            plain::set(&m, "style", &place_style(point));
            let (fx, fy) = (point.0 * width, point.1 * height);
            set_style(&m, "--ic-fx", &px(x - fx));
            set_style(&m, "--ic-fy", &px(y - fy));
            plain::set(&m, "data-fanned", "");
            first.get_or_insert(m);
        }
        if let Some(b) = self.button(leader.as_str()) {
            plain::set(&b, "aria-expanded", "true");
        }
        self.expanded = Some((leader.clone(), group.members));
        if focus_first && let Some(m) = first {
            focus(&m);
        }
        true
    }

    /// Folds the expanded group, if any; returns its leader.
    pub fn collapse(&mut self, marker: &dyn Fn(&ChatId) -> Option<Element>) -> Option<ChatId> {
        let (leader, members) = self.expanded.take()?;
        for member in &members {
            if let Some(m) = marker(&member.id) {
                plain::unset(&m, "data-fanned");
                set_style(&m, "--ic-fx", "");
                set_style(&m, "--ic-fy", "");
            }
        }
        if let Some(b) = self.button(leader.as_str()) {
            plain::set(&b, "aria-expanded", "false");
        }
        Some(leader)
    }

    /// Focuses the cluster button of the group led by `leader` (after it folds).
    pub fn focus(&self, leader: &ChatId) {
        if let Some(b) = self.button(leader.as_str()) {
            focus(&b);
        }
    }

    /// Whether a group is expanded.
    pub fn is_expanded(&self) -> bool {
        self.expanded.is_some()
    }

    /// Forgets every group (the markers were all removed).
    pub fn clear(&mut self) {
        self.el.set_text_content(None);
        self.drawn.clear();
        self.expanded = None;
    }
}

fn drawn(g: &Group, order: &[Rc<ChatView>], width: f64, height: f64) -> Drawn {
    Drawn {
        // The views shared, not their ids copied (a snapshot's groups hold nearly all).
        members: g.members.iter().map(|&i| Rc::clone(&order[i])).collect(),
        at: g.at,
        frac: (g.at.0 / width, g.at.1 / height),
    }
}
