//! AWS adapters of sspr: the single DynamoDB table, SMS through SNS, email through SES v2,
//! voice calls through End User Messaging SMS and Voice v2, the Cognito user pool as directory,
//! and the pepper from Secrets Manager. Each sits behind a feature of its own, so a Lambda
//! function links only the SDKs of the ports its routes use.
//! Endpoints follow the SDK's own configuration (`AWS_REGION`, `AWS_ENDPOINT_URL`).

#[cfg(feature = "cognito")]
pub mod cognito;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
#[cfg(feature = "secrets")]
pub mod secrets;
#[cfg(feature = "ses")]
pub mod ses;
#[cfg(feature = "sns")]
pub mod sns;
#[cfg(feature = "voice")]
pub mod voice;

#[cfg(feature = "cognito")]
pub use cognito::CognitoDirectory;
#[cfg(feature = "dynamodb")]
pub use dynamodb::DynamoDbStore;
#[cfg(feature = "ses")]
pub use ses::SesMailer;
#[cfg(feature = "sns")]
pub use sns::SnsSms;
#[cfg(feature = "voice")]
pub use voice::PinpointVoice;

/// The HTTPS client of every AWS call: rustls with ring, which keeps the functions' binaries
/// smaller than the SDKs' default (rustls with aws-lc).
pub fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https()
}

/// The shared SDK configuration, loaded once at start.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(https_client()).load().await
}

/// An SDK error with its whole chain of causes, for logs.
#[allow(dead_code)] // used by whichever adapters are built
pub(crate) fn describe<E: std::error::Error>(e: E) -> String {
    aws_smithy_types::error::display::DisplayErrorContext(e).to_string()
}
