//! The optional TLS listener: `[server].tls = { cert, key }` turns the client port into
//! HTTPS with ALPN `h2` and `http/1.1`.
//!
//! Decisions:
//! - **rustls with the ring provider** (already in the tree through reqwest): no OpenSSL,
//!   no aws-lc build. TLS 1.2 and 1.3, rustls' safe defaults; no client certificates.
//! - **ALPN** offers `h2` first, then `http/1.1`; a client that offers neither still gets a
//!   connection and the usual preface sniffing (HTTP/1.1 unless it sends the h2 preface).
//! - **The handshake is bounded by `header_read_timeout`**: a client that opens a socket and
//!   stalls in the handshake is the TLS form of slow-loris and is closed like one.
//! - **Files are read at start and on every reload** (SIGHUP): a renewed certificate at the
//!   same path is picked up without a restart; new connections use it, open ones keep
//!   theirs. A pair that does not load refuses the reload like any other bad config.
//! - `prefer-gateway check` loads the pair too, so a wrong key is found before a deploy.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsFiles;

/// Reads `files` and builds the server side of rustls; the error names the file and why.
pub fn load(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, String> {
    let certs = read_certs(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| format!("{}: no private key: {}", files.key.display(), pem_error(&e)))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            format!(
                "{} and {} do not make a usable pair: {e}",
                files.cert.display(),
                files.key.display()
            )
        })?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let iter = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {}", path.display(), pem_error(&e)))?;
    let certs = iter
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {}", path.display(), pem_error(&e)))?;
    if certs.is_empty() {
        return Err(format!("{}: no CERTIFICATE in the file", path.display()));
    }
    Ok(certs)
}

/// pki-types' PEM errors, worded for an operator.
fn pem_error(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match e {
        Error::Io(io) => format!("cannot read: {io}"),
        Error::NoItemsFound => "no matching PEM section".into(),
        other => format!("not valid PEM ({other:?})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    #[test]
    fn loads_the_test_pair_and_offers_h2_then_http11() {
        let cfg = load(&TlsFiles {
            cert: fixture("tls-cert.pem"),
            key: fixture("tls-key.pem"),
        })
        .unwrap();
        assert_eq!(cfg.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
    }

    #[test]
    fn a_bad_pair_names_the_file_and_why() {
        let missing = load(&TlsFiles {
            cert: fixture("nope.pem"),
            key: fixture("tls-key.pem"),
        })
        .unwrap_err();
        assert!(missing.contains("nope.pem: cannot read"), "{missing}");
        let swapped = load(&TlsFiles {
            cert: fixture("tls-key.pem"),
            key: fixture("tls-cert.pem"),
        })
        .unwrap_err();
        assert!(swapped.contains("tls-key.pem"), "{swapped}");
        let wrong_key = load(&TlsFiles {
            cert: fixture("tls-ca.pem"),
            key: fixture("tls-key.pem"),
        })
        .unwrap_err();
        assert!(
            wrong_key.contains("do not make a usable pair"),
            "{wrong_key}"
        );
    }
}
