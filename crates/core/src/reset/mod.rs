//! The reset flow: start a session, send a code, verify it, set the new password
//! (docs/architecture.md, "How a request flows").
//!
//! A caller who has proved nothing learns nothing about the account: unknown, out-of-scope
//! and unregistered users get a session like anyone else; codes go only to destinations that
//! match a registered method, and a decoy stands in where none was sent.

pub mod challenge;
pub mod session;

use serde::Serialize;

use self::session::{IssuedCode, ResetSession, ResetState, SentTo, TransitionError};
use crate::password::NewPassword;
use crate::ports::StoreError;
use crate::records::{load, registration_key, save, session_key, Registration, Versioned};
use crate::secret::Digest;
use crate::types::{Code, Destination, MethodKind, ResetToken, SessionId, Username};
use crate::{CodePurpose, FlowError, Sspr, CONFLICT_RETRIES};

#[derive(Debug, Serialize)]
pub struct ResetStarted {
    #[serde(serialize_with = "expose_session")]
    pub session: SessionId,
    pub methods: Vec<MethodKind>,
    pub required: usize,
}

fn expose_session<S: serde::Serializer>(id: &SessionId, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(id.expose())
}

#[derive(Debug, Serialize)]
pub struct CodeSent {
    pub expires_in: i64,
}

#[derive(Debug, Serialize)]
pub struct MethodVerified {
    pub verified: Vec<MethodKind>,
    pub remaining: usize,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose_token")]
    pub reset_token: Option<ResetToken>,
}

fn expose_token<S: serde::Serializer>(t: &Option<ResetToken>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(t.expose()),
        None => s.serialize_none(),
    }
}

/// What the person asks for at the end of a reset.
#[derive(Debug)]
pub enum Completion {
    NewPassword(secrecy::SecretString),
    UnlockOnly,
}

#[derive(Debug, Serialize)]
pub struct ResetCompleted {
    pub done: bool,
}

impl From<TransitionError> for FlowError {
    fn from(e: TransitionError) -> Self {
        match e {
            TransitionError::AlreadyVerified | TransitionError::AlreadyComplete => FlowError::AlreadyVerified,
            TransitionError::NotVerified => FlowError::NotVerified,
            TransitionError::WrongToken => FlowError::InvalidToken,
            TransitionError::TokenUsed => FlowError::TokenUsed,
        }
    }
}

impl Sspr {
    fn session_hash(&self, id: &SessionId) -> Digest {
        self.hasher.digest("session", &[id.expose().as_bytes()])
    }

    fn token_hash(&self, id: &SessionId, token: &ResetToken) -> Digest {
        self.hasher.digest("reset-token", &[id.expose().as_bytes(), token.expose().as_bytes()])
    }

    fn reset_code_hash(&self, id: &SessionId, method: MethodKind, destination: &Destination, code: &Code) -> Digest {
        self.hasher.digest(
            "reset-code",
            &[
                id.expose().as_bytes(),
                method.as_str().as_bytes(),
                destination.as_str().as_bytes(),
                code.expose().as_bytes(),
            ],
        )
    }

    async fn load_live_session(&self, id: &SessionId) -> Result<Versioned<ResetSession>, FlowError> {
        let session = load::<ResetSession>(&*self.store, &session_key(&self.session_hash(id)))
            .await?
            .ok_or(FlowError::InvalidSession)?;
        if session.value.is_expired(self.clock.now()) {
            return Err(FlowError::SessionExpired);
        }
        Ok(session)
    }

    async fn registration_of(&self, subject: Option<&Username>) -> Result<Registration, FlowError> {
        Ok(match subject {
            Some(user) => {
                load::<Registration>(&*self.store, &registration_key(user)).await?.map(|v| v.value).unwrap_or_default()
            }
            None => Registration::default(),
        })
    }

    /// Opens a reset session for whatever name was given.
    #[tracing::instrument(skip_all)]
    pub async fn start_reset(&self, username: &Username) -> Result<ResetStarted, FlowError> {
        let policy = self.policy().await?;
        let now = self.clock.now();
        let subject = match self.directory.find_user(username).await? {
            Some(user) if policy.covers(&user) => Some(user.username),
            _ => None,
        };
        let id = SessionId::generate(&*self.rng);
        let session = ResetSession {
            subject,
            created_at: now,
            expires_at: now.plus_secs(self.settings.session_ttl_secs),
            required: policy.methods_required(),
            state: ResetState::Started,
            codes: Vec::new(),
        };
        save(&*self.store, &session_key(&self.session_hash(&id)), &Versioned::new(session)).await?;
        Ok(ResetStarted { session: id, methods: policy.reset_methods(), required: policy.methods_required() })
    }

    /// Sends a code if `destination` is one the person registered for `method`; answers the
    /// same either way.
    #[tracing::instrument(skip_all, fields(method = %method))]
    pub async fn send_code(
        &self,
        id: &SessionId,
        method: MethodKind,
        destination: &str,
    ) -> Result<CodeSent, FlowError> {
        if !self.policy().await?.allows_method(method) {
            return Err(FlowError::MethodNotAvailable);
        }
        let destination = Destination::parse(method, destination)?;
        let code = Code::generate(&*self.rng, self.settings.code_digits);
        for _ in 0..CONFLICT_RETRIES {
            let mut session = self.load_live_session(id).await?;
            if session.value.failures_for(method) >= self.settings.max_code_failures {
                return Err(FlowError::TooManyAttempts);
            }
            if session.value.state.verified().contains(&method)
                || !matches!(session.value.state, ResetState::Started | ResetState::MethodVerified { .. })
            {
                return Err(FlowError::AlreadyVerified);
            }
            let registration = self.registration_of(session.value.subject.as_ref()).await?;
            let sent_to = registration.find(method, &destination).map(|m| SentTo {
                method_id: m.id.clone(),
                destination: destination.clone(),
                code_hash: self.reset_code_hash(id, method, &destination, &code).to_hex(),
            });
            let now = self.clock.now();
            let deliver = sent_to.is_some();
            session.value.replace_code(IssuedCode {
                method,
                sent_to,
                issued_at: now,
                expires_at: now.plus_secs(self.settings.code_ttl_secs),
                failures: 0,
                used: false,
            });
            match save(&*self.store, &session_key(&self.session_hash(id)), &session).await {
                Ok(_) => {
                    if deliver {
                        self.deliver_code(&destination, &code, CodePurpose::Reset).await?;
                    }
                    return Ok(CodeSent { expires_in: self.settings.code_ttl_secs });
                }
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(FlowError::Conflict)
    }

    /// Checks a code. Every wrong code counts, whether or not one was sent; the fifth kills
    /// the method for this session.
    #[tracing::instrument(skip_all, fields(method = %method))]
    pub async fn verify_method(
        &self,
        id: &SessionId,
        method: MethodKind,
        code: &Code,
    ) -> Result<MethodVerified, FlowError> {
        if !self.policy().await?.allows_method(method) {
            return Err(FlowError::MethodNotAvailable);
        }
        let token = ResetToken::generate(&*self.rng);
        for _ in 0..CONFLICT_RETRIES {
            let mut session = self.load_live_session(id).await?;
            let now = self.clock.now();
            if session.value.state.verified().contains(&method) {
                return Err(FlowError::AlreadyVerified);
            }
            if session.value.code_for(method).is_none() {
                // Nothing was asked for: a decoy keeps the count, as for any wrong code.
                session.value.replace_code(IssuedCode {
                    method,
                    sent_to: None,
                    issued_at: now,
                    expires_at: now,
                    failures: 0,
                    used: false,
                });
            }
            let registration = self.registration_of(session.value.subject.as_ref()).await?;
            let max = self.settings.max_code_failures;
            let required = session.value.required;
            let issued = session.value.code_mut(method).ok_or(FlowError::InvalidCode)?;
            if issued.failures >= max {
                return Err(FlowError::TooManyAttempts);
            }
            let matches = !issued.used
                && issued
                    .sent_to
                    .as_ref()
                    .is_some_and(|s| self.reset_code_hash(id, method, &s.destination, code).matches_hex(&s.code_hash));
            let outcome = if !matches {
                issued.failures += 1;
                if issued.failures >= max {
                    Err(FlowError::TooManyAttempts)
                } else {
                    Err(FlowError::InvalidCode)
                }
            } else if now >= issued.expires_at {
                Err(FlowError::CodeExpired)
            } else {
                issued.used = true;
                // The method may have been removed since the code was sent.
                let still_registered = issued.sent_to.as_ref().is_some_and(|s| {
                    registration.methods.iter().any(|m| m.id == s.method_id && m.destination == s.destination)
                });
                if still_registered {
                    let state = std::mem::replace(&mut session.value.state, ResetState::Started);
                    session.value.state = state.prove(method, required, || self.token_hash(id, &token))?;
                    Ok(())
                } else {
                    Err(FlowError::InvalidCode)
                }
            };
            if let Err(FlowError::CodeExpired) = outcome {
                return Err(FlowError::CodeExpired);
            }
            match save(&*self.store, &session_key(&self.session_hash(id)), &session).await {
                Ok(_) => {}
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
            outcome?;
            let verified = session.value.state.verified().to_vec();
            let remaining = session.value.required.saturating_sub(verified.len());
            let reset_token = matches!(session.value.state, ResetState::TokenIssued { .. }).then(|| token.clone());
            return Ok(MethodVerified { verified, remaining, reset_token });
        }
        Err(FlowError::Conflict)
    }

    /// Sets the new password (or only unlocks), using the reset token exactly once.
    #[tracing::instrument(skip_all)]
    pub async fn complete_reset(
        &self,
        id: &SessionId,
        token: &ResetToken,
        completion: Completion,
    ) -> Result<ResetCompleted, FlowError> {
        let presented = self.token_hash(id, token);
        let policy = self.policy().await?;
        let key = session_key(&self.session_hash(id));
        // Claim the token with a conditional write: of concurrent completions one wins.
        let (mut session, password, username) = claim_token(self, id, &key, &presented, &completion, &policy).await?;

        let unlock_only = matches!(completion, Completion::UnlockOnly);
        let applied = match &password {
            Some(password) => self.directory.set_password(&username, password).await,
            None => self.directory.unlock(&username).await,
        };
        if let Err(e) = applied {
            // Nothing changed in the directory: give the token back so the person can try again.
            session.value.state = session.value.state.clone().release_token();
            if let Err(release) = save(&*self.store, &key, &session).await {
                tracing::error!(error = %release, "a claimed reset token could not be released");
            }
            return Err(e.into());
        }
        session.value.state = session.value.state.clone().complete(self.clock.now())?;
        if let Err(e) = save(&*self.store, &key, &session).await {
            // The password is changed; the session stays claimed, so the token stays spent.
            tracing::error!(error = %e, "a completed reset could not be recorded");
        }
        if !unlock_only {
            if let Err(e) = self.directory.sign_out_everywhere(&username).await {
                tracing::warn!(error = %e, "sessions elsewhere could not be ended");
            }
        }
        let registration = self.registration_of(Some(&username)).await?;
        self.notify_all(registration.emails(), &self.settings.branding.password_changed(unlock_only)).await;
        tracing::info!(unlock_only, "reset completed");
        Ok(ResetCompleted { done: true })
    }
}

type Claimed = (Versioned<ResetSession>, Option<NewPassword>, Username);

/// Moves the session to `Completing` if the token matches and the new password meets the rules.
async fn claim_token(
    sspr: &Sspr,
    id: &SessionId,
    key: &crate::ports::RecordKey,
    presented: &Digest,
    completion: &Completion,
    policy: &crate::policy::Policy,
) -> Result<Claimed, FlowError> {
    for _ in 0..CONFLICT_RETRIES {
        let mut session = sspr.load_live_session(id).await?;
        let claimed = session.value.state.clone().claim_token(presented)?;
        let username = session.value.subject.clone().ok_or(FlowError::InvalidToken)?;
        let password = match completion {
            Completion::NewPassword(raw) => Some(
                NewPassword::parse(secrecy::ExposeSecret::expose_secret(raw), &policy.password, &username)
                    .map_err(FlowError::PasswordRejected)?,
            ),
            Completion::UnlockOnly => None,
        };
        session.value.state = claimed;
        match save(&*sspr.store, key, &session).await {
            Ok(version) => {
                session.version = version;
                return Ok((session, password, username));
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(FlowError::Conflict)
}
