//! Who a connection speaks for. Turns the `auth` of a `hello` into a [`User`] the server vouches
//! for, and issues signed anonymous identities so an anonymous person keeps authorship of their
//! comments across reconnects and page reloads (the widget stores the token).

use hmac::{Hmac, Mac};
use image_chat_protocol::limits::validate_name;
use image_chat_protocol::{Auth, User};
use rand::RngCore;
use sha2::Sha256;
use thiserror::Error;

use crate::tenant::Tenant;

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
}

/// An identity for one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The person.
    pub user: User,
    /// Token to hand back to the client (anonymous sessions).
    pub token: Option<String>,
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

    /// Resolves `auth` for `tenant`.
    pub fn resolve(&self, tenant: &Tenant, auth: Option<&Auth>) -> Result<Identity, AuthError> {
        match auth {
            None => self.anonymous(tenant, DEFAULT_ANONYMOUS_NAME, None),
            Some(Auth::Anonymous { name, token }) => {
                self.anonymous(tenant, name.trim(), token.as_deref())
            }
            Some(Auth::Sso { .. }) => Err(AuthError::SsoNotConfigured),
        }
    }

    fn anonymous(
        &self,
        tenant: &Tenant,
        name: &str,
        token: Option<&str>,
    ) -> Result<Identity, AuthError> {
        if !tenant.allow_anonymous {
            return Err(AuthError::AnonymousNotAllowed);
        }
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
            },
            token: Some(token),
        })
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

    /// The user id a token vouches for, if it verifies (in constant time) for this tenant.
    fn verify(&self, tenant: &Tenant, token: &str) -> Option<String> {
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
    use image_chat_protocol::TenantId;

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
        let first = ids.resolve(&demo, Some(&anon("Ada", None))).unwrap();
        assert!(first.user.id.starts_with("anon:"));
        assert_eq!(first.user.name, "Ada");
        let again = ids
            .resolve(&demo, Some(&anon("Ada L.", first.token.clone())))
            .unwrap();
        assert_eq!(again.user.id, first.user.id);
        assert_eq!(again.user.name, "Ada L.");

        let mut other = Tenant::demo();
        other.id = TenantId::new("other");
        let elsewhere = ids
            .resolve(&other, Some(&anon("Ada", first.token.clone())))
            .unwrap();
        assert_ne!(elsewhere.user.id, first.user.id);

        let other_secret = Identities::new([8; 32]);
        let fresh = other_secret
            .resolve(&demo, Some(&anon("Ada", first.token)))
            .unwrap();
        assert_ne!(fresh.user.id, first.user.id);
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
                .resolve(&demo, Some(&anon("Eve", Some(forged.into()))))
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
        closed.allow_anonymous = false;
        assert_eq!(
            ids.resolve(&closed, None),
            Err(AuthError::AnonymousNotAllowed)
        );
        let demo = Tenant::demo();
        assert_eq!(
            ids.resolve(&demo, None).unwrap().user.name,
            DEFAULT_ANONYMOUS_NAME
        );
        let sso = Auth::Sso {
            user_data: "e30=".into(),
            timestamp: 0,
            hash: "00".into(),
        };
        assert_eq!(
            ids.resolve(&demo, Some(&sso)),
            Err(AuthError::SsoNotConfigured)
        );
    }
}
