//! WebSocket close codes and what a client must do after each: reconnect (with backoff) or give
//! up. Codes the client does not know are treated as "reconnect", so a server can add transient
//! reasons without stranding old widgets; giving up must always be explicit.

/// A close code the server sends, or that a client observes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// 1000: closed on purpose by the client (e.g. the widget was destroyed).
    Normal,
    /// 1001: the server is shutting down or the page is going away. Reconnect.
    GoingAway,
    /// 1006: the connection dropped without a close frame (observed locally only). Reconnect.
    Abnormal,
    /// 1007: a text frame was not valid UTF-8. Reconnect (after backoff).
    InvalidData,
    /// 1008: the client kept sending invalid frames. Reconnect (after backoff).
    PolicyViolation,
    /// 1009: a message over the transport's limit (256 KiB). Reconnect (after backoff).
    MessageTooBig,
    /// 1011: the server hit an internal error. Reconnect.
    InternalError,
    /// 1012: the server is restarting. Reconnect.
    ServiceRestart,
    /// 1013: the server is overloaded. Reconnect later.
    TryAgainLater,
    /// 4000: the client did not keep up with the event stream; reconnect and resync.
    SlowConsumer,
    /// 4001: no `hello` in time, or no pong to the server's pings. Reconnect.
    Timeout,
    /// 4002: too many connections from this address or on this image. Reconnect later.
    TooManyConnections,
    /// 4400: the `hello` itself was unacceptable (bad ids, unsupported protocol). Give up.
    BadHello,
    /// 4401: the person could not be authenticated. Give up until the page supplies new auth.
    AuthenticationFailed,
    /// 4403: this page may not use this tenant (origin not allowed). Give up.
    Forbidden,
    /// 4404: no such tenant. Give up.
    UnknownTenant,
    /// Any other code.
    Other(u16),
}

impl CloseCode {
    /// The numeric code.
    pub fn code(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::GoingAway => 1001,
            CloseCode::Abnormal => 1006,
            CloseCode::InvalidData => 1007,
            CloseCode::PolicyViolation => 1008,
            CloseCode::MessageTooBig => 1009,
            CloseCode::InternalError => 1011,
            CloseCode::ServiceRestart => 1012,
            CloseCode::TryAgainLater => 1013,
            CloseCode::SlowConsumer => 4000,
            CloseCode::Timeout => 4001,
            CloseCode::TooManyConnections => 4002,
            CloseCode::BadHello => 4400,
            CloseCode::AuthenticationFailed => 4401,
            CloseCode::Forbidden => 4403,
            CloseCode::UnknownTenant => 4404,
            CloseCode::Other(code) => code,
        }
    }

    /// Interprets a numeric code.
    pub fn from_code(code: u16) -> Self {
        match code {
            1000 => CloseCode::Normal,
            1001 => CloseCode::GoingAway,
            1006 => CloseCode::Abnormal,
            1007 => CloseCode::InvalidData,
            1008 => CloseCode::PolicyViolation,
            1009 => CloseCode::MessageTooBig,
            1011 => CloseCode::InternalError,
            1012 => CloseCode::ServiceRestart,
            1013 => CloseCode::TryAgainLater,
            4000 => CloseCode::SlowConsumer,
            4001 => CloseCode::Timeout,
            4002 => CloseCode::TooManyConnections,
            4400 => CloseCode::BadHello,
            4401 => CloseCode::AuthenticationFailed,
            4403 => CloseCode::Forbidden,
            4404 => CloseCode::UnknownTenant,
            other => CloseCode::Other(other),
        }
    }

    /// Whether a client should try again (after backoff). `false` means stop for good: the
    /// same request would be refused the same way.
    pub fn should_reconnect(self) -> bool {
        !matches!(
            self,
            CloseCode::BadHello
                | CloseCode::AuthenticationFailed
                | CloseCode::Forbidden
                | CloseCode::UnknownTenant
        )
    }

    /// A short reason phrase for the close frame (at most 123 bytes, as WebSocket requires).
    pub fn reason(self) -> &'static str {
        match self {
            CloseCode::Normal => "bye",
            CloseCode::GoingAway => "going away",
            CloseCode::Abnormal => "connection lost",
            CloseCode::InvalidData => "text frame is not valid UTF-8",
            CloseCode::PolicyViolation => "too many invalid frames",
            CloseCode::MessageTooBig => "message over 256 KiB",
            CloseCode::InternalError => "internal error",
            CloseCode::ServiceRestart => "server restarting",
            CloseCode::TryAgainLater => "try again later",
            CloseCode::SlowConsumer => "too slow to keep up",
            CloseCode::Timeout => "timed out",
            CloseCode::TooManyConnections => "too many connections",
            CloseCode::BadHello => "bad hello",
            CloseCode::AuthenticationFailed => "authentication failed",
            CloseCode::Forbidden => "forbidden",
            CloseCode::UnknownTenant => "unknown tenant",
            CloseCode::Other(_) => "",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_split_into_retry_or_give_up() {
        let reconnect = [
            1001, 1006, 1007, 1008, 1009, 1011, 1012, 1013, 4000, 4001, 4002, 4999, 1000,
        ];
        let give_up = [4400, 4401, 4403, 4404];
        for code in reconnect {
            let c = CloseCode::from_code(code);
            assert_eq!(c.code(), code);
            assert!(c.should_reconnect(), "{code} should reconnect");
        }
        for code in give_up {
            let c = CloseCode::from_code(code);
            assert_eq!(c.code(), code);
            assert!(!c.should_reconnect(), "{code} should give up");
            assert!(c.reason().len() <= 123);
        }
    }
}
