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
//! move, and when the image is resized.

use image_chat_protocol::ChatId;
use image_chat_sync::ChatView;
use image_chat_sync::sorted::SortedMap;
use wasm_bindgen::JsValue;
use web_sys::{Document, Element};

use crate::dom::Clones;
use crate::dom::clones::flag_children;
use crate::dom::plain::{self, focus, set_style};
use crate::geometry::{percent, px};
use crate::grouping::{self, Group};
use crate::i18n::{Locale, decimal};

/// One group as drawn.
#[derive(Clone, Debug, PartialEq)]
struct Drawn {
    /// Members, leader first (the cluster's `data-cluster` is the leader's id).
    members: Vec<ChatId>,
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
    /// Groups as drawn.
    drawn: Vec<Drawn>,
    /// Whether each marker (by its place in creation order, as last drawn) is hidden in a group.
    clustered: Vec<bool>,
    /// The markers' ids in that order (to carry `clustered` over when the order changes).
    clustered_ids: Vec<ChatId>,
    /// The expanded group (by its leader) and the members fanned out.
    expanded: Option<(ChatId, Vec<ChatId>)>,
    /// Marker diameter, px (the `markerSize` option).
    size: f64,
}

impl Clusters {
    /// An empty container for markers `size` px across.
    pub fn new(doc: &Document, size: f64) -> Self {
        let el = plain::create(doc, "div");
        el.set_class_name("image-chat-clusters");
        let template = plain::create(doc, "button");
        template.set_class_name("image-chat-cluster");
        plain::set(&template, "type", "button");
        Self {
            el,
            template,
            drawn: Vec::new(),
            clustered: Vec::new(),
            clustered_ids: Vec::new(),
            expanded: None,
            size,
        }
    }

    /// Regroups the markers of `order` (creation order = their places in `layer`) over a
    /// `width` × `height` overlay, writing only what changed: `data-clustered` on the markers
    /// that joined or left a group (one call into JS each way), and the cluster buttons when
    /// the groups changed.
    #[allow(clippy::too_many_arguments)]
    pub fn update(
        &mut self,
        layer: &Element,
        order: &[ChatId],
        chats: &SortedMap<ChatId, ChatView>,
        width: f64,
        height: f64,
        locale: Locale,
        marker: &dyn Fn(&ChatId) -> Option<Element>,
    ) -> Result<(), JsValue> {
        if width.is_nan() || height.is_nan() || width <= 0.0 || height <= 0.0 {
            // Not laid out yet (every centre would be at 0, 0 and all in one group).
            return Ok(());
        }
        let centres: Vec<(f64, f64)> = order
            .iter()
            .map(|id| match chats.get(id).and_then(ChatView::point) {
                Some((x, y)) => (x * width, y * height),
                None => (f64::NAN, f64::NAN),
            })
            .collect();
        let groups = grouping::groups(&centres, self.size);
        let mut now = vec![false; order.len()];
        for g in &groups {
            for &m in &g.members {
                now[m] = true;
            }
        }
        // What was drawn, by id, in today's order (markers came and went since).
        let was: Vec<bool> = if self.clustered_ids.as_slice() == order {
            std::mem::take(&mut self.clustered)
        } else {
            let old: SortedMap<&ChatId, bool> = self
                .clustered_ids
                .iter()
                .zip(&self.clustered)
                .map(|(id, &c)| (id, c))
                .collect();
            order
                .iter()
                .map(|id| old.get(&id).copied().unwrap_or(false))
                .collect()
        };
        let (mut on, mut off) = (Vec::new(), Vec::new());
        for (i, (&w, &n)) in was.iter().zip(&now).enumerate() {
            if w != n {
                let i = u32::try_from(i).unwrap_or(u32::MAX);
                if n { on.push(i) } else { off.push(i) }
            }
        }
        flag_children(layer, &on, "data-clustered", true)?;
        flag_children(layer, &off, "data-clustered", false)?;
        self.clustered = now;
        self.clustered_ids = order.to_vec();

        let drawn: Vec<Drawn> = groups
            .iter()
            .map(|g| drawn(g, order, width, height))
            .collect();
        // Compared without the px positions: a resize that keeps the groups keeps the buttons
        // (placed in percent, they follow the image).
        let same = drawn.len() == self.drawn.len()
            && drawn
                .iter()
                .zip(&self.drawn)
                .all(|(a, b)| a.members == b.members && a.frac == b.frac);
        if !same {
            self.redraw(&drawn, locale)?;
        }
        self.drawn = drawn;
        // An expanded group stays expanded while its leader leads a group (re-fanned: the
        // size or its members may have changed); otherwise it folds.
        if let Some((leader, _)) = self.expanded.clone() {
            self.collapse(marker);
            if self.drawn.iter().any(|d| d.members[0] == leader) {
                self.expand(&leader, chats, width, height, marker, false);
            }
        }
        Ok(())
    }

    /// Replaces the cluster buttons, keeping the focus on the same group's button.
    fn redraw(&mut self, drawn: &[Drawn], locale: Locale) -> Result<(), JsValue> {
        let focused = self
            .el
            .owner_document()
            .and_then(|d| d.active_element())
            .filter(|a| self.el.contains(Some(a)))
            .and_then(|a| a.get_attribute("data-cluster"));
        self.el.set_text_content(None);
        let mut batch = Clones::new("data-cluster data-count style aria-label aria-expanded");
        for d in drawn {
            let count = decimal(d.members.len() as u64);
            let style = ["left:", &percent(d.frac.0), ";top:", &percent(d.frac.1)].concat();
            let expanded = self
                .expanded
                .as_ref()
                .is_some_and(|(leader, _)| leader == &d.members[0]);
            batch.push(
                &[
                    d.members[0].as_str(),
                    &count,
                    &style,
                    &locale.cluster(d.members.len()),
                    if expanded { "true" } else { "false" },
                ],
                &count,
                &[],
            );
        }
        if !batch.is_empty() {
            batch.insert(&self.el, None, &self.template)?;
        }
        if let Some(leader) = focused
            && let Some(button) = self.button(&leader)
        {
            focus(&button);
        }
        Ok(())
    }

    /// The cluster button of the group led by `leader`.
    fn button(&self, leader: &str) -> Option<Element> {
        let children = self.el.children();
        (0..children.length())
            .filter_map(|i| children.item(i))
            .find(|b| b.get_attribute("data-cluster").as_deref() == Some(leader))
    }

    /// Expands the group led by `leader` (folding any other), or folds it if it is the one
    /// expanded. Returns whether it is expanded now.
    #[allow(clippy::too_many_arguments)]
    pub fn toggle(
        &mut self,
        leader: &ChatId,
        chats: &SortedMap<ChatId, ChatView>,
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
        chats: &SortedMap<ChatId, ChatView>,
        width: f64,
        height: f64,
        marker: &dyn Fn(&ChatId) -> Option<Element>,
        focus_first: bool,
    ) -> bool {
        let Some(group) = self.drawn.iter().find(|d| &d.members[0] == leader).cloned() else {
            return false;
        };
        // A little more than a diameter apart, so the rings (and focus outlines) stay clear.
        let gap = self.size * 1.2;
        let places = grouping::fan(group.at, group.members.len(), gap, width, height);
        let mut first = None;
        for (id, (x, y)) in group.members.iter().zip(places) {
            let (Some(m), Some((fx, fy))) = (
                marker(id),
                chats
                    .get(id)
                    .and_then(ChatView::point)
                    .map(|(cx, cy)| (cx * width, cy * height)),
            ) else {
                continue;
            };
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
        for id in &members {
            if let Some(m) = marker(id) {
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
        self.clustered.clear();
        self.clustered_ids.clear();
        self.expanded = None;
    }
}

fn drawn(g: &Group, order: &[ChatId], width: f64, height: f64) -> Drawn {
    Drawn {
        members: g.members.iter().map(|&i| order[i].clone()).collect(),
        at: g.at,
        frac: (g.at.0 / width, g.at.1 / height),
    }
}
