//! What a page shows when an option is invalid: instead of silently not mounting (a typo in a
//! `data-*` attribute left the site owner with nothing on screen and one line in the console),
//! a short translated notice right after the image names the option at fault
//! (`span.image-chat-invalid[role=alert][data-option]`, the developer's full message in its
//! `title`). It is styled inline through the CSSOM (allowed under a strict CSP), as the
//! widget's stylesheet is only injected for a mounted widget, and removed by the next mount
//! attempt on the same image.

use web_sys::{Document, Element};

use crate::dom::plain;
use crate::i18n::Locale;
use crate::options::OptionsError;

/// Class of the notice.
pub const CLASS: &str = "image-chat-invalid";

/// Shows the notice for `err` after `img` (replacing an earlier one).
pub fn show(doc: &Document, img: &Element, locale: Locale, err: &OptionsError) {
    clear(img);
    let notice = plain::create(doc, "span");
    notice.set_class_name(CLASS);
    plain::set(&notice, "role", "alert");
    plain::set(&notice, "lang", locale.tag());
    plain::set(&notice, "data-option", err.option());
    plain::set(&notice, "title", &err.message());
    notice.set_text_content(Some(&locale.invalid_option(err.option())));
    for (name, value) in [
        ("display", "block"),
        ("margin", "4px 0"),
        ("font", "13px/1.4 system-ui,sans-serif"),
        ("color", "#c62828"),
    ] {
        plain::set_style(&notice, name, value);
    }
    if let Some(parent) = img.parent_node() {
        plain::insert(&parent, &notice, img.next_sibling().as_ref());
    }
}

/// Removes the notice after `img`, if any.
pub fn clear(img: &Element) {
    if let Some(next) = img.next_element_sibling()
        && next.class_list().contains(CLASS)
    {
        next.remove();
    }
}
