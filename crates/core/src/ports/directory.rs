//! The organisation's directory, by capability: every directory finds users, sets passwords and
//! ends sessions; unlocking is a capability only directories with a lockout have; checking a
//! password (the local server's sign-in) is a port of its own.

use async_trait::async_trait;
use secrecy::SecretString;

use super::Unavailable;
use crate::password::NewPassword;
use crate::types::{Email, Username};

/// A person as the organisation's directory knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    /// The directory's own spelling of the name; records are keyed by it.
    pub username: Username,
    /// Group names, nested membership already expanded.
    pub groups: Vec<String>,
    pub enabled: bool,
    /// Locked out now (too many wrong passwords); only directories with a lockout say so. The
    /// reset page learns it only after the person proved who they are.
    pub locked: bool,
    /// The address the directory holds for the person, if any (told after a reset).
    pub email: Option<Email>,
}

impl DirectoryUser {
    pub fn is_member_of(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// The directory refused the password; the reasons are fit to show the person.
    #[error("the directory refused the password")]
    PasswordRejected(Vec<String>),
    #[error("the user is not in the directory")]
    UnknownUser,
    /// The first of two directories took the password and the second did not (a hybrid
    /// organisation, docs/architecture.md "Hybrid directories"): the password stands where it
    /// was written; [`Directory::finish_password`] completes the change.
    #[error("the password was set in {written} but not in {pending}: {cause}")]
    PartlyApplied { written: &'static str, pending: &'static str, cause: Unavailable },
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
}

/// What every directory does for a reset.
#[async_trait]
pub trait Directory: Send + Sync {
    /// The user with their groups, nested membership expanded; `None` for an unknown name.
    async fn find_user(&self, username: &Username) -> Result<Option<DirectoryUser>, DirectoryError>;

    /// Sets a permanent password as an administrator would.
    async fn set_password(&self, username: &Username, password: &NewPassword) -> Result<(), DirectoryError>;

    /// Completes a change this directory answered [`DirectoryError::PartlyApplied`] to, with
    /// the same password; where nothing is ever partly applied, a plain `set_password`.
    async fn finish_password(&self, username: &Username, password: &NewPassword) -> Result<(), DirectoryError> {
        self.set_password(username, password).await
    }

    /// The enabled members of `group`, nested membership counting (to tell administrators of
    /// an administrator's reset).
    async fn members_of(&self, group: &str) -> Result<Vec<DirectoryUser>, DirectoryError>;

    /// Ends the user's sessions elsewhere where the directory can; a no-op where it has none.
    async fn sign_out_everywhere(&self, username: &Username) -> Result<(), DirectoryError>;

    /// The unlock capability, for directories with an account lockout; `None` where there is
    /// nothing to unlock, and the reset page then offers only a new password.
    fn lockout(&self) -> Option<&dyn Lockout> {
        None
    }
}

/// Clearing an account lockout.
#[async_trait]
pub trait Lockout: Send + Sync {
    async fn unlock(&self, username: &Username) -> Result<(), DirectoryError>;
}

/// Checking a password: the local server's sign-in, apart from what a reset needs.
#[async_trait]
pub trait Authenticate: Send + Sync {
    /// The user when the name and password are right; `None` otherwise.
    async fn authenticate(
        &self,
        username: &Username,
        password: &SecretString,
    ) -> Result<Option<DirectoryUser>, DirectoryError>;

    /// How many times the user's sessions were ended (`sign_out_everywhere`, which a reset
    /// calls), for a directory whose sign-ins are the local server's own tokens: a token issued
    /// before the last is void. Directories with sessions of their own answer 0.
    fn sign_outs(&self, _username: &Username) -> u64 {
        0
    }
}
