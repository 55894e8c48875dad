//! A directory in memory, for tests of the flows: users with groups, passwords kept in clear
//! (it is a test double), switches to refuse the next password or fail the next writes, and an
//! optional lockout.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};

use crate::password::NewPassword;
use crate::ports::{Authenticate, Directory, DirectoryError, DirectoryUser, Lockout, Unavailable};
use crate::types::{Email, Username};

#[derive(Debug, Clone, Default)]
struct Account {
    password: String,
    groups: Vec<String>,
    email: Option<Email>,
    locked: bool,
    signed_out: u32,
}

#[derive(Default)]
struct State {
    accounts: BTreeMap<String, Account>,
    refuse_next: Option<Vec<String>>,
    fail_next: u32,
}

/// Clones share the same accounts.
#[derive(Clone, Default)]
pub struct MemoryDirectory {
    state: Arc<Mutex<State>>,
    with_lockout: bool,
}

impl MemoryDirectory {
    /// A directory without lockout, like Cognito.
    pub fn new() -> Self {
        Self::default()
    }

    /// A directory whose accounts can be locked and unlocked, like Active Directory.
    pub fn with_lockout() -> Self {
        Self { with_lockout: true, ..Self::default() }
    }

    fn state(&self) -> Result<std::sync::MutexGuard<'_, State>, Unavailable> {
        self.state.lock().map_err(|_| Unavailable::new("directory poisoned"))
    }

    pub fn add_user(&self, username: &str, password: &str, groups: &[&str]) {
        if let Ok(mut state) = self.state() {
            let groups = groups.iter().map(|g| (*g).to_owned()).collect();
            state
                .accounts
                .insert(username.to_owned(), Account { password: password.to_owned(), groups, ..Account::default() });
        }
    }

    /// Gives the user an address in the directory.
    pub fn set_email(&self, username: &str, email: &str) {
        if let Ok(mut state) = self.state() {
            if let Some(a) = state.accounts.get_mut(username) {
                a.email = Email::parse(email).ok();
            }
        }
    }

    /// The next `set_password` is refused with these reasons, as a directory's policy would.
    pub fn refuse_next_password(&self, reasons: &[&str]) {
        if let Ok(mut state) = self.state() {
            state.refuse_next = Some(reasons.iter().map(|r| (*r).to_owned()).collect());
        }
    }

    /// The next `n` calls of `set_password` fail as an unreachable directory's would.
    pub fn fail_next(&self, n: u32) {
        if let Ok(mut state) = self.state() {
            state.fail_next = n;
        }
    }

    pub fn password_of(&self, username: &str) -> Option<String> {
        self.state().ok()?.accounts.get(username).map(|a| a.password.clone())
    }

    pub fn lock(&self, username: &str) {
        if let Ok(mut state) = self.state() {
            if let Some(a) = state.accounts.get_mut(username) {
                a.locked = true;
            }
        }
    }

    pub fn is_locked(&self, username: &str) -> bool {
        self.state().ok().and_then(|s| s.accounts.get(username).map(|a| a.locked)).unwrap_or(false)
    }

    /// How many times the user's sessions were ended.
    pub fn sign_outs(&self, username: &str) -> u32 {
        self.state().ok().and_then(|s| s.accounts.get(username).map(|a| a.signed_out)).unwrap_or(0)
    }
}

#[async_trait]
impl Directory for MemoryDirectory {
    async fn find_user(&self, username: &Username) -> Result<Option<DirectoryUser>, DirectoryError> {
        Ok(self.state()?.accounts.get(username.as_str()).map(|a| DirectoryUser {
            username: username.clone(),
            groups: a.groups.clone(),
            enabled: true,
            locked: self.with_lockout && a.locked,
            email: a.email.clone(),
        }))
    }

    async fn members_of(&self, group: &str) -> Result<Vec<DirectoryUser>, DirectoryError> {
        Ok(self
            .state()?
            .accounts
            .iter()
            .filter(|(_, a)| a.groups.iter().any(|g| g == group))
            .filter_map(|(name, a)| {
                Some(DirectoryUser {
                    username: Username::parse(name).ok()?,
                    groups: a.groups.clone(),
                    enabled: true,
                    locked: self.with_lockout && a.locked,
                    email: a.email.clone(),
                })
            })
            .collect())
    }

    async fn set_password(&self, username: &Username, password: &NewPassword) -> Result<(), DirectoryError> {
        let mut state = self.state()?;
        if let Some(reasons) = state.refuse_next.take() {
            return Err(DirectoryError::PasswordRejected(reasons));
        }
        if state.fail_next > 0 {
            state.fail_next -= 1;
            return Err(DirectoryError::Unavailable(Unavailable::new("the directory did not answer")));
        }
        let account = state.accounts.get_mut(username.as_str()).ok_or(DirectoryError::UnknownUser)?;
        account.password = password.expose().to_owned();
        Ok(())
    }

    async fn sign_out_everywhere(&self, username: &Username) -> Result<(), DirectoryError> {
        if let Some(a) = self.state()?.accounts.get_mut(username.as_str()) {
            a.signed_out += 1;
        }
        Ok(())
    }

    fn lockout(&self) -> Option<&dyn Lockout> {
        self.with_lockout.then_some(self as &dyn Lockout)
    }
}

#[async_trait]
impl Lockout for MemoryDirectory {
    async fn unlock(&self, username: &Username) -> Result<(), DirectoryError> {
        let mut state = self.state()?;
        let account = state.accounts.get_mut(username.as_str()).ok_or(DirectoryError::UnknownUser)?;
        account.locked = false;
        Ok(())
    }
}

#[async_trait]
impl Authenticate for MemoryDirectory {
    async fn authenticate(
        &self,
        username: &Username,
        password: &SecretString,
    ) -> Result<Option<DirectoryUser>, DirectoryError> {
        let ok = self.state()?.accounts.get(username.as_str()).is_some_and(|a| a.password == password.expose_secret());
        if ok {
            self.find_user(username).await
        } else {
            Ok(None)
        }
    }
}
