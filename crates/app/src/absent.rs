//! The stand-in for a port a Lambda function was not built with. A function is built with the
//! ports its routes declare (crates/http/src/routes); reaching one of these means a route's
//! declaration is wrong, so it fails loudly as a dependency that is down, never silently.

use async_trait::async_trait;
use sspr_core::password::NewPassword;
use sspr_core::ports::{Directory, DirectoryError, DirectoryUser, EmailMessage, Mailer, Sms, Unavailable, Voice};
use sspr_core::types::{Email, PhoneNumber, Username};

pub(crate) struct NotBuilt(pub &'static str);

impl NotBuilt {
    fn unavailable(&self) -> Unavailable {
        tracing::error!(port = self.0, "a route used a port its function was not built with");
        Unavailable::new(format!("this function has no {}", self.0))
    }
}

#[async_trait]
impl Sms for NotBuilt {
    async fn send_sms(&self, _to: &PhoneNumber, _text: &str) -> Result<(), Unavailable> {
        Err(self.unavailable())
    }
}

#[async_trait]
impl Voice for NotBuilt {
    async fn call(&self, _to: &PhoneNumber, _text: &str) -> Result<(), Unavailable> {
        Err(self.unavailable())
    }
}

/// Voice calls in a deployment that named no number to call from (`SSPR_VOICE_ORIGINATION`).
pub(crate) struct VoiceNotConfigured;

#[async_trait]
impl Voice for VoiceNotConfigured {
    async fn call(&self, _to: &PhoneNumber, _text: &str) -> Result<(), Unavailable> {
        tracing::error!("a voice call was asked for, but SSPR_VOICE_ORIGINATION is not set");
        Err(Unavailable::new("voice calls are not configured"))
    }
}

#[async_trait]
impl Mailer for NotBuilt {
    async fn send_email(&self, _to: &Email, _message: &EmailMessage) -> Result<(), Unavailable> {
        Err(self.unavailable())
    }
}

#[async_trait]
impl Directory for NotBuilt {
    async fn find_user(&self, _username: &Username) -> Result<Option<DirectoryUser>, DirectoryError> {
        Err(self.unavailable().into())
    }

    async fn members_of(&self, _group: &str) -> Result<Vec<DirectoryUser>, DirectoryError> {
        Err(self.unavailable().into())
    }

    async fn set_password(&self, _username: &Username, _password: &NewPassword) -> Result<(), DirectoryError> {
        Err(self.unavailable().into())
    }

    async fn sign_out_everywhere(&self, _username: &Username) -> Result<(), DirectoryError> {
        Err(self.unavailable().into())
    }
}
