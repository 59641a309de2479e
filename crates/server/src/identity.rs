//! Who a connection speaks for. Turns the `auth` of a `hello` into a [`User`] the server vouches
//! for: a signed user (verified by [`crate::sso`]) or an anonymous person, where the tenant
//! allows them. Issues signed anonymous identities so an anonymous person keeps authorship of
//! their comments across reconnects and page reloads (the widget stores the token). Decides
//! whether the session is read-only: the tenant's anonymous policy or the signed `readOnly`
//! flag, both out of the client's reach.

use hmac::{Hmac, Mac};
use image_chat_protocol::limits::validate_name;
use image_chat_protocol::{Auth, User};
use rand::RngCore;
use sha2::Sha256;
use thiserror::Error;

use crate::limits::SsoWindow;
use crate::sso::{self, SsoError};
use crate::tenant::{AnonymousPolicy, Tenant};

/// Display name for anonymous people who did not give one.
pub const DEFAULT_ANONYMOUS_NAME: &str = "Guest";

/// Why a `hello` could not be given an identity.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    /// The tenant requires signed users.
    #[error("this site does not allow anonymous comments")]
    AnonymousNotAllowed,
    /// Signed (SSO) users are not configured for this tenant.
    #[error("signed users are not configured for this site")]
    SsoNotConfigured,
    /// The signed user did not verify.
    #[error(transparent)]
    Sso(#[from] SsoError),
}

/// An identity for one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The person.
    pub user: User,
    /// Token to hand back to the client (anonymous sessions).
    pub token: Option<String>,
    /// The person may read but not write: every op gets `forbidden`.
    pub read_only: bool,
}

/// Issues and checks anonymous identity tokens with a server secret.
#[derive(Clone)]
pub struct Identities {
    /// HMAC key; shared by every server on the same store so tokens work cluster-wide and
    /// survive restarts.
    secret: [u8; 32],
}

impl Identities {
    /// Uses `secret` (from the store) to sign tokens.
    pub fn new(secret: [u8; 32]) -> Self {
        Self { secret }
    }

    /// Resolves `auth` for `tenant` at server time `now_ms` (ms since the Unix epoch), accepting
    /// signed users within `window` (unless the tenant sets its own maximum age) whose signature
    /// names this tenant and `audience` (this server, see [`sso::Audience`]).
    pub fn resolve(
        &self,
        tenant: &Tenant,
        auth: Option<&Auth>,
        now_ms: u64,
        window: SsoWindow,
        audience: &str,
    ) -> Result<Identity, AuthError> {
        match auth {
            None => self.anonymous(tenant, DEFAULT_ANONYMOUS_NAME, None),
            Some(Auth::Anonymous { name, token }) => {
                self.anonymous(tenant, name.trim(), token.as_deref())
            }
            Some(Auth::Sso {
                user_data,
                timestamp,
                hash,
            }) => {
                let secret = tenant.secret.as_ref().ok_or(AuthError::SsoNotConfigured)?;
                let window = SsoWindow {
                    max_age: tenant.sso_max_age.unwrap_or(window.max_age),
                    ..window
                };
                let to = sso::Audience {
                    tenant: tenant.id.as_str(),
                    audience,
                };
                let user = sso::verify(secret, to, user_data, *timestamp, hash, now_ms, window)?;
                Ok(Identity {
                    user: User {
                        // Prefixed so a signed id can never equal an anonymous one.
                        id: format!("sso:{}", user.id),
                        name: user.name,
                        avatar_url: user.avatar_url,
                        is_moderator: user.is_moderator,
                        signed_in: true,
                    },
                    token: None,
                    read_only: user.read_only,
                })
            }
        }
    }

    fn anonymous(
        &self,
        tenant: &Tenant,
        name: &str,
        token: Option<&str>,
    ) -> Result<Identity, AuthError> {
        let read_only = match tenant.anonymous {
            AnonymousPolicy::Allow => false,
            AnonymousPolicy::ReadOnly => true,
            AnonymousPolicy::Deny => return Err(AuthError::AnonymousNotAllowed),
        };
        let name = if validate_name(name).is_ok() {
            name
        } else {
            DEFAULT_ANONYMOUS_NAME
        };
        // A token that does not verify (forged, or signed by another server's secret) earns a
        // fresh identity rather than an error: it proves nothing, but it must not lock a person
        // out of commenting either.
        let id = token
            .and_then(|t| self.verify(tenant, t))
            .unwrap_or_else(|| {
                let mut bytes = [0u8; 8];
                rand::rng().fill_bytes(&mut bytes);
                format!("anon:{}", hex::encode(bytes))
            });
        let token = self.sign(tenant, &id);
        Ok(Identity {
            user: User {
                id,
                name: name.to_owned(),
                avatar_url: None,
                is_moderator: false,
                signed_in: false,
            },
            token: Some(token),
            read_only,
        })
    }

    /// A stable stand-in for a signed user's id, for readers who may see the discussions but not
    /// who is behind them (an unauthenticated `GET …/snapshot`): `sso~` and 16 hex digits of an
    /// HMAC of the tenant and the id under the server secret. The same person keeps the same
    /// pseudonym (threads stay readable), the raw id (often an email) cannot be read back, and
    /// other ids (anonymous ones, already random) are returned unchanged.
    pub fn pseudonym(&self, tenant: &str, id: &str) -> Option<String> {
        id.strip_prefix("sso:")?;
        // Domain-separated from the token MAC: its input has two line feeds, a token's one.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(b"author pseudonym\n");
        mac.update(tenant.as_bytes());
        mac.update(b"\n");
        mac.update(id.as_bytes());
        let digest = mac.finalize().into_bytes();
        Some(["sso~", &hex::encode(&digest[..8])].concat())
    }

    fn mac(&self, tenant: &Tenant, id: &str) -> Hmac<Sha256> {
        // `new_from_slice` accepts keys of any length for HMAC; 32 bytes cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(tenant.id.as_str().as_bytes());
        mac.update(b"\n");
        mac.update(id.as_bytes());
        mac
    }

    fn sign(&self, tenant: &Tenant, id: &str) -> String {
        format!(
            "{id}.{}",
            hex::encode(self.mac(tenant, id).finalize().into_bytes())
        )
    }

    /// The user id a token vouches for, if it verifies (in constant time) for this tenant
    /// (also how the admin API bans the person behind an anonymous token).
    pub fn verify(&self, tenant: &Tenant, token: &str) -> Option<String> {
        let (id, signature) = token.rsplit_once('.')?;
        if !id.starts_with("anon:") || id.len() > 64 {
            return None;
        }
        let signature = hex::decode(signature).ok()?;
        self.mac(tenant, id).verify_slice(&signature).ok()?;
        Some(id.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use image_chat_protocol::TenantId;

    const NOW: u64 = 1_763_712_000_000;
    const AUDIENCE: &str = "chat.example";

    trait ResolveNow {
        fn resolve_now(&self, tenant: &Tenant, auth: Option<&Auth>) -> Result<Identity, AuthError>;
    }

    impl ResolveNow for Identities {
        fn resolve_now(&self, tenant: &Tenant, auth: Option<&Auth>) -> Result<Identity, AuthError> {
            self.resolve(tenant, auth, NOW, SsoWindow::default(), AUDIENCE)
        }
    }

    fn anon(name: &str, token: Option<String>) -> Auth {
        Auth::Anonymous {
            name: name.into(),
            token,
        }
    }

    #[test]
    fn anonymous_token_keeps_identity_and_is_tenant_bound() {
        let ids = Identities::new([7; 32]);
        let demo = Tenant::demo();
        let first = ids.resolve_now(&demo, Some(&anon("Ada", None))).unwrap();
        assert!(first.user.id.starts_with("anon:"));
        assert_eq!(first.user.name, "Ada");
        let again = ids
            .resolve_now(&demo, Some(&anon("Ada L.", first.token.clone())))
            .unwrap();
        assert_eq!(again.user.id, first.user.id);
        assert_eq!(again.user.name, "Ada L.");

        let mut other = Tenant::demo();
        other.id = TenantId::new("other");
        let elsewhere = ids
            .resolve_now(&other, Some(&anon("Ada", first.token.clone())))
            .unwrap();
        assert_ne!(elsewhere.user.id, first.user.id);

        let other_secret = Identities::new([8; 32]);
        let fresh = other_secret
            .resolve_now(&demo, Some(&anon("Ada", first.token)))
            .unwrap();
        assert_ne!(fresh.user.id, first.user.id);
    }

    #[test]
    fn pseudonyms_are_stable_tenant_bound_and_only_for_signed_ids() {
        let ids = Identities::new([7; 32]);
        let p = ids.pseudonym("t", "sso:alice@example.com").unwrap();
        assert!(p.starts_with("sso~") && p.len() == 4 + 16, "{p}");
        assert!(!p.contains("alice"));
        assert_eq!(ids.pseudonym("t", "sso:alice@example.com").unwrap(), p);
        assert_ne!(ids.pseudonym("u", "sso:alice@example.com").unwrap(), p);
        assert_ne!(ids.pseudonym("t", "sso:bob@example.com").unwrap(), p);
        assert_ne!(
            Identities::new([8; 32])
                .pseudonym("t", "sso:alice@example.com")
                .unwrap(),
            p
        );
        assert_eq!(ids.pseudonym("t", "anon:0123"), None);
    }

    #[test]
    fn forged_tokens_are_ignored() {
        let ids = Identities::new([7; 32]);
        let demo = Tenant::demo();
        for forged in [
            "anon:0000.00",
            "anon:victim.zz",
            "garbage",
            "moderator.abcd",
            "",
        ] {
            let got = ids
                .resolve_now(&demo, Some(&anon("Eve", Some(forged.into()))))
                .unwrap();
            assert_ne!(got.user.id, "anon:0000");
            assert_ne!(got.user.id, "anon:victim");
            assert!(!got.user.is_moderator);
        }
    }

    #[test]
    fn policy_and_defaults() {
        let ids = Identities::new([7; 32]);
        let mut closed = Tenant::demo();
        closed.anonymous = AnonymousPolicy::Deny;
        assert_eq!(
            ids.resolve_now(&closed, None),
            Err(AuthError::AnonymousNotAllowed)
        );
        let demo = Tenant::demo();
        assert_eq!(
            ids.resolve_now(&demo, None).unwrap().user.name,
            DEFAULT_ANONYMOUS_NAME
        );
        let sso = Auth::Sso {
            user_data: "e30=".into(),
            timestamp: 0,
            hash: "00".into(),
        };
        assert_eq!(
            ids.resolve_now(&demo, Some(&sso)),
            Err(AuthError::SsoNotConfigured)
        );
        let mut read_only = Tenant::demo();
        read_only.anonymous = AnonymousPolicy::ReadOnly;
        let got = ids.resolve_now(&read_only, None).unwrap();
        assert!(got.read_only);
        assert!(!ids.resolve_now(&demo, None).unwrap().read_only);
    }

    #[test]
    fn signed_users_get_a_prefixed_id_and_their_flags() {
        let ids = Identities::new([7; 32]);
        let mut t = Tenant::demo();
        t.secret = Some(Secret::new("0123456789abcdef0123456789abcdef"));
        let sign = |json: &str, ts: u64| {
            let to = sso::Audience {
                tenant: t.id.as_str(),
                audience: AUDIENCE,
            };
            let (user_data, hash) = sso::sign(t.secret.as_ref().unwrap(), to, json, ts);
            Auth::Sso {
                user_data,
                timestamp: ts,
                hash,
            }
        };
        let got = ids
            .resolve_now(
                &t,
                Some(&sign(
                    r#"{"id":"anon:x","name":"M","isModerator":true}"#,
                    NOW,
                )),
            )
            .unwrap();
        assert_eq!(got.user.id, "sso:anon:x");
        assert!(got.user.is_moderator);
        assert_eq!(got.token, None);
        // A tenant's own maximum age wins over the server's.
        t.sso_max_age = Some(std::time::Duration::from_secs(1));
        assert_eq!(
            ids.resolve_now(&t, Some(&sign(r#"{"id":"u","name":"U"}"#, NOW - 1001))),
            Err(AuthError::Sso(SsoError::Expired))
        );
        // Deny policy does not affect signed users.
        t.anonymous = AnonymousPolicy::Deny;
        assert!(
            ids.resolve_now(&t, Some(&sign(r#"{"id":"u","name":"U"}"#, NOW)))
                .is_ok()
        );
    }
}
