//! Reloading the configuration a running server can change without dropping anyone (SIGHUP):
//! the tenants file and the TLS certificate.
//!
//! Both are read and checked first and applied only if both are valid, so a typo in the
//! tenants file or a half-written certificate changes nothing (the error is logged and the
//! server keeps what it had). Applied, they govern what comes next: new connections are
//! checked against the new tenants (a new origin is allowed, a removed tenant is refused) and
//! new handshakes get the new certificate; open connections keep going. Everything else (limits,
//! listen address, database) needs a restart, which clients ride out by reconnecting.

use std::sync::Arc;

use thiserror::Error;

use crate::StartError;
use crate::app::App;
use crate::config::ServeArgs;
use crate::tls::{self, ReloadableCert, TlsError};

/// Why a reload changed nothing.
#[derive(Debug, Error)]
pub enum ReloadError {
    /// The tenants file is unreadable or invalid.
    #[error("tenants not reloaded: {0}")]
    Tenants(#[from] StartError),
    /// The certificate or key is unreadable or invalid.
    #[error("certificate not reloaded: {0}")]
    Tls(#[from] TlsError),
}

/// What a reload re-reads, and where it puts the result.
pub struct Reload {
    args: ServeArgs,
    app: Arc<App>,
    certs: Option<Arc<ReloadableCert>>,
}

/// What a successful reload put in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reloaded {
    /// Tenants now known.
    pub tenants: usize,
    /// Whether a certificate was re-read.
    pub certificate: bool,
}

impl Reload {
    /// Reloads `app`'s tenants from `args`' files, and `certs` from its certificate files.
    pub fn new(args: ServeArgs, app: Arc<App>, certs: Option<Arc<ReloadableCert>>) -> Self {
        Self { args, app, certs }
    }

    /// Re-reads both; applies both or neither.
    pub fn run(&self) -> Result<Reloaded, ReloadError> {
        let tenants = self.args.tenants()?;
        let cert = match (&self.certs, &self.args.tls_cert, &self.args.tls_key) {
            (Some(certs), Some(cert), Some(key)) => Some((certs, tls::read_pem(cert, key)?)),
            _ => None,
        };
        let reloaded = Reloaded {
            tenants: tenants.len(),
            certificate: cert.is_some(),
        };
        if let Some((certs, key)) = cert {
            certs.replace(key);
        }
        self.app.tenants.replace(tenants);
        Ok(reloaded)
    }
}
