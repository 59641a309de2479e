//! wss:// served directly: certificates and keys into a rustls configuration (the *ring*
//! provider) whose certificate can be replaced while the server runs ([`ReloadableCert`]), and
//! the handshake of an accepted connection.
//!
//! Each handshake runs in its connection's task (`listen`), bounded by [`HANDSHAKE_TIMEOUT`], so
//! a client that opens TCP and never finishes the handshake cannot hold up anyone else's
//! accept; the connection was counted against its address at accept, before the handshake.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Longest a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why TLS could not be set up.
#[derive(Debug, Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("cannot read {what} from {path}: {detail}")]
    Pem {
        /// "certificate" or "private key".
        what: &'static str,
        /// The file.
        path: String,
        /// What went wrong (never the key material).
        detail: String,
    },
    /// rustls refused the certificate / key pair.
    #[error("invalid TLS certificate or key: {0}")]
    Config(#[from] rustls::Error),
}

/// The certificate the server presents, replaceable while it runs: each handshake takes the
/// current one, so a renewed certificate (SIGHUP, see `reload`) is served to every new
/// connection while the connections already open keep theirs and stay up.
#[derive(Debug)]
pub struct ReloadableCert {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadableCert {
    /// Starts with the PEM certificate chain and private key in these files.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        Ok(Self::new(read_pem(cert, key)?))
    }

    fn new(key: CertifiedKey) -> Self {
        Self {
            current: RwLock::new(Arc::new(key)),
        }
    }

    /// Presents `key` (from [`read_pem`]) to every handshake from now on.
    pub fn replace(&self, key: CertifiedKey) {
        // The lock only guards an `Arc` swap: a panic cannot leave it half-written.
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(key);
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.current.read().unwrap_or_else(PoisonError::into_inner),
        ))
    }
}

/// Reads every certificate of a PEM file (at least one), e.g. certificate authorities to trust.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem_err = |e: rustls_pki_types::pem::Error| TlsError::Pem {
        what: "certificate",
        path: path.display().to_string(),
        detail: e.to_string(),
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_err)?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            what: "certificate",
            path: path.display().to_string(),
            detail: "no CERTIFICATE block".into(),
        });
    }
    Ok(certs)
}

/// Reads a PEM certificate chain and its private key (which must match the leaf certificate).
pub fn read_pem(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let pem_err = |what: &'static str, path: &Path| {
        let path = path.display().to_string();
        move |e: rustls_pki_types::pem::Error| TlsError::Pem {
            what,
            path,
            detail: e.to_string(),
        }
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(pem_err("certificate", cert))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_err("certificate", cert))?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            what: "certificate",
            path: cert.display().to_string(),
            detail: "no CERTIFICATE block".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(pem_err("private key", key))?;
    certified_key(certs, key)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certified_key(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<CertifiedKey, TlsError> {
    Ok(CertifiedKey::from_der(certs, key, &provider())?)
}

/// Loads a PEM certificate chain and private key into a rustls server configuration that
/// speaks HTTP/1.1 (WebSockets upgrade over HTTP/1.1), and the handle that replaces its
/// certificate later.
pub fn load_config(
    cert: &Path,
    key: &Path,
) -> Result<(Arc<ServerConfig>, Arc<ReloadableCert>), TlsError> {
    let certs = Arc::new(ReloadableCert::load(cert, key)?);
    Ok((config_with(Arc::clone(&certs) as _)?, certs))
}

/// A rustls server configuration from DER values (tests build these in memory).
pub fn config_from(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, TlsError> {
    config_with(Arc::new(ReloadableCert::new(certified_key(certs, key)?)))
}

fn config_with(certs: Arc<dyn ResolvesServerCert>) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(certs);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Completes the TLS handshake of an accepted connection within [`HANDSHAKE_TIMEOUT`]; `None`
/// when it fails or takes too long (logged at debug: routine on the internet). Runs in the
/// connection's own task, so a stalled handshake holds up no one else.
pub async fn handshake<IO>(
    acceptor: &TlsAcceptor,
    io: IO,
    peer: SocketAddr,
) -> Option<TlsStream<IO>>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(io)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(err)) => {
            tracing::debug!(%err, %peer, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}
