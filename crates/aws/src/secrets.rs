//! Secrets from AWS Secrets Manager: a JSON secret whose `pepper` key holds the hashing pepper.

use aws_sdk_secretsmanager::Client;
use sspr_core::ports::Unavailable;
use sspr_core::secret::Pepper;

use crate::describe;

/// Reads the pepper from the secret `arn`; a missing, malformed or short value is an error.
pub async fn load_pepper(config: &aws_config::SdkConfig, arn: &str) -> Result<Pepper, Unavailable> {
    let pepper = load_field(config, arn, "pepper").await?;
    Pepper::new(pepper.into_bytes()).map_err(Unavailable::new)
}

/// One string field of the JSON secret `arn` (the pepper, the LDAP service account's password).
pub async fn load_field(config: &aws_config::SdkConfig, arn: &str, field: &str) -> Result<String, Unavailable> {
    load_fields(config, arn, &[field])
        .await?
        .pop()
        .flatten()
        .ok_or_else(|| Unavailable::new(format!("the secret has no \"{field}\" string")))
}

/// String fields of the JSON secret `arn`, in the order of `fields`, `None` where absent; one
/// read of the secret.
pub async fn load_fields(
    config: &aws_config::SdkConfig,
    arn: &str,
    fields: &[&str],
) -> Result<Vec<Option<String>>, Unavailable> {
    let out = Client::new(config)
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| Unavailable::new(format!("secrets manager: {}", describe(e))))?;
    let text = out.secret_string().ok_or_else(|| Unavailable::new("the secret has no string value"))?;
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|_| Unavailable::new("the secret is not a JSON object"))?;
    if !json.is_object() {
        return Err(Unavailable::new("the secret is not a JSON object"));
    }
    Ok(fields.iter().map(|f| json.get(*f).and_then(|v| v.as_str()).map(str::to_owned)).collect())
}
