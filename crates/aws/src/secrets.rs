//! Secrets from AWS Secrets Manager: a JSON secret whose `pepper` key holds the hashing pepper.

use aws_sdk_secretsmanager::Client;
use sspr_core::ports::Unavailable;
use sspr_core::secret::Pepper;

use crate::describe;

/// Reads the pepper from the secret `arn`; a missing, malformed or short value is an error.
pub async fn load_pepper(config: &aws_config::SdkConfig, arn: &str) -> Result<Pepper, Unavailable> {
    let out = Client::new(config)
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| Unavailable::new(format!("secrets manager: {}", describe(e))))?;
    let text = out.secret_string().ok_or_else(|| Unavailable::new("the secret has no string value"))?;
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|_| Unavailable::new("the secret is not a JSON object"))?;
    let pepper = json
        .get("pepper")
        .and_then(|p| p.as_str())
        .ok_or_else(|| Unavailable::new("the secret has no \"pepper\" string"))?;
    Pepper::new(pepper.as_bytes().to_vec()).map_err(Unavailable::new)
}
