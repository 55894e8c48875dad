//! Voice calls through AWS End User Messaging SMS and Voice v2 `SendVoiceMessage`: the text is
//! read out as plain text (not SSML) by the configured voice, from the configured origination
//! identity (a phone number, its ID or ARN, or a pool).

use async_trait::async_trait;
use aws_sdk_pinpointsmsvoicev2::types::{VoiceId, VoiceMessageBodyTextType};
use aws_sdk_pinpointsmsvoicev2::Client;
use sspr_core::ports::{Unavailable, Voice};
use sspr_core::types::PhoneNumber;

use crate::describe;

#[derive(Clone, Debug)]
pub struct PinpointVoice {
    client: Client,
    origination_identity: String,
    voice_id: VoiceId,
}

impl PinpointVoice {
    /// `voice_id` names the voice (`Joanna`, `MATTHEW`, …; the service spells them in capitals);
    /// a name the SDK does not know yet is sent as it is, and the service decides.
    pub fn new(client: Client, origination_identity: String, voice_id: String) -> Self {
        Self { client, origination_identity, voice_id: VoiceId::from(voice_id.to_uppercase().as_str()) }
    }

    pub fn from_config(config: &aws_config::SdkConfig, origination_identity: String, voice_id: String) -> Self {
        Self::new(Client::new(config), origination_identity, voice_id)
    }
}

#[async_trait]
impl Voice for PinpointVoice {
    async fn call(&self, to: &PhoneNumber, text: &str) -> Result<(), Unavailable> {
        self.client
            .send_voice_message()
            .destination_phone_number(to.as_str())
            .origination_identity(&self.origination_identity)
            .message_body(text)
            .message_body_text_type(VoiceMessageBodyTextType::Text)
            .voice_id(self.voice_id.clone())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| Unavailable::new(format!("voice: {}", describe(e))))
    }
}
