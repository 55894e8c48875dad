//! The hybrid directory (docs/architecture.md, "Hybrid directories"): an organisation whose
//! passwords live on premises (Active Directory, OpenLDAP) and whose cloud sign-in (a Cognito
//! user pool) must take the same password, as Entra's password writeback does.
//!
//! The on-premises directory is the source of truth: people, groups and lockouts are its. A new
//! password is written there first, then to the cloud directory, which is tried a few times. When
//! the cloud still refuses, the on-premises password stands (it is the one people sign in to
//! their computers with, and it passed the organisation's policy) and the change is answered
//! [`DirectoryError::PartlyApplied`]: the flow tells the person, records the event, and lets
//! them finish with [`Directory::finish_password`], which writes only the cloud half once the
//! on-premises directory confirms it holds that same password.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;

use crate::password::NewPassword;
use crate::ports::{Authenticate, Directory, DirectoryError, DirectoryUser, Lockout, Unavailable};
use crate::types::Username;

/// The waits between the attempts at the cloud write: two attempts, half a second apart (each
/// one an SDK call with retries of its own), so the person's request answers well within the
/// function's time limit.
pub const CLOUD_RETRY_DELAYS: [Duration; 1] = [Duration::from_millis(500)];

const ON_PREMISES: &str = "the on-premises directory";
const CLOUD: &str = "the cloud directory";

pub struct HybridDirectory {
    on_premises: Arc<dyn Directory>,
    /// The same directory's password check, to confirm a change it already holds.
    on_premises_check: Arc<dyn Authenticate>,
    cloud: Arc<dyn Directory>,
    retry_delays: Vec<Duration>,
}

impl HybridDirectory {
    pub fn new<D>(on_premises: Arc<D>, cloud: Arc<dyn Directory>) -> Self
    where
        D: Directory + Authenticate + 'static,
    {
        Self {
            on_premises: on_premises.clone(),
            on_premises_check: on_premises,
            cloud,
            retry_delays: CLOUD_RETRY_DELAYS.to_vec(),
        }
    }

    /// The same, waiting `delays` between the cloud attempts (one attempt more than delays).
    pub fn with_retry_delays(mut self, delays: Vec<Duration>) -> Self {
        self.retry_delays = delays;
        self
    }

    /// The cloud half, tried until it succeeds, refuses for good, or the attempts run out.
    async fn write_cloud(&self, username: &Username, password: &NewPassword) -> Result<(), DirectoryError> {
        let mut delays = self.retry_delays.iter();
        loop {
            let cause = match self.cloud.set_password(username, password).await {
                Ok(()) => return Ok(()),
                // Not every on-premises account is in the cloud: nothing to write there.
                Err(DirectoryError::UnknownUser) => {
                    tracing::info!("the person has no account in the cloud directory; only on premises changed");
                    return Ok(());
                }
                // The cloud's policy is stricter than the on-premises one: trying again will
                // not change its mind.
                Err(DirectoryError::PasswordRejected(reasons)) => {
                    return Err(partly(Unavailable::new(format!(
                        "the cloud directory refused it: {}",
                        reasons.join(" ")
                    ))))
                }
                Err(DirectoryError::PartlyApplied { cause, .. }) | Err(DirectoryError::Unavailable(cause)) => cause,
            };
            match delays.next() {
                Some(delay) => {
                    tracing::warn!(error = %cause, "the cloud directory did not take the password; trying again");
                    tokio::time::sleep(*delay).await;
                }
                None => return Err(partly(cause)),
            }
        }
    }
}

fn partly(cause: Unavailable) -> DirectoryError {
    DirectoryError::PartlyApplied { written: ON_PREMISES, pending: CLOUD, cause }
}

#[async_trait]
impl Directory for HybridDirectory {
    async fn find_user(&self, username: &Username) -> Result<Option<DirectoryUser>, DirectoryError> {
        self.on_premises.find_user(username).await
    }

    /// On premises first: a refusal there changes nothing anywhere. Then the cloud.
    async fn set_password(&self, username: &Username, password: &NewPassword) -> Result<(), DirectoryError> {
        self.on_premises.set_password(username, password).await?;
        self.write_cloud(username, password).await
    }

    /// Only the cloud half, once the on-premises directory confirms (a bind as the person) that
    /// it holds this very password: a finish cannot set a cloud password of its own.
    async fn finish_password(&self, username: &Username, password: &NewPassword) -> Result<(), DirectoryError> {
        let given = SecretString::from(password.expose().to_owned());
        if self.on_premises_check.authenticate(username, &given).await?.is_none() {
            return Err(DirectoryError::PasswordRejected(vec![
                "Type the same new password you chose a moment ago: your organisation's directory has it already."
                    .to_owned(),
            ]));
        }
        self.write_cloud(username, password).await
    }

    async fn members_of(&self, group: &str) -> Result<Vec<DirectoryUser>, DirectoryError> {
        self.on_premises.members_of(group).await
    }

    /// Both: the cloud's sessions are the ones that can be ended; each is tried.
    async fn sign_out_everywhere(&self, username: &Username) -> Result<(), DirectoryError> {
        let on_premises = self.on_premises.sign_out_everywhere(username).await;
        let cloud = match self.cloud.sign_out_everywhere(username).await {
            Err(DirectoryError::UnknownUser) => Ok(()),
            other => other,
        };
        on_premises.and(cloud)
    }

    fn lockout(&self) -> Option<&dyn Lockout> {
        self.on_premises.lockout()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::directory::MemoryDirectory;
    use crate::password::PasswordRules;

    fn name() -> Username {
        Username::parse("alice").expect("name")
    }

    fn password(p: &str) -> NewPassword {
        NewPassword::parse(p, &PasswordRules::default(), &name()).expect("password")
    }

    fn hybrid() -> (MemoryDirectory, MemoryDirectory, HybridDirectory) {
        let on_premises = MemoryDirectory::with_lockout();
        on_premises.add_user("alice", "alice-old-Passw0rd", &["SSPR-Users"]);
        let cloud = MemoryDirectory::new();
        cloud.add_user("alice", "alice-old-Passw0rd", &[]);
        let hybrid = HybridDirectory::new(Arc::new(on_premises.clone()), Arc::new(cloud.clone()))
            .with_retry_delays(vec![Duration::ZERO, Duration::ZERO]);
        (on_premises, cloud, hybrid)
    }

    #[tokio::test]
    async fn both_directories_take_the_password_the_cloud_after_a_retry() {
        let (on_premises, cloud, hybrid) = hybrid();
        cloud.fail_next(2);
        hybrid.set_password(&name(), &password("Alice-new-Passw0rd-1")).await.expect("third attempt");
        assert_eq!(on_premises.password_of("alice").as_deref(), Some("Alice-new-Passw0rd-1"));
        assert_eq!(cloud.password_of("alice").as_deref(), Some("Alice-new-Passw0rd-1"));
    }

    #[tokio::test]
    async fn a_refusal_on_premises_changes_nothing() {
        let (on_premises, cloud, hybrid) = hybrid();
        on_premises.refuse_next_password(&["history"]);
        let r = hybrid.set_password(&name(), &password("Alice-new-Passw0rd-1")).await;
        assert!(matches!(r, Err(DirectoryError::PasswordRejected(_))), "{r:?}");
        assert_eq!(cloud.password_of("alice").as_deref(), Some("alice-old-Passw0rd"));
    }

    #[tokio::test]
    async fn a_cloud_that_keeps_failing_leaves_the_on_premises_password_and_is_finished_later() {
        let (on_premises, cloud, hybrid) = hybrid();
        cloud.fail_next(3);
        let r = hybrid.set_password(&name(), &password("Alice-new-Passw0rd-1")).await;
        assert!(matches!(r, Err(DirectoryError::PartlyApplied { .. })), "{r:?}");
        assert_eq!(on_premises.password_of("alice").as_deref(), Some("Alice-new-Passw0rd-1"), "stands");
        assert_eq!(cloud.password_of("alice").as_deref(), Some("alice-old-Passw0rd"));

        // Finishing takes only the password the on-premises directory holds.
        let r = hybrid.finish_password(&name(), &password("Another-Passw0rd-2")).await;
        assert!(matches!(r, Err(DirectoryError::PasswordRejected(_))), "{r:?}");
        assert_eq!(cloud.password_of("alice").as_deref(), Some("alice-old-Passw0rd"));
        hybrid.finish_password(&name(), &password("Alice-new-Passw0rd-1")).await.expect("finished");
        assert_eq!(cloud.password_of("alice").as_deref(), Some("Alice-new-Passw0rd-1"));
    }

    #[tokio::test]
    async fn someone_only_on_premises_is_no_failure() {
        let on_premises = MemoryDirectory::with_lockout();
        on_premises.add_user("alice", "alice-old-Passw0rd", &[]);
        let hybrid = HybridDirectory::new(Arc::new(on_premises.clone()), Arc::new(MemoryDirectory::new()));
        hybrid.set_password(&name(), &password("Alice-new-Passw0rd-1")).await.expect("on premises only");
        assert!(hybrid.lockout().is_some(), "the on-premises lockout");
    }
}
