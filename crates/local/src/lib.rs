//! The local server: the whole product on one machine. The same API router as the Lambda
//! functions, plus the hosted pages, local sign-in and the outbox; embedded adapters by
//! default, any AWS adapter when the `SSPR_*` settings ask for it.

pub mod oidc;
pub mod pages;
pub mod signin;

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use sspr_app::{assemble, Assembly, Config};
use sspr_core::ports::{Clock, RecordStore, Rng};
use sspr_core::Sspr;
use sspr_embedded::{Outbox, SqliteStore};
use sspr_http::{api, ApiError, ApiState, Needs, Slice};

pub use oidc::{OidcSettings, OidcSignIn};
pub use signin::LocalSignIn;

/// What the local server is built from.
pub struct LocalOptions {
    pub config: Config,
    /// Where the embedded store, directory and secrets live.
    pub data_dir: PathBuf,
    /// The base URL of the pages, used in links of messages when `SSPR_PUBLIC_URL` is unset.
    pub public_url: String,
    pub clock: Arc<dyn Clock>,
    pub rng: Arc<dyn Rng>,
    /// Print outbox messages to standard output.
    pub echo_outbox: bool,
    /// A store to use instead of the configured one (tests count its calls).
    pub store: Option<Arc<dyn RecordStore>>,
    /// An AWS configuration instead of the environment's (tests reach a service through a
    /// proxy that fails on demand).
    pub aws: Option<sspr_app::AwsConfig>,
    /// The organisation's OpenID Connect issuer, whose tokens sign people in instead of the
    /// local sign-in (`SSPR_OIDC_*`).
    pub oidc: Option<OidcSettings>,
}

pub struct LocalServer {
    pub router: Router,
    pub sspr: Arc<Sspr>,
    /// Present when messages go to the outbox rather than to SNS and SES.
    pub outbox: Option<Outbox>,
    /// Present when the store is the embedded one.
    pub embedded_store: Option<SqliteStore>,
    /// Demo accounts created at this start, to show the person starting the server.
    pub demo_users: Vec<String>,
    /// Whether `/dev/outbox` is served: only with the outbox and the embedded directory.
    pub outbox_served: bool,
}

/// Why `/dev/outbox` is not served while messages go to the outbox: a real directory's people
/// would have their codes handed to whoever asks.
pub const OUTBOX_CLOSED: &str = "the directory is not the embedded one, so /dev/outbox is not served \
     (it would hand real people's codes to whoever asks); the messages are in outbox.jsonl in the data folder";

/// Builds the server: the product as every binary assembles it, the whole API, and the local
/// extras (pages, sign-in, outbox).
pub async fn build(options: LocalOptions) -> anyhow::Result<LocalServer> {
    let LocalOptions { config, data_dir, public_url, clock, rng, echo_outbox, store, aws, oidc } = options;
    let claims = config.claims.clone();
    let embedded_directory = config.directory == sspr_app::DirectoryKind::Embedded;
    let assembled = assemble(Assembly {
        config,
        needs: Needs::ALL,
        clock: Arc::clone(&clock),
        rng: Arc::clone(&rng),
        data_dir: Some(data_dir),
        public_url: Some(public_url),
        echo_outbox,
        store,
        aws,
    })
    .await?;
    let authenticate = assembled.authenticate.ok_or_else(|| anyhow::anyhow!("the directory cannot check passwords"))?;
    let sspr = assembled.sspr;
    // Signed in by the issuer's tokens where one is configured, else by the local sign-in.
    let mut elsewhere = None;
    let (auth, local, page_config): (Arc<dyn sspr_http::Authenticator>, Router, serde_json::Value) = match oidc {
        Some(settings) => {
            let page_config = settings.page_config();
            let signin = OidcSignIn::new(settings, claims);
            elsewhere = Some(signin.page_origins().await.join(" "));
            (Arc::new(signin), Router::new(), page_config)
        }
        None => {
            let signin = LocalSignIn::new(&*rng, clock, authenticate);
            // The API's body limit holds here too.
            let local = Router::new()
                .route("/v1/local/signin", post(signin::sign_in))
                .layer(axum::extract::DefaultBodyLimit::max(sspr_http::extract::MAX_BODY_BYTES))
                .with_state(signin.clone());
            (Arc::new(signin), local, oidc::LOCAL_PAGE_CONFIG.clone())
        }
    };
    let api_router = api(ApiState { sspr: Arc::clone(&sspr), auth, deliveries: Default::default() }, Slice::All);
    let local = local.route("/config.json", get(move || async move { Json(page_config) }));
    let outbox = assembled.outbox;
    // The outbox is open to the browser only over the demo directory.
    let outbox_served = outbox.is_some() && embedded_directory;
    let served = outbox.clone().filter(|_| outbox_served);
    let dev = Router::new().route("/dev/outbox", get(list_outbox)).with_state(served);
    let router = pages::router(elsewhere.as_deref()).merge(local).merge(dev).merge(api_router);
    Ok(LocalServer {
        router,
        sspr,
        outbox,
        embedded_store: assembled.embedded_store,
        demo_users: assembled.demo_users,
        outbox_served,
    })
}

async fn list_outbox(State(outbox): State<Option<Outbox>>) -> Result<Json<Vec<sspr_embedded::OutboxEntry>>, ApiError> {
    outbox.map(|o| Json(o.entries())).ok_or_else(ApiError::not_found)
}
