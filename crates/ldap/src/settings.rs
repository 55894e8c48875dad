//! What the LDAP directory needs to know, checked before anything connects: TLS always (LDAPS,
//! or StartTLS on `ldap://`), the service account, where people are and how they are named.

use std::time::Duration;

use secrecy::SecretString;

/// Which directory server: they name and lock accounts differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// Active Directory (or Samba AD): `sAMAccountName`, `unicodePwd`, `lockoutTime`.
    ActiveDirectory,
    /// OpenLDAP with ppolicy and memberof: `uid`, RFC 3062 Password Modify,
    /// `pwdAccountLockedTime`.
    OpenLdap,
}

impl Flavour {
    /// `ad` or `openldap`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ad" => Some(Flavour::ActiveDirectory),
            "openldap" => Some(Flavour::OpenLdap),
            _ => None,
        }
    }

    /// The attribute people are found by unless configured otherwise.
    pub fn default_user_attribute(self) -> &'static str {
        match self {
            Flavour::ActiveDirectory => "sAMAccountName",
            Flavour::OpenLdap => "uid",
        }
    }
}

#[derive(Debug, Clone)]
pub struct LdapSettings {
    /// `ldaps://host:port`, or `ldap://host:port` with `starttls`.
    pub url: String,
    pub starttls: bool,
    pub flavour: Flavour,
    /// The service account.
    pub bind_dn: String,
    pub bind_password: SecretString,
    /// Where people and groups are searched.
    pub base_dn: String,
    /// The attribute a person's sign-in name is (e.g. `sAMAccountName`, `userPrincipalName`, `uid`).
    pub user_attribute: String,
    /// The certificate authorities to trust, PEM; `None`: the platform's roots.
    pub ca_pem: Option<Vec<u8>>,
    /// For connecting and for each operation.
    pub timeout: Duration,
}

/// A setting that cannot work, named as configuration names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {reason}")]
pub struct SettingError {
    pub setting: &'static str,
    pub reason: String,
}

fn refuse(setting: &'static str, reason: impl Into<String>) -> SettingError {
    SettingError { setting, reason: reason.into() }
}

impl LdapSettings {
    /// Refuses plain LDAP, an attribute name that is not one, and empty names.
    pub fn check(&self) -> Result<(), SettingError> {
        let url = self.url.to_ascii_lowercase();
        if url.starts_with("ldap://") {
            if !self.starttls {
                return Err(refuse(
                    "SSPR_LDAP_URL",
                    "plain ldap:// would send passwords in clear: use ldaps://, or ldap:// with SSPR_LDAP_STARTTLS=true",
                ));
            }
        } else if url.starts_with("ldaps://") {
            if self.starttls {
                return Err(refuse("SSPR_LDAP_STARTTLS", "StartTLS is for ldap:// URLs; ldaps:// is TLS already"));
            }
        } else {
            return Err(refuse("SSPR_LDAP_URL", "must be an ldaps:// (or ldap:// with StartTLS) URL"));
        }
        if self.bind_dn.trim().is_empty() {
            return Err(refuse("SSPR_LDAP_BIND_DN", "is required"));
        }
        if self.base_dn.trim().is_empty() {
            return Err(refuse("SSPR_LDAP_BASE_DN", "is required"));
        }
        let attribute_name = |a: &str| {
            a.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if !attribute_name(&self.user_attribute) {
            return Err(refuse("SSPR_LDAP_USER_ATTRIBUTE", "is not an attribute name"));
        }
        Ok(())
    }

    /// TLS that trusts the configured authorities (or the platform's).
    pub fn tls_config(&self) -> Result<rustls::ClientConfig, SettingError> {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::CertificateDer;
        let mut roots = rustls::RootCertStore::empty();
        match &self.ca_pem {
            Some(pem) => {
                for cert in CertificateDer::pem_slice_iter(pem) {
                    let cert = cert.map_err(|e| refuse("SSPR_LDAP_CA_FILE", format!("not a PEM certificate: {e}")))?;
                    roots.add(cert).map_err(|e| refuse("SSPR_LDAP_CA_FILE", e.to_string()))?;
                }
                if roots.is_empty() {
                    return Err(refuse("SSPR_LDAP_CA_FILE", "holds no certificate"));
                }
            }
            None => {
                let found = rustls_native_roots();
                if found.is_empty() {
                    return Err(refuse("SSPR_LDAP_CA_FILE", "is needed: this system has no trusted roots"));
                }
                for cert in found {
                    let _ = roots.add(cert);
                }
            }
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| refuse("SSPR_LDAP_URL", e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(config)
    }
}

/// The platform's trusted roots, from the usual bundle files.
fn rustls_native_roots() -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject as _;
    const BUNDLES: [&str; 3] =
        ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"];
    BUNDLES
        .iter()
        .find_map(|path| std::fs::read(path).ok())
        .map(|pem| rustls::pki_types::CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str, starttls: bool) -> LdapSettings {
        LdapSettings {
            url: url.into(),
            starttls,
            flavour: Flavour::OpenLdap,
            bind_dn: "cn=sspr,dc=example,dc=com".into(),
            bind_password: SecretString::from("x".to_owned()),
            base_dn: "dc=example,dc=com".into(),
            user_attribute: "uid".into(),
            ca_pem: None,
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn plain_ldap_is_refused_naming_the_setting() {
        assert_eq!(settings("ldap://dc.example.com", false).check().expect_err("plain").setting, "SSPR_LDAP_URL");
        assert!(settings("ldap://dc.example.com", true).check().is_ok(), "StartTLS");
        assert!(settings("ldaps://dc.example.com:636", false).check().is_ok());
        assert_eq!(settings("ldaps://dc", true).check().expect_err("both").setting, "SSPR_LDAP_STARTTLS");
        assert_eq!(settings("http://dc", false).check().expect_err("scheme").setting, "SSPR_LDAP_URL");
        let mut bad = settings("ldaps://dc", false);
        bad.user_attribute = "uid)(cn=*".into();
        assert_eq!(bad.check().expect_err("attribute").setting, "SSPR_LDAP_USER_ATTRIBUTE");
    }

    #[test]
    fn a_ca_file_must_hold_a_certificate() {
        let mut s = settings("ldaps://dc", false);
        s.ca_pem = Some(b"not a certificate".to_vec());
        assert_eq!(s.tls_config().expect_err("no cert").setting, "SSPR_LDAP_CA_FILE");
    }
}
