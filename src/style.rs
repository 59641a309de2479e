//! The widget's stylesheet, injected once per document (a `<style id="image-chat-style">` in
//! `<head>`, shared by every instance and removed with the last one).
//!
//! Site owners restyle through the public custom properties (`--image-chat-*`, documented in
//! docs/WIDGET.md), set on `.image-chat` or on any ancestor. Each public property feeds a
//! private `--ic-*` one whose fallback depends on the theme, so an owner's value wins in both
//! themes and the defaults still switch between light and dark.

use std::cell::Cell;

use web_sys::Document;

/// Id of the injected `<style>` element.
pub const STYLE_ID: &str = "image-chat-style";

thread_local! {
    /// Mounted instances sharing the stylesheet.
    static USERS: Cell<u32> = const { Cell::new(0) };
}

const LIGHT: &str = "--ic-accent:var(--image-chat-accent,#cf2a60);--ic-on-accent:var(--image-chat-on-accent,#fff);--ic-bg:var(--image-chat-bg,#fff);--ic-fg:var(--image-chat-fg,#1d1d24);--ic-muted:var(--image-chat-muted,#5f6170);--ic-border:var(--image-chat-border,#d9d9e3);--ic-danger:var(--image-chat-danger,#c62828);--ic-live:var(--image-chat-live,#1f9d55);--ic-bar-bg:var(--image-chat-bar-bg,rgba(255,255,255,.88));--ic-field-bg:var(--image-chat-field-bg,#f6f6f9);";
const DARK: &str = "--ic-accent:var(--image-chat-accent,#ff5c93);--ic-on-accent:var(--image-chat-on-accent,#16161c);--ic-bg:var(--image-chat-bg,#1e1f26);--ic-fg:var(--image-chat-fg,#ececf1);--ic-muted:var(--image-chat-muted,#a9abb8);--ic-border:var(--image-chat-border,#3a3c48);--ic-danger:var(--image-chat-danger,#ff6b6b);--ic-live:var(--image-chat-live,#4ade80);--ic-bar-bg:var(--image-chat-bar-bg,rgba(24,24,30,.88));--ic-field-bg:var(--image-chat-field-bg,#2a2b34);";

/// Layout and looks, independent of the theme.
///
/// The overlay root is placed by the widget (see `crate::overlay`); the marker layer is the
/// picture box the root carries in `--ic-l/t/w/h`. The thread panel is placed on screen by the
/// widget (`data-place`), a bottom sheet on narrow screens. On coarse pointers markers and
/// cluster buttons get an invisible 44×44 px hit area (the markers' paint containment is
/// dropped so it is not clipped),
/// buttons are at least 44×44 px and text boxes use 16 px text (phones zoom into smaller).
/// The marker focus ring is white between two dark rings, visible on any photo.
///
/// Containment keeps a thousand markers cheap: the layer (`size layout style`, no `paint` so
/// markers on the image's edge are not clipped) is their containing block, so adding or
/// changing one does not re-lay out the overlay, and each marker (`strict`: fixed size) is laid
/// out and painted on its own. The layer lets clicks through to the overlay; markers take them.
///
/// Each marker has its own position, so Chromium cannot share one cached computed style between
/// them and resolves every declaration of every marker, `var()` ones included (each is
/// substituted and parsed again, per element). So the marker's font and text colour (whose
/// size gives its width and height, in `em`) are set once on the layer and inherited, the
/// ring is `currentColor`, and only the background is a `var()`: measured on a static page of
/// 1,000 markers with this stylesheet, the first style recalc went from 22 to 15 ms of
/// main-thread CPU (docs/BENCHMARKS.md §6b). That one is `background-color`, not the
/// `background` shorthand: a shorthand holding a `var()` is substituted and re-parsed into all
/// its longhands per element (≈ 0.8 ms less on the same page). The draft marker, outside the
/// layer, gets the same font and colour from the same rule.
const RULES: &str = r#"
.image-chat-overlays{position:absolute;left:0;top:0;width:0;height:0;overflow:visible;margin:0;padding:0;border:0}
.image-chat[hidden]{display:none}
.image-chat{position:absolute;left:0;top:0;box-sizing:border-box;z-index:var(--image-chat-z,10);cursor:crosshair;font:var(--image-chat-font,13px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif);color:var(--ic-fg);text-align:left;-webkit-tap-highlight-color:transparent}
.image-chat[data-read-only]{cursor:default}
.image-chat:focus{outline:none}
.image-chat:focus-visible{outline:2px solid var(--ic-accent);outline-offset:2px}
.image-chat *,.image-chat *::before,.image-chat *::after{box-sizing:border-box}
.image-chat-layer{position:absolute;left:var(--ic-l,0);top:var(--ic-t,0);width:var(--ic-w,100%);height:var(--ic-h,100%);contain:size layout style;pointer-events:none}
.image-chat-crosshair,.image-chat-marker[data-draft]{left:calc(var(--ic-l,0px) + var(--ic-w,0px)*var(--x,50)/100);top:calc(var(--ic-t,0px) + var(--ic-h,0px)*var(--y,50)/100)}
.image-chat-layer,.image-chat-marker[data-draft]{font:700 calc(var(--image-chat-marker-size,28px)*.42)/1 system-ui,sans-serif;color:var(--ic-on-accent)}
.image-chat-marker{position:absolute;width:calc(1em/.42);height:calc(1em/.42);transform:translate(-50%,-50%);margin:0;padding:0;border:2px solid;border-radius:50%;background-color:var(--ic-accent);color:inherit;font:inherit;box-shadow:0 2px 6px rgba(0,0,0,.35);cursor:pointer;transition:transform .12s;contain:strict;pointer-events:auto}
.image-chat-marker:hover,.image-chat-marker[aria-expanded=true]{transform:translate(-50%,-50%) scale(1.12)}
.image-chat-marker:focus-visible{outline:2px solid #fff;outline-offset:2px;box-shadow:0 0 0 2px #111,0 0 0 6px #111}
.image-chat-marker[data-draft]{background:var(--ic-bg);color:var(--ic-accent);border:2px dashed var(--ic-accent)}
.image-chat-marker[data-pending]{opacity:var(--image-chat-pending-opacity,.6)}
.image-chat-marker[data-failed]{background:var(--ic-danger);color:#fff}
.image-chat-crosshair{position:absolute;display:none;width:24px;height:24px;margin:-12px 0 0 -12px;border:2px solid var(--ic-accent);border-radius:50%;pointer-events:none;box-shadow:0 0 0 2px var(--ic-on-accent)}
.image-chat:focus-visible>.image-chat-crosshair{display:block}
.image-chat-thread{position:absolute;left:0;top:0;z-index:1;width:min(var(--image-chat-panel-width,300px),calc(100vw - 16px));max-height:min(420px,80vh);display:flex;flex-direction:column;background:var(--ic-bg);color:var(--ic-fg);border:1px solid var(--ic-border);border-radius:var(--image-chat-radius,10px);box-shadow:0 8px 28px rgba(0,0,0,.28);cursor:auto;box-sizing:border-box}
.image-chat-thread[data-place=sheet]{position:fixed;left:0;right:0;top:auto;bottom:0;width:auto;border-radius:var(--image-chat-radius,10px) var(--image-chat-radius,10px) 0 0;border-width:1px 0 0;box-shadow:0 -8px 28px rgba(0,0,0,.3)}
.image-chat-thread:focus{outline:none}
.image-chat-head{flex:none;display:flex;align-items:center;gap:8px;padding:8px 8px 8px 12px;border-bottom:1px solid var(--ic-border);font-weight:600}
.image-chat-head>span{flex:1}
.image-chat-comments{list-style:none;margin:0;padding:4px 12px;overflow:auto;flex:1 1 auto}
.image-chat-comment{padding:8px 0;border-bottom:1px solid var(--ic-border)}
.image-chat-comment:last-child{border-bottom:0}
.image-chat-comment[data-pending]{opacity:var(--image-chat-pending-opacity,.6)}
.image-chat-comment[data-failed]{border-left:3px solid var(--ic-danger);padding-left:8px}
.image-chat-meta{display:flex;flex-wrap:wrap;gap:0 6px;align-items:baseline;color:var(--ic-muted);font-size:.9em}
.image-chat-author{color:var(--ic-fg);font-weight:600}
.image-chat-text{margin:2px 0 0;white-space:pre-wrap;overflow-wrap:anywhere}
.image-chat-error{margin:4px 0 0;color:var(--ic-danger);font-size:.92em}
.image-chat-actions{display:flex;flex-wrap:wrap;gap:6px;margin-top:4px}
.image-chat-compose{flex:none;padding:8px 12px 12px;border-top:1px solid var(--ic-border)}
.image-chat textarea{display:block;width:100%;min-height:56px;resize:vertical;margin:0 0 6px;padding:6px 8px;font:inherit;color:var(--ic-fg);background:var(--ic-field-bg);border:1px solid var(--ic-border);border-radius:6px}
.image-chat textarea:focus-visible{outline:2px solid var(--ic-accent);outline-offset:0}
.image-chat button.image-chat-btn{font:inherit;font-size:.92em;padding:3px 10px;border:1px solid var(--ic-border);border-radius:6px;background:transparent;color:var(--ic-fg);cursor:pointer}
.image-chat button.image-chat-btn[data-primary]{background:var(--ic-accent);border-color:var(--ic-accent);color:var(--ic-on-accent)}
.image-chat button.image-chat-btn[data-danger]{color:var(--ic-danger)}
.image-chat button.image-chat-btn:focus-visible{outline:2px solid var(--ic-accent);outline-offset:1px}
.image-chat-close{border:0!important;font-size:1.2em!important;line-height:1}
.image-chat-bar{position:absolute;left:6px;bottom:6px;display:flex;gap:8px;align-items:center;max-width:calc(100% - 12px);padding:2px 8px;border-radius:999px;background:var(--ic-bar-bg);color:var(--ic-fg);font-size:11px;pointer-events:none;white-space:nowrap;overflow:hidden}
.image-chat-status,.image-chat-online{min-width:0;overflow:hidden;text-overflow:ellipsis}
.image-chat-online{flex:0 100 auto}
.image-chat[data-compact] .image-chat-online{display:none}
.image-chat-bar button.image-chat-btn{pointer-events:auto;padding:0 6px;border-radius:999px}
.image-chat-status::before{content:"";display:inline-block;width:7px;height:7px;margin-right:5px;border-radius:50%;background:var(--ic-muted)}
.image-chat[data-state=live] .image-chat-status::before{background:var(--ic-live)}
.image-chat[data-state=offline] .image-chat-status::before,.image-chat[data-state=stopped] .image-chat-status::before{background:var(--ic-danger)}
.image-chat-online:empty{display:none}
.image-chat-sr{position:absolute!important;width:1px;height:1px;margin:-1px;padding:0;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;border:0}
@media (prefers-reduced-motion:reduce){.image-chat-marker{transition:none}}
@media (pointer:coarse){.image-chat-marker{contain:size layout style}.image-chat-marker::after,.image-chat-cluster::after{content:"";position:absolute;inset:min(0px,calc(50% - 22px));border-radius:50%}.image-chat button.image-chat-btn{min-width:44px;min-height:44px}.image-chat textarea{font-size:16px}}
"#;

/// People and density: names and texts isolated from their surroundings (a right-to-left
/// override in a name cannot reorder what follows it), badges that a typed name cannot
/// imitate, the first-post name field, clusters of overlapping markers, the markers toggle.
const PEOPLE_RULES: &str = r#"
.image-chat-author,.image-chat-text{unicode-bidi:isolate}
.image-chat-text{unicode-bidi:plaintext}
.image-chat-badge{display:inline-block;padding:0 6px;border-radius:999px;border:1px solid var(--ic-border);background:var(--ic-field-bg);color:var(--ic-fg);font-size:.85em;font-weight:600;line-height:1.5;unicode-bidi:isolate}
.image-chat-badge[data-badge=you]{background:var(--ic-accent);border-color:var(--ic-accent);color:var(--ic-on-accent)}
.image-chat-badge[data-badge=moderator]{border-color:var(--ic-live);color:var(--ic-live)}
.image-chat-name-field{display:flex;flex-direction:column;gap:2px;margin:0 0 6px;font-size:.92em;color:var(--ic-muted)}
.image-chat input.image-chat-name{font:inherit;color:var(--ic-fg);background:var(--ic-field-bg);border:1px solid var(--ic-border);border-radius:6px;padding:4px 8px;unicode-bidi:isolate}
.image-chat input.image-chat-name:focus-visible{outline:2px solid var(--ic-accent);outline-offset:0}
.image-chat-clusters{position:absolute;left:var(--ic-l,0);top:var(--ic-t,0);width:var(--ic-w,100%);height:var(--ic-h,100%);pointer-events:none;font:700 calc(var(--image-chat-marker-size,28px)*.42)/1 system-ui,sans-serif;color:var(--ic-on-accent)}
.image-chat-cluster{position:absolute;width:calc(1em/.42*1.15);height:calc(1em/.42*1.15);transform:translate(-50%,-50%);margin:0;padding:0;border:2px solid;border-radius:50%;background-color:var(--ic-accent);color:inherit;font:inherit;box-shadow:0 0 0 3px var(--ic-bg),0 2px 6px rgba(0,0,0,.35);cursor:pointer;pointer-events:auto}
.image-chat-cluster:focus-visible{outline:3px solid var(--ic-fg);outline-offset:2px}
.image-chat-cluster[aria-expanded=true]{opacity:.55}
.image-chat-marker[data-clustered]{display:none}
.image-chat-marker[data-fanned]{display:block;z-index:1;translate:var(--ic-fx,0) var(--ic-fy,0)}
.image-chat[data-markers-hidden] .image-chat-layer,.image-chat[data-markers-hidden] .image-chat-clusters{display:none}
.image-chat-bar button.image-chat-toggle{pointer-events:auto;font:inherit;line-height:1;padding:0 2px;margin:0;border:0;background:transparent;color:var(--ic-fg);cursor:pointer}
.image-chat-toggle[aria-pressed=false]{opacity:.6}
.image-chat-toggle:focus-visible{outline:2px solid var(--ic-accent);outline-offset:1px}
"#;

/// Managing discussions: resolved ones muted (and hidden by the bar's filter), their threads
/// collapsed; movable markers dragged (no scrolling under a finger); region boxes; avatars;
/// the thread's tools (copy link, resolve).
const MANAGE_RULES: &str = r#"
.image-chat-marker[data-resolved]{background-color:var(--ic-muted);opacity:.75}
.image-chat[data-open-only] .image-chat-marker[data-resolved],.image-chat[data-open-only] .image-chat-region[data-resolved]{display:none}
.image-chat-marker[data-movable]{touch-action:none}
.image-chat[data-read-only] .image-chat-marker[data-movable]{touch-action:auto}
.image-chat-marker[data-moving]{transition:none;z-index:2;cursor:grabbing}
.image-chat-regions{position:absolute;left:var(--ic-l,0);top:var(--ic-t,0);width:var(--ic-w,100%);height:var(--ic-h,100%);pointer-events:none}
.image-chat-region{position:absolute;border:2px solid var(--ic-accent);border-radius:3px;background:rgba(255,255,255,.08);box-shadow:0 0 0 1px rgba(0,0,0,.35)}
.image-chat-region[data-draft]{border-style:dashed}
.image-chat-region[data-resolved]{border-color:var(--ic-muted);opacity:.6}
.image-chat[data-markers-hidden] .image-chat-regions{display:none}
.image-chat-thread[data-collapsed] .image-chat-comment+.image-chat-comment{display:none}
.image-chat-thread [data-show-thread]{padding:0 12px 6px}
.image-chat-thread [data-show-thread][hidden]{display:none}
.image-chat-tools{display:flex;flex-wrap:wrap;gap:6px;flex:none;padding:6px 12px 0}
.image-chat-avatar{display:inline-grid;place-items:center;align-self:center;width:20px;height:20px;border-radius:50%;object-fit:cover;background:var(--ic-field-bg);border:1px solid var(--ic-border);color:var(--ic-muted);font-size:11px;font-weight:700;line-height:1;flex:none;text-transform:uppercase}
.image-chat-bar button.image-chat-filter{pointer-events:auto;font:inherit;line-height:1;padding:0 2px;margin:0;border:0;background:transparent;color:var(--ic-fg);cursor:pointer}
.image-chat-filter[aria-pressed=false]{opacity:.6;text-decoration:line-through}
.image-chat-filter:focus-visible{outline:2px solid var(--ic-accent);outline-offset:1px}
.image-chat-bar button.image-chat-lock{pointer-events:auto;font:inherit;line-height:1;padding:0 2px;margin:0;border:0;background:transparent;color:var(--ic-fg);cursor:pointer}
.image-chat-lock[aria-pressed=false]{opacity:.6}
.image-chat-lock:focus-visible{outline:2px solid var(--ic-accent);outline-offset:1px}
.image-chat-bar .image-chat-icon{display:inline-block;width:.625em;height:.875em;max-width:none;margin:0;vertical-align:-.0625em;fill:currentColor;stroke:none}
"#;

/// Text mode (the text bundle only): the overlay lets the pointer through to the article and
/// shows no markers or bar of its own; the prompt at a selection; the highlights
/// (`::highlight(image-chat)`, `…-resolved`, `…-open`, and the fallback's `mark`s); the top bar
/// (in the site's page, so it gets the theme's properties itself).
#[cfg(feature = "text")]
const TEXT_RULES: &str = r#"
.image-chat[data-mode=text]{pointer-events:none;cursor:auto}
.image-chat[data-mode=text] .image-chat-layer,.image-chat[data-mode=text] .image-chat-clusters,.image-chat[data-mode=text] .image-chat-regions,.image-chat[data-mode=text] .image-chat-crosshair,.image-chat[data-mode=text]>.image-chat-marker,.image-chat[data-mode=text]>.image-chat-bar{display:none}
.image-chat[data-mode=text] .image-chat-thread,.image-chat-prompt{pointer-events:auto}
.image-chat-prompt{position:absolute;z-index:2;display:flex;flex-wrap:wrap;gap:4px;max-width:min(360px,calc(100vw - 16px));padding:4px;background:var(--ic-bg);color:var(--ic-fg);border:1px solid var(--ic-border);border-radius:8px;box-shadow:0 4px 16px rgba(0,0,0,.25)}
.image-chat-prompt[hidden]{display:none}
.image-chat-prompt .image-chat-error{flex-basis:100%;margin:0}
::highlight(image-chat){background-color:var(--image-chat-highlight,rgba(255,193,7,.38))}
::highlight(image-chat-resolved){background-color:var(--image-chat-highlight-resolved,rgba(128,128,128,.2))}
::highlight(image-chat-open){background-color:var(--image-chat-highlight-open,rgba(255,122,0,.5))}
mark.image-chat-mark{background-color:var(--image-chat-highlight,rgba(255,193,7,.38));color:inherit;cursor:pointer}
mark.image-chat-mark[data-kind=image-chat-resolved]{background-color:var(--image-chat-highlight-resolved,rgba(128,128,128,.2))}
mark.image-chat-mark[data-kind=image-chat-open]{background-color:var(--image-chat-highlight-open,rgba(255,122,0,.5))}
.image-chat-topbar{display:flex;flex-wrap:wrap;align-items:center;gap:6px 12px;margin:0 0 1em;padding:6px 10px;border:1px solid var(--ic-border);border-radius:var(--image-chat-radius,10px);background:var(--ic-bg);color:var(--ic-fg);font:var(--image-chat-font,13px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif);text-align:left}
.image-chat-topbar *{box-sizing:border-box}
.image-chat-topbar .image-chat-bar{position:static;max-width:none;padding:0;background:transparent;font-size:inherit;pointer-events:auto}
.image-chat-topbar .image-chat-toggle,.image-chat-topbar .image-chat-filter{display:none}
.image-chat-topbar[data-state=live] .image-chat-status::before{background:var(--ic-live)}
.image-chat-topbar[data-state=offline] .image-chat-status::before,.image-chat-topbar[data-state=stopped] .image-chat-status::before{background:var(--ic-danger)}
.image-chat-topbar button.image-chat-btn{font:inherit;font-size:.92em;padding:3px 10px;border:1px solid var(--ic-border);border-radius:6px;background:transparent;color:var(--ic-fg);cursor:pointer;text-align:left}
.image-chat-topbar button.image-chat-btn[aria-pressed=true]{background:var(--ic-accent);border-color:var(--ic-accent);color:var(--ic-on-accent)}
.image-chat-topbar button.image-chat-btn:focus-visible,.image-chat-topbar summary:focus-visible{outline:2px solid var(--ic-accent);outline-offset:1px}
.image-chat-count{color:var(--ic-muted)}
.image-chat-list{flex-basis:100%}
.image-chat-list[hidden],.image-chat-topbar [hidden]{display:none}
.image-chat-list summary{cursor:pointer;font-weight:600}
.image-chat-list ol{list-style:none;margin:4px 0 0;padding:0;display:flex;flex-direction:column;gap:2px}
.image-chat-list button.image-chat-btn{border-color:transparent;width:100%;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.image-chat-changed{margin:6px 0 0;color:var(--ic-muted);font-weight:600;font-size:.92em}
@media (pointer:coarse){.image-chat-topbar button.image-chat-btn,.image-chat-prompt button.image-chat-btn{min-height:44px}}
"#;

/// The touch area of a marker or cluster button on a coarse pointer, px across (their
/// `::after` under `@media (pointer:coarse)`: `50% - 22px` on each side). Grouping and the
/// fan-out keep markers this far apart on such a pointer ([`crate::clusters`]).
pub const TOUCH_TARGET: f64 = 44.0;

/// The whole stylesheet.
pub fn stylesheet() -> String {
    [
        ".image-chat,.image-chat[data-theme=light]",
        TOPBAR_LIGHT,
        "{",
        LIGHT,
        "}.image-chat[data-theme=dark]",
        TOPBAR_DARK,
        "{",
        DARK,
        "}@media (prefers-color-scheme:dark){.image-chat[data-theme=auto]",
        TOPBAR_AUTO,
        "{",
        DARK,
        "}}",
        RULES,
        PEOPLE_RULES,
        MANAGE_RULES,
        #[cfg(feature = "text")]
        TEXT_RULES,
    ]
    .concat()
}

/// The top bar takes the themes' properties too (it is not inside `.image-chat`).
#[cfg(feature = "text")]
const TOPBAR_LIGHT: &str = ",.image-chat-topbar,.image-chat-topbar[data-theme=light]";
#[cfg(feature = "text")]
const TOPBAR_DARK: &str = ",.image-chat-topbar[data-theme=dark]";
#[cfg(feature = "text")]
const TOPBAR_AUTO: &str = ",.image-chat-topbar[data-theme=auto]";
#[cfg(not(feature = "text"))]
const TOPBAR_LIGHT: &str = "";
#[cfg(not(feature = "text"))]
const TOPBAR_DARK: &str = "";
#[cfg(not(feature = "text"))]
const TOPBAR_AUTO: &str = "";

/// Adds the stylesheet if this is the first instance; call [`release`] on destroy.
pub fn acquire(doc: &Document) {
    USERS.with(|u| u.set(u.get().saturating_add(1)));
    if doc.get_element_by_id(STYLE_ID).is_some() {
        return;
    }
    let Ok(style) = doc.create_element("style") else {
        return;
    };
    style.set_id(STYLE_ID);
    style.set_text_content(Some(&stylesheet()));
    let parent = doc
        .head()
        .map(web_sys::Node::from)
        .or_else(|| doc.document_element().map(Into::into));
    if let Some(parent) = parent {
        // Prepended, so the page's own rules (later in the cascade) win at equal specificity.
        let _ = parent.insert_before(&style, parent.first_child().as_ref());
    }
}

/// Removes the stylesheet when the last widget of the page is destroyed.
pub fn release(doc: &Document) {
    let left = USERS.with(|u| {
        let n = u.get().saturating_sub(1);
        u.set(n);
        n
    });
    // Another instance of the widget on the page (the text bundle loaded after the image one)
    // shares the stylesheet: it stays while any overlay or top bar is left.
    if left == 0
        && crate::dom::plain::query_all(doc, ".image-chat,.image-chat-topbar").length() == 0
        && let Some(style) = doc.get_element_by_id(STYLE_ID)
    {
        style.remove();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_touch_area_is_touch_target_across() {
        let half = TOUCH_TARGET / 2.0;
        let rule = format!(
            ".image-chat-marker::after,.image-chat-cluster::after{{content:\"\";position:absolute;inset:min(0px,calc(50% - {half}px))"
        );
        assert!(
            stylesheet().contains(&rule),
            "the stylesheet's touch area is not {TOUCH_TARGET} px"
        );
    }
}
