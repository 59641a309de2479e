//! What the engine's outputs mean for people: the status line and `data-state`, failure
//! messages and `aria-live` announcements. Pure (engine types in, strings out), tested natively.

use image_chat_protocol::CloseCode;
use image_chat_sync::{Announcement, ConnectionStatus, FailReason, OpKind, StopReason};

use crate::i18n::Locale;

/// The overlay's `data-state`: `connecting` (first attempt), `live`, `reconnecting` (waiting,
/// or a later attempt in progress), `offline` (the browser has no network) or `stopped` (the
/// server refused for good: unknown tenant, forbidden origin, failed authentication).
pub fn data_state(status: ConnectionStatus) -> &'static str {
    match status {
        ConnectionStatus::Stopped(_) => "stopped",
        other => other.data_state(),
    }
}

/// Remembers the `data-state` last announced to the page, so `image-chat:state` fires only
/// when it changes: the engine reports every new attempt and countdown (`Connecting { attempt:
/// 3 }`, `Reconnecting { .. }` with a new deadline), which all read "reconnecting".
#[derive(Debug, Default)]
pub struct StateChanges {
    last: Option<&'static str>,
}

impl StateChanges {
    /// The state to announce for `status`, if it differs from the last one announced.
    pub fn changed(&mut self, status: ConnectionStatus) -> Option<&'static str> {
        let state = data_state(status);
        if self.last == Some(state) {
            return None;
        }
        self.last = Some(state);
        Some(state)
    }
}

/// Whether "Reconnect now" makes sense: a backoff delay is being waited out.
pub fn can_reconnect_now(status: ConnectionStatus) -> bool {
    matches!(status, ConnectionStatus::Reconnecting { .. })
}

/// For the site's developer, in the console: why the server refused this page for good, and
/// what to change. People see "Disconnected"; only the console can name the page's origin
/// and the tenant. English, like every developer message.
pub fn refusal_explanation(code: CloseCode, origin: &str, tenant: &str) -> String {
    let (number, why) = match code {
        CloseCode::Forbidden => (
            "4403",
            [
                "this page's origin ",
                origin,
                " is not allowed for tenant \"",
                tenant,
                "\": add \"",
                origin,
                "\" to the tenant's `origins` on the image-chat server (docs/OPERATIONS.md)",
            ]
            .concat(),
        ),
        CloseCode::UnknownTenant => (
            "4404",
            [
                "the server has no tenant \"",
                tenant,
                "\": check `data-tenant` / the `tenant` option",
            ]
            .concat(),
        ),
        CloseCode::AuthenticationFailed => (
            "4401",
            [
                "the person could not be authenticated for tenant \"",
                tenant,
                "\" (a bad or expired SSO signature, or a tenant that admits no anonymous \
                 people); setAuth() with new auth connects again",
            ]
            .concat(),
        ),
        CloseCode::BadHello => (
            "4400",
            "the server refused the widget's hello (another protocol version, or invalid ids)"
                .to_owned(),
        ),
        _ => ("", "the server refused the connection for good".to_owned()),
    };
    let mut out = ["image-chat: not connected: ", &why].concat();
    if !number.is_empty() {
        out.push_str(" (close ");
        out.push_str(number);
        out.push(')');
    }
    out
}

/// The status line's text at `now` (same clock as the engine's; the countdown is rounded up to
/// whole seconds so it never shows 0 while waiting).
pub fn status_text(locale: Locale, status: ConnectionStatus, now: u64) -> String {
    let s = locale.strings();
    match status {
        ConnectionStatus::Connecting { attempt: 0 } => s.connecting.to_owned(),
        ConnectionStatus::Connecting { .. } => s.reconnecting.to_owned(),
        ConnectionStatus::Live => s.live.to_owned(),
        ConnectionStatus::Reconnecting {
            next_attempt_at, ..
        } => locale.reconnecting_in(next_attempt_at.saturating_sub(now).div_ceil(1000)),
        ConnectionStatus::Offline => s.offline.to_owned(),
        ConnectionStatus::Stopped(reason) if reason.is_auth_failure() => s.auth_failed.to_owned(),
        ConnectionStatus::Stopped(_) => s.stopped.to_owned(),
    }
}

/// A longer explanation of a stop, for the status line's tooltip.
pub fn stop_detail(locale: Locale, reason: StopReason) -> &'static str {
    let s = locale.strings();
    match reason {
        StopReason::Refused(CloseCode::AuthenticationFailed) => s.err_auth,
        StopReason::Refused(CloseCode::Forbidden) => s.err_forbidden,
        StopReason::Refused(CloseCode::UnknownTenant) => s.err_tenant,
        StopReason::Refused(_) | StopReason::Destroyed => s.err_generic,
    }
}

/// Milliseconds until the status text changes (the countdown's next second), if it will.
pub fn status_refresh_in(status: ConnectionStatus, now: u64) -> Option<u64> {
    match status {
        ConnectionStatus::Reconnecting {
            next_attempt_at, ..
        } if next_attempt_at > now => {
            let left = next_attempt_at - now;
            Some(match left % 1000 {
                0 => 1000,
                r => r,
            })
        }
        _ => None,
    }
}

/// Why one of our ops failed, for people.
pub fn fail_text(locale: Locale, reason: FailReason) -> &'static str {
    let s = locale.strings();
    match reason {
        FailReason::Offline => s.err_offline,
        FailReason::NotConnected => s.err_not_connected,
        FailReason::ConnectionLost => s.err_lost,
        FailReason::Server(code) => locale.error(code),
        FailReason::Refused(code) => stop_detail(locale, StopReason::Refused(code)),
    }
}

/// The `kind` of an `image-chat:op-failed` page event (documented in docs/WIDGET.md).
pub fn op_kind_name(kind: OpKind) -> &'static str {
    match kind {
        OpKind::CreateChat => "create",
        OpKind::Reply => "reply",
        OpKind::Edit => "edit",
        OpKind::Delete => "delete",
        OpKind::DeleteComment => "delete-comment",
        OpKind::Resolve => "resolve",
        OpKind::Move => "move",
    }
}

/// The `aria-live` message for a remote change.
pub fn announcement(locale: Locale, a: &Announcement) -> String {
    let s = locale.strings();
    match a {
        Announcement::NewChat { by, .. } => locale.announce_created(&by.name),
        Announcement::Reply { by, .. } => locale.announce_replied(&by.name),
        Announcement::Edited { .. } => s.announce_edited.to_owned(),
        Announcement::Deleted { .. } => s.announce_deleted.to_owned(),
        Announcement::CommentDeleted { .. } => s.announce_reply_deleted.to_owned(),
        Announcement::Resolved { resolved: true, .. } => s.announce_resolved.to_owned(),
        Announcement::Resolved {
            resolved: false, ..
        } => s.announce_reopened.to_owned(),
        Announcement::Moved { .. } => s.announce_moved.to_owned(),
        Announcement::Caught { changes: 0 } => s.announce_reloaded.to_owned(),
        Announcement::Caught { changes } => locale.caught_up(*changes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image_chat_protocol::{ChatId, ErrorCode, User};

    #[test]
    fn states_and_texts() {
        // The non-English tables are loaded chunks in the browser.
        crate::i18n::load_bundled();
        let en = Locale::En;
        assert_eq!(
            data_state(ConnectionStatus::Connecting { attempt: 0 }),
            "connecting"
        );
        assert_eq!(
            data_state(ConnectionStatus::Connecting { attempt: 2 }),
            "reconnecting"
        );
        assert_eq!(data_state(ConnectionStatus::Live), "live");
        assert_eq!(data_state(ConnectionStatus::Offline), "offline");
        let refused = ConnectionStatus::Stopped(StopReason::Refused(CloseCode::Forbidden));
        assert_eq!(data_state(refused), "stopped");
        let waiting = ConnectionStatus::Reconnecting {
            next_attempt_at: 10_500,
            attempt: 1,
        };
        assert_eq!(data_state(waiting), "reconnecting");
        assert_eq!(status_text(en, waiting, 8_000), "Reconnecting in 3 s…");
        assert_eq!(status_text(en, waiting, 10_000), "Reconnecting in 1 s…");
        assert_eq!(status_text(en, waiting, 11_000), "Reconnecting…");
        assert_eq!(
            status_text(Locale::Fr, ConnectionStatus::Live, 0),
            "En direct"
        );
        let auth = ConnectionStatus::Stopped(StopReason::Refused(CloseCode::AuthenticationFailed));
        assert_eq!(status_text(en, auth, 0), "Sign-in failed");
        assert_eq!(status_text(en, refused, 0), "Disconnected");
        assert_eq!(
            stop_detail(en, StopReason::Refused(CloseCode::UnknownTenant)),
            en.strings().err_tenant
        );
    }

    #[test]
    fn state_event_only_on_a_change() {
        let mut changes = StateChanges::default();
        let waiting = |at| ConnectionStatus::Reconnecting {
            next_attempt_at: at,
            attempt: 1,
        };
        let seen: Vec<_> = [
            ConnectionStatus::Connecting { attempt: 0 },
            ConnectionStatus::Live,
            waiting(1_000),
            ConnectionStatus::Connecting { attempt: 1 },
            waiting(3_000),
            ConnectionStatus::Connecting { attempt: 2 },
            waiting(9_000),
            ConnectionStatus::Live,
            ConnectionStatus::Live,
            ConnectionStatus::Offline,
            ConnectionStatus::Stopped(StopReason::Refused(CloseCode::Forbidden)),
        ]
        .into_iter()
        .filter_map(|s| changes.changed(s))
        .collect();
        assert_eq!(
            seen,
            [
                "connecting",
                "live",
                "reconnecting",
                "live",
                "offline",
                "stopped"
            ]
        );
    }

    #[test]
    fn reconnect_now_only_while_waiting() {
        assert!(can_reconnect_now(ConnectionStatus::Reconnecting {
            next_attempt_at: 5,
            attempt: 3
        }));
        for status in [
            ConnectionStatus::Connecting { attempt: 3 },
            ConnectionStatus::Live,
            ConnectionStatus::Offline,
            ConnectionStatus::Stopped(StopReason::Refused(CloseCode::Forbidden)),
        ] {
            assert!(!can_reconnect_now(status), "{status:?}");
        }
    }

    #[test]
    fn refusals_name_their_reason_for_the_developer() {
        let origin = refusal_explanation(CloseCode::Forbidden, "https://blog.example", "acme");
        assert_eq!(
            origin,
            "image-chat: not connected: this page's origin https://blog.example is not allowed \
             for tenant \"acme\": add \"https://blog.example\" to the tenant's `origins` on the \
             image-chat server (docs/OPERATIONS.md) (close 4403)"
        );
        let tenant = refusal_explanation(CloseCode::UnknownTenant, "https://a.example", "acme");
        assert!(tenant.contains("no tenant \"acme\"") && tenant.ends_with("(close 4404)"));
        let auth = refusal_explanation(CloseCode::AuthenticationFailed, "x", "acme");
        assert!(auth.contains("authenticated") && auth.ends_with("(close 4401)"));
        assert!(refusal_explanation(CloseCode::BadHello, "x", "t").ends_with("(close 4400)"));
    }

    #[test]
    fn countdown_refresh() {
        let waiting = ConnectionStatus::Reconnecting {
            next_attempt_at: 10_500,
            attempt: 1,
        };
        assert_eq!(status_refresh_in(waiting, 8_000), Some(500));
        assert_eq!(status_refresh_in(waiting, 9_500), Some(1000));
        assert_eq!(status_refresh_in(waiting, 10_500), None);
        assert_eq!(status_refresh_in(ConnectionStatus::Live, 0), None);
    }

    #[test]
    fn failures_and_announcements() {
        // The non-English tables are loaded chunks in the browser.
        crate::i18n::load_bundled();
        let ru = Locale::Ru;
        assert_eq!(fail_text(ru, FailReason::Offline), ru.strings().err_offline);
        assert_eq!(
            fail_text(ru, FailReason::Server(ErrorCode::RateLimited)),
            ru.strings().err_rate_limited
        );
        assert_eq!(
            fail_text(Locale::En, FailReason::NotConnected),
            Locale::En.strings().err_not_connected
        );
        assert_eq!(
            fail_text(ru, FailReason::Refused(CloseCode::Forbidden)),
            ru.strings().err_forbidden
        );
        let by = User {
            id: "anon:1".into(),
            name: "Ada".into(),
            avatar_url: None,
            is_moderator: false,
            signed_in: false,
        };
        let chat_id = ChatId::new("bxwqnjt9TB6aKwEjRWeJqw");
        assert_eq!(
            announcement(Locale::En, &Announcement::NewChat { chat_id, by }),
            "Ada started a discussion"
        );
        assert_eq!(
            announcement(Locale::Pt, &Announcement::Caught { changes: 0 }),
            "Discussões recarregadas"
        );
        assert_eq!(
            announcement(Locale::En, &Announcement::Caught { changes: 4 }),
            "4 changes while you were away"
        );
    }
}
