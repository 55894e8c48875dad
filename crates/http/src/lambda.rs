//! Start-up of a Lambda function: configuration, SDK clients and secrets, once, before the
//! runtime loop; then the same router the local server mounts.

use std::sync::Arc;

use axum::Router;
use sspr_core::notify::Branding;
use sspr_core::ports::{SystemClock, SystemRng};
use sspr_core::secret::KeyedHasher;
use sspr_core::{Settings, Sspr};

use crate::config::{Config, Deployment};
use crate::routes::{api, ApiState, Routes};

/// JSON log lines for CloudWatch, level from `RUST_LOG` (default info).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().json().with_env_filter(filter).with_current_span(false).without_time().try_init();
}

/// Builds the function's router from the environment. An error here stops the function's
/// start with one line naming what is wrong.
pub async fn app(routes: Routes) -> Result<Router, String> {
    let config = Config::from_env(Deployment::Lambda).map_err(|e| e.to_string())?;
    let sdk = sspr_aws::sdk_config().await;
    let arn = config.secrets_arn.as_deref().ok_or("SSPR_SECRETS_ARN: is required")?;
    let pepper = sspr_aws::secrets::load_pepper(&sdk, arn).await.map_err(|e| format!("SSPR_SECRETS_ARN: {e}"))?;
    let store = config.aws_store(&sdk).ok_or("SSPR_STORE: must be dynamodb")?;
    let directory = config.aws_directory(&sdk).ok_or("SSPR_DIRECTORY: must be cognito")?;
    let (sms, mailer) = config.aws_senders(&sdk).ok_or("SSPR_SENDER: must be aws")?;
    let branding = Branding {
        organisation: config.organisation.clone(),
        public_url: config.public_url.clone().ok_or("SSPR_PUBLIC_URL: is required")?,
    };
    let sspr = Sspr {
        store,
        directory,
        sms,
        mailer,
        clock: Arc::new(SystemClock),
        rng: Arc::new(SystemRng),
        hasher: KeyedHasher::new(pepper),
        settings: Settings::new(branding, config.default_policy()),
    };
    Ok(api(ApiState { sspr: Arc::new(sspr), auth: Arc::new(config.claims.clone()) }, routes))
}

/// The whole of a function's `main`: build once, then serve invocations.
pub async fn serve(routes: Routes) -> Result<(), lambda_http::Error> {
    init_tracing();
    let app = match app(routes).await {
        Ok(app) => app,
        Err(line) => {
            tracing::error!("{line}");
            return Err(line.into());
        }
    };
    lambda_http::run(app).await
}
