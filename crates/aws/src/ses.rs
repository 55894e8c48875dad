//! Email through SES v2 `SendEmail`, with a text and an HTML part.

use async_trait::async_trait;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use aws_sdk_sesv2::Client;
use sspr_core::ports::{EmailMessage, Mailer, Unavailable};
use sspr_core::types::Email;

use crate::describe;

#[derive(Clone, Debug)]
pub struct SesMailer {
    client: Client,
    from: Email,
}

fn content(data: &str) -> Result<Content, Unavailable> {
    Content::builder().data(data).charset("UTF-8").build().map_err(|e| Unavailable::new(format!("ses: {e}")))
}

impl SesMailer {
    pub fn new(client: Client, from: Email) -> Self {
        Self { client, from }
    }

    pub fn from_config(config: &aws_config::SdkConfig, from: Email) -> Self {
        Self::new(Client::new(config), from)
    }
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send_email(&self, to: &Email, message: &EmailMessage) -> Result<(), Unavailable> {
        let body = Body::builder().text(content(&message.text)?).html(content(&message.html)?).build();
        let simple = Message::builder().subject(content(&message.subject)?).body(body).build();
        self.client
            .send_email()
            .from_email_address(self.from.as_str())
            .destination(Destination::builder().to_addresses(to.as_str()).build())
            .content(EmailContent::builder().simple(simple).build())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| Unavailable::new(format!("ses: {}", describe(e))))
    }
}
