//! The directory on an Amazon Cognito user pool, used with administrator calls. Cognito has no
//! lockout an administrator can clear, so it offers no unlock capability.

use async_trait::async_trait;
use aws_sdk_cognitoidentityprovider::types::{AttributeType, AuthFlowType};
use aws_sdk_cognitoidentityprovider::Client;
use secrecy::{ExposeSecret, SecretString};
use sspr_core::password::NewPassword;
use sspr_core::ports::{Authenticate, Directory, DirectoryError, DirectoryUser, Unavailable};
use sspr_core::types::{Email, Username};

use crate::describe;

#[derive(Clone, Debug)]
pub struct CognitoDirectory {
    client: Client,
    user_pool_id: String,
    /// An app client with ADMIN_USER_PASSWORD_AUTH, needed only for local sign-in.
    client_id: Option<String>,
}

/// The region of a user pool, the first part of its id (`eu-west-1_AbC123`): its API and its
/// tokens' issuer are there.
pub fn pool_region(user_pool_id: &str) -> Option<&str> {
    let (region, rest) = user_pool_id.split_once('_')?;
    let region_like =
        region.contains('-') && region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    (region_like && !rest.is_empty()).then_some(region)
}

fn unavailable(e: impl std::fmt::Display) -> DirectoryError {
    DirectoryError::Unavailable(Unavailable::new(format!("cognito: {e}")))
}

impl CognitoDirectory {
    pub fn new(client: Client, user_pool_id: impl Into<String>, client_id: Option<String>) -> Self {
        Self { client, user_pool_id: user_pool_id.into(), client_id }
    }

    /// A client in the pool's own region (its id's first part), whatever region the functions
    /// run in.
    pub fn from_config(
        config: &aws_config::SdkConfig,
        user_pool_id: impl Into<String>,
        client_id: Option<String>,
    ) -> Self {
        let user_pool_id = user_pool_id.into();
        let mut conf = aws_sdk_cognitoidentityprovider::config::Builder::from(config);
        if let Some(region) = pool_region(&user_pool_id) {
            conf = conf.region(aws_config::Region::new(region.to_owned()));
        }
        Self::new(Client::from_conf(conf.build()), user_pool_id, client_id)
    }

    /// The region the client calls.
    pub fn region(&self) -> Option<String> {
        self.client.config().region().map(ToString::to_string)
    }

    async fn groups(&self, username: &str) -> Result<Vec<String>, DirectoryError> {
        let mut groups = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let out = self
                .client
                .admin_list_groups_for_user()
                .user_pool_id(&self.user_pool_id)
                .username(username)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| unavailable(describe(e)))?;
            groups.extend(out.groups().iter().filter_map(|g| g.group_name().map(str::to_owned)));
            match out.next_token {
                Some(token) if !token.is_empty() => next = Some(token),
                _ => return Ok(groups),
            }
        }
    }
}

/// The `email` attribute, when it is an address.
fn email_of(attributes: &[AttributeType]) -> Option<Email> {
    attributes.iter().find(|a| a.name() == "email").and_then(|a| a.value()).and_then(|v| Email::parse(v).ok())
}

#[async_trait]
impl Directory for CognitoDirectory {
    async fn find_user(&self, username: &Username) -> Result<Option<DirectoryUser>, DirectoryError> {
        // The user and their groups are asked at once, by the name given: a name Cognito does
        // not know costs the same two calls, in the same time, as one it knows (S1 in
        // docs/security.md).
        let get = self.client.admin_get_user().user_pool_id(&self.user_pool_id).username(username.as_str()).send();
        let (got, groups) = tokio::join!(get, self.groups(username.as_str()));
        let out = match got {
            Ok(out) => out,
            Err(e) => {
                return match e.into_service_error() {
                    e if e.is_user_not_found_exception() => Ok(None),
                    e => Err(unavailable(describe(e))),
                }
            }
        };
        let canonical = Username::parse(out.username()).map_err(unavailable)?;
        // Asked by an alias the group listing may not take: then again by the user's own name.
        let groups = match groups {
            Ok(groups) => groups,
            Err(_) if canonical != *username => self.groups(canonical.as_str()).await?,
            Err(e) => return Err(e),
        };
        let email = email_of(out.user_attributes());
        Ok(Some(DirectoryUser { username: canonical, groups, enabled: out.enabled, locked: false, email }))
    }

    async fn members_of(&self, group: &str) -> Result<Vec<DirectoryUser>, DirectoryError> {
        // Cognito groups do not nest: the members are the group's users.
        let mut members = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let out = match self
                .client
                .list_users_in_group()
                .user_pool_id(&self.user_pool_id)
                .group_name(group)
                .set_next_token(next.take())
                .send()
                .await
            {
                Ok(out) => out,
                Err(e) => {
                    return match e.into_service_error() {
                        // A group that does not exist has no members.
                        e if e.is_resource_not_found_exception() => Ok(Vec::new()),
                        e => Err(unavailable(describe(e))),
                    };
                }
            };
            for user in out.users() {
                let Some(username) = user.username().and_then(|u| Username::parse(u).ok()) else { continue };
                if !user.enabled() {
                    continue;
                }
                let groups = self.groups(username.as_str()).await?;
                members.push(DirectoryUser {
                    username,
                    groups,
                    enabled: true,
                    locked: false,
                    email: email_of(user.attributes()),
                });
            }
            match out.next_token {
                Some(token) if !token.is_empty() => next = Some(token),
                _ => return Ok(members),
            }
        }
    }

    async fn set_password(&self, username: &Username, password: &NewPassword) -> Result<(), DirectoryError> {
        let result = self
            .client
            .admin_set_user_password()
            .user_pool_id(&self.user_pool_id)
            .username(username.as_str())
            .password(password.expose())
            .permanent(true)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match e.into_service_error() {
                e if e.is_invalid_password_exception() => {
                    let reason = e
                        .meta()
                        .message()
                        .map(|m| m.trim_start_matches("Password does not conform to policy: ").to_owned())
                        .unwrap_or_else(|| "The directory's password policy refused this password.".to_owned());
                    Err(DirectoryError::PasswordRejected(vec![reason]))
                }
                e if e.is_user_not_found_exception() => Err(DirectoryError::UnknownUser),
                e => Err(unavailable(describe(e))),
            },
        }
    }

    async fn sign_out_everywhere(&self, username: &Username) -> Result<(), DirectoryError> {
        self.client
            .admin_user_global_sign_out()
            .user_pool_id(&self.user_pool_id)
            .username(username.as_str())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| unavailable(describe(e)))
    }
}

#[async_trait]
impl Authenticate for CognitoDirectory {
    async fn authenticate(
        &self,
        username: &Username,
        password: &SecretString,
    ) -> Result<Option<DirectoryUser>, DirectoryError> {
        let client_id =
            self.client_id.as_deref().ok_or_else(|| unavailable("SSPR_COGNITO_CLIENT_ID is needed for sign-in"))?;
        let result = self
            .client
            .admin_initiate_auth()
            .user_pool_id(&self.user_pool_id)
            .client_id(client_id)
            .auth_flow(AuthFlowType::AdminUserPasswordAuth)
            .auth_parameters("USERNAME", username.as_str())
            .auth_parameters("PASSWORD", password.expose_secret())
            .send()
            .await;
        match result {
            Ok(out) if out.authentication_result().is_some() => self.find_user(username).await,
            // A challenge (new password required, MFA) is not a completed sign-in.
            Ok(_) => Ok(None),
            Err(e) => match e.into_service_error() {
                e if e.is_not_authorized_exception() || e.is_user_not_found_exception() => Ok(None),
                e => Err(unavailable(describe(e))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_is_called_in_the_region_its_id_names() {
        assert_eq!(pool_region("eu-west-1_AbC123"), Some("eu-west-1"));
        assert_eq!(pool_region("us-gov-west-1_x"), Some("us-gov-west-1"));
        assert_eq!(pool_region("AbC123"), None);
        assert_eq!(pool_region("eu-west-1_"), None);
        let config = aws_config::SdkConfig::builder()
            .region(aws_config::Region::new("us-east-1"))
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let directory = CognitoDirectory::from_config(&config, "eu-west-1_AbC123", None);
        assert_eq!(directory.region().as_deref(), Some("eu-west-1"), "the pool's region, not the functions'");
    }
}
