//! The agent's certificates and its admin kubeconfig, made as k3s makes its own at first start:
//! a CA (ECDSA P-256, 10 years, `peapod-ca@<unix time>`), a serving certificate for the API's
//! names and addresses, and an admin client certificate (`system:admin`, group
//! `system:masters`), both for a year. Every start loads what exists and re-issues a leaf
//! certificate that expires within 90 days, that another CA issued, or (the serving one) whose
//! SANs no longer cover the host's names and addresses; the CA is kept, so kubeconfigs already
//! handed out keep trusting the server.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use crate::perms;

const CA_VALIDITY: Duration = Duration::days(3650);
const LEAF_VALIDITY: Duration = Duration::days(365);
/// Leaf certificates closer than this to expiry are re-issued at start, as k3s does.
const RENEW_WITHIN: Duration = Duration::days(90);
/// Certificates start an hour in the past, for clients whose clocks lag.
const BACKDATE: Duration = Duration::hours(1);
/// The directory of the CA and certificates: root only.
const TLS_DIR_MODE: u32 = 0o700;

const CA: &str = "ca";
const SERVING: &str = "serving-kube-apiserver";
const ADMIN: &str = "client-admin";

/// The admin's user name and group, as kube-apiserver's superuser certificate carries them.
pub const ADMIN_USER: &str = "system:admin";
pub const ADMIN_GROUP: &str = "system:masters";

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error(transparent)]
    Perms(#[from] perms::PermsError),
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a usable {what}")]
    Invalid { path: PathBuf, what: &'static str },
    #[error("{present} exists without {missing}: restore it, or remove both to make a new CA")]
    HalfCa { present: PathBuf, missing: PathBuf },
    #[error("making a certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// What the serving certificate must cover besides `localhost`, 127.0.0.1 and ::1.
#[derive(Clone, Debug)]
pub struct ServingNames {
    /// The node's name (the host's name).
    pub node_name: String,
    /// The host's addresses.
    pub addresses: Vec<IpAddr>,
    /// The cluster domain, for `kubernetes.default.svc.<domain>`.
    pub cluster_domain: String,
    /// The `kubernetes` Service's cluster IP.
    pub service_ip: IpAddr,
}

impl ServingNames {
    fn dns_names(&self) -> Vec<String> {
        let mut names: Vec<String> = [
            "localhost",
            &self.node_name,
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
        ]
        .iter()
        .map(|name| name.to_string())
        .collect();
        names.push(format!("kubernetes.default.svc.{}", self.cluster_domain));
        names.dedup();
        names
    }

    fn ips(&self) -> Vec<IpAddr> {
        let mut ips = vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            self.service_ip,
        ];
        for ip in &self.addresses {
            if !ips.contains(ip) {
                ips.push(*ip);
            }
        }
        ips
    }
}

/// A certificate and its private key, both PEM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyedCert {
    pub cert_pem: String,
    pub key_pem: String,
}

/// The agent's CA certificate and the leaf certificates it issued.
#[derive(Clone, Debug)]
pub struct Pki {
    pub ca_pem: String,
    pub serving: KeyedCert,
    pub admin: KeyedCert,
}

impl Pki {
    /// Loads the certificates under `dir`, making or re-issuing what is missing, stale or
    /// short of `names`.
    pub fn load_or_create(dir: &Path, names: &ServingNames) -> Result<Pki, CertError> {
        Pki::load_or_create_at(dir, names, OffsetDateTime::now_utc())
    }

    fn load_or_create_at(
        dir: &Path,
        names: &ServingNames,
        now: OffsetDateTime,
    ) -> Result<Pki, CertError> {
        perms::ensure_dir(dir, TLS_DIR_MODE)?;
        let ca = load_or_create_ca(dir, now)?;
        let ca_der = der_of(&ca.cert_pem, &pem_path(dir, CA, "crt"))?;
        let ca_key = KeyPair::from_pem(&ca.key_pem).map_err(|_| CertError::Invalid {
            path: pem_path(dir, CA, "key"),
            what: "private key",
        })?;
        let issuer = Issuer::from_ca_cert_der(&ca_der, ca_key).map_err(|_| CertError::Invalid {
            path: pem_path(dir, CA, "crt"),
            what: "CA certificate",
        })?;
        let authority = Authority {
            issuer,
            der: ca_der,
            now,
        };
        let serving = authority.leaf(dir, SERVING, &|| serving_params(names, now), &|cert| {
            missing_names(cert, names)
        })?;
        let admin = authority.leaf(dir, ADMIN, &|| admin_params(now), &|_| None)?;
        Ok(Pki {
            ca_pem: ca.cert_pem,
            serving,
            admin,
        })
    }
}

/// The cluster CA's certificate (PEM), made under `dir` if there is none yet.
pub fn cluster_ca_pem(dir: &Path) -> Result<String, CertError> {
    perms::ensure_dir(dir, TLS_DIR_MODE)?;
    Ok(load_or_create_ca(dir, OffsetDateTime::now_utc())?.cert_pem)
}

fn load_or_create_ca(dir: &Path, now: OffsetDateTime) -> Result<KeyedCert, CertError> {
    let (cert_path, key_path) = (pem_path(dir, CA, "crt"), pem_path(dir, CA, "key"));
    match (read_optional(&cert_path)?, read_optional(&key_path)?) {
        (Some(cert_pem), Some(key_pem)) => Ok(KeyedCert { cert_pem, key_pem }),
        (None, None) => {
            let key = KeyPair::generate()?;
            let cert = ca_params(now).self_signed(&key)?;
            let ca = KeyedCert {
                cert_pem: cert.pem(),
                key_pem: key.serialize_pem(),
            };
            write_pair(dir, CA, &ca)?;
            tracing::info!(dir = %dir.display(), "made the cluster CA");
            Ok(ca)
        }
        (Some(_), None) => Err(CertError::HalfCa {
            present: cert_path,
            missing: key_path,
        }),
        (None, Some(_)) => Err(CertError::HalfCa {
            present: key_path,
            missing: cert_path,
        }),
    }
}

/// The CA and the moment it issues at.
struct Authority {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
    now: OffsetDateTime,
}

impl Authority {
    /// The leaf certificate `name`, re-issued when it is missing, unreadable, near expiry,
    /// from another CA, or when `short_of` finds what it lacks.
    fn leaf(
        &self,
        dir: &Path,
        name: &str,
        params: &dyn Fn() -> CertificateParams,
        short_of: &dyn Fn(&X509Certificate) -> Option<String>,
    ) -> Result<KeyedCert, CertError> {
        let existing = match (
            read_optional(&pem_path(dir, name, "crt"))?,
            read_optional(&pem_path(dir, name, "key"))?,
        ) {
            (Some(cert_pem), Some(key_pem)) => Some(KeyedCert { cert_pem, key_pem }),
            _ => None,
        };
        let reason = match &existing {
            None => "missing".to_string(),
            Some(pair) => match self.staleness(pair, short_of) {
                None => return Ok(existing.expect("matched Some")),
                Some(reason) => reason,
            },
        };
        let key = KeyPair::generate()?;
        let cert = params().signed_by(&key, &self.issuer)?;
        let issued = KeyedCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        };
        write_pair(dir, name, &issued)?;
        tracing::info!(certificate = name, reason, "issued a certificate");
        Ok(issued)
    }

    /// Why `pair` must be re-issued, if it must.
    fn staleness(
        &self,
        pair: &KeyedCert,
        short_of: &dyn Fn(&X509Certificate) -> Option<String>,
    ) -> Option<String> {
        if KeyPair::from_pem(&pair.key_pem).is_err() {
            return Some("its key is unreadable".into());
        }
        let Ok(der) = CertificateDer::from_pem_slice(pair.cert_pem.as_bytes()) else {
            return Some("it is unreadable".into());
        };
        let (Ok((_, cert)), Ok((_, ca))) = (
            x509_parser::parse_x509_certificate(&der),
            x509_parser::parse_x509_certificate(&self.der),
        ) else {
            return Some("it is unreadable".into());
        };
        if cert.verify_signature(Some(ca.public_key())).is_err() {
            return Some("another CA issued it".into());
        }
        let expires = cert.validity().not_after.timestamp();
        if expires <= (self.now + RENEW_WITHIN).unix_timestamp() {
            return Some("it expires within 90 days".into());
        }
        short_of(&cert)
    }
}

/// What of `names` the serving certificate `cert` does not cover, if anything.
fn missing_names(cert: &X509Certificate, names: &ServingNames) -> Option<String> {
    let (dns, ips) = subject_alt_names(cert);
    let mut missing: Vec<String> = names
        .dns_names()
        .into_iter()
        .filter(|name| !dns.contains(name))
        .collect();
    missing.extend(
        names
            .ips()
            .into_iter()
            .filter(|ip| !ips.contains(ip))
            .map(|ip| ip.to_string()),
    );
    (!missing.is_empty()).then(|| format!("it does not cover {}", missing.join(", ")))
}

/// The DNS names and IP addresses among `cert`'s subject alternative names.
pub fn subject_alt_names(cert: &X509Certificate) -> (Vec<String>, Vec<IpAddr>) {
    let (mut dns, mut ips) = (Vec::new(), Vec::new());
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return (dns, ips);
    };
    for name in &san.value.general_names {
        match name {
            GeneralName::DNSName(name) => dns.push(name.to_string()),
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => ips.push(IpAddr::from(<[u8; 4]>::try_from(*bytes).expect("4 bytes"))),
                16 => ips.push(IpAddr::from(
                    <[u8; 16]>::try_from(*bytes).expect("16 bytes"),
                )),
                _ => {}
            },
            _ => {}
        }
    }
    (dns, ips)
}

fn ca_params(now: OffsetDateTime) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name(&format!("peapod-ca@{}", now.unix_timestamp()));
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = now - BACKDATE;
    params.not_after = now + CA_VALIDITY;
    params
}

fn leaf_params(now: OffsetDateTime, subject: DistinguishedName) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = subject;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    params.not_before = now - BACKDATE;
    params.not_after = now + LEAF_VALIDITY;
    params
}

fn serving_params(names: &ServingNames, now: OffsetDateTime) -> CertificateParams {
    let mut params = leaf_params(now, common_name("kube-apiserver"));
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.subject_alt_names = names
        .dns_names()
        .into_iter()
        .filter_map(|name| name.try_into().ok().map(SanType::DnsName))
        .chain(names.ips().into_iter().map(SanType::IpAddress))
        .collect();
    params
}

fn admin_params(now: OffsetDateTime) -> CertificateParams {
    let mut subject = DistinguishedName::new();
    subject.push(DnType::OrganizationName, ADMIN_GROUP);
    subject.push(DnType::CommonName, ADMIN_USER);
    let mut params = leaf_params(now, subject);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params
}

fn common_name(name: &str) -> DistinguishedName {
    let mut subject = DistinguishedName::new();
    subject.push(DnType::CommonName, name);
    subject
}

/// The admin kubeconfig for `server`, with the CA and the admin's certificate and key inline,
/// as k3s writes its own.
pub fn kubeconfig(pki: &Pki, server: &str) -> String {
    let b64 = |pem: &str| base64::engine::general_purpose::STANDARD.encode(pem);
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: peapod
  cluster:
    certificate-authority-data: {ca}
    server: {server}
contexts:
- name: peapod
  context:
    cluster: peapod
    user: peapod
current-context: peapod
preferences: {{}}
users:
- name: peapod
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
",
        ca = b64(&pki.ca_pem),
        cert = b64(&pki.admin.cert_pem),
        key = b64(&pki.admin.key_pem),
    )
}

/// Writes the admin kubeconfig to `path` (0600) unless it already says the same; whether it
/// wrote.
pub fn write_kubeconfig(path: &Path, pki: &Pki, server: &str) -> Result<bool, CertError> {
    let text = kubeconfig(pki, server);
    if read_optional(path)?.as_deref() == Some(text.as_str()) {
        return Ok(false);
    }
    write_private_atomic(path, text.as_bytes())?;
    Ok(true)
}

fn pem_path(dir: &Path, name: &str, extension: &str) -> PathBuf {
    dir.join(format!("{name}.{extension}"))
}

fn der_of(pem: &str, path: &Path) -> Result<CertificateDer<'static>, CertError> {
    CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|_| CertError::Invalid {
        path: path.to_path_buf(),
        what: "certificate",
    })
}

fn read_optional(path: &Path) -> Result<Option<String>, CertError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CertError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes the key before the certificate, so that a certificate on disk never lacks its key.
fn write_pair(dir: &Path, name: &str, pair: &KeyedCert) -> Result<(), CertError> {
    write_private_atomic(&pem_path(dir, name, "key"), pair.key_pem.as_bytes())?;
    write_private_atomic(&pem_path(dir, name, "crt"), pair.cert_pem.as_bytes())
}

/// Writes `bytes` to `path` through a 0600 temporary file renamed over it: readers see the
/// old file or the new one, never a part.
pub fn write_private_atomic(path: &Path, bytes: &[u8]) -> Result<(), CertError> {
    let failed = |source| CertError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut file = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(failed)?;
    std::io::Write::write_all(&mut file, bytes).map_err(failed)?;
    let handle = file.as_file();
    handle
        .set_permissions(std::fs::Permissions::from_mode(perms::PRIVATE_FILE))
        .and_then(|()| handle.sync_all())
        .map_err(failed)?;
    file.persist(path).map_err(|err| failed(err.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> ServingNames {
        ServingNames {
            node_name: "node-a".into(),
            addresses: vec!["192.0.2.7".parse().unwrap()],
            cluster_domain: "cluster.test".into(),
            service_ip: "10.43.0.1".parse().unwrap(),
        }
    }

    fn parsed(pem: &str) -> X509Certificate<'static> {
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        let der: &'static [u8] = Box::leak(der.to_vec().into_boxed_slice());
        x509_parser::parse_x509_certificate(der).unwrap().1
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn first_values<'a>(
        iter: impl Iterator<Item = &'a x509_parser::x509::AttributeTypeAndValue<'a>>,
    ) -> Vec<String> {
        iter.map(|attr| attr.as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn the_serving_certificate_covers_every_name_and_address() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(&dir.path().join("tls"), &names()).unwrap();
        let (dns, ips) = subject_alt_names(&parsed(&pki.serving.cert_pem));
        for name in [
            "localhost",
            "node-a",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.test",
        ] {
            assert!(dns.contains(&name.to_string()), "{name} in {dns:?}");
        }
        for ip in ["127.0.0.1", "::1", "10.43.0.1", "192.0.2.7"] {
            assert!(ips.contains(&ip.parse().unwrap()), "{ip} in {ips:?}");
        }
        let ca = parsed(&pki.ca_pem);
        let ca_name = first_values(ca.subject().iter_common_name());
        assert!(ca_name[0].starts_with("peapod-ca@"), "{ca_name:?}");
        assert!(ca.is_ca());
    }

    #[test]
    fn the_admin_certificate_names_the_superuser_for_client_auth() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(dir.path(), &names()).unwrap();
        let admin = parsed(&pki.admin.cert_pem);
        assert_eq!(
            first_values(admin.subject().iter_common_name()),
            [ADMIN_USER]
        );
        assert_eq!(
            first_values(admin.subject().iter_organization()),
            [ADMIN_GROUP]
        );
        let eku = admin.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth);
        let ca = parsed(&pki.ca_pem);
        admin.verify_signature(Some(ca.public_key())).unwrap();
    }

    #[test]
    fn keys_and_certificates_are_private_and_kept_across_starts() {
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join("tls");
        let first = Pki::load_or_create(&tls, &names()).unwrap();
        assert_eq!(mode(&tls), 0o700);
        for entry in std::fs::read_dir(&tls).unwrap() {
            let path = entry.unwrap().path();
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
        let files = std::fs::read_dir(&tls).unwrap().count();
        assert_eq!(files, 6, "three certificates, three keys, nothing else");
        let second = Pki::load_or_create(&tls, &names()).unwrap();
        assert_eq!(first.ca_pem, second.ca_pem);
        assert_eq!(first.serving, second.serving);
        assert_eq!(first.admin, second.admin);
    }

    #[test]
    fn certificates_near_expiry_are_reissued_by_the_same_ca() {
        let dir = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::now_utc();
        let first = Pki::load_or_create_at(dir.path(), &names(), now).unwrap();
        let later = now + Duration::days(270);
        let same = Pki::load_or_create_at(dir.path(), &names(), later).unwrap();
        assert_eq!(same.serving, first.serving, "still 95 days to go");
        let renewed =
            Pki::load_or_create_at(dir.path(), &names(), now + Duration::days(280)).unwrap();
        assert_eq!(renewed.ca_pem, first.ca_pem);
        assert_ne!(renewed.serving, first.serving);
        assert_ne!(renewed.admin, first.admin);
        let ca = parsed(&renewed.ca_pem);
        let serving = parsed(&renewed.serving.cert_pem);
        serving.verify_signature(Some(ca.public_key())).unwrap();
        assert!(
            serving.validity().not_after.timestamp() > (now + Duration::days(600)).unix_timestamp()
        );
    }

    #[test]
    fn a_new_address_reissues_only_the_serving_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let first = Pki::load_or_create(dir.path(), &names()).unwrap();
        let mut moved = names();
        moved.addresses.push("198.51.100.4".parse().unwrap());
        let second = Pki::load_or_create(dir.path(), &moved).unwrap();
        assert_ne!(second.serving, first.serving);
        assert_eq!(second.admin, first.admin);
        assert_eq!(second.ca_pem, first.ca_pem);
        let (_, ips) = subject_alt_names(&parsed(&second.serving.cert_pem));
        assert!(ips.contains(&"198.51.100.4".parse().unwrap()));
        let mut renamed = moved.clone();
        renamed.cluster_domain = "other.test".into();
        let third = Pki::load_or_create(dir.path(), &renamed).unwrap();
        assert_ne!(third.serving, second.serving);
    }

    #[test]
    fn leaves_of_another_ca_are_reissued_and_a_half_ca_is_refused() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        Pki::load_or_create(a.path(), &names()).unwrap();
        let ours = Pki::load_or_create(b.path(), &names()).unwrap();
        for file in ["serving-kube-apiserver.crt", "serving-kube-apiserver.key"] {
            std::fs::copy(a.path().join(file), b.path().join(file)).unwrap();
        }
        let again = Pki::load_or_create(b.path(), &names()).unwrap();
        let ca = parsed(&ours.ca_pem);
        parsed(&again.serving.cert_pem)
            .verify_signature(Some(ca.public_key()))
            .unwrap();
        std::fs::remove_file(b.path().join("ca.key")).unwrap();
        let err = Pki::load_or_create(b.path(), &names()).unwrap_err();
        assert!(matches!(err, CertError::HalfCa { .. }), "{err}");
    }

    #[test]
    fn the_kubeconfig_carries_the_ca_and_the_admin_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(&dir.path().join("tls"), &names()).unwrap();
        let path = dir.path().join("kubeconfig.yaml");
        assert!(write_kubeconfig(&path, &pki, "https://127.0.0.1:16443").unwrap());
        assert!(!write_kubeconfig(&path, &pki, "https://127.0.0.1:16443").unwrap());
        assert_eq!(mode(&path), 0o600);
        let config: serde_json::Value =
            serde_yaml_ng::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let decode = |value: &serde_json::Value| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(value.as_str().unwrap())
                .unwrap();
            String::from_utf8(bytes).unwrap()
        };
        assert_eq!(config["current-context"], "peapod");
        assert_eq!(config["contexts"][0]["context"]["user"], "peapod");
        let cluster = &config["clusters"][0];
        assert_eq!(cluster["name"], "peapod");
        assert_eq!(cluster["cluster"]["server"], "https://127.0.0.1:16443");
        assert_eq!(
            decode(&cluster["cluster"]["certificate-authority-data"]),
            pki.ca_pem
        );
        let user = &config["users"][0]["user"];
        assert_eq!(decode(&user["client-certificate-data"]), pki.admin.cert_pem);
        assert_eq!(decode(&user["client-key-data"]), pki.admin.key_pem);
        assert!(write_kubeconfig(&path, &pki, "https://127.0.0.1:6443").unwrap());
        let files = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(
            files, 2,
            "tls and the kubeconfig: no temporary file left beside it"
        );
    }
}
