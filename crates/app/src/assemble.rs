//! The one place the product is put together: which adapter stands behind each port, decided
//! from the configuration, for a Lambda function, the local server and the tests alike
//! (docs/architecture.md, "Assembly").

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, Context as _};
use sspr_core::notify::Branding;
use sspr_core::ports::{Authenticate, Clock, Directory, Mailer, RecordStore, Rng, Sms, Voice};
use sspr_core::{Ports, Settings, Sspr};
use sspr_http::Needs;

use crate::absent::{NotBuilt, VoiceNotConfigured};
use crate::config::{Config, DirectoryKind, SenderKind, StoreKind};

/// What the product is built from.
pub struct Assembly {
    pub config: Config,
    /// The ports besides the store to build: a Lambda function builds those its routes use,
    /// the local server all of them.
    pub needs: Needs,
    pub clock: Arc<dyn Clock>,
    pub rng: Arc<dyn Rng>,
    /// The local server's data directory: the embedded store and directory, and the secrets
    /// file when the pepper does not come from Secrets Manager.
    pub data_dir: Option<PathBuf>,
    /// The pages' base URL for links in messages when `SSPR_PUBLIC_URL` is unset (local only).
    pub public_url: Option<String>,
    /// Print what the outbox receives to standard output.
    pub echo_outbox: bool,
    /// A store to use instead of the configured one: tests wrap the real one to count its calls.
    pub store: Option<Arc<dyn RecordStore>>,
    /// An AWS configuration to use instead of the environment's: tests reach a service through
    /// a loopback proxy that fails on demand.
    pub aws: Option<aws_config::SdkConfig>,
}

impl Assembly {
    /// Everything built, with the system clock and randomness.
    pub fn new(config: Config, needs: Needs) -> Self {
        Self {
            config,
            needs,
            clock: Arc::new(sspr_core::ports::SystemClock),
            rng: Arc::new(sspr_core::ports::SystemRng),
            data_dir: None,
            public_url: None,
            echo_outbox: false,
            store: None,
            aws: None,
        }
    }
}

/// The product, and what the local server shows besides it.
pub struct Assembled {
    pub sspr: Arc<Sspr>,
    /// The directory's password check, for the local sign-in.
    pub authenticate: Option<Arc<dyn Authenticate>>,
    /// Present when messages go to the outbox rather than to SNS and SES.
    #[cfg(feature = "embedded")]
    pub outbox: Option<sspr_embedded::Outbox>,
    /// Present when the store is the embedded one.
    #[cfg(feature = "embedded")]
    pub embedded_store: Option<sspr_embedded::SqliteStore>,
    /// Demo accounts created at this start, to show the person starting the server.
    pub demo_users: Vec<String>,
}

fn not_built(var: &str, what: &str) -> anyhow::Error {
    anyhow!("{var}: {what} is not built into this program")
}

/// Builds the product. An error names the setting that stopped it, in one line.
pub async fn assemble(assembly: Assembly) -> anyhow::Result<Assembled> {
    let Assembly { config, needs, clock, rng, data_dir, public_url, echo_outbox, store, aws } = assembly;
    if let Some(dir) = &data_dir {
        // Created readable by its owner only (the store, the directory and the secrets are in it).
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).with_context(|| format!("--data {}", dir.display()))?;
    }
    let wants_aws = (store.is_none() && config.store == StoreKind::DynamoDb)
        || (needs.directory && config.directory.uses_cognito())
        || ((needs.sms || needs.voice || needs.email) && config.sender == SenderKind::Aws)
        || config.secrets_arn.is_some();
    // The AWS configuration may probe the network: only load it when an AWS adapter is used.
    let sdk = match (wants_aws, aws) {
        (false, _) => None,
        (true, Some(given)) => Some(given),
        (true, None) => Some(sspr_aws::sdk_config().await),
    };
    let sdk = || sdk.as_ref().ok_or_else(|| anyhow!("the AWS configuration was not loaded"));
    #[cfg(feature = "embedded")]
    let mut embedded_store = None;
    #[cfg(feature = "embedded")]
    let mut outbox = None;
    #[allow(unused_mut)] // only the embedded directory has demo users
    let mut demo_users = Vec::new();

    let pepper = match &config.secrets_arn {
        #[cfg(feature = "secrets")]
        Some(arn) => sspr_aws::secrets::load_pepper(sdk()?, arn).await.map_err(|e| anyhow!("SSPR_SECRETS_ARN: {e}"))?,
        #[cfg(not(feature = "secrets"))]
        Some(_) => return Err(not_built("SSPR_SECRETS_ARN", "Secrets Manager")),
        None => {
            let dir = data_dir.as_deref().context("SSPR_SECRETS_ARN: is required")?;
            crate::secrets::local_pepper(dir, &*rng)?
        }
    };

    let store: Arc<dyn RecordStore> = match (store, config.store) {
        (Some(store), _) => store,
        #[cfg(feature = "embedded")]
        (None, StoreKind::Embedded) => {
            let dir = data_dir.as_deref().context("--data: the embedded store needs a data directory")?;
            let sqlite = sspr_embedded::SqliteStore::open(&dir.join("sspr.db")).context("embedded store")?;
            embedded_store = Some(sqlite.clone());
            Arc::new(sqlite)
        }
        #[cfg(feature = "dynamodb")]
        (None, StoreKind::DynamoDb) => {
            let table = config.table.as_deref().context("SSPR_TABLE: is required")?;
            Arc::new(sspr_aws::DynamoDbStore::from_config(sdk()?, table))
        }
        #[allow(unreachable_patterns)]
        (None, kind) => return Err(not_built("SSPR_STORE", &format!("{kind:?}"))),
    };

    #[allow(unused_mut)] // set by the directories this program is built with
    let mut authenticate: Option<Arc<dyn Authenticate>> = None;
    let directory: Arc<dyn Directory> = match config.directory {
        _ if !needs.directory => Arc::new(NotBuilt("directory")),
        #[cfg(feature = "embedded")]
        DirectoryKind::Embedded => {
            let dir = data_dir.as_deref().context("--data: the embedded directory needs a data directory")?;
            let seed = match &config.directory_file {
                Some(file) => {
                    let text = std::fs::read_to_string(file)
                        .with_context(|| format!("SSPR_DIRECTORY_FILE: {}", file.display()))?;
                    sspr_embedded::DirectorySeed::from_toml(&text)
                        .map_err(|e| anyhow!("SSPR_DIRECTORY_FILE: {}: {e}", file.display()))?
                }
                None => {
                    let demo = sspr_embedded::DirectorySeed::demo();
                    demo_users =
                        demo.users.iter().map(|u| format!("{} (password {})", u.username, u.password)).collect();
                    demo
                }
            };
            let embedded = Arc::new(
                sspr_embedded::EmbeddedDirectory::open(&seed, Some(&dir.join("directory.json")))
                    .context("embedded directory")?,
            );
            authenticate = Some(embedded.clone());
            embedded
        }
        #[cfg(feature = "cognito")]
        DirectoryKind::Cognito => {
            let pool = config.cognito_user_pool_id.as_deref().context("SSPR_COGNITO_USER_POOL_ID: is required")?;
            let cognito =
                Arc::new(sspr_aws::CognitoDirectory::from_config(sdk()?, pool, config.cognito_client_id.clone()));
            authenticate = Some(cognito.clone());
            cognito
        }
        #[cfg(feature = "ldap")]
        DirectoryKind::Ldap => {
            let ldap = ldap_directory(&config, data_dir.as_deref(), sdk().ok()).await?;
            authenticate = Some(ldap.clone());
            ldap
        }
        // On premises first, then the Cognito user pool (docs/architecture.md, "Hybrid
        // directories"); people sign in against the on-premises directory.
        #[cfg(all(feature = "ldap", feature = "cognito"))]
        DirectoryKind::Hybrid => {
            let ldap = ldap_directory(&config, data_dir.as_deref(), sdk().ok()).await?;
            let pool = config.cognito_user_pool_id.as_deref().context("SSPR_COGNITO_USER_POOL_ID: is required")?;
            let cognito =
                Arc::new(sspr_aws::CognitoDirectory::from_config(sdk()?, pool, config.cognito_client_id.clone()));
            authenticate = Some(ldap.clone());
            Arc::new(sspr_core::hybrid::HybridDirectory::new(ldap, cognito))
        }
        #[allow(unreachable_patterns)]
        kind => return Err(not_built("SSPR_DIRECTORY", &format!("{kind:?}"))),
    };

    let (sms, voice, mailer): (Arc<dyn Sms>, Arc<dyn Voice>, Arc<dyn Mailer>) = match config.sender {
        _ if !needs.sms && !needs.voice && !needs.email => {
            (Arc::new(NotBuilt("SMS sender")), Arc::new(NotBuilt("voice caller")), Arc::new(NotBuilt("email sender")))
        }
        #[cfg(feature = "embedded")]
        SenderKind::Outbox => {
            let o = match data_dir.as_deref() {
                Some(dir) => sspr_embedded::Outbox::open(&dir.join("outbox.jsonl"), Arc::clone(&clock), echo_outbox)
                    .context("the outbox")?,
                None => sspr_embedded::Outbox::new(Arc::clone(&clock), echo_outbox),
            };
            outbox = Some(o.clone());
            (Arc::new(o.clone()), Arc::new(o.clone()), Arc::new(o))
        }
        SenderKind::Aws => (aws_sms(needs, sdk)?, aws_voice(&config, needs, sdk)?, aws_mailer(&config, needs, sdk)?),
        #[allow(unreachable_patterns)]
        kind => return Err(not_built("SSPR_SENDER", &format!("{kind:?}"))),
    };
    let _ = echo_outbox;

    let branding = Branding {
        organisation: config.organisation.clone(),
        public_url: config.public_url.clone().or(public_url).context("SSPR_PUBLIC_URL: is required")?,
    };
    let ports = Ports { store, directory, sms, voice, mailer, clock, rng };
    let mut settings = Settings::new(branding, config.default_policy());
    settings.admin_groups = config.admin_groups.clone();
    settings.questions_custom_allowed = config.questions_custom_allowed;
    settings.audit_days = config.audit_days;
    settings.recent_signin_secs = config.recent_signin_secs;
    settings.limits = config.limits.clone();
    settings.start_floor_ms = config.start_floor_ms;
    settings.step_floor_ms = config.step_floor_ms;
    settings.authenticator_required = config.authenticator_required;
    let sspr = Sspr::new(ports, pepper, settings);
    Ok(Assembled {
        sspr: Arc::new(sspr),
        authenticate,
        #[cfg(feature = "embedded")]
        outbox,
        #[cfg(feature = "embedded")]
        embedded_store,
        demo_users,
    })
}

#[allow(unused_variables)]
fn aws_sms<'a>(
    needs: Needs,
    sdk: impl Fn() -> anyhow::Result<&'a aws_config::SdkConfig>,
) -> anyhow::Result<Arc<dyn Sms>> {
    if !needs.sms {
        return Ok(Arc::new(NotBuilt("SMS sender")));
    }
    #[cfg(feature = "sns")]
    return Ok(Arc::new(sspr_aws::SnsSms::from_config(sdk()?)));
    #[cfg(not(feature = "sns"))]
    Err(not_built("SSPR_SENDER", "SNS"))
}

#[allow(unused_variables)]
fn aws_voice<'a>(
    config: &Config,
    needs: Needs,
    sdk: impl Fn() -> anyhow::Result<&'a aws_config::SdkConfig>,
) -> anyhow::Result<Arc<dyn Voice>> {
    if !needs.voice {
        return Ok(Arc::new(NotBuilt("voice caller")));
    }
    let Some(origination) = config.voice_origination.clone() else {
        return Ok(Arc::new(VoiceNotConfigured));
    };
    #[cfg(feature = "voice")]
    return Ok(Arc::new(sspr_aws::PinpointVoice::from_config(sdk()?, origination, config.voice_id.clone())));
    #[cfg(not(feature = "voice"))]
    Err(not_built("SSPR_SENDER", "End User Messaging voice"))
}

#[allow(unused_variables)]
fn aws_mailer<'a>(
    config: &Config,
    needs: Needs,
    sdk: impl Fn() -> anyhow::Result<&'a aws_config::SdkConfig>,
) -> anyhow::Result<Arc<dyn Mailer>> {
    if !needs.email {
        return Ok(Arc::new(NotBuilt("email sender")));
    }
    let from = config.email_from.clone().context("SSPR_EMAIL_FROM: is required")?;
    #[cfg(feature = "ses")]
    return Ok(Arc::new(sspr_aws::SesMailer::from_config(sdk()?, from)));
    #[cfg(not(feature = "ses"))]
    Err(not_built("SSPR_SENDER", "SES"))
}

/// The LDAP directory of `SSPR_LDAP_*`, with the service account's password from the secret
/// store: the Secrets Manager secret's `ldap_bind_password`, or locally that field of
/// `DIR/secrets.json`. A setting that cannot work stops start-up, named.
#[cfg(feature = "ldap")]
async fn ldap_directory(
    config: &Config,
    data_dir: Option<&std::path::Path>,
    #[allow(unused_variables)] sdk: Option<&aws_config::SdkConfig>,
) -> anyhow::Result<Arc<sspr_ldap::LdapDirectory>> {
    let ldap = config.ldap.as_ref().context("SSPR_LDAP_URL: is required with an LDAP directory")?;
    const FIELD: &str = "ldap_bind_password";
    // Deployed, the secret may also hold the CA certificate to trust (`ldap_ca_pem`), where no
    // file is shipped beside the function.
    #[allow(unused_mut)]
    let mut secret_ca: Option<String> = None;
    let password = match (&config.secrets_arn, data_dir) {
        #[cfg(feature = "secrets")]
        (Some(arn), _) => {
            let sdk = sdk.context("the AWS configuration was not loaded")?;
            let mut fields = sspr_aws::secrets::load_fields(sdk, arn, &[FIELD, "ldap_ca_pem"])
                .await
                .map_err(|e| anyhow!("SSPR_SECRETS_ARN: {e}"))?;
            secret_ca = fields.pop().flatten();
            fields.pop().flatten().with_context(|| format!("SSPR_SECRETS_ARN: the secret has no \"{FIELD}\" string"))?
        }
        (_, Some(dir)) => crate::secrets::local_secret(dir, FIELD)?.with_context(|| {
            format!("{}: no \"{FIELD}\" for the LDAP service account", dir.join("secrets.json").display())
        })?,
        #[allow(unreachable_patterns)]
        _ => anyhow::bail!("SSPR_SECRETS_ARN: the LDAP service account's password is kept there ({FIELD})"),
    };
    let flavour = sspr_ldap::Flavour::parse(&ldap.flavour).context("SSPR_LDAP_FLAVOUR: is one of ad, openldap")?;
    let ca_pem = match &ldap.ca_file {
        Some(file) => Some(std::fs::read(file).with_context(|| format!("SSPR_LDAP_CA_FILE: {}", file.display()))?),
        None => secret_ca.map(String::into_bytes),
    };
    let settings = sspr_ldap::LdapSettings {
        url: ldap.url.clone(),
        starttls: ldap.starttls,
        flavour,
        bind_dn: ldap.bind_dn.clone(),
        bind_password: secrecy::SecretString::from(password),
        base_dn: ldap.base_dn.clone(),
        user_attribute: ldap.user_attribute.clone().unwrap_or_else(|| flavour.default_user_attribute().to_owned()),
        ca_pem,
        timeout: std::time::Duration::from_secs(ldap.timeout_secs),
    };
    Ok(Arc::new(sspr_ldap::LdapDirectory::new(settings).map_err(|e| anyhow!("{e}"))?))
}
