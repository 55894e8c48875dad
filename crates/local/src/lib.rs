//! The local server: the whole product on one machine. The same API router as the Lambda
//! functions, plus the hosted pages, local sign-in and the outbox; embedded adapters by
//! default, any AWS adapter when the `SSPR_*` settings ask for it.

pub mod pages;
pub mod signin;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sspr_core::notify::Branding;
use sspr_core::ports::{Clock, Directory, Mailer, RecordStore, Rng, Sms};
use sspr_core::secret::{KeyedHasher, Pepper};
use sspr_core::{Settings, Sspr};
use sspr_embedded::{DirectorySeed, EmbeddedDirectory, Outbox, SqliteStore};
use sspr_http::config::{Config, DirectoryKind, SenderKind, StoreKind};
use sspr_http::{api, ApiError, ApiState, Routes};

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
}

/// The pepper of keyed hashes, kept in `secrets.json` in the data directory (created once,
/// readable only by its owner).
fn local_pepper(data_dir: &Path, rng: &dyn Rng) -> anyhow::Result<Pepper> {
    let path = data_dir.join("secrets.json");
    if !path.exists() {
        let mut bytes = [0u8; 32];
        rng.fill(&mut bytes);
        let json = serde_json::json!({ "pepper": STANDARD.encode(bytes) }).to_string();
        write_private(&path, json.as_bytes()).with_context(|| format!("{}", path.display()))?;
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
    let bytes = json
        .get("pepper")
        .and_then(|p| p.as_str())
        .and_then(|p| STANDARD.decode(p).ok())
        .with_context(|| format!("{}: no base64 \"pepper\"", path.display()))?;
    Pepper::new(bytes).with_context(|| format!("{}", path.display()))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}

/// Builds the server: adapters, the core, the API and the local extras.
pub async fn build(options: LocalOptions) -> anyhow::Result<LocalServer> {
    let LocalOptions { config, data_dir, public_url, clock, rng, echo_outbox } = options;
    std::fs::create_dir_all(&data_dir).with_context(|| format!("--data {}", data_dir.display()))?;
    let pepper = local_pepper(&data_dir, &*rng)?;
    let wants_aws = config.store == StoreKind::DynamoDb
        || config.directory == DirectoryKind::Cognito
        || config.sender == SenderKind::Aws;
    // Only load the AWS configuration (which may probe the network) when an AWS adapter is used.
    let sdk = if wants_aws { sspr_aws::sdk_config().await } else { aws_config_empty() };

    let mut embedded_store = None;
    let store: Arc<dyn RecordStore> = match config.store {
        StoreKind::Embedded => {
            let store = SqliteStore::open(&data_dir.join("sspr.db")).context("embedded store")?;
            embedded_store = Some(store.clone());
            Arc::new(store)
        }
        StoreKind::DynamoDb => config.aws_store(&sdk).context("SSPR_TABLE: is required")?,
    };

    let mut demo_users = Vec::new();
    let directory: Arc<dyn Directory> = match config.directory {
        DirectoryKind::Embedded => {
            let seed = match &config.directory_file {
                Some(file) => {
                    let text = std::fs::read_to_string(file)
                        .with_context(|| format!("SSPR_DIRECTORY_FILE: {}", file.display()))?;
                    DirectorySeed::from_toml(&text)
                        .map_err(|e| anyhow::anyhow!("SSPR_DIRECTORY_FILE: {}: {e}", file.display()))?
                }
                None => {
                    let demo = DirectorySeed::demo();
                    demo_users =
                        demo.users.iter().map(|u| format!("{} (password {})", u.username, u.password)).collect();
                    demo
                }
            };
            Arc::new(
                EmbeddedDirectory::open(&seed, Some(&data_dir.join("directory.json"))).context("embedded directory")?,
            )
        }
        DirectoryKind::Cognito => config.aws_directory(&sdk).context("SSPR_COGNITO_USER_POOL_ID: is required")?,
    };

    let mut outbox = None;
    let (sms, mailer): (Arc<dyn Sms>, Arc<dyn Mailer>) = match config.sender {
        SenderKind::Outbox => {
            let o = Outbox::new(Arc::clone(&clock), echo_outbox);
            outbox = Some(o.clone());
            (Arc::new(o.clone()), Arc::new(o))
        }
        SenderKind::Aws => config.aws_senders(&sdk).context("SSPR_EMAIL_FROM: is required")?,
    };

    let branding = Branding {
        organisation: config.organisation.clone(),
        public_url: config.public_url.clone().unwrap_or(public_url),
    };
    let sspr = Arc::new(Sspr {
        store,
        directory: Arc::clone(&directory),
        sms,
        mailer,
        clock: Arc::clone(&clock),
        rng: Arc::clone(&rng),
        hasher: KeyedHasher::new(pepper),
        settings: Settings::new(branding, config.default_policy()),
    });
    let signin = LocalSignIn::new(&*rng, clock, directory);
    let api_router = api(ApiState { sspr: Arc::clone(&sspr), auth: Arc::new(signin.clone()) }, Routes::All);
    let local = Router::new().route("/v1/local/signin", post(signin::sign_in)).with_state(signin);
    let dev = Router::new().route("/dev/outbox", get(list_outbox)).with_state(outbox.clone());
    let router = pages::router().merge(local).merge(dev).merge(api_router);
    Ok(LocalServer { router, sspr, outbox, embedded_store, demo_users })
}

async fn list_outbox(State(outbox): State<Option<Outbox>>) -> Result<Json<Vec<sspr_embedded::OutboxEntry>>, ApiError> {
    outbox.map(|o| Json(o.entries())).ok_or_else(ApiError::not_found)
}

fn aws_config_empty() -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder().build()
}
