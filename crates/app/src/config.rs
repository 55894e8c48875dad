//! Configuration: `SSPR_*` environment variables, parsed once into a typed struct. A missing or
//! invalid setting is reported as one line naming the variable.

use std::path::PathBuf;

use sspr_core::policy::Policy;
use sspr_core::types::{Email, MethodKind};
use sspr_http::JwtClaims;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

impl ConfigError {
    fn new(var: &'static str, reason: impl Into<String>) -> Self {
        Self { var, reason: reason.into() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Embedded,
    DynamoDb,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectoryKind {
    Embedded,
    Cognito,
    /// Active Directory or OpenLDAP (`SSPR_LDAP_*`).
    Ldap,
    /// The LDAP directory first, then the Cognito user pool takes the same password.
    Hybrid,
}

impl DirectoryKind {
    /// Its name as `SSPR_DIRECTORY` gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            DirectoryKind::Embedded => "embedded",
            DirectoryKind::Cognito => "cognito",
            DirectoryKind::Ldap => "ldap",
            DirectoryKind::Hybrid => "hybrid",
        }
    }

    /// The kinds that reach an LDAP directory.
    pub fn uses_ldap(self) -> bool {
        matches!(self, DirectoryKind::Ldap | DirectoryKind::Hybrid)
    }

    /// The kinds that reach a Cognito user pool.
    pub fn uses_cognito(self) -> bool {
        matches!(self, DirectoryKind::Cognito | DirectoryKind::Hybrid)
    }
}

/// Where and how to reach an LDAP directory; the service account's password comes from the
/// secret store (`ldap_bind_password`), never from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapConfig {
    pub url: String,
    pub starttls: bool,
    /// `ad` or `openldap`.
    pub flavour: String,
    pub bind_dn: String,
    pub base_dn: String,
    /// The attribute a sign-in name is; the flavour's own by default.
    pub user_attribute: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SenderKind {
    Outbox,
    Aws,
}

/// Where the process runs decides the defaults and what may be chosen at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deployment {
    /// A Lambda function: AWS adapters only; nothing embedded or dev-only.
    Lambda,
    /// The local server: embedded adapters by default, any AWS adapter on request.
    Local,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub store: StoreKind,
    pub table: Option<String>,
    pub directory: DirectoryKind,
    pub directory_file: Option<PathBuf>,
    pub cognito_user_pool_id: Option<String>,
    pub cognito_client_id: Option<String>,
    pub ldap: Option<LdapConfig>,
    pub sender: SenderKind,
    pub email_from: Option<Email>,
    pub public_url: Option<String>,
    pub secrets_arn: Option<String>,
    pub organisation: String,
    pub claims: JwtClaims,
    pub target_group: Option<String>,
    /// The methods the default policy enables, when not the policy's own default.
    pub methods: Option<Vec<MethodKind>>,
    /// Where voice calls come from (End User Messaging SMS and Voice); none: no voice calls.
    pub voice_origination: Option<String>,
    /// The voice that reads codes out.
    pub voice_id: String,
    /// The directory groups whose members are administrators (`SSPR_ADMIN_GROUPS`).
    pub admin_groups: Vec<String>,
    /// Whether people may write security questions of their own (`SSPR_QUESTIONS_CUSTOM`).
    pub questions_custom_allowed: bool,
    /// Days the audit log keeps an event (`SSPR_AUDIT_DAYS`, 1–365).
    pub audit_days: i64,
    /// How recent a sign-in must be to change methods (`SSPR_RECENT_SIGNIN_SECS`, 10–86400;
    /// 900).
    pub recent_signin_secs: i64,
    /// Whether a registered authenticator app must be one of the methods of a reset
    /// (`SSPR_AUTHENTICATOR_REQUIRED`).
    pub authenticator_required: bool,
    /// The countries texts and calls may go to until an administrator sets the policy's
    /// (`SSPR_SMS_COUNTRIES`, comma-separated ISO 3166 alpha-2 codes; default `US`).
    pub sms_countries: Vec<String>,
    /// How often anyone may ask: `Limits::default`, each changed by its `SSPR_LIMIT_*`
    /// variable (`N/SECONDS`; two, comma-separated, for the per-address and per-phone ones),
    /// and the day's texts and calls by `SSPR_SMS_DAILY_BUDGET`.
    pub limits: sspr_core::limits::Limits,
    /// The least time `start` takes to answer (`SSPR_START_FLOOR_MS`): 250 ms with a directory
    /// reached over the network, 0 with the embedded one.
    pub start_floor_ms: u64,
    /// The least time `send-code`, the questions step and `verify` take to answer
    /// (`SSPR_STEP_FLOOR_MS`): 200 ms with a store reached over the network, 0 with the
    /// embedded one.
    pub step_floor_ms: u64,
}

/// `N/SECONDS`: at most N in any SECONDS.
/// `var` as a whole number within `range` (`what` says of what, for the error), or `default`
/// when it is not set.
fn number_within(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: i64,
    range: std::ops::RangeInclusive<i64>,
    what: &str,
) -> Result<i64, ConfigError> {
    match get(var) {
        None => Ok(default),
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| ConfigError::new(var, format!("is {what} within {}–{}", range.start(), range.end()))),
    }
}

fn rate(var: &'static str, text: &str) -> Result<sspr_core::limits::Rate, ConfigError> {
    let parsed = text.split_once('/').and_then(|(n, secs)| Some((n.trim().parse().ok()?, secs.trim().parse().ok()?)));
    match parsed {
        Some((limit, secs)) if secs > 0 => Ok(sspr_core::limits::Rate::new(limit, secs)),
        _ => Err(ConfigError::new(var, "is a limit as N/SECONDS, as 5/3600")),
    }
}

/// The limits, each default changed by its variable where set.
fn limits_from(get: &impl Fn(&str) -> Option<String>) -> Result<sspr_core::limits::Limits, ConfigError> {
    let mut limits = sspr_core::limits::Limits::default();
    let one = |var: &'static str, into: &mut sspr_core::limits::Rate| -> Result<(), ConfigError> {
        if let Some(text) = get(var) {
            *into = rate(var, &text)?;
        }
        Ok(())
    };
    one("SSPR_LIMIT_SENDS", &mut limits.sends)?;
    one("SSPR_LIMIT_EMAIL_SENDS", &mut limits.email_sends)?;
    one("SSPR_LIMIT_ATTEMPTS", &mut limits.attempts)?;
    one("SSPR_LIMIT_FAILED_PROOFS", &mut limits.failed_proofs)?;
    one("SSPR_LIMIT_REGISTRATION_CODES", &mut limits.registration_codes)?;
    one("SSPR_LIMIT_REGISTRATION_DESTINATION", &mut limits.registration_destination)?;
    let two = |var: &'static str, into: &mut [sspr_core::limits::Rate; 2]| -> Result<(), ConfigError> {
        if let Some(text) = get(var) {
            let rates: Vec<_> = text.split(',').map(|r| rate(var, r)).collect::<Result<_, _>>()?;
            *into = rates.try_into().map_err(|_| ConfigError::new(var, "is two limits, as 20/60,200/3600"))?;
        }
        Ok(())
    };
    two("SSPR_LIMIT_ADDRESS", &mut limits.per_address)?;
    two("SSPR_LIMIT_PHONE", &mut limits.per_phone)?;
    if let Some(secs) = get("SSPR_LIMIT_BLOCK_SECS") {
        limits.block_secs = secs
            .parse()
            .ok()
            .filter(|s: &i64| *s >= 0)
            .ok_or_else(|| ConfigError::new("SSPR_LIMIT_BLOCK_SECS", "is a number of seconds"))?;
    }
    if let Some(n) = get("SSPR_SMS_DAILY_BUDGET") {
        limits.sms_per_day = n
            .parse()
            .map_err(|_| ConfigError::new("SSPR_SMS_DAILY_BUDGET", "is a whole number of texts and calls a day"))?;
    }
    Ok(limits)
}

/// The methods the local demo enables: everything this release can prove, so each can be tried.
const LOCAL_METHODS: [MethodKind; 5] =
    [MethodKind::Email, MethodKind::Sms, MethodKind::Voice, MethodKind::Totp, MethodKind::Questions];

impl Config {
    pub fn from_env(deployment: Deployment) -> Result<Self, ConfigError> {
        Self::from_lookup(deployment, |name| std::env::var(name).ok())
    }

    /// Parses the settings that `lookup` gives (empty values count as unset).
    pub fn from_lookup(deployment: Deployment, lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let local = deployment == Deployment::Local;
        let lambda_only = |var: &'static str, value: &str| {
            ConfigError::new(var, format!("'{value}' is available only in the local server"))
        };

        let store = match get("SSPR_STORE").as_deref() {
            None if local => StoreKind::Embedded,
            None | Some("dynamodb") => StoreKind::DynamoDb,
            Some("embedded") if local => StoreKind::Embedded,
            Some("embedded") => return Err(lambda_only("SSPR_STORE", "embedded")),
            Some(other) => {
                return Err(ConfigError::new("SSPR_STORE", format!("'{other}' is not one of embedded, dynamodb")))
            }
        };
        let table = get("SSPR_TABLE");
        if store == StoreKind::DynamoDb && table.is_none() {
            return Err(ConfigError::new("SSPR_TABLE", "is required with SSPR_STORE=dynamodb"));
        }

        let directory = match get("SSPR_DIRECTORY").as_deref() {
            None if local => DirectoryKind::Embedded,
            None | Some("cognito") => DirectoryKind::Cognito,
            Some("embedded") if local => DirectoryKind::Embedded,
            Some("embedded") => return Err(lambda_only("SSPR_DIRECTORY", "embedded")),
            Some("ldap") => DirectoryKind::Ldap,
            Some("hybrid") => DirectoryKind::Hybrid,
            Some(other) => {
                return Err(ConfigError::new(
                    "SSPR_DIRECTORY",
                    format!("'{other}' is not one of embedded, cognito, ldap, hybrid"),
                ))
            }
        };
        let required_here = format!("is required with SSPR_DIRECTORY={}", directory.as_str());
        let cognito_user_pool_id = get("SSPR_COGNITO_USER_POOL_ID");
        if directory.uses_cognito() && cognito_user_pool_id.is_none() {
            return Err(ConfigError::new("SSPR_COGNITO_USER_POOL_ID", required_here));
        }
        let ldap = if directory.uses_ldap() {
            let required = |var: &'static str| get(var).ok_or_else(|| ConfigError::new(var, required_here.clone()));
            let flavour = required("SSPR_LDAP_FLAVOUR")?;
            if !matches!(flavour.as_str(), "ad" | "openldap") {
                return Err(ConfigError::new("SSPR_LDAP_FLAVOUR", "is one of ad, openldap"));
            }
            let starttls = match get("SSPR_LDAP_STARTTLS").as_deref() {
                None | Some("false") => false,
                Some("true") => true,
                Some(_) => return Err(ConfigError::new("SSPR_LDAP_STARTTLS", "is true or false")),
            };
            let timeout_secs =
                match get("SSPR_LDAP_TIMEOUT_SECS") {
                    None => 10,
                    Some(secs) => secs.parse::<u64>().ok().filter(|s| (1..=60).contains(s)).ok_or_else(|| {
                        ConfigError::new("SSPR_LDAP_TIMEOUT_SECS", "is a number of seconds within 1–60")
                    })?,
                };
            Some(LdapConfig {
                url: required("SSPR_LDAP_URL")?,
                starttls,
                flavour,
                bind_dn: required("SSPR_LDAP_BIND_DN")?,
                base_dn: required("SSPR_LDAP_BASE_DN")?,
                user_attribute: get("SSPR_LDAP_USER_ATTRIBUTE"),
                ca_file: get("SSPR_LDAP_CA_FILE").map(PathBuf::from),
                timeout_secs,
            })
        } else {
            None
        };
        let directory_file = get("SSPR_DIRECTORY_FILE").map(PathBuf::from);
        if directory_file.is_some() && !local {
            return Err(lambda_only("SSPR_DIRECTORY_FILE", "a directory file"));
        }

        let sender = match get("SSPR_SENDER").as_deref() {
            None if local => SenderKind::Outbox,
            None | Some("aws") => SenderKind::Aws,
            Some("outbox") if local => SenderKind::Outbox,
            Some("outbox") => return Err(lambda_only("SSPR_SENDER", "outbox")),
            Some(other) => return Err(ConfigError::new("SSPR_SENDER", format!("'{other}' is not one of outbox, aws"))),
        };
        let email_from = get("SSPR_EMAIL_FROM")
            .map(|v| Email::parse(&v).map_err(|_| ConfigError::new("SSPR_EMAIL_FROM", "is not an email address")))
            .transpose()?;
        if sender == SenderKind::Aws && email_from.is_none() {
            return Err(ConfigError::new("SSPR_EMAIL_FROM", "is required with SSPR_SENDER=aws"));
        }

        let public_url = get("SSPR_PUBLIC_URL");
        match &public_url {
            Some(url) if !(url.starts_with("https://") || (local && url.starts_with("http://"))) => {
                return Err(ConfigError::new("SSPR_PUBLIC_URL", "must be an https:// URL"))
            }
            None if !local => return Err(ConfigError::new("SSPR_PUBLIC_URL", "is required")),
            _ => {}
        }
        let methods = match get("SSPR_METHODS") {
            Some(list) => Some(
                list.split(',').map(|m| MethodKind::parse(m.trim())).collect::<Result<Vec<_>, _>>().map_err(|_| {
                    ConfigError::new("SSPR_METHODS", "is a comma-separated list of email, sms, voice, totp, questions")
                })?,
            ),
            None if local => Some(LOCAL_METHODS.to_vec()),
            None => None,
        };
        let secrets_arn = get("SSPR_SECRETS_ARN");
        if !local && secrets_arn.is_none() {
            return Err(ConfigError::new("SSPR_SECRETS_ARN", "is required: secrets come from Secrets Manager"));
        }

        let admin_groups = match get("SSPR_ADMIN_GROUPS") {
            Some(list) => {
                let groups: Vec<String> =
                    list.split(',').map(|g| g.trim().to_owned()).filter(|g| !g.is_empty()).collect();
                if groups.is_empty() {
                    return Err(ConfigError::new("SSPR_ADMIN_GROUPS", "names no group"));
                }
                groups
            }
            None => vec![sspr_core::DEFAULT_ADMIN_GROUP.to_owned()],
        };
        let flag = |var: &'static str| match get(var).as_deref() {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(_) => Err(ConfigError::new(var, "is true or false")),
        };
        let questions_custom_allowed = flag("SSPR_QUESTIONS_CUSTOM")?;
        let authenticator_required = flag("SSPR_AUTHENTICATOR_REQUIRED")?;
        let audit_days = number_within(&get, "SSPR_AUDIT_DAYS", 30, 1..=365, "a number of days")?;
        let recent_signin_secs =
            number_within(&get, "SSPR_RECENT_SIGNIN_SECS", 900, 10..=86_400, "a number of seconds")?;
        let sms_countries = match get("SSPR_SMS_COUNTRIES") {
            None => Policy::default().sms_countries,
            Some(list) => {
                let codes: Vec<String> =
                    list.split(',').map(|c| c.trim().to_uppercase()).filter(|c| !c.is_empty()).collect();
                let valid = !codes.is_empty() && codes.iter().all(|c| sspr_core::types::PhoneNumber::is_country(c));
                if !valid {
                    return Err(ConfigError::new(
                        "SSPR_SMS_COUNTRIES",
                        "is a comma-separated list of country codes, as US,CA",
                    ));
                }
                codes
            }
        };
        let limits = limits_from(&get)?;
        let network_directory = directory != DirectoryKind::Embedded;
        let start_floor_ms = number_within(
            &get,
            "SSPR_START_FLOOR_MS",
            if network_directory { 250 } else { 0 },
            0..=5000,
            "milliseconds",
        )?
        .unsigned_abs();
        let network_store = store != StoreKind::Embedded;
        let step_floor_ms =
            number_within(&get, "SSPR_STEP_FLOOR_MS", if network_store { 200 } else { 0 }, 0..=5000, "milliseconds")?
                .unsigned_abs();

        Ok(Self {
            store,
            table,
            directory,
            directory_file,
            cognito_user_pool_id,
            cognito_client_id: get("SSPR_COGNITO_CLIENT_ID"),
            ldap,
            sender,
            email_from,
            public_url,
            secrets_arn,
            organisation: get("SSPR_ORGANISATION").unwrap_or_else(|| "sspr".to_owned()),
            claims: JwtClaims {
                username_claim: get("SSPR_CLAIM_USERNAME").unwrap_or_else(|| "cognito:username".into()),
                groups_claim: get("SSPR_CLAIM_GROUPS").unwrap_or_else(|| "cognito:groups".into()),
            },
            target_group: get("SSPR_TARGET_GROUP"),
            methods,
            voice_origination: get("SSPR_VOICE_ORIGINATION"),
            voice_id: get("SSPR_VOICE_ID").unwrap_or_else(|| "Joanna".to_owned()),
            admin_groups,
            questions_custom_allowed,
            audit_days,
            recent_signin_secs,
            authenticator_required,
            sms_countries,
            limits,
            start_floor_ms,
            step_floor_ms,
        })
    }

    /// The policy until an administrator stores one: a deployment names its target group;
    /// without one, everyone may reset (the local demo). `SSPR_METHODS` names the methods; the
    /// local demo enables security questions too, which the product's own default leaves off.
    pub fn default_policy(&self) -> Policy {
        let policy = match &self.target_group {
            Some(group) => Policy::selected(group.clone()),
            None => Policy::everyone(),
        };
        Policy {
            methods_enabled: self.methods.clone().unwrap_or_else(|| Policy::default().methods_enabled),
            sms_countries: self.sms_countries.clone(),
            ..policy
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sspr_core::policy::Enablement;

    fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn the_methods_enabled_come_from_the_policy_default_or_the_setting() {
        let local = Config::from_lookup(Deployment::Local, lookup(&[])).expect("defaults");
        assert!(local.default_policy().methods_enabled.contains(&MethodKind::Questions), "the demo shows them all");
        let full = [
            ("SSPR_TABLE", "t"),
            ("SSPR_COGNITO_USER_POOL_ID", "p"),
            ("SSPR_EMAIL_FROM", "noreply@example.com"),
            ("SSPR_PUBLIC_URL", "https://reset.example.com"),
            ("SSPR_SECRETS_ARN", "arn:aws:secretsmanager:us-east-1:1:secret:s"),
        ];
        let lambda = Config::from_lookup(Deployment::Lambda, lookup(&full)).expect("complete");
        assert_eq!(lambda.default_policy().methods_enabled, Policy::default().methods_enabled, "questions off");
        let set = Config::from_lookup(Deployment::Local, lookup(&[("SSPR_METHODS", "sms, totp")])).expect("set");
        assert_eq!(set.default_policy().methods_enabled, vec![MethodKind::Sms, MethodKind::Totp]);
        let err = Config::from_lookup(Deployment::Local, lookup(&[("SSPR_METHODS", "sms,pigeon")])).expect_err("bad");
        assert_eq!(err.var, "SSPR_METHODS");
    }

    #[test]
    fn the_local_server_defaults_to_embedded() {
        let c = Config::from_lookup(Deployment::Local, lookup(&[])).expect("defaults");
        assert_eq!(
            (c.store, c.directory, c.sender),
            (StoreKind::Embedded, DirectoryKind::Embedded, SenderKind::Outbox)
        );
        assert_eq!(c.default_policy().enablement, Enablement::Everyone);
    }

    #[test]
    fn lambda_needs_its_settings_and_refuses_dev_adapters() {
        let err = Config::from_lookup(Deployment::Lambda, lookup(&[])).expect_err("nothing set");
        assert_eq!(err.var, "SSPR_TABLE");
        let err = Config::from_lookup(Deployment::Lambda, lookup(&[("SSPR_STORE", "embedded")])).expect_err("embedded");
        assert_eq!(err.to_string(), "SSPR_STORE: 'embedded' is available only in the local server");
        let err = Config::from_lookup(
            Deployment::Lambda,
            lookup(&[("SSPR_TABLE", "t"), ("SSPR_COGNITO_USER_POOL_ID", "p"), ("SSPR_SENDER", "outbox")]),
        )
        .expect_err("outbox");
        assert_eq!(err.var, "SSPR_SENDER");
        let full = [
            ("SSPR_TABLE", "t"),
            ("SSPR_COGNITO_USER_POOL_ID", "us-east-1_x"),
            ("SSPR_EMAIL_FROM", "noreply@example.com"),
            ("SSPR_PUBLIC_URL", "https://reset.example.com"),
            ("SSPR_SECRETS_ARN", "arn:aws:secretsmanager:us-east-1:1:secret:s"),
            ("SSPR_TARGET_GROUP", "SSPR-Users"),
        ];
        let c = Config::from_lookup(Deployment::Lambda, lookup(&full)).expect("complete");
        let policy = c.default_policy();
        assert_eq!((policy.enablement, policy.target_group.as_deref()), (Enablement::Selected, Some("SSPR-Users")));
        assert_eq!(c.admin_groups, vec!["SSPR-Admins"]);
        assert_eq!((c.audit_days, c.recent_signin_secs), (30, 900));
        let recent = Config::from_lookup(Deployment::Local, lookup(&[("SSPR_RECENT_SIGNIN_SECS", "60")])).expect("set");
        assert_eq!(recent.recent_signin_secs, 60);
        let err = Config::from_lookup(Deployment::Local, lookup(&[("SSPR_RECENT_SIGNIN_SECS", "9")])).expect_err("bad");
        assert!(err.to_string().contains("10–86400"), "{err}");
        let mut more = full.to_vec();
        more.extend([("SSPR_ADMIN_GROUPS", "IT-Admins, Helpdesk"), ("SSPR_AUDIT_DAYS", "90")]);
        let c = Config::from_lookup(Deployment::Lambda, lookup(&more)).expect("complete");
        assert_eq!((c.admin_groups.clone(), c.audit_days), (vec!["IT-Admins".into(), "Helpdesk".into()], 90));
        let on =
            Config::from_lookup(Deployment::Local, lookup(&[("SSPR_AUTHENTICATOR_REQUIRED", "true")])).expect("on");
        assert!(on.authenticator_required && !c.authenticator_required);
        assert_eq!(c.limits, sspr_core::limits::Limits::default());
        assert_eq!((c.start_floor_ms, on.start_floor_ms), (250, 0), "a network directory, the embedded one");
        assert_eq!((c.step_floor_ms, on.step_floor_ms), (200, 0), "a network store, the embedded one");
        let set = Config::from_lookup(Deployment::Local, lookup(&[("SSPR_STEP_FLOOR_MS", "40")])).expect("set");
        assert_eq!(set.step_floor_ms, 40);
        let err = Config::from_lookup(Deployment::Local, lookup(&[("SSPR_STEP_FLOOR_MS", "5001")])).expect_err("bad");
        assert!(err.to_string().contains("SSPR_STEP_FLOOR_MS"), "{err}");
        let mut limited = full.to_vec();
        limited.extend([
            ("SSPR_LIMIT_SENDS", "3/600"),
            ("SSPR_LIMIT_ADDRESS", "100/60, 1000/3600"),
            ("SSPR_SMS_DAILY_BUDGET", "50"),
        ]);
        let l = Config::from_lookup(Deployment::Lambda, lookup(&limited)).expect("config").limits;
        let rate = sspr_core::limits::Rate::new;
        assert_eq!((l.sends, l.per_address[1], l.sms_per_day), (rate(3, 600), rate(1000, 3600), 50));
        for (var, bad) in [("SSPR_LIMIT_SENDS", "5"), ("SSPR_LIMIT_SENDS", "5/0"), ("SSPR_LIMIT_PHONE", "5/3600")] {
            let mut wrong = full.to_vec();
            wrong.push((var, bad));
            let e = Config::from_lookup(Deployment::Lambda, lookup(&wrong)).expect_err(bad);
            assert_eq!(e.var, var);
        }
        let err =
            Config::from_lookup(Deployment::Local, lookup(&[("SSPR_AUTHENTICATOR_REQUIRED", "1")])).expect_err("bad");
        assert_eq!(err.var, "SSPR_AUTHENTICATOR_REQUIRED");
        let err = Config::from_lookup(Deployment::Local, lookup(&[("SSPR_AUDIT_DAYS", "0")])).expect_err("bad");
        assert_eq!(err.var, "SSPR_AUDIT_DAYS");
        let err = Config::from_lookup(Deployment::Local, lookup(&[("SSPR_ADMIN_GROUPS", " , ")])).expect_err("bad");
        assert_eq!(err.var, "SSPR_ADMIN_GROUPS");
    }

    #[test]
    fn an_ldap_directory_names_what_it_misses() {
        let err = Config::from_lookup(Deployment::Local, lookup(&[("SSPR_DIRECTORY", "ldap")])).expect_err("bare");
        assert_eq!(err.var, "SSPR_LDAP_FLAVOUR");
        let mut vars = vec![("SSPR_DIRECTORY", "ldap"), ("SSPR_LDAP_FLAVOUR", "ad")];
        let err = Config::from_lookup(Deployment::Local, lookup(&vars)).expect_err("no url");
        assert_eq!(err.var, "SSPR_LDAP_URL");
        vars.extend([
            ("SSPR_LDAP_URL", "ldaps://dc.example.com"),
            ("SSPR_LDAP_BIND_DN", "CN=sspr,OU=Services,DC=example,DC=com"),
            ("SSPR_LDAP_BASE_DN", "DC=example,DC=com"),
        ]);
        let c = Config::from_lookup(Deployment::Local, lookup(&vars)).expect("complete");
        let ldap = c.ldap.expect("ldap");
        assert_eq!((c.directory, ldap.flavour.as_str(), ldap.timeout_secs), (DirectoryKind::Ldap, "ad", 10));
        vars.push(("SSPR_LDAP_FLAVOUR", "novell"));
        let err = Config::from_lookup(Deployment::Local, |n| {
            vars.iter().rev().find(|(k, _)| *k == n).map(|(_, v)| v.to_string())
        })
        .expect_err("flavour");
        assert_eq!(err.var, "SSPR_LDAP_FLAVOUR");
    }

    #[test]
    fn a_hybrid_directory_needs_both_the_ldap_settings_and_the_user_pool() {
        let ldap = [
            ("SSPR_DIRECTORY", "hybrid"),
            ("SSPR_LDAP_FLAVOUR", "ad"),
            ("SSPR_LDAP_URL", "ldaps://dc.example.com"),
            ("SSPR_LDAP_BIND_DN", "CN=sspr,OU=Services,DC=example,DC=com"),
            ("SSPR_LDAP_BASE_DN", "DC=example,DC=com"),
        ];
        let err = Config::from_lookup(Deployment::Local, lookup(&ldap)).expect_err("no pool");
        assert_eq!(err.var, "SSPR_COGNITO_USER_POOL_ID");
        let mut vars = ldap.to_vec();
        vars.push(("SSPR_COGNITO_USER_POOL_ID", "us-east-1_abc"));
        let c = Config::from_lookup(Deployment::Local, lookup(&vars)).expect("complete");
        assert_eq!(c.directory, DirectoryKind::Hybrid);
        assert!(c.ldap.is_some() && c.directory.uses_ldap() && c.directory.uses_cognito());
        vars.retain(|(k, _)| *k != "SSPR_LDAP_URL");
        let err = Config::from_lookup(Deployment::Local, lookup(&vars)).expect_err("no url");
        assert_eq!((err.var, err.to_string().contains("hybrid")), ("SSPR_LDAP_URL", true), "{err}");
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = Config::from_lookup(Deployment::Local, lookup(&[("SSPR_STORE", "postgres")])).expect_err("bad");
        assert_eq!(err.var, "SSPR_STORE");
        let err = Config::from_lookup(Deployment::Local, lookup(&[("SSPR_PUBLIC_URL", "ftp://x")])).expect_err("bad");
        assert_eq!(err.var, "SSPR_PUBLIC_URL");
        let err =
            Config::from_lookup(Deployment::Local, lookup(&[("SSPR_SENDER", "aws"), ("SSPR_EMAIL_FROM", "nope")]))
                .expect_err("bad");
        assert_eq!(err.var, "SSPR_EMAIL_FROM");
    }
}
