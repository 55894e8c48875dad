//! The directory on Active Directory or OpenLDAP (docs/architecture.md, "Directories"): over
//! LDAPS or StartTLS only, bound as a service account, one connection reused while it lives.
//! It finds people and their groups (nested membership expanded), writes a new password as an
//! administrator resets one, and clears a lockout (docs/security.md, S11).

mod settings;

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use ldap3::controls::RawControl;
use ldap3::exop::PasswordModify;
use ldap3::{ldap_escape, Ldap, LdapConnAsync, LdapConnSettings, LdapError, Mod, Scope, SearchEntry};
use secrecy::{ExposeSecret, SecretString};
use sspr_core::password::NewPassword;
use sspr_core::ports::{Authenticate, Directory, DirectoryError, DirectoryUser, Lockout, Unavailable};
use sspr_core::types::{Email, Username};
use tokio::sync::Mutex;

pub use settings::{Flavour, LdapSettings, SettingError};

/// LDAP result codes the adapter tells apart (RFC 4511, appendix A).
mod rc {
    pub const NO_SUCH_ATTRIBUTE: u32 = 16;
    pub const CONSTRAINT_VIOLATION: u32 = 19;
    pub const INVALID_CREDENTIALS: u32 = 49;
    pub const INSUFFICIENT_ACCESS: u32 = 50;
    pub const UNWILLING_TO_PERFORM: u32 = 53;
}

/// How deep group nesting is followed on OpenLDAP before the rest is ignored.
const MAX_NESTING: usize = 16;

/// Active Directory's `userAccountControl` bit of a disabled account.
const ACCOUNTDISABLE: u64 = 0x2;

/// Active Directory's computed `msDS-User-Account-Control-Computed` bit of an account locked
/// out now (a lockout that has run its course no longer counts).
const UF_LOCKOUT: u64 = 0x10;

/// `LDAP_SERVER_POLICY_HINTS_OID`: an administrator's reset held to the password policy's history
/// and age as a person's own change is (MS-ADTS 3.1.1.3.4.1.31); without it Active Directory
/// lets a reset reuse any old password. Sent non-critical: Windows Server 2012 and later honour
/// it; a server that does not know it (Samba 4.17) resets without the history check, as its own
/// administrators' resets do. The value is `SEQUENCE { flags INTEGER 1 }`.
const POLICY_HINTS_OID: &str = "1.2.840.113556.1.4.2239";
const POLICY_HINTS_ON: [u8; 5] = [0x30, 0x03, 0x02, 0x01, 0x01];

/// OpenLDAP ppolicy's lock time that means "locked until an administrator unlocks".
const PERMANENTLY_LOCKED: &str = "000001010000Z";

pub struct LdapDirectory {
    settings: LdapSettings,
    tls: Arc<rustls::ClientConfig>,
    /// The service account's connection, reused while it lives.
    conn: Mutex<Option<Ldap>>,
}

fn unavailable(what: impl std::fmt::Display) -> DirectoryError {
    DirectoryError::Unavailable(Unavailable::new(format!("ldap: {what}")))
}

/// A failure of the connection itself (the server went away, a timeout): worth one new
/// connection and one more try.
fn is_connection_failure(e: &LdapError) -> bool {
    matches!(e, LdapError::Io { .. } | LdapError::EndOfStream | LdapError::Timeout { .. } | LdapError::OpSend { .. })
}

/// The first value of an attribute, its name matched without regard to case (servers spell
/// `memberOf` and `sAMAccountName` as they please).
fn first<'a>(entry: &'a SearchEntry, name: &str) -> Option<&'a str> {
    values(entry, name).first().map(String::as_str)
}

fn values<'a>(entry: &'a SearchEntry, name: &str) -> &'a [String] {
    entry.attrs.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map_or(&[], |(_, v)| v.as_slice())
}

/// What a person reads when the directory refuses a password, from the server's diagnostic.
pub fn refusal_reason(flavour: Flavour, text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    match flavour {
        // Samba names the rule broken after `check_password_restrictions:`; Windows only says
        // 0000052D, and then the sentence names every rule it may be.
        Flavour::ActiveDirectory if lower.contains("in history") => {
            "You used this password before. Choose one you have not used.".to_owned()
        }
        Flavour::ActiveDirectory if lower.contains("complexity") => {
            "The directory finds this password too simple: use three of upper case, lower case, \
             digits and symbols, and not your name."
                .to_owned()
        }
        Flavour::ActiveDirectory if lower.contains("too short") => {
            "The directory finds this password too short. Choose a longer one.".to_owned()
        }
        Flavour::ActiveDirectory if lower.contains("too recently") || lower.contains("too young") => {
            "The password was changed too recently to change it again now.".to_owned()
        }
        Flavour::ActiveDirectory => {
            "The directory's password policy refused this password: it may be too short, too simple, \
             used before, or changed too recently. Choose another one."
                .to_owned()
        }
        Flavour::OpenLdap if lower.contains("not being changed from existing value") => {
            "This is your current password. Choose a new one.".to_owned()
        }
        Flavour::OpenLdap if lower.contains("history") => {
            "You used this password before. Choose one you have not used.".to_owned()
        }
        Flavour::OpenLdap if lower.contains("too young") => {
            "The password was changed too recently to change it again now.".to_owned()
        }
        Flavour::OpenLdap if lower.contains("too short") || lower.contains("quality") => {
            "The directory finds this password too short or too simple. Choose a longer one.".to_owned()
        }
        Flavour::OpenLdap => "The directory's password policy refused this password. Choose another one.".to_owned(),
    }
}

/// The password as Active Directory takes it in `unicodePwd`: in double quotes, UTF-16LE.
fn unicode_pwd(password: &str) -> Vec<u8> {
    format!("\"{password}\"").encode_utf16().flat_map(u16::to_le_bytes).collect()
}

impl LdapDirectory {
    /// The directory for `settings`, checked; nothing is connected until the first call.
    pub fn new(settings: LdapSettings) -> Result<Self, SettingError> {
        settings.check()?;
        let tls = Arc::new(settings.tls_config()?);
        Ok(Self { settings, tls, conn: Mutex::new(None) })
    }

    fn conn_settings(&self) -> LdapConnSettings {
        LdapConnSettings::new()
            .set_conn_timeout(self.settings.timeout)
            .set_config(Arc::clone(&self.tls))
            .set_starttls(self.settings.starttls)
    }

    /// A new connection, bound as `dn`.
    async fn connect(&self, dn: &str, password: &str) -> Result<(Ldap, u32), LdapError> {
        let (conn, mut ldap) = LdapConnAsync::with_settings(self.conn_settings(), &self.settings.url).await?;
        ldap3::drive!(conn);
        ldap.with_timeout(self.settings.timeout);
        let bound = ldap.simple_bind(dn, password).await?;
        Ok((ldap, bound.rc))
    }

    /// The service account's connection, opened (and bound) when there is none or it dropped.
    async fn service(&self) -> Result<Ldap, DirectoryError> {
        let mut conn = self.conn.lock().await;
        if let Some(ldap) = conn.as_mut() {
            if !ldap.is_closed() {
                return Ok(ldap.clone());
            }
        }
        let (ldap, rc) = self
            .connect(&self.settings.bind_dn, self.settings.bind_password.expose_secret())
            .await
            .map_err(|e| unavailable(format!("cannot reach {}: {e}", self.settings.url)))?;
        if rc != 0 {
            return Err(unavailable(format!("the service account's bind was refused (result {rc})")));
        }
        *conn = Some(ldap.clone());
        Ok(ldap)
    }

    /// Runs `op` on the service connection; when the connection itself failed, once more on a
    /// new one.
    async fn with_service<T, F, Fut>(&self, op: F) -> Result<T, DirectoryError>
    where
        F: Fn(Ldap) -> Fut,
        Fut: std::future::Future<Output = Result<T, LdapError>>,
    {
        let ldap = self.service().await?;
        match op(ldap).await {
            Err(e) if is_connection_failure(&e) => {
                tracing::info!(error = %e, "the directory connection dropped; opening a new one");
                *self.conn.lock().await = None;
                let ldap = self.service().await?;
                op(ldap).await.map_err(unavailable)
            }
            other => other.map_err(unavailable),
        }
    }

    /// Entries under the base DN matching `filter`, with `attrs`.
    async fn search(
        &self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
    ) -> Result<Vec<SearchEntry>, DirectoryError> {
        let (base, filter) = (base.to_owned(), filter.to_owned());
        let attrs: Vec<String> = attrs.iter().map(|a| (*a).to_owned()).collect();
        let entries = self
            .with_service(|mut ldap| {
                let (base, filter, attrs) = (base.clone(), filter.clone(), attrs.clone());
                async move { ldap.search(&base, scope, &filter, attrs).await?.success() }
            })
            .await?
            .0;
        // Active Directory adds continuation references (to its other partitions): not entries.
        Ok(entries.into_iter().filter(|e| !e.is_ref() && !e.is_intermediate()).map(SearchEntry::construct).collect())
    }

    fn user_filter(&self, value: &str) -> String {
        let class = match self.settings.flavour {
            Flavour::ActiveDirectory => "(objectCategory=person)(objectClass=user)",
            Flavour::OpenLdap => "(objectClass=inetOrgPerson)",
        };
        format!("(&{class}({}={}))", self.settings.user_attribute, ldap_escape(value))
    }

    fn user_attrs(&self) -> Vec<&str> {
        let mut attrs = vec![self.settings.user_attribute.as_str(), "mail", "mobile", "memberOf"];
        attrs.extend(match self.settings.flavour {
            Flavour::ActiveDirectory => ["userAccountControl", "msDS-User-Account-Control-Computed"],
            Flavour::OpenLdap => ["pwdAccountLockedTime", "pwdPolicySubentry"],
        });
        attrs
    }

    /// The person's entry, found by the configured attribute; `None` for no one, an error for
    /// more than one.
    async fn user_entry(&self, username: &Username) -> Result<Option<SearchEntry>, DirectoryError> {
        let mut found = self
            .search(&self.settings.base_dn, Scope::Subtree, &self.user_filter(username.as_str()), &self.user_attrs())
            .await?;
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.pop()),
            n => Err(unavailable(format!("{n} entries have {}={username}", self.settings.user_attribute))),
        }
    }

    /// The names (`cn`) of every group the entry is in, nested membership expanded.
    async fn groups_of(&self, entry: &SearchEntry) -> Result<Vec<String>, DirectoryError> {
        match self.settings.flavour {
            Flavour::ActiveDirectory => {
                // LDAP_MATCHING_RULE_IN_CHAIN: the server walks the nesting.
                let filter =
                    format!("(&(objectClass=group)(member:1.2.840.113556.1.4.1941:={}))", ldap_escape(&entry.dn));
                let groups = self.search(&self.settings.base_dn, Scope::Subtree, &filter, &["cn"]).await?;
                Ok(groups.iter().filter_map(|g| first(g, "cn").map(str::to_owned)).collect())
            }
            Flavour::OpenLdap => {
                // memberOf of the person, then of each group, breadth first.
                let mut seen: BTreeSet<String> = BTreeSet::new();
                let mut names = Vec::new();
                let mut next: Vec<String> = values(entry, "memberOf").to_vec();
                for _ in 0..MAX_NESTING {
                    let level: Vec<String> = next.drain(..).filter(|dn| seen.insert(dn.to_ascii_lowercase())).collect();
                    if level.is_empty() {
                        break;
                    }
                    for dn in level {
                        for group in self.search(&dn, Scope::Base, "(objectClass=*)", &["cn", "memberOf"]).await? {
                            if let Some(cn) = first(&group, "cn") {
                                names.push(cn.to_owned());
                            }
                            next.extend(values(&group, "memberOf").iter().cloned());
                        }
                    }
                }
                Ok(names)
            }
        }
    }

    async fn user_of(&self, entry: &SearchEntry) -> Result<Option<DirectoryUser>, DirectoryError> {
        let Some(name) = first(entry, &self.settings.user_attribute).and_then(|n| Username::parse(n).ok()) else {
            return Ok(None);
        };
        let (enabled, locked) = match self.settings.flavour {
            Flavour::ActiveDirectory => {
                let flags = |name| first(entry, name).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
                (
                    flags("userAccountControl") & ACCOUNTDISABLE == 0,
                    flags("msDS-User-Account-Control-Computed") & UF_LOCKOUT != 0,
                )
            }
            Flavour::OpenLdap => {
                let locked_at = first(entry, "pwdAccountLockedTime");
                (locked_at != Some(PERMANENTLY_LOCKED), locked_at.is_some())
            }
        };
        Ok(Some(DirectoryUser {
            username: name,
            groups: self.groups_of(entry).await?,
            enabled,
            locked,
            email: first(entry, "mail").and_then(|m| Email::parse(m).ok()),
        }))
    }

    async fn modify(&self, dn: &str, mods: Vec<Mod<Vec<u8>>>) -> Result<ldap3::LdapResult, DirectoryError> {
        self.modify_with(dn, mods, Vec::new()).await
    }

    async fn modify_with(
        &self,
        dn: &str,
        mods: Vec<Mod<Vec<u8>>>,
        controls: Vec<RawControl>,
    ) -> Result<ldap3::LdapResult, DirectoryError> {
        let dn = dn.to_owned();
        self.with_service(|mut ldap| {
            let (dn, mods, controls) = (dn.clone(), mods.clone(), controls.clone());
            async move { ldap.with_controls(controls).modify(&dn, mods).await }
        })
        .await
    }

    /// Clears the lockout of the entry: AD `lockoutTime = 0`; OpenLDAP, `pwdAccountLockedTime`
    /// removed (already absent is fine).
    async fn unlock_entry(&self, dn: &str) -> Result<(), DirectoryError> {
        let (mods, tolerated) = match self.settings.flavour {
            Flavour::ActiveDirectory => {
                (vec![Mod::Replace(b"lockoutTime".to_vec(), HashSet::from([b"0".to_vec()]))], None)
            }
            Flavour::OpenLdap => {
                (vec![Mod::Delete(b"pwdAccountLockedTime".to_vec(), HashSet::new())], Some(rc::NO_SUCH_ATTRIBUTE))
            }
        };
        let result = self.modify(dn, mods).await?;
        match result.rc {
            0 => Ok(()),
            rc if Some(rc) == tolerated => Ok(()),
            rc::INSUFFICIENT_ACCESS => Err(unavailable("the service account may not unlock accounts")),
            rc => Err(unavailable(format!("unlock refused (result {rc}): {}", result.text))),
        }
    }

    async fn dn_of(&self, username: &Username) -> Result<String, DirectoryError> {
        Ok(self.user_entry(username).await?.ok_or(DirectoryError::UnknownUser)?.dn)
    }
}

#[async_trait]
impl Directory for LdapDirectory {
    async fn find_user(&self, username: &Username) -> Result<Option<DirectoryUser>, DirectoryError> {
        match self.user_entry(username).await? {
            Some(entry) => self.user_of(&entry).await,
            None => Ok(None),
        }
    }

    async fn members_of(&self, group: &str) -> Result<Vec<DirectoryUser>, DirectoryError> {
        let class = match self.settings.flavour {
            Flavour::ActiveDirectory => "group",
            Flavour::OpenLdap => "groupOfNames",
        };
        let filter = format!("(&(objectClass={class})(cn={}))", ldap_escape(group));
        let Some(group) = self.search(&self.settings.base_dn, Scope::Subtree, &filter, &["member"]).await?.pop() else {
            return Ok(Vec::new());
        };
        let mut people = Vec::new();
        match self.settings.flavour {
            Flavour::ActiveDirectory => {
                let filter = format!(
                    "(&(objectCategory=person)(objectClass=user)(memberOf:1.2.840.113556.1.4.1941:={}))",
                    ldap_escape(&group.dn)
                );
                for entry in self.search(&self.settings.base_dn, Scope::Subtree, &filter, &self.user_attrs()).await? {
                    people.extend(self.user_of(&entry).await?);
                }
            }
            Flavour::OpenLdap => {
                // Members, and the members of member groups, breadth first.
                let mut seen: BTreeSet<String> = BTreeSet::from([group.dn.to_ascii_lowercase()]);
                let mut next: Vec<String> = values(&group, "member").to_vec();
                let mut attrs = self.user_attrs();
                attrs.extend(["objectClass", "member"]);
                for _ in 0..MAX_NESTING {
                    let level: Vec<String> = next.drain(..).filter(|dn| seen.insert(dn.to_ascii_lowercase())).collect();
                    if level.is_empty() {
                        break;
                    }
                    for dn in level {
                        for entry in self.search(&dn, Scope::Base, "(objectClass=*)", &attrs).await? {
                            if values(&entry, "objectClass").iter().any(|c| c.eq_ignore_ascii_case("groupOfNames")) {
                                next.extend(values(&entry, "member").iter().cloned());
                            } else {
                                people.extend(self.user_of(&entry).await?);
                            }
                        }
                    }
                }
            }
        }
        people.retain(|p| p.enabled);
        Ok(people)
    }

    /// As an administrator resets a password; the account is unlocked as well.
    async fn set_password(&self, username: &Username, password: &NewPassword) -> Result<(), DirectoryError> {
        let dn = self.dn_of(username).await?;
        let result = match self.settings.flavour {
            Flavour::ActiveDirectory => {
                // One modify with a single replace: an administrative reset (MS-ADTS 3.1.1.3.1.5.1),
                // held to the history by the policy hints control where the server has it.
                let value = unicode_pwd(password.expose());
                let hints =
                    RawControl { ctype: POLICY_HINTS_OID.to_owned(), crit: false, val: Some(POLICY_HINTS_ON.to_vec()) };
                let mods = vec![Mod::Replace(b"unicodePwd".to_vec(), HashSet::from([value]))];
                self.modify_with(&dn, mods, vec![hints]).await?
            }
            Flavour::OpenLdap => {
                let new = password.expose().to_owned();
                let target = dn.clone();
                self.with_service(|mut ldap| {
                    let (target, new) = (target.clone(), new.clone());
                    async move {
                        let exop = PasswordModify { user_id: Some(&target), old_pass: None, new_pass: Some(&new) };
                        Ok(ldap.extended(exop).await?.1)
                    }
                })
                .await?
            }
        };
        match result.rc {
            0 => {}
            rc::CONSTRAINT_VIOLATION => {
                return Err(DirectoryError::PasswordRejected(vec![refusal_reason(self.settings.flavour, &result.text)]))
            }
            rc::INSUFFICIENT_ACCESS => return Err(unavailable("the service account may not reset passwords")),
            rc::UNWILLING_TO_PERFORM => {
                return Err(unavailable(format!("the directory will not set it: {}", result.text)))
            }
            rc => return Err(unavailable(format!("password refused (result {rc}): {}", result.text))),
        }
        if self.settings.flavour == Flavour::ActiveDirectory {
            // A reset leaves pwdLastSet at 0 when "must change at next logon" was set: -1 makes
            // it now, so the person is not asked to change the password they just chose.
            let entry = self.search(&dn, Scope::Base, "(objectClass=*)", &["pwdLastSet"]).await?.pop();
            if entry.as_ref().and_then(|e| first(e, "pwdLastSet")) == Some("0") {
                let result = self
                    .modify(&dn, vec![Mod::Replace(b"pwdLastSet".to_vec(), HashSet::from([b"-1".to_vec()]))])
                    .await?;
                if result.rc != 0 {
                    tracing::warn!(rc = result.rc, "pwdLastSet could not be set after a reset");
                }
            }
        }
        // A reset also unlocks; the password is set already, so a failure here is only logged.
        if let Err(e) = self.unlock_entry(&dn).await {
            tracing::warn!(error = %e, "the account could not be unlocked after its reset");
        }
        Ok(())
    }

    async fn sign_out_everywhere(&self, _username: &Username) -> Result<(), DirectoryError> {
        // LDAP directories issue no sessions of their own to end.
        Ok(())
    }

    fn lockout(&self) -> Option<&dyn Lockout> {
        Some(self)
    }
}

#[async_trait]
impl Lockout for LdapDirectory {
    async fn unlock(&self, username: &Username) -> Result<(), DirectoryError> {
        let dn = self.dn_of(username).await?;
        self.unlock_entry(&dn).await
    }
}

#[async_trait]
impl Authenticate for LdapDirectory {
    /// A bind as the person on a connection of its own.
    async fn authenticate(
        &self,
        username: &Username,
        password: &SecretString,
    ) -> Result<Option<DirectoryUser>, DirectoryError> {
        let Some(entry) = self.user_entry(username).await? else {
            return Ok(None);
        };
        if password.expose_secret().is_empty() {
            // An empty password is an unauthenticated bind, which succeeds: never a sign-in.
            return Ok(None);
        }
        let (mut ldap, rc) = self.connect(&entry.dn, password.expose_secret()).await.map_err(unavailable)?;
        let _ = ldap.unbind().await;
        match rc {
            0 => self.user_of(&entry).await,
            rc::INVALID_CREDENTIALS => Ok(None),
            rc => Err(unavailable(format!("bind refused (result {rc})"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_directory_takes_the_password_quoted_in_utf16le() {
        assert_eq!(unicode_pwd("ab"), vec![0x22, 0, b'a', 0, b'b', 0, 0x22, 0]);
        assert_eq!(unicode_pwd("é"), vec![0x22, 0, 0xe9, 0, 0x22, 0]);
    }

    #[test]
    fn refusals_read_like_sentences() {
        assert!(refusal_reason(Flavour::OpenLdap, "Password is in history of old passwords").contains("before"));
        let same = refusal_reason(Flavour::OpenLdap, "Password is not being changed from existing value");
        assert!(same.contains("current password"));
        assert!(refusal_reason(Flavour::OpenLdap, "Password fails quality checking policy").contains("too simple"));
        assert!(refusal_reason(Flavour::ActiveDirectory, "0000052D: SvcErr: DSID-031A1236, problem 5003")
            .contains("policy"));
        let samba =
            "0000052D: Constraint violation - check_password_restrictions: the password was already used (in history)!";
        assert!(refusal_reason(Flavour::ActiveDirectory, samba).contains("used this password before"));
        let samba = "0000052D: Constraint violation - check_password_restrictions: the password does not meet the complexity criteria!";
        assert!(refusal_reason(Flavour::ActiveDirectory, samba).contains("too simple"));
    }
}
