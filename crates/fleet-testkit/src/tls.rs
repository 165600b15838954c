//! Certificates for tests: a private certificate authority per test, and
//! server and client certificates it signs, written as PEM files into a temp
//! dir, so TLS can be tested for real without any fixture checked in (and
//! without certificates that expire in the repository).
//!
//! Generated with the `openssl` crate (the same OpenSSL that librdkafka,
//! native-tls, socat and redis-server use here): EC P-256 keys, SHA-256
//! signatures, valid from an hour ago for a day.
//!
//! ```no_run
//! let ca = fleet_testkit::TestCa::new("fleetdash test CA");
//! let server = ca.server_cert("broker"); // SAN: IP 127.0.0.1, DNS localhost
//! let client = ca.client_cert("fleetdash"); // for mutual TLS
//! // ca.cert_path(), server.cert, server.key, client.cert, client.key: PEM files
//! ```

use std::path::{Path, PathBuf};

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509, X509Builder, X509Name, X509NameBuilder};
use tempfile::TempDir;

/// How long generated certificates are valid (they live as long as a test).
const VALIDITY_DAYS: u32 = 1;

/// A certificate and its private key, as PEM files (key in PKCS#8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
    /// The certificate (`-----BEGIN CERTIFICATE-----`).
    pub cert: PathBuf,
    /// Its unencrypted private key (`-----BEGIN PRIVATE KEY-----`).
    pub key: PathBuf,
}

/// A private certificate authority in its own temp dir. Everything it issues
/// is written next to it; dropping it removes the directory, so keep it alive
/// as long as a server or client reads its files.
pub struct TestCa {
    dir: TempDir,
    cert: X509,
    key: PKey<Private>,
    cert_path: PathBuf,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa")
            .field("cert_path", &self.cert_path)
            .finish_non_exhaustive()
    }
}

impl TestCa {
    /// A new self-signed CA named `common_name`, written to `ca.pem` (and
    /// `ca.key`) in a fresh temp dir.
    pub fn new(common_name: &str) -> TestCa {
        let dir = tempfile::Builder::new()
            .prefix("fleetdash-pki-")
            .tempdir()
            .expect("creating a temp dir for certificates");
        let (cert, key) = self_signed_ca(common_name)
            .unwrap_or_else(|e| panic!("generating test CA {common_name:?}: {e}"));
        let cert_path = dir.path().join("ca.pem");
        write(&cert_path, &cert.to_pem().expect("CA certificate as PEM"));
        write(
            &dir.path().join("ca.key"),
            &key.private_key_to_pem_pkcs8().expect("CA key as PEM"),
        );
        TestCa {
            dir,
            cert,
            key,
            cert_path,
        }
    }

    /// The CA certificate (PEM): what a client or server must trust.
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// The directory holding the CA and everything it issued.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A server certificate for `127.0.0.1` and `localhost` (subject
    /// alternative names, so hostname verification passes when connecting to
    /// either), written as `<name>.pem` / `<name>.key`.
    pub fn server_cert(&self, name: &str) -> CertFiles {
        self.issue(name, name, Usage::Server)
    }

    /// A client certificate with common name `common_name`, for mutual TLS,
    /// written as `<common_name>.pem` / `<common_name>.key`.
    pub fn client_cert(&self, common_name: &str) -> CertFiles {
        self.issue(common_name, common_name, Usage::Client)
    }

    fn issue(&self, file_stem: &str, common_name: &str, usage: Usage) -> CertFiles {
        let (cert, key) = self
            .signed(common_name, usage)
            .unwrap_or_else(|e| panic!("issuing certificate {common_name:?}: {e}"));
        let files = CertFiles {
            cert: self.dir.path().join(format!("{file_stem}.pem")),
            key: self.dir.path().join(format!("{file_stem}.key")),
        };
        write(&files.cert, &cert.to_pem().expect("certificate as PEM"));
        write(
            &files.key,
            &key.private_key_to_pem_pkcs8().expect("key as PEM"),
        );
        files
    }

    fn signed(&self, common_name: &str, usage: Usage) -> Result<(X509, PKey<Private>), ErrorStack> {
        let key = new_key()?;
        let mut b = builder(&name(common_name)?, self.cert.subject_name(), &key)?;
        b.append_extension(BasicConstraints::new().critical().build()?)?;
        b.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .key_agreement()
                .build()?,
        )?;
        let mut eku = ExtendedKeyUsage::new();
        match usage {
            Usage::Server => eku.server_auth(),
            Usage::Client => eku.client_auth(),
        };
        b.append_extension(eku.build()?)?;
        if usage == Usage::Server {
            let san = SubjectAlternativeName::new()
                .ip("127.0.0.1")
                .dns("localhost")
                .build(&b.x509v3_context(Some(&self.cert), None))?;
            b.append_extension(san)?;
        }
        let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(Some(&self.cert), None))?;
        b.append_extension(ski)?;
        let aki = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&b.x509v3_context(Some(&self.cert), None))?;
        b.append_extension(aki)?;
        b.sign(&self.key, MessageDigest::sha256())?;
        Ok((b.build(), key))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Usage {
    Server,
    Client,
}

fn self_signed_ca(common_name: &str) -> Result<(X509, PKey<Private>), ErrorStack> {
    let key = new_key()?;
    let subject = name(common_name)?;
    let mut b = builder(&subject, &subject, &key)?;
    b.append_extension(BasicConstraints::new().critical().ca().pathlen(0).build()?)?;
    b.append_extension(
        KeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
            .build()?,
    )?;
    let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None))?;
    b.append_extension(ski)?;
    b.sign(&key, MessageDigest::sha256())?;
    Ok((b.build(), key))
}

/// A certificate builder with subject, issuer, public key, serial and validity set.
fn builder(
    subject: &X509Name,
    issuer: &openssl::x509::X509NameRef,
    key: &PKey<Private>,
) -> Result<X509Builder, ErrorStack> {
    let mut b = X509Builder::new()?;
    b.set_version(2)?; // X.509 v3
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let serial = serial.to_asn1_integer()?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(subject)?;
    b.set_issuer_name(issuer)?;
    b.set_pubkey(key)?;
    // An hour back, so a clock a little behind does not see "not yet valid".
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let not_before = Asn1Time::from_unix(now - 3600)?;
    let not_after = Asn1Time::days_from_now(VALIDITY_DAYS)?;
    b.set_not_before(&not_before)?;
    b.set_not_after(&not_after)?;
    Ok(b)
}

fn name(common_name: &str) -> Result<X509Name, ErrorStack> {
    let mut n = X509NameBuilder::new()?;
    n.append_entry_by_nid(Nid::ORGANIZATIONNAME, "fleetdash tests")?;
    n.append_entry_by_nid(Nid::COMMONNAME, common_name)?;
    Ok(n.build())
}

fn new_key() -> Result<PKey<Private>, ErrorStack> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    PKey::from_ec_key(EcKey::generate(&group)?)
}

fn write(path: &Path, pem: &[u8]) {
    std::fs::write(path, pem).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::stack::Stack;
    use openssl::x509::store::X509StoreBuilder;
    use openssl::x509::{X509StoreContext, X509VerifyResult};

    fn verify(ca: &TestCa, cert: &Path) -> X509VerifyResult {
        let ca_cert = X509::from_pem(&std::fs::read(ca.cert_path()).unwrap()).unwrap();
        let cert = X509::from_pem(&std::fs::read(cert).unwrap()).unwrap();
        let mut store = X509StoreBuilder::new().unwrap();
        store.add_cert(ca_cert).unwrap();
        let store = store.build();
        let mut ctx = X509StoreContext::new().unwrap();
        ctx.init(&store, &cert, &Stack::new().unwrap(), |c| {
            c.verify_cert()?;
            Ok(c.error())
        })
        .unwrap()
    }

    #[test]
    fn issued_certificates_verify_against_their_ca_only() {
        let ca = TestCa::new("test CA");
        let other = TestCa::new("other CA");
        let server = ca.server_cert("server");
        let client = ca.client_cert("client");
        assert_eq!(verify(&ca, &server.cert), X509VerifyResult::OK);
        assert_eq!(verify(&ca, &client.cert), X509VerifyResult::OK);
        assert_ne!(verify(&other, &server.cert), X509VerifyResult::OK);
        let key = PKey::private_key_from_pem(&std::fs::read(&server.key).unwrap()).unwrap();
        let cert = X509::from_pem(&std::fs::read(&server.cert).unwrap()).unwrap();
        assert!(cert.public_key().unwrap().public_eq(&key));
        let sans: Vec<String> = cert
            .subject_alt_names()
            .unwrap()
            .iter()
            .map(|n| {
                n.dnsname().map(str::to_string).unwrap_or_else(|| {
                    n.ipaddress()
                        .map(|ip| format!("{ip:?}"))
                        .unwrap_or_default()
                })
            })
            .collect();
        assert_eq!(sans, ["[127, 0, 0, 1]", "localhost"]);
    }
}
