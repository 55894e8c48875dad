//! SMS through SNS `Publish` to a phone number, as transactional messages.

use async_trait::async_trait;
use aws_sdk_sns::types::MessageAttributeValue;
use aws_sdk_sns::Client;
use sspr_core::ports::{Sms, Unavailable};
use sspr_core::types::PhoneNumber;

use crate::describe;

#[derive(Clone, Debug)]
pub struct SnsSms {
    client: Client,
}

impl SnsSms {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    pub fn from_config(config: &aws_config::SdkConfig) -> Self {
        Self::new(Client::new(config))
    }
}

#[async_trait]
impl Sms for SnsSms {
    async fn send_sms(&self, to: &PhoneNumber, text: &str) -> Result<(), Unavailable> {
        let transactional = MessageAttributeValue::builder()
            .data_type("String")
            .string_value("Transactional")
            .build()
            .map_err(|e| Unavailable::new(format!("sns: {e}")))?;
        self.client
            .publish()
            .phone_number(to.as_str())
            .message(text)
            .message_attributes("AWS.SNS.SMS.SMSType", transactional)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| Unavailable::new(format!("sns: {}", describe(e))))
    }
}
