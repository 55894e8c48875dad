//! AWS adapters of sspr: the single DynamoDB table, SMS through SNS, email through SES v2,
//! the Cognito user pool as directory, and the pepper from Secrets Manager. Endpoints follow
//! the SDK's own configuration (`AWS_REGION`, `AWS_ENDPOINT_URL`).

pub mod cognito;
pub mod dynamodb;
pub mod secrets;
pub mod ses;
pub mod sns;

pub use cognito::CognitoDirectory;
pub use dynamodb::DynamoDbStore;
pub use ses::SesMailer;
pub use sns::SnsSms;

/// The shared SDK configuration, loaded once at start.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// An SDK error with its whole chain of causes, for logs.
pub(crate) fn describe<E: std::error::Error>(e: E) -> String {
    aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string()
}
