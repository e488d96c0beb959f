//! The HTTPS listener's certificates: chosen by SNI among the `tls.crt`/`tls.key` Secrets the
//! served Ingresses name in `spec.tls` (exact host, then its one-label wildcard), swapped in
//! whenever the Ingresses or Secrets change; a host whose Secret is missing or bad gets the
//! default certificate, self-signed as ingress-nginx's "Kubernetes Ingress Controller Fake
//! Certificate". ALPN offers HTTP/2 and HTTP/1.1.

use std::fmt;
use std::sync::{Arc, RwLock};

use k8s_openapi::api::core::v1::Secret;
use rustls::crypto::aws_lc_rs;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

use crate::routes::host_matches;

pub const FAKE_CERTIFICATE_NAME: &str = "Kubernetes Ingress Controller Fake Certificate";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret {0} not found")]
    NotFound(String),
    #[error("secret {secret} has no {key}")]
    MissingKey { secret: String, key: &'static str },
    #[error("secret {secret}: {key} holds no PEM certificate")]
    NoCertificate { secret: String, key: &'static str },
    #[error("secret {secret}: {detail}")]
    Invalid { secret: String, detail: String },
}

/// Certificates by host or `*.` wildcard, the first for a host winning.
pub type HostCertificates = Vec<(String, Arc<CertifiedKey>)>;

/// The certificates by host pattern, and the default one.
pub struct CertResolver {
    by_host: RwLock<Arc<HostCertificates>>,
    fallback: Arc<CertifiedKey>,
}

impl fmt::Debug for CertResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertResolver").finish_non_exhaustive()
    }
}

impl Default for CertResolver {
    fn default() -> Self {
        Self::new()
    }
}

impl CertResolver {
    pub fn new() -> CertResolver {
        CertResolver {
            by_host: RwLock::default(),
            fallback: Arc::new(fake_certificate()),
        }
    }

    /// Replaces the certificates: `(host or *.wildcard, key)`, the first for a host wins.
    pub fn replace(&self, certificates: HostCertificates) {
        *self.by_host.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(certificates);
    }

    /// The certificate served for `server_name` (lowercase), the default when none matches.
    pub fn for_host(&self, server_name: Option<&str>) -> Arc<CertifiedKey> {
        let certificates = self
            .by_host
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let Some(name) = server_name else {
            return self.fallback.clone();
        };
        let exact = certificates.iter().find(|(host, _)| host == name);
        let wildcard = || {
            certificates
                .iter()
                .find(|(host, _)| host_matches(host, name))
        };
        exact
            .or_else(wildcard)
            .map_or_else(|| self.fallback.clone(), |(_, key)| key.clone())
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name().map(str::to_ascii_lowercase);
        Some(self.for_host(name.as_deref()))
    }
}

/// The acceptor of the HTTPS listener, its certificates from `resolver`.
pub fn acceptor(resolver: Arc<CertResolver>) -> TlsAcceptor {
    let provider = Arc::new(aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the default provider supports the default versions")
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    TlsAcceptor::from(Arc::new(config))
}

/// The certificate and key of a kubernetes.io/tls Secret, the key checked against the
/// certificate.
pub fn certified_key(secret: &Secret) -> Result<CertifiedKey, SecretError> {
    let name = format!(
        "{}/{}",
        secret.metadata.namespace.as_deref().unwrap_or_default(),
        secret.metadata.name.as_deref().unwrap_or_default()
    );
    let data = |key: &'static str| {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|bytes| bytes.0.clone())
            .ok_or_else(|| SecretError::MissingKey {
                secret: name.clone(),
                key,
            })
    };
    let chain_pem = data("tls.crt")?;
    let key_pem = data("tls.key")?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&chain_pem)
        .collect::<Result<_, _>>()
        .map_err(|err| SecretError::Invalid {
            secret: name.clone(),
            detail: format!("tls.crt: {err}"),
        })?;
    if chain.is_empty() {
        return Err(SecretError::NoCertificate {
            secret: name,
            key: "tls.crt",
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|err| SecretError::Invalid {
        secret: name.clone(),
        detail: format!("tls.key: {err}"),
    })?;
    CertifiedKey::from_der(chain, key, &aws_lc_rs::default_provider()).map_err(|err| {
        SecretError::Invalid {
            secret: name,
            detail: err.to_string(),
        }
    })
}

/// ingress-nginx's default certificate: self-signed for `ingress.local`.
pub fn fake_certificate() -> CertifiedKey {
    let mut params =
        rcgen::CertificateParams::new(vec!["ingress.local".to_owned()]).expect("a valid DNS name");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, FAKE_CERTIFICATE_NAME);
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Acme Co");
    let key_pair = rcgen::KeyPair::generate().expect("key generation succeeds");
    let certificate = params
        .self_signed(&key_pair)
        .expect("self-signing succeeds");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
    CertifiedKey::from_der(
        vec![certificate.der().clone()],
        key,
        &aws_lc_rs::default_provider(),
    )
    .expect("a fresh key matches its certificate")
}

#[cfg(test)]
mod tests {
    use k8s_openapi::ByteString;
    use serde_json::json;

    use super::*;

    fn pair(host: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec![host.to_owned()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn secret(cert: &str, key: &str) -> Secret {
        let mut secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": "tls", "namespace": "default"},
            "type": "kubernetes.io/tls",
        }))
        .unwrap();
        secret.data = Some(
            [
                ("tls.crt".to_owned(), ByteString(cert.as_bytes().to_vec())),
                ("tls.key".to_owned(), ByteString(key.as_bytes().to_vec())),
            ]
            .into(),
        );
        secret
    }

    #[test]
    fn a_good_secret_loads_and_a_mismatched_key_does_not() {
        let (cert, key) = pair("a.example.com");
        assert!(certified_key(&secret(&cert, &key)).is_ok());
        let (_, other_key) = pair("b.example.com");
        let err = certified_key(&secret(&cert, &other_key)).unwrap_err();
        assert!(err.to_string().starts_with("secret default/tls: "), "{err}");
        let err = certified_key(&secret("junk", &key)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "secret default/tls: tls.crt holds no PEM certificate"
        );
    }

    #[test]
    fn hosts_resolve_exact_then_wildcard_then_the_fake_certificate() {
        let resolver = CertResolver::new();
        let (cert, key) = pair("a.example.com");
        let exact = Arc::new(certified_key(&secret(&cert, &key)).unwrap());
        let (cert, key) = pair("*.example.com");
        let wild = Arc::new(certified_key(&secret(&cert, &key)).unwrap());
        resolver.replace(vec![
            ("*.example.com".into(), wild.clone()),
            ("a.example.com".into(), exact.clone()),
        ]);
        assert!(Arc::ptr_eq(
            &resolver.for_host(Some("a.example.com")),
            &exact
        ));
        assert!(Arc::ptr_eq(
            &resolver.for_host(Some("b.example.com")),
            &wild
        ));
        let fallback = resolver.for_host(Some("other.io"));
        assert!(!Arc::ptr_eq(&fallback, &exact) && !Arc::ptr_eq(&fallback, &wild));
        assert!(Arc::ptr_eq(&resolver.for_host(None), &fallback));
    }
}
