//! TLS for relays reached over `https://` and `wss://`: rustls (on ring),
//! trusting the platform's root certificates and any a person adds for a
//! private certificate authority (`rapport --ca FILE`).
//!
//! The trust is the process's, like the platform's roots it extends: the
//! sync connection ([`crate::transport::open`]) and the HTTP API
//! ([`crate::api::RelayApi`]) both build on [`client_config`] and
//! [`root_certificates`], so adding a CA once covers every connection made
//! afterwards.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

/// A certificate authority file that cannot be trusted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("cannot read the certificate file {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error("{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{} holds a certificate rustls refuses: {reason}", path.display())]
    Refused { path: PathBuf, reason: String },
}

/// The certificates a person added, in the order added.
static ADDED: Mutex<Vec<CertificateDer<'static>>> = Mutex::new(Vec::new());

/// Trusts every certificate in the PEM file at `path` as a root, for
/// every connection made from now on; returns how many it held.
pub fn trust_ca_file(path: &Path) -> Result<usize, TlsError> {
    let pem = std::fs::read(path).map_err(|e| TlsError::Read {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let mut certificates = Vec::new();
    for item in CertificateDer::pem_slice_iter(&pem) {
        certificates.push(item.map_err(|e| TlsError::Read {
            path: path.to_owned(),
            reason: e.to_string(),
        })?);
    }
    if certificates.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    // Checked the way every connection will use them.
    let mut store = RootCertStore::empty();
    for certificate in &certificates {
        store
            .add(certificate.clone())
            .map_err(|e| TlsError::Refused {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
    }
    let count = certificates.len();
    added().extend(certificates);
    *built() = None;
    Ok(count)
}

/// Every root certificate trusted now: the platform's and the added ones.
pub fn root_certificates() -> Vec<CertificateDer<'static>> {
    let mut roots = platform_roots().clone();
    roots.extend(added().iter().cloned());
    roots
}

/// A rustls client configuration trusting [`root_certificates`]: built
/// once, and again after [`trust_ca_file`] adds to the trust.
pub fn client_config() -> Arc<rustls::ClientConfig> {
    Arc::clone(built().get_or_insert_with(build_config))
}

fn build_config() -> Arc<rustls::ClientConfig> {
    let mut store = RootCertStore::empty();
    // A platform certificate rustls cannot parse is skipped, as browsers do.
    let _ = store.add_parsable_certificates(root_certificates());
    // The crypto provider is ring, the only one compiled in.
    Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(store)
            .with_no_client_auth(),
    )
}

/// `reason`, a failure to connect, with a hint when the relay's
/// certificate was not trusted.
pub(crate) fn explain(reason: String) -> String {
    if reason.contains("invalid peer certificate") {
        format!(
            "{reason} (the relay's TLS certificate is not trusted here; if a private certificate authority signed it, give its certificate with --ca FILE)"
        )
    } else {
        reason
    }
}

/// The configuration [`client_config`] built, until the trust changes.
fn built() -> std::sync::MutexGuard<'static, Option<Arc<rustls::ClientConfig>>> {
    static BUILT: Mutex<Option<Arc<rustls::ClientConfig>>> = Mutex::new(None);
    BUILT.lock().unwrap_or_else(|e| e.into_inner())
}

fn added() -> std::sync::MutexGuard<'static, Vec<CertificateDer<'static>>> {
    ADDED.lock().unwrap_or_else(|e| e.into_inner())
}

/// The platform's root certificates, read once.
fn platform_roots() -> &'static Vec<CertificateDer<'static>> {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for error in &found.errors {
            tracing::debug!(%error, "a platform root certificate could not be read");
        }
        found.certs
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_a_certificate_says_so() {
        let dir = std::env::temp_dir().join(format!("rapport-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        assert!(matches!(
            trust_ca_file(&empty),
            Err(TlsError::NoCertificate { .. })
        ));
        assert!(matches!(
            trust_ca_file(&dir.join("missing.pem")),
            Err(TlsError::Read { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
