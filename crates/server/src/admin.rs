//! The operator's subcommands: `tenant new` (a tenants-file block with a fresh secret) and
//! `sign` (the `auth` object a site backend would produce for a user, for trying SSO out and
//! for checking a backend's own signatures against).

use image_chat_protocol::TenantId;
use serde_json::json;
use thiserror::Error;

use crate::limits::SsoWindow;
use crate::secret::Secret;
use crate::sso;
use crate::tenant::{AnonymousPolicy, TenantConfigError, Tenants};

/// Why a subcommand could not do its job.
#[derive(Debug, Error)]
pub enum AdminError {
    /// The tenant described is not valid.
    #[error(transparent)]
    Tenant(#[from] TenantConfigError),
    /// The user JSON is not something the server would accept.
    #[error("the user JSON would be refused: {0}")]
    User(sso::SsoError),
    /// No secret given and none found.
    #[error("{0}")]
    NoSecret(String),
}

/// A `[[tenant]]` block for the tenants file, with a fresh random secret.
pub fn new_tenant(
    id: &str,
    origins: &[String],
    anonymous: AnonymousPolicy,
) -> Result<String, AdminError> {
    let secret = Secret::generate();
    let api_key = Secret::generate();
    let origins = origins
        .iter()
        .map(|o| toml_string(o))
        .collect::<Vec<_>>()
        .join(", ");
    let block = format!(
        "[[tenant]]\n\
         id = {id}\n\
         # Keep this secret on your backend only: it signs your users. Never put it in a page.\n\
         secret = {secret}\n\
         # Bearer token of the private HTTP API (Authorization: Bearer …). Keep it secret too.\n\
         api_key = {api_key}\n\
         # Your backend signs users for this tenant and this server's audience (its public\n\
         # host). Uncomment to set it for this tenant (default: --sso-audience, else the Host).\n\
         # sso_audience = \"chat.example.com\"\n\
         origins = [{origins}]\n\
         anonymous = \"{anonymous}\"\n",
        id = toml_string(id),
        secret = toml_string(std::str::from_utf8(secret.expose()).unwrap_or_default()),
        api_key = toml_string(std::str::from_utf8(api_key.expose()).unwrap_or_default()),
        anonymous = anonymous.as_str(),
    );
    // Parse what we print, so the block is known to load.
    Tenants::default().merge_toml(&block, "generated block")?;
    Ok(block)
}

fn toml_string(s: &str) -> String {
    // A JSON string literal is a valid TOML basic string (same escapes).
    serde_json::Value::String(s.to_owned()).to_string()
}

/// The secret of `tenant` in a tenants file.
pub fn secret_from_file(path: &std::path::Path, tenant: &str) -> Result<Secret, AdminError> {
    let mut tenants = Tenants::default();
    tenants.merge_file(path)?;
    tenants
        .get(&TenantId::new(tenant))
        .and_then(|t| t.secret.clone())
        .ok_or_else(|| {
            AdminError::NoSecret(format!(
                "tenant {tenant:?} has no secret in {}",
                path.display()
            ))
        })
}

/// The `auth` JSON the widget takes for `user_json` signed with `secret` for tenant and server
/// `to` at `timestamp` (ms). Refuses a user the server would refuse, so mistakes show up here
/// and not in a browser.
pub fn sign(
    secret: &Secret,
    to: sso::Audience<'_>,
    user_json: &str,
    timestamp: u64,
) -> Result<String, AdminError> {
    let (user_data, hash) = sso::sign(secret, to, user_json, timestamp);
    sso::verify(
        secret,
        to,
        &user_data,
        timestamp,
        &hash,
        timestamp,
        SsoWindow::default(),
    )
    .map_err(AdminError::User)?;
    Ok(json!({
        "type": "sso",
        "userData": user_data,
        "timestamp": timestamp,
        "hash": hash,
    })
    .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_tenant_blocks_load_and_differ() {
        let a = new_tenant(
            "acme",
            &["https://acme.example".into()],
            AnonymousPolicy::Deny,
        )
        .unwrap();
        let b = new_tenant(
            "acme",
            &["https://acme.example".into()],
            AnonymousPolicy::Deny,
        )
        .unwrap();
        assert_ne!(a, b, "fresh secret each time");
        let mut t = Tenants::default();
        t.merge_toml(&a, "a").unwrap();
        let acme = t.get(&TenantId::new("acme")).unwrap();
        assert_eq!(acme.secret.as_ref().unwrap().len(), 64);
        assert_eq!(acme.api_key.as_ref().unwrap().len(), 64);
        assert_ne!(acme.api_key, acme.secret, "separate credentials");
        assert!(
            new_tenant(
                "bad id",
                &["https://a.example".into()],
                AnonymousPolicy::Allow
            )
            .is_err()
        );
        assert!(new_tenant("a", &["nope".into()], AnonymousPolicy::Allow).is_err());
    }

    #[test]
    fn sign_produces_what_the_server_verifies() {
        let secret = Secret::new("0123456789abcdef0123456789abcdef");
        let to = sso::Audience {
            tenant: "acme",
            audience: "chat.acme.example",
        };
        let out = sign(&secret, to, r#"{"id":"u1","name":"Ada"}"#, 1_000).unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["type"], "sso");
        assert_eq!(v["timestamp"], 1_000);
        let ok = sso::verify(
            &secret,
            to,
            v["userData"].as_str().unwrap(),
            1_000,
            v["hash"].as_str().unwrap(),
            1_000,
            SsoWindow::default(),
        );
        assert_eq!(ok.unwrap().name, "Ada");
        assert!(sign(&secret, to, r#"{"name":"no id"}"#, 1_000).is_err());
    }
}
