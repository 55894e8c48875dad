//! The embedded directory: a handful of accounts seeded from a TOML file (or the demo users),
//! passwords kept as Argon2id hashes, changes saved to a JSON file in the data directory.
//!
//! Changes are serialised: one writer at a time writes the whole file (a temporary file of its
//! own, flushed to disk, then renamed over the old one), and only once it is on disk does the
//! change take effect in memory. A change the caller was told succeeded is on disk; one that
//! failed leaves the password as it was.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sspr_core::password::NewPassword;
use sspr_core::ports::{Authenticate, Directory, DirectoryError, DirectoryUser, Unavailable};
use sspr_core::types::{Email, Username};

/// One account of a seed file (`SSPR_DIRECTORY_FILE`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedUser {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub admin: bool,
}

/// The accounts a fresh embedded directory starts with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectorySeed {
    #[serde(rename = "user")]
    pub users: Vec<SeedUser>,
}

impl DirectorySeed {
    /// The demo accounts of the README.
    pub fn demo() -> Self {
        Self {
            users: vec![
                SeedUser {
                    username: "alice".into(),
                    password: "alice-demo-Passw0rd".into(),
                    email: Some("alice@example.com".into()),
                    phone: Some("+15555550101".into()),
                    groups: vec!["SSPR-Users".into()],
                    admin: false,
                },
                SeedUser {
                    username: "admin".into(),
                    password: "admin-demo-Passw0rd".into(),
                    email: Some("admin@example.com".into()),
                    phone: None,
                    groups: vec!["SSPR-Admins".into()],
                    admin: true,
                },
            ],
        }
    }

    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Account {
    password_hash: String,
    groups: Vec<String>,
    admin: bool,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    /// How many times the person's sessions were ended (a reset ends them): local sign-in
    /// tokens issued before the last are void.
    #[serde(default)]
    sign_outs: u64,
}

#[derive(Clone)]
pub struct EmbeddedDirectory {
    accounts: Arc<Mutex<BTreeMap<String, Account>>>,
    file: Option<PathBuf>,
    /// Held by the one change being written.
    writing: Arc<tokio::sync::Mutex<()>>,
}

/// Argon2id with the OWASP parameters of S6 in docs/security.md (m=19456 KiB, t=2, p=1).
fn argon2() -> Argon2<'static> {
    let params = Params::new(19_456, 2, 1, None).expect("constant Argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_password(password: &str) -> Result<String, Unavailable> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Unavailable::new(format!("password hashing failed: {e}")))
}

/// Writes `accounts` to `path` whole: a new file of this write's own beside it, readable by its
/// owner only, flushed to disk, then renamed over the old one (and the rename flushed too).
fn save(path: &Path, accounts: &BTreeMap<String, Account>) -> Result<(), Unavailable> {
    use std::io::Write as _;
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let failed = |e: std::io::Error| Unavailable::new(format!("{}: {e}", path.display()));
    let text = serde_json::to_vec_pretty(accounts).map_err(Unavailable::new)?;
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("{}-{n}.tmp", std::process::id()));
    let written = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        file.write_all(&text)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(failed)
}

impl EmbeddedDirectory {
    /// Builds the directory from `seed`; with `file`, loads it from there when it exists and
    /// saves every change to it.
    pub fn open(seed: &DirectorySeed, file: Option<&Path>) -> Result<Self, Unavailable> {
        if let Some(path) = file.filter(|p| p.exists()) {
            let text =
                std::fs::read_to_string(path).map_err(|e| Unavailable::new(format!("{}: {e}", path.display())))?;
            let accounts =
                serde_json::from_str(&text).map_err(|e| Unavailable::new(format!("{}: {e}", path.display())))?;
            return Ok(Self {
                accounts: Arc::new(Mutex::new(accounts)),
                file: Some(path.to_owned()),
                writing: Arc::default(),
            });
        }
        let mut accounts = BTreeMap::new();
        for user in &seed.users {
            let name = Username::parse(&user.username).map_err(|e| Unavailable::new(format!("seed user: {e}")))?;
            accounts.insert(
                name.to_string(),
                Account {
                    password_hash: hash_password(&user.password)?,
                    groups: user.groups.clone(),
                    admin: user.admin,
                    email: user.email.clone(),
                    phone: user.phone.clone(),
                    sign_outs: 0,
                },
            );
        }
        if let Some(path) = file {
            save(path, &accounts)?;
        }
        Ok(Self { accounts: Arc::new(Mutex::new(accounts)), file: file.map(Path::to_owned), writing: Arc::default() })
    }

    fn account(&self, username: &Username) -> Result<Option<Account>, Unavailable> {
        let accounts = self.accounts.lock().map_err(|_| Unavailable::new("directory poisoned"))?;
        Ok(accounts.get(username.as_str()).cloned())
    }

    fn user(username: &Username, account: &Account) -> DirectoryUser {
        let mut groups = account.groups.clone();
        if account.admin && !groups.iter().any(|g| g == "SSPR-Admins") {
            groups.push("SSPR-Admins".into());
        }
        let email = account.email.as_deref().and_then(|e| Email::parse(e).ok());
        DirectoryUser { username: username.clone(), groups, enabled: true, locked: false, email }
    }
}

#[async_trait]
impl Directory for EmbeddedDirectory {
    async fn find_user(&self, username: &Username) -> Result<Option<DirectoryUser>, DirectoryError> {
        Ok(self.account(username)?.map(|a| Self::user(username, &a)))
    }

    async fn members_of(&self, group: &str) -> Result<Vec<DirectoryUser>, DirectoryError> {
        let accounts = self.accounts.lock().map_err(|_| Unavailable::new("directory poisoned"))?.clone();
        Ok(accounts
            .iter()
            .filter_map(|(name, account)| Some(Self::user(&Username::parse(name).ok()?, account)))
            .filter(|user| user.is_member_of(group))
            .collect())
    }

    async fn set_password(&self, username: &Username, password: &NewPassword) -> Result<(), DirectoryError> {
        let hash = {
            let password = password.expose().to_owned();
            tokio::task::spawn_blocking(move || hash_password(&password))
                .await
                .map_err(|e| Unavailable::new(e.to_string()))??
        };
        self.change(username, move |account| account.password_hash = hash).await
    }

    async fn sign_out_everywhere(&self, username: &Username) -> Result<(), DirectoryError> {
        // The directory's own sessions are the local server's sign-in tokens.
        self.change(username, |account| account.sign_outs += 1).await
    }
}

impl EmbeddedDirectory {
    /// Applies `edit` to the account of `username`: one change at a time, the accounts as they
    /// will be written whole, then made current.
    async fn change(&self, username: &Username, edit: impl FnOnce(&mut Account)) -> Result<(), DirectoryError> {
        let _writing = self.writing.lock().await;
        let mut next = self.accounts.lock().map_err(|_| Unavailable::new("directory poisoned"))?.clone();
        edit(next.get_mut(username.as_str()).ok_or(DirectoryError::UnknownUser)?);
        let next = match &self.file {
            Some(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || save(&path, &next).map(|()| next))
                    .await
                    .map_err(|e| Unavailable::new(e.to_string()))??
            }
            None => next,
        };
        *self.accounts.lock().map_err(|_| Unavailable::new("directory poisoned"))? = next;
        Ok(())
    }
}

#[async_trait]
impl Authenticate for EmbeddedDirectory {
    async fn authenticate(
        &self,
        username: &Username,
        password: &SecretString,
    ) -> Result<Option<DirectoryUser>, DirectoryError> {
        // An unknown name costs the same hashing work as a known one: one check, against a
        // hash made once for the purpose.
        static UNKNOWN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let account = self.account(username)?;
        let hash = match &account {
            Some(a) => a.password_hash.clone(),
            None => match UNKNOWN.get() {
                Some(hash) => hash.clone(),
                None => {
                    let made = tokio::task::spawn_blocking(|| hash_password("no such account"))
                        .await
                        .map_err(|e| Unavailable::new(e.to_string()))??;
                    UNKNOWN.get_or_init(|| made).clone()
                }
            },
        };
        let password = password.expose_secret().to_owned();
        let ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash).is_ok_and(|parsed| argon2().verify_password(password.as_bytes(), &parsed).is_ok())
        })
        .await
        .map_err(|e| Unavailable::new(e.to_string()))?;
        Ok(match account {
            Some(a) if ok => Some(Self::user(username, &a)),
            _ => None,
        })
    }

    /// Read on every signed-in request: the count alone, nothing cloned.
    fn sign_outs(&self, username: &Username) -> u64 {
        self.accounts.lock().ok().and_then(|a| a.get(username.as_str()).map(|a| a.sign_outs)).unwrap_or(0)
    }
}
