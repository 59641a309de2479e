//! Every string a person reads, in English, French, Portuguese and Russian.
//!
//! Pure (no browser types), so it is tested natively. A [`Locale`] is negotiated from the
//! `locale` option or `navigator.languages`; [`Strings`] holds everything one locale says: the
//! fixed phrases, the templates of the phrases that carry numbers or names (`{}` placeholders,
//! filled in order by [`fill`]) and the plural forms of their words. The only per-language
//! code is the plural rule ([`Locale::plural`]); everything else is data, and no `format!`
//! runs here, which keeps `core::fmt` out of the widget's bundle.
//!
//! Only English ([`EN`]) is compiled in. The other tables are data files, `locales/<tag>.json`,
//! which the build ships as separately fetched chunks (`pkg/locales/<tag>.js`): a page
//! downloads only its own language (docs/BENCHMARKS.md §6a). [`load`] checks and registers
//! one (`crate::locales` fetches it); until then, and if it never comes, [`Locale::shown`] is
//! English, so a widget always has every phrase.
//!
//! Adding a language: add a [`Locale`] variant, its arms in [`Locale::tag`] and
//! [`Locale::plural`] and a `locales/<tag>.json` with every key of [`EN`]; the tests check
//! every table.

use std::cell::RefCell;

use image_chat_protocol::number::write_u64;
use image_chat_protocol::{ErrorCode, ValidationError};

use crate::reltime::Relative;

/// A supported UI language.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Locale {
    /// English (the fallback).
    En,
    /// French.
    Fr,
    /// Portuguese (Brazilian plural rules, which also read naturally in Portugal).
    Pt,
    /// Russian.
    Ru,
}

/// CLDR plural categories used by the supported languages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plural {
    /// "one" (1 in English; 0 and 1 in French and Portuguese; 1, 21, 31… in Russian).
    One,
    /// Russian "few": 2–4, 22–24…
    Few,
    /// Everything else ("other" / Russian "many").
    Many,
}

/// A word's forms for [`Plural::One`], [`Plural::Few`] and [`Plural::Many`], in that order
/// (languages without "few" repeat the "many" form there).
pub type Forms = [&'static str; 3];

/// `n` in decimal, without the `core::fmt` machinery.
pub fn decimal(n: u64) -> String {
    let mut out = String::new();
    write_u64(n, &mut out);
    out
}

/// `template` with each `{}` replaced by the next of `args`, in order (a `{}` with no argument
/// left stays as it is). The templates are this module's own, so no escaping is needed.
pub fn fill(template: &str, args: &[&str]) -> String {
    let mut out =
        String::with_capacity(template.len() + args.iter().map(|a| a.len()).sum::<usize>());
    fill_into(&mut out, template, args);
    out
}

/// [`fill`], appended to `out`.
pub fn fill_into(out: &mut String, template: &str, args: &[&str]) {
    let bytes = template.as_bytes();
    let mut args = args.iter();
    // A plain byte scan for `{}` links less code than a substring search or `str::find`
    // (memchr, ~700 bytes of wasm), and as a loop without iterator adapters it is also quick
    // in V8's baseline tier (a snapshot fills a thousand markers' names).
    let mut copied = 0;
    let mut at = 0;
    while at + 1 < bytes.len() {
        if bytes[at] == b'{' && bytes[at + 1] == b'}' {
            let Some(arg) = args.next() else { break };
            out.push_str(&template[copied..at]);
            out.push_str(arg);
            at += 2;
            copied = at;
        } else {
            at += 1;
        }
    }
    out.push_str(&template[copied..]);
}

impl Locale {
    /// Every supported locale.
    pub const ALL: [Locale; 4] = [Locale::En, Locale::Fr, Locale::Pt, Locale::Ru];

    /// The locale for one BCP 47 tag (`pt-BR`, `fr`, `ru-RU`, `EN_us`), if supported.
    pub fn from_tag(tag: &str) -> Option<Locale> {
        let primary = tag.trim().split(['-', '_']).next().unwrap_or_default();
        Locale::ALL
            .into_iter()
            .find(|l| primary.eq_ignore_ascii_case(l.tag()))
    }

    /// The first supported locale among the preferences (the explicit option first, then the
    /// browser's languages in order); English when none is supported.
    pub fn negotiate<'a>(preferences: impl IntoIterator<Item = &'a str>) -> Locale {
        preferences
            .into_iter()
            .find_map(Locale::from_tag)
            .unwrap_or(Locale::En)
    }

    /// The language tag set as `lang` on the widget's elements.
    pub fn tag(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::Fr => "fr",
            Locale::Pt => "pt",
            Locale::Ru => "ru",
        }
    }

    /// The locale a widget that wants this one shows now: itself once its table is loaded,
    /// else English (plural rules and phrases must come from the same language).
    pub fn shown(self) -> Locale {
        if self.loaded().is_some() {
            self
        } else {
            Locale::En
        }
    }

    /// This locale's table, if it is compiled in (English) or loaded.
    fn loaded(self) -> Option<&'static Strings> {
        if self == Locale::En {
            return Some(&EN);
        }
        LOADED.with(|loaded| {
            loaded
                .borrow()
                .iter()
                .find(|(locale, _)| *locale == self)
                .map(|(_, strings)| *strings)
        })
    }

    /// The plural category of `n` in this language.
    pub fn plural(self, n: u64) -> Plural {
        match self {
            Locale::En => {
                if n == 1 {
                    Plural::One
                } else {
                    Plural::Many
                }
            }
            Locale::Fr | Locale::Pt => {
                if n <= 1 {
                    Plural::One
                } else {
                    Plural::Many
                }
            }
            Locale::Ru => {
                let (d, h) = (n % 10, n % 100);
                if d == 1 && h != 11 {
                    Plural::One
                } else if (2..=4).contains(&d) && !(12..=14).contains(&h) {
                    Plural::Few
                } else {
                    Plural::Many
                }
            }
        }
    }

    /// The phrases of this locale, or English ones while its table is not loaded (widgets
    /// hold the [`Locale::shown`] one, so this is their own language).
    pub fn strings(self) -> &'static Strings {
        self.loaded().unwrap_or(&EN)
    }

    /// The form of a word that goes with `n`.
    fn pick(self, n: u64, forms: &Forms) -> &'static str {
        forms[self.plural(n) as usize]
    }

    /// `template` filled with `n` and the form of `forms` that goes with it.
    fn counted(self, template: &str, n: u64, forms: &Forms) -> String {
        fill(template, &[&decimal(n), self.pick(n, forms)])
    }

    /// The live viewer count, e.g. "3 people here".
    pub fn online(self, n: u32) -> String {
        let s = self.strings();
        self.counted(s.online, u64::from(n), &s.people)
    }

    /// The number of comments in a discussion, e.g. "2 comments".
    pub fn comments(self, n: usize) -> String {
        self.counted("{} {}", n as u64, &self.strings().comment_forms)
    }

    /// The status line while waiting to reconnect: the countdown to the next attempt, in whole
    /// seconds (0 means "now").
    pub fn reconnecting_in(self, seconds: u64) -> String {
        let s = self.strings();
        if seconds == 0 {
            return s.reconnecting.to_owned();
        }
        fill(s.reconnecting_in, &[&decimal(seconds)])
    }

    /// Shown in place of the widget when the option `option` is invalid.
    pub fn invalid_option(self, option: &str) -> String {
        fill(self.strings().invalid_option, &[option])
    }

    /// A relative time ("5 minutes ago"); `absolute` is used for [`Relative::Date`] (the
    /// browser formats dates in the reader's own convention).
    pub fn relative(self, rel: Relative, absolute: &str) -> String {
        let s = self.strings();
        let (n, forms) = match rel {
            Relative::JustNow => return s.just_now.to_owned(),
            Relative::Date => return absolute.to_owned(),
            Relative::Minutes(n) => (n, &s.minutes),
            Relative::Hours(n) => (n, &s.hours),
            Relative::Days(n) => (n, &s.days),
        };
        self.counted(s.ago, n, forms)
    }

    /// A marker's accessible name: who started the discussion, how it begins, how long it is.
    /// The count (the marker's visible text) stays out of parentheses: accessibility checkers
    /// drop parenthesised words when they compare the visible text with the name (WCAG 2.5.3,
    /// "label in name"), and so do some speech-input users.
    pub fn marker_label(self, author: &str, excerpt: &str, comments: usize) -> String {
        let mut out = String::new();
        self.push_marker_label(&mut out, author, excerpt, comments, false);
        out
    }

    /// Appends a marker's accessible name ([`Locale::marker_label`], and
    /// [`Locale::marker_resolved`] if `resolved`) to `out`: a snapshot writes a thousand, so
    /// with one string of their own (the count's) rather than five.
    pub fn push_marker_label(
        self,
        out: &mut String,
        author: &str,
        excerpt: &str,
        comments: usize,
        resolved: bool,
    ) {
        let s = self.strings();
        // What `comments` gives ("{} {}": the number, then its word), in one allocation (the
        // digits alone, then the word, were an allocation and a reallocation per marker).
        let mut count = String::with_capacity(24);
        write_u64(comments as u64, &mut count);
        count.push(' ');
        count.push_str(self.pick(comments as u64, &s.comment_forms));
        if resolved {
            let label = fill(s.marker_label, &[author, excerpt, &count]);
            fill_into(out, s.marker_resolved, &[&label]);
        } else {
            fill_into(out, s.marker_label, &[author, excerpt, &count]);
        }
    }

    /// A resolved discussion's marker name: its usual name, marked resolved.
    pub fn marker_resolved(self, label: &str) -> String {
        fill(self.strings().marker_resolved, &[label])
    }

    /// A cluster of overlapping markers' accessible name, e.g. "5 discussions".
    pub fn cluster(self, n: usize) -> String {
        let s = self.strings();
        self.counted(s.cluster_label, n as u64, &s.discussions)
    }

    /// Announced when someone else starts a discussion.
    pub fn announce_created(self, author: &str) -> String {
        fill(self.strings().announce_created, &[author])
    }

    /// Announced when someone else replies.
    pub fn announce_replied(self, author: &str) -> String {
        fill(self.strings().announce_replied, &[author])
    }

    /// Announced after a reconnect that brought several remote changes at once.
    pub fn caught_up(self, n: usize) -> String {
        let s = self.strings();
        self.counted(s.caught_up, n as u64, &s.changes)
    }

    /// A server error code, for people.
    pub fn error(self, code: ErrorCode) -> &'static str {
        let s = self.strings();
        match code {
            ErrorCode::EmptyText => s.err_empty,
            ErrorCode::TextTooLong => s.err_too_long,
            ErrorCode::InvalidText => s.err_control,
            ErrorCode::InvalidName => s.err_name,
            ErrorCode::InvalidCoordinates => s.err_coordinates,
            ErrorCode::Forbidden => s.err_forbidden,
            ErrorCode::UnknownChat => s.err_unknown_chat,
            ErrorCode::UnknownComment => s.err_unknown_comment,
            ErrorCode::RateLimited => s.err_rate_limited,
            ErrorCode::LimitExceeded => s.err_limit,
            ErrorCode::AuthenticationFailed => s.err_auth,
            ErrorCode::UnknownTenant => s.err_tenant,
            ErrorCode::Unavailable => s.err_unavailable,
            ErrorCode::ImageFull => s.err_image_full,
            ErrorCode::QuotaExceeded => s.err_quota,
            ErrorCode::ImageLocked => s.err_locked,
            ErrorCode::Banned => s.err_banned,
            // Codes that mean this widget and the server disagree about the protocol: nothing
            // the person can fix by editing, so one generic phrase.
            _ => s.err_generic,
        }
    }

    /// A local validation error, for people (limits included).
    pub fn validation(self, err: &ValidationError) -> String {
        let s = self.strings();
        match err {
            ValidationError::EmptyText => s.err_empty.to_owned(),
            ValidationError::TextTooLong { max } => {
                fill(s.err_too_long_max, &[&decimal(*max as u64)])
            }
            ValidationError::ControlCharacters => s.err_control.to_owned(),
            ValidationError::InvalidName { .. } => s.err_name.to_owned(),
            ValidationError::InvisibleText => s.err_invisible_text.to_owned(),
            ValidationError::InvisibleName => s.err_invisible_name.to_owned(),
            ValidationError::InvalidCoordinates => s.err_coordinates.to_owned(),
            // The text mode words these itself (a selection too long, …); anything else is a
            // disagreement with the protocol the person cannot fix.
            ValidationError::InvalidId { .. }
            | ValidationError::InvalidAnchor(_)
            | ValidationError::WrongAnchorKind(_) => s.err_generic.to_owned(),
        }
    }
}

/// Everything one locale says. Every field is required, so a new phrase cannot be forgotten in
/// one language. Templates have `{}` placeholders, filled in order by [`fill`].
#[derive(Debug, Clone)]
pub struct Strings {
    /// The BCP 47 primary language tag (`lang` attribute, and what [`Locale::from_tag`] matches).
    pub tag: &'static str,
    /// Live viewer count: the number, then a form of [`Strings::people`].
    pub online: &'static str,
    /// "person" / "people".
    pub people: Forms,
    /// "comment" / "comments" (after the number).
    pub comment_forms: Forms,
    /// Status while waiting to reconnect: the seconds left.
    pub reconnecting_in: &'static str,
    /// A relative time: the number, then a form of [`Strings::minutes`], [`Strings::hours`]
    /// or [`Strings::days`].
    pub ago: &'static str,
    /// "minute" / "minutes" (in the grammatical case [`Strings::ago`] needs).
    pub minutes: Forms,
    /// "hour" / "hours".
    pub hours: Forms,
    /// "day" / "days".
    pub days: Forms,
    /// A marker's accessible name: author, excerpt, comment count.
    pub marker_label: &'static str,
    /// Announced when someone else starts a discussion: the author.
    pub announce_created: &'static str,
    /// Announced when someone else replies: the author.
    pub announce_replied: &'static str,
    /// Announced after a reconnect with remote changes: the number, then a form of
    /// [`Strings::changes`].
    pub caught_up: &'static str,
    /// "change" / "changes".
    pub changes: Forms,
    /// A local "too long" error: the limit.
    pub err_too_long_max: &'static str,
    /// Default display name of anonymous people.
    pub guest: &'static str,
    /// The current person, next to their own comments.
    pub you: &'static str,
    /// Badge of people the site signed in (their name is the site's, not typed).
    pub badge_signed_in: &'static str,
    /// Badge of moderators.
    pub badge_moderator: &'static str,
    /// Label of the display-name field of the first-post form.
    pub name_label: &'static str,
    /// A comment made only of invisible characters.
    pub err_invisible_text: &'static str,
    /// A display name made only of invisible characters.
    pub err_invisible_name: &'static str,
    /// A cluster of overlapping markers: the number, then a form of [`Strings::discussions`].
    pub cluster_label: &'static str,
    /// "discussion" / "discussions" (after the number).
    pub discussions: Forms,
    /// The show/hide markers toggle (`aria-pressed` says which).
    pub markers_toggle: &'static str,
    /// Announced when the markers are hidden.
    pub announce_markers_hidden: &'static str,
    /// Announced when the markers are shown again.
    pub announce_markers_shown: &'static str,
    /// Status: opening the connection.
    pub connecting: &'static str,
    /// Status: connected and up to date.
    pub live: &'static str,
    /// Status: about to reconnect (no countdown).
    pub reconnecting: &'static str,
    /// Status: the browser reports no network.
    pub offline: &'static str,
    /// Status: stopped for good (closed by the server with a "give up" code).
    pub stopped: &'static str,
    /// Status: the server refused who the person claims to be.
    pub auth_failed: &'static str,
    /// The overlay's accessible name and keyboard instructions.
    pub overlay_label: &'static str,
    /// The overlay's accessible name in read-only mode.
    pub overlay_label_read_only: &'static str,
    /// The not-yet-posted marker's name.
    pub new_discussion: &'static str,
    /// The thread panel's name.
    pub discussion: &'static str,
    /// Close button.
    pub close: &'static str,
    /// Placeholder of the first comment's box.
    pub placeholder_new: &'static str,
    /// Placeholder of the reply box.
    pub placeholder_reply: &'static str,
    /// Button posting the first comment.
    pub post: &'static str,
    /// Button posting a reply.
    pub reply: &'static str,
    /// Button leaving a draft or an edit.
    pub cancel: &'static str,
    /// Button editing one's comment.
    pub edit: &'static str,
    /// Button saving an edit.
    pub save: &'static str,
    /// Button deleting the whole discussion.
    pub delete: &'static str,
    /// The same button, asking for confirmation.
    pub delete_confirm: &'static str,
    /// Button resending a failed op.
    pub retry: &'static str,
    /// Button discarding a failed op.
    pub dismiss: &'static str,
    /// Button in the status bar while a reconnect delay is counted down.
    pub reconnect_now: &'static str,
    /// Shown (visibly, as an alert) when the discussion was deleted while the person had
    /// unsent text in it; the text stays below it.
    pub deleted_kept: &'static str,
    /// Button copying that kept text.
    pub copy: &'static str,
    /// The same button once copied.
    pub copied: &'static str,
    /// Button deleting one reply (asks like [`Strings::delete_confirm`]).
    pub delete_reply: &'static str,
    /// Button resolving a discussion.
    pub resolve: &'static str,
    /// Button reopening a resolved discussion.
    pub reopen: &'static str,
    /// Marks a resolved discussion (thread title).
    pub resolved: &'static str,
    /// A resolved discussion's marker name: the usual name.
    pub marker_resolved: &'static str,
    /// The bar's filter: show resolved discussions too (`aria-pressed` says which).
    pub show_resolved: &'static str,
    /// Announced when resolved discussions are hidden.
    pub announce_resolved_hidden: &'static str,
    /// Announced when resolved discussions are shown again.
    pub announce_resolved_shown: &'static str,
    /// Button expanding a resolved discussion's collapsed thread.
    pub show_thread: &'static str,
    /// Announced when someone deletes a reply.
    pub announce_reply_deleted: &'static str,
    /// Announced when someone resolves a discussion.
    pub announce_resolved: &'static str,
    /// Announced when someone reopens a discussion.
    pub announce_reopened: &'static str,
    /// Announced when someone moves a marker.
    pub announce_moved: &'static str,
    /// Said when a marker starts moving with the keyboard.
    pub move_hint: &'static str,
    /// Said when an area starts being marked out with the keyboard.
    pub region_hint: &'static str,
    /// Button copying a link to the open discussion.
    pub copy_link: &'static str,
    /// The same button once copied.
    pub link_copied: &'static str,
    /// Shown in place of the widget when an option is invalid: the option's name.
    pub invalid_option: &'static str,
    /// Marks a pending op.
    pub sending: &'static str,
    /// Marks an edited comment.
    pub edited: &'static str,
    /// Relative time under a minute.
    pub just_now: &'static str,
    /// Announced when someone edits a comment.
    pub announce_edited: &'static str,
    /// Announced when someone deletes a discussion.
    pub announce_deleted: &'static str,
    /// Announced when the connection comes back.
    pub announce_live: &'static str,
    /// Announced when the connection drops.
    pub announce_lost: &'static str,
    /// An op attempted while not connected.
    pub err_offline: &'static str,
    /// An op attempted while the server is unreachable (the browser itself is online).
    pub err_not_connected: &'static str,
    /// An op lost with the connection (not committed).
    pub err_lost: &'static str,
    /// Announced when the whole state was reloaded after a long disconnection.
    pub announce_reloaded: &'static str,
    /// `empty-text`.
    pub err_empty: &'static str,
    /// `text-too-long` (from the server, without the limit).
    pub err_too_long: &'static str,
    /// `invalid-text`.
    pub err_control: &'static str,
    /// `invalid-name`.
    pub err_name: &'static str,
    /// `invalid-coordinates`.
    pub err_coordinates: &'static str,
    /// `forbidden`.
    pub err_forbidden: &'static str,
    /// `unknown-chat`.
    pub err_unknown_chat: &'static str,
    /// `unknown-comment`.
    pub err_unknown_comment: &'static str,
    /// `rate-limited`.
    pub err_rate_limited: &'static str,
    /// `limit-exceeded`.
    pub err_limit: &'static str,
    /// `authentication-failed`.
    pub err_auth: &'static str,
    /// `unknown-tenant`.
    pub err_tenant: &'static str,
    /// `unavailable`.
    pub err_unavailable: &'static str,
    /// `image-full`.
    pub err_image_full: &'static str,
    /// `quota-exceeded`.
    pub err_quota: &'static str,
    /// `image-locked`.
    pub err_locked: &'static str,
    /// `banned`.
    pub err_banned: &'static str,
    /// The bar's lock button, to lock (moderators).
    pub lock_image: &'static str,
    /// The bar's lock button, to unlock (moderators).
    pub unlock_image: &'static str,
    /// The lock badge's explanation.
    pub locked_notice: &'static str,
    /// Announced when the image is locked.
    pub announce_locked: &'static str,
    /// Announced when the image is unlocked.
    pub announce_unlocked: &'static str,
    /// Any other failure.
    pub err_generic: &'static str,
}

/// English.
pub static EN: Strings = Strings {
    tag: "en",
    online: "{} {} here",
    people: ["person", "people", "people"],
    comment_forms: ["comment", "comments", "comments"],
    reconnecting_in: "Reconnecting in {} s…",
    ago: "{} {} ago",
    minutes: ["minute", "minutes", "minutes"],
    hours: ["hour", "hours", "hours"],
    days: ["day", "days", "days"],
    marker_label: "Discussion by {}: “{}”, {}",
    announce_created: "{} started a discussion",
    announce_replied: "{} replied",
    caught_up: "{} {} while you were away",
    changes: ["change", "changes", "changes"],
    err_too_long_max: "The comment is too long (at most {} characters).",
    guest: "Guest",
    you: "you",
    badge_signed_in: "signed in",
    badge_moderator: "moderator",
    name_label: "Your name",
    err_invisible_text: "The comment has no visible characters.",
    err_invisible_name: "The name needs at least one visible character.",
    cluster_label: "{} {}",
    discussions: ["discussion", "discussions", "discussions"],
    markers_toggle: "Show markers",
    announce_markers_hidden: "Markers hidden",
    announce_markers_shown: "Markers shown",
    connecting: "Connecting…",
    live: "Live",
    reconnecting: "Reconnecting…",
    offline: "Offline",
    stopped: "Disconnected",
    auth_failed: "Sign-in failed",
    overlay_label: "Image discussions. Press Enter to start a discussion at the crosshair, Shift+Enter to mark out an area from it; arrow keys move it.",
    overlay_label_read_only: "Image discussions (read only).",
    new_discussion: "New discussion",
    discussion: "Discussion",
    close: "Close",
    placeholder_new: "Start a discussion…",
    placeholder_reply: "Write a reply…",
    post: "Post",
    reply: "Reply",
    cancel: "Cancel",
    edit: "Edit",
    save: "Save",
    delete: "Delete discussion",
    delete_confirm: "Really delete?",
    retry: "Retry",
    dismiss: "Dismiss",
    reconnect_now: "Reconnect now",
    deleted_kept: "This discussion was deleted. Your unsent text is kept here: copy it before closing.",
    copy: "Copy",
    copied: "Copied",
    delete_reply: "Delete",
    resolve: "Resolve",
    reopen: "Reopen",
    resolved: "Resolved",
    marker_resolved: "{} (resolved)",
    show_resolved: "Show resolved discussions",
    announce_resolved_hidden: "Resolved discussions hidden",
    announce_resolved_shown: "Resolved discussions shown",
    show_thread: "Show the whole discussion",
    announce_reply_deleted: "A reply was deleted",
    announce_resolved: "A discussion was resolved",
    announce_reopened: "A discussion was reopened",
    announce_moved: "A marker was moved",
    move_hint: "Moving the marker: arrow keys move it, Enter puts it there, Escape cancels.",
    region_hint: "Marking out an area: arrow keys size it, Enter starts a discussion about it, Escape cancels.",
    copy_link: "Copy link",
    link_copied: "Link copied",
    invalid_option: "Discussions unavailable: the option “{}” is invalid.",
    sending: "Sending…",
    edited: "edited",
    just_now: "just now",
    announce_edited: "A comment was edited",
    announce_deleted: "A discussion was deleted",
    announce_live: "Connected: changes appear live",
    announce_lost: "Connection lost",
    err_offline: "You are offline, so nothing was sent. Try again once the connection is back.",
    err_not_connected: "Not connected to the server, so nothing was sent. Try again once the connection is back.",
    err_lost: "The connection dropped before this was saved.",
    announce_reloaded: "Discussions reloaded",
    err_empty: "Write something first.",
    err_too_long: "The comment is too long.",
    err_control: "The text contains characters that are not allowed.",
    err_name: "The name must be 1 to 64 characters.",
    err_coordinates: "That spot is outside the image.",
    err_forbidden: "You are not allowed to do that.",
    err_unknown_chat: "This discussion no longer exists.",
    err_unknown_comment: "This comment no longer exists.",
    err_rate_limited: "Too many changes at once; wait a moment and retry.",
    err_limit: "This image or discussion is full.",
    err_auth: "You could not be signed in.",
    err_tenant: "This site is not set up for discussions.",
    err_unavailable: "The server could not save this; retrying may work.",
    err_image_full: "This image has no room for more text; delete a discussion first.",
    err_quota: "This site has used all its storage; nothing was saved.",
    err_locked: "A moderator locked these discussions; nothing was saved.",
    err_banned: "You can no longer post on this site; nothing was saved.",
    lock_image: "Lock discussions (read-only)",
    unlock_image: "Unlock discussions",
    locked_notice: "Locked by a moderator: read-only",
    announce_locked: "A moderator locked these discussions.",
    announce_unlocked: "A moderator unlocked these discussions.",
    err_generic: "Something went wrong; nothing was saved.",
};

thread_local! {
    /// The tables loaded so far (English is compiled in). A loaded table is leaked, so that
    /// every [`Strings`] is `&'static` like [`EN`]: at most three tables of a few KB each, each
    /// loaded once for the page's lifetime.
    static LOADED: RefCell<Vec<(Locale, &'static Strings)>> = const { RefCell::new(Vec::new()) };
}

/// Where a table's phrases come from when it is loaded: the locale chunk's object in the
/// browser (`crate::locales`), parsed JSON in tests.
pub trait PhraseSource {
    /// The phrase named `key` (a field of [`Strings`]), if present as text.
    fn text(&mut self, key: &str) -> Option<String>;
    /// The three plural forms named `key`, if present as three texts.
    fn forms(&mut self, key: &str) -> Option<[String; 3]>;
}

/// Why a locale table was refused (the widget then stays in English).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// A phrase is missing or not text (or not three texts for plural forms).
    Missing(&'static str),
    /// The table is for another language than the one asked for.
    WrongLanguage,
    /// A template has another number of `{}` placeholders than the English one.
    Placeholders(&'static str),
}

impl LoadError {
    /// The message for the console (concatenated: no `core::fmt`).
    pub fn message(&self) -> String {
        match self {
            LoadError::Missing(key) => ["the phrase \"", key, "\" is missing"].concat(),
            LoadError::WrongLanguage => "the table is for another language".to_owned(),
            LoadError::Placeholders(key) => {
                ["the phrase \"", key, "\" has the wrong placeholders"].concat()
            }
        }
    }
}

impl Strings {
    /// The templates (`{}` placeholders) with their names: a loaded table must have as many
    /// placeholders in each as English.
    fn templates(&self) -> [(&'static str, &'static str); 11] {
        [
            ("online", self.online),
            ("reconnecting_in", self.reconnecting_in),
            ("ago", self.ago),
            ("marker_label", self.marker_label),
            ("announce_created", self.announce_created),
            ("announce_replied", self.announce_replied),
            ("caught_up", self.caught_up),
            ("err_too_long_max", self.err_too_long_max),
            ("cluster_label", self.cluster_label),
            ("marker_resolved", self.marker_resolved),
            ("invalid_option", self.invalid_option),
        ]
    }

    /// Every phrase read from `source` by its field name. One loop over the fields (see
    /// [`fields!`]) rather than a read per field: the latter was 8.5 KB of wasm.
    fn read(source: &mut dyn PhraseSource) -> Result<Strings, LoadError> {
        let mut strings = EN.clone();
        for (field, key) in strings.texts().into_iter().zip(Strings::TEXT_KEYS) {
            *field = source.text(key).ok_or(LoadError::Missing(key))?.leak();
        }
        for (field, key) in strings.forms().into_iter().zip(Strings::FORMS_KEYS) {
            let [one, few, many] = source.forms(key).ok_or(LoadError::Missing(key))?;
            *field = [one.leak(), few.leak(), many.leak()];
        }
        Ok(strings)
    }
}

/// [`Strings`]' fields by kind, each named once: the key list and the list of fields to fill
/// in come from the same names, so they cannot disagree. The tests check that the shipped
/// tables have exactly these keys.
macro_rules! fields {
    (texts: $($text:ident)*; forms: $($forms:ident)*;) => {
        impl Strings {
            /// The keys of the phrases (`locales/<tag>.json`), in [`Strings::texts`]' order.
            const TEXT_KEYS: [&'static str; [$(stringify!($text)),*].len()] =
                [$(stringify!($text)),*];
            /// The keys of the plural forms, in [`Strings::forms`]' order.
            const FORMS_KEYS: [&'static str; [$(stringify!($forms)),*].len()] =
                [$(stringify!($forms)),*];

            fn texts(&mut self) -> [&mut &'static str; Strings::TEXT_KEYS.len()] {
                [$(&mut self.$text),*]
            }

            fn forms(&mut self) -> [&mut Forms; Strings::FORMS_KEYS.len()] {
                [$(&mut self.$forms),*]
            }
        }
    };
}

fields! {
    texts:
        tag online reconnecting_in ago marker_label announce_created announce_replied caught_up
        err_too_long_max guest you badge_signed_in badge_moderator name_label
        err_invisible_text err_invisible_name cluster_label markers_toggle
        announce_markers_hidden announce_markers_shown connecting live reconnecting offline
        stopped auth_failed overlay_label overlay_label_read_only new_discussion discussion
        close placeholder_new placeholder_reply post reply cancel edit save delete
        delete_confirm retry dismiss reconnect_now deleted_kept copy copied delete_reply
        resolve reopen resolved marker_resolved show_resolved announce_resolved_hidden
        announce_resolved_shown show_thread announce_reply_deleted announce_resolved
        announce_reopened announce_moved move_hint region_hint copy_link link_copied
        invalid_option sending edited just_now announce_edited announce_deleted announce_live
        announce_lost err_offline err_not_connected err_lost announce_reloaded err_empty
        err_too_long err_control err_name err_coordinates err_forbidden err_unknown_chat
        err_unknown_comment err_rate_limited err_limit err_auth err_tenant err_unavailable
        err_image_full err_quota err_generic err_locked err_banned lock_image unlock_image
        locked_notice announce_locked announce_unlocked;
    forms:
        people comment_forms minutes hours days changes discussions;
}

/// Checks the table `source` for `locale` and registers it, so that widgets can show it
/// ([`Locale::shown`]). A second table for a loaded locale is ignored (the first stays).
pub fn load(locale: Locale, source: &mut dyn PhraseSource) -> Result<(), LoadError> {
    if locale.loaded().is_some() {
        return Ok(());
    }
    let strings = Strings::read(source)?;
    if strings.tag != locale.tag() {
        return Err(LoadError::WrongLanguage);
    }
    // A byte scan: a `&str` pattern would link core's two-way substring searcher.
    let count = |t: &str| t.as_bytes().windows(2).filter(|w| *w == b"{}").count();
    for ((key, theirs), (_, ours)) in strings.templates().into_iter().zip(EN.templates()) {
        if count(theirs) != count(ours) {
            return Err(LoadError::Placeholders(key));
        }
    }
    let strings: &'static Strings = Box::leak(Box::new(strings));
    LOADED.with(|loaded| loaded.borrow_mut().push((locale, strings)));
    Ok(())
}

/// The shipped tables (`locales/*.json`), loaded for this test thread as the browser loads
/// their chunks, by field name.
#[cfg(test)]
pub(crate) fn load_bundled() {
    for locale in [Locale::Fr, Locale::Pt, Locale::Ru] {
        let mut table = tests::Json::bundled(locale);
        load(locale, &mut table).expect("a shipped table loads");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table from its JSON file, remembering which keys were read.
    pub(super) struct Json {
        value: serde_json::Value,
        read: Vec<String>,
    }

    impl Json {
        pub(super) fn bundled(locale: Locale) -> Json {
            let text = match locale {
                Locale::En => unreachable!("English is compiled in"),
                Locale::Fr => include_str!("../locales/fr.json"),
                Locale::Pt => include_str!("../locales/pt.json"),
                Locale::Ru => include_str!("../locales/ru.json"),
            };
            Json {
                value: serde_json::from_str(text).expect("valid JSON"),
                read: Vec::new(),
            }
        }
    }

    impl PhraseSource for Json {
        fn text(&mut self, key: &str) -> Option<String> {
            self.read.push(key.to_owned());
            Some(self.value.get(key)?.as_str()?.to_owned())
        }

        fn forms(&mut self, key: &str) -> Option<[String; 3]> {
            self.read.push(key.to_owned());
            let forms = self.value.get(key)?.as_array()?;
            let text = |i: usize| Some(forms.get(i)?.as_str()?.to_owned());
            (forms.len() == 3).then_some([text(0)?, text(1)?, text(2)?])
        }
    }

    #[test]
    fn shipped_tables_have_exactly_the_english_keys() {
        for locale in [Locale::Fr, Locale::Pt, Locale::Ru] {
            let mut table = Json::bundled(locale);
            let strings = Strings::read(&mut table).expect("complete");
            assert_eq!(strings.tag, locale.tag());
            let mut keys: Vec<&String> = table.value.as_object().expect("object").keys().collect();
            let mut read: Vec<&String> = table.read.iter().collect();
            keys.sort();
            read.sort();
            assert_eq!(
                keys, read,
                "{locale:?}: keys the widget does not read, or missing"
            );
        }
    }

    #[test]
    fn a_bad_table_is_refused_and_english_stays() {
        let mut table = Json::bundled(Locale::Pt);
        table.value["online"] = "{} aqui".into();
        assert_eq!(
            load(Locale::Pt, &mut table),
            Err(LoadError::Placeholders("online"))
        );
        let mut table = Json::bundled(Locale::Pt);
        table.value.as_object_mut().expect("object").remove("copy");
        assert_eq!(
            load(Locale::Pt, &mut table),
            Err(LoadError::Missing("copy"))
        );
        let mut table = Json::bundled(Locale::Ru);
        assert_eq!(load(Locale::Fr, &mut table), Err(LoadError::WrongLanguage));
        assert_eq!(Locale::Pt.shown(), Locale::En);
        assert_eq!(Locale::Pt.strings().guest, EN.guest);
        load_bundled();
        assert_eq!(Locale::Pt.shown(), Locale::Pt);
        assert_eq!(Locale::Pt.strings().tag, "pt");
    }

    #[test]
    fn decimal_and_fill() {
        for n in [0, 7, 10, 4000, 1_234_567_890, u64::MAX] {
            assert_eq!(decimal(n), n.to_string());
        }
        assert_eq!(fill("{} {} here", &["3", "people"]), "3 people here");
        assert_eq!(fill("by {}: “{}”", &["Ada", "{}"]), "by Ada: “{}”");
        assert_eq!(fill("{} and {}", &["one"]), "one and {}");
        assert_eq!(fill("no placeholder", &["x"]), "no placeholder");
    }

    #[test]
    fn every_template_has_its_placeholders() {
        load_bundled();
        let count = |t: &str| t.matches("{}").count();
        for locale in Locale::ALL {
            let s = locale.strings();
            assert_eq!(Locale::from_tag(s.tag), Some(locale));
            for (template, n) in [
                (s.online, 2),
                (s.reconnecting_in, 1),
                (s.ago, 2),
                (s.marker_label, 3),
                (s.announce_created, 1),
                (s.announce_replied, 1),
                (s.caught_up, 2),
                (s.err_too_long_max, 1),
                (s.marker_resolved, 1),
            ] {
                assert_eq!(count(template), n, "{locale:?} {template}");
            }
        }
    }

    #[test]
    fn negotiation_takes_the_first_supported_tag() {
        load_bundled();
        assert_eq!(Locale::negotiate(["pt-BR"]), Locale::Pt);
        assert_eq!(Locale::negotiate(["de-DE", "fr-CA", "en"]), Locale::Fr);
        assert_eq!(Locale::negotiate(["RU_ru"]), Locale::Ru);
        assert_eq!(Locale::negotiate(["de", "ja"]), Locale::En);
        assert_eq!(Locale::negotiate([]), Locale::En);
        assert_eq!(Locale::negotiate(["", " fr "]), Locale::Fr);
    }

    #[test]
    fn russian_plurals_follow_cldr() {
        load_bundled();
        let ru = Locale::Ru;
        for (n, p) in [
            (1, Plural::One),
            (21, Plural::One),
            (101, Plural::One),
            (11, Plural::Many),
            (2, Plural::Few),
            (4, Plural::Few),
            (23, Plural::Few),
            (12, Plural::Many),
            (14, Plural::Many),
            (5, Plural::Many),
            (0, Plural::Many),
            (111, Plural::Many),
        ] {
            assert_eq!(ru.plural(n), p, "{n}");
        }
        assert_eq!(ru.comments(1), "1 комментарий");
        assert_eq!(ru.comments(3), "3 комментария");
        assert_eq!(ru.comments(11), "11 комментариев");
        assert_eq!(ru.relative(Relative::Minutes(21), ""), "21 минуту назад");
        assert_eq!(ru.relative(Relative::Hours(3), ""), "3 часа назад");
    }

    #[test]
    fn french_and_portuguese_treat_zero_as_singular() {
        load_bundled();
        assert_eq!(Locale::Fr.online(0), "0 personne ici");
        assert_eq!(Locale::Fr.online(2), "2 personnes ici");
        assert_eq!(Locale::Pt.online(1), "1 pessoa aqui");
        assert_eq!(Locale::En.online(0), "0 people here");
        assert_eq!(Locale::En.online(1), "1 person here");
        assert_eq!(Locale::Ru.online(2), "2 человека здесь");
    }

    #[test]
    fn relative_times_in_every_language() {
        load_bundled();
        assert_eq!(
            Locale::En.relative(Relative::Minutes(1), ""),
            "1 minute ago"
        );
        assert_eq!(Locale::En.relative(Relative::Days(2), ""), "2 days ago");
        assert_eq!(
            Locale::Fr.relative(Relative::Hours(1), ""),
            "il y a 1 heure"
        );
        assert_eq!(
            Locale::Pt.relative(Relative::Minutes(5), ""),
            "há 5 minutos"
        );
        assert_eq!(Locale::Pt.relative(Relative::JustNow, ""), "agora mesmo");
        assert_eq!(Locale::En.relative(Relative::Date, "3/4/2025"), "3/4/2025");
    }

    #[test]
    fn countdown_without_seconds_drops_the_number() {
        load_bundled();
        assert_eq!(Locale::En.reconnecting_in(0), "Reconnecting…");
        assert_eq!(Locale::En.reconnecting_in(4), "Reconnecting in 4 s…");
        assert_eq!(Locale::Ru.reconnecting_in(2), "Переподключение через 2 с…");
    }

    #[test]
    fn catch_up_summaries() {
        load_bundled();
        assert_eq!(Locale::En.caught_up(1), "1 change while you were away");
        assert_eq!(Locale::Ru.caught_up(5), "5 изменений за время отсутствия");
        assert_eq!(
            Locale::Fr.caught_up(2),
            "2 changements pendant votre absence"
        );
    }

    #[test]
    fn every_error_code_has_a_phrase_in_every_language() {
        load_bundled();
        for locale in Locale::ALL {
            for code in ErrorCode::ALL {
                assert!(!locale.error(code).is_empty(), "{locale:?} {code}");
            }
        }
        assert_eq!(
            Locale::Fr.error(ErrorCode::Forbidden),
            Locale::Fr.strings().err_forbidden
        );
    }

    #[test]
    fn validation_errors_are_translated_with_their_limits() {
        load_bundled();
        let long = ValidationError::TextTooLong { max: 4000 };
        assert!(Locale::En.validation(&long).contains("4000"));
        assert!(Locale::Ru.validation(&long).contains("4000"));
        assert_eq!(
            Locale::Pt.validation(&ValidationError::EmptyText),
            Locale::Pt.strings().err_empty
        );
    }

    #[test]
    fn tables_are_complete_and_distinct_from_english() {
        load_bundled();
        for locale in Locale::ALL {
            let s = locale.strings();
            let all = [
                s.guest,
                s.you,
                s.connecting,
                s.live,
                s.reconnecting,
                s.offline,
                s.stopped,
                s.auth_failed,
                s.overlay_label,
                s.new_discussion,
                s.close,
                s.post,
                s.reply,
                s.retry,
                s.err_offline,
                s.err_lost,
                s.just_now,
                s.reconnect_now,
                s.deleted_kept,
                s.copy,
                s.copied,
                s.invalid_option,
            ];
            assert!(all.iter().all(|p| !p.trim().is_empty()), "{locale:?}");
            if locale != Locale::En {
                assert_ne!(s.guest, EN.guest);
                assert_ne!(s.err_offline, EN.err_offline);
                assert_ne!(s.retry, EN.retry);
                assert_ne!(s.reconnect_now, EN.reconnect_now);
                assert_ne!(s.deleted_kept, EN.deleted_kept);
            }
            assert!(
                fill(s.invalid_option, &["name"]).contains("name"),
                "{locale:?}"
            );
        }
    }

    #[test]
    fn people_and_density_phrases_in_every_language() {
        load_bundled();
        for locale in Locale::ALL {
            let s = locale.strings();
            for p in [
                s.badge_signed_in,
                s.badge_moderator,
                s.name_label,
                s.err_invisible_text,
                s.err_invisible_name,
                s.markers_toggle,
                s.announce_markers_hidden,
                s.announce_markers_shown,
            ] {
                assert!(!p.trim().is_empty(), "{locale:?}");
            }
            assert_eq!(s.cluster_label.matches("{}").count(), 2, "{locale:?}");
            assert_eq!(
                locale.validation(&ValidationError::InvisibleName),
                s.err_invisible_name
            );
            assert_ne!(s.err_invisible_text, s.err_empty, "{locale:?}");
            if locale != Locale::En {
                assert_ne!(s.name_label, EN.name_label);
                assert_ne!(s.markers_toggle, EN.markers_toggle);
                assert_ne!(s.err_invisible_name, EN.err_invisible_name);
            }
        }
        assert_eq!(Locale::En.cluster(5), "5 discussions");
        assert_eq!(Locale::Fr.cluster(2), "2 discussions");
        assert_eq!(Locale::Pt.cluster(3), "3 discussões");
        assert_eq!(Locale::Ru.cluster(2), "2 обсуждения");
        assert_eq!(Locale::Ru.cluster(5), "5 обсуждений");
        assert_eq!(Locale::Ru.cluster(21), "21 обсуждение");
    }

    #[test]
    fn marker_labels_name_author_excerpt_and_count() {
        load_bundled();
        let l = Locale::En.marker_label("Ada", "Nice sky", 2);
        assert_eq!(l, "Discussion by Ada: “Nice sky”, 2 comments");
        assert!(
            Locale::Fr
                .marker_label("Ada", "x", 1)
                .contains("1 commentaire")
        );
    }
}
