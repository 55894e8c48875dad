//! The organisation's directory.

use async_trait::async_trait;
use secrecy::SecretString;

use super::Unavailable;
use crate::password::NewPassword;
use crate::types::Username;

/// A person as the organisation's directory knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    /// The directory's own spelling of the name; records are keyed by it.
    pub username: Username,
    /// Group names, nested membership already expanded.
    pub groups: Vec<String>,
    pub enabled: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// The directory refused the password; the reasons are fit to show the person.
    #[error("the directory refused the password")]
    PasswordRejected(Vec<String>),
    #[error("the user is not in the directory")]
    UnknownUser,
    #[error("this directory cannot unlock accounts")]
    UnlockNotSupported,
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
}

/// The organisation's directory: where accounts and passwords live.
#[async_trait]
pub trait Directory: Send + Sync {
    async fn find_user(&self, username: &Username) -> Result<Option<DirectoryUser>, DirectoryError>;

    /// Checks a password (for local sign-in); `None` when the name or password is wrong.
    async fn authenticate(
        &self,
        username: &Username,
        password: &SecretString,
    ) -> Result<Option<DirectoryUser>, DirectoryError>;

    /// Sets a permanent password as an administrator would.
    async fn set_password(&self, username: &Username, password: &NewPassword) -> Result<(), DirectoryError>;

    /// Ends the user's sessions elsewhere where the directory can; a no-op where it cannot.
    async fn sign_out_everywhere(&self, username: &Username) -> Result<(), DirectoryError>;

    /// Clears a lockout; [`DirectoryError::UnlockNotSupported`] where the directory has none.
    async fn unlock(&self, username: &Username) -> Result<(), DirectoryError>;
}
