//! The reset flow: start a session, send a code, verify it, set the new password
//! (docs/architecture.md, "How a request flows").
//!
//! A caller who has proved nothing learns nothing about the account: unknown, out-of-scope
//! and unregistered users get a session like anyone else; codes go only to destinations that
//! match a registered method, and a decoy stands in where none was sent.

pub mod challenge;
pub mod session;

use serde::Serialize;

use self::session::{ResetSession, ResetState, TransitionError};
use std::collections::BTreeMap;

use crate::audit::{current_request, EventKind, Happened};
use crate::limits::{self, Action, Counted, Meter, PersonLimits};
use crate::methods::delivered_code::{CodePurpose, DeliveredCode};
use crate::methods::questions::{self, decoy_questions, ShownQuestion};
use crate::methods::{verifier, Attempt, Proof, Verdict};
use crate::notify::ResetNotice;
use crate::password::NewPassword;
use crate::policy::Policy;
use crate::ports::{DirectoryError, RecordKey, StoreError, StoredRecord, Unavailable, Write};
use crate::records::{
    self, decode, emails_of, put, registration_key, save, save_all, session_key, spend, Registration, Versioned,
};
use crate::registration::Scope;
use crate::secret::Digest;
use crate::types::{Code, Destination, Email, MethodKind, ResetToken, SessionId, Username};
use crate::{FlowError, Sspr, CONFLICT_RETRIES};

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

/// A reset code decided and not yet delivered (see [`Sspr::decide_code`]).
#[derive(Debug)]
pub struct Delivery {
    method: MethodKind,
    destination: Destination,
    code: Code,
    subject: Option<Username>,
}

#[derive(Debug, Serialize)]
pub struct QuestionsDrawn {
    pub questions: Vec<ShownQuestion>,
}

#[derive(Debug, Serialize)]
pub struct MethodVerified {
    pub verified: Vec<MethodKind>,
    pub remaining: usize,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose_token")]
    pub reset_token: Option<ResetToken>,
    /// With the token only (never before a proof): whether the directory reported the account
    /// locked when the session opened...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked: Option<bool>,
    /// ...and whether `unlock_only` may be chosen instead of a new password: locked, with a
    /// directory that can unlock and a policy that allows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unlock_offered: Option<bool>,
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

    fn attempt<'a>(&'a self, id: &'a SessionId, method: MethodKind) -> Attempt<'a> {
        Attempt {
            session_id: id,
            method,
            now: self.ports.clock.now(),
            hasher: &self.hasher,
            sealer: &self.sealer,
            max_failures: self.settings.max_code_failures,
        }
    }

    /// The session of `id` with `more` records read in the same round trip (and the policy,
    /// when the cached one is stale).
    async fn read_session(&self, id: &SessionId, more: &[RecordKey]) -> Result<SessionRead, FlowError> {
        self.read_session_counted(id, more, &[]).await
    }

    /// As [`Sspr::read_session`], with the values of `counters` (the limits' meters) and the
    /// limits of the name the session was started for, all in one round trip; `rest` ends with
    /// those limits.
    async fn read_session_counted(
        &self,
        id: &SessionId,
        more: &[RecordKey],
        counters: &[RecordKey],
    ) -> Result<SessionRead, FlowError> {
        let key = session_key(&self.session_hash(id));
        let mut keys = vec![key.clone()];
        keys.extend_from_slice(more);
        let (policy, mut records, counters) = self.read_with_counters(&keys, counters).await?;
        let rest = records.split_off(1);
        let session = decode::<ResetSession>(&key, records.pop().flatten())?;
        Ok(SessionRead { policy, session, rest, counters, now: self.ports.clock.now() })
    }

    /// Opens a reset session for whatever name was given, spending the proof-of-work
    /// `challenge` in the same write. Two round trips after the directory's answer: the
    /// registration, the name's limits and the source's meters (with the policy), then the spent
    /// challenge, the session and the counts written together.
    #[tracing::instrument(skip_all)]
    pub async fn start_reset(&self, username: &Username, challenge: &str) -> Result<ResetStarted, FlowError> {
        let (_, spend_challenge) = self.check_challenge(challenge)?;
        let now = self.ports.clock.now();
        // The directory first, then one read for everyone: the registration under the
        // directory's spelling of the name (the name as typed when it knows none), the limits of
        // the name as typed and the source's meters. Known or not, a name costs one directory
        // call and the same store round trips (S1 in docs/security.md).
        let tag = limits::person_tag(&self.hasher, username);
        let person_key = limits::person_key(&tag);
        let meters = self.address_meters(Action::Start, now);
        let user = self.ports.directory.find_user(username).await?;
        let registration_key = registration_key(user.as_ref().map_or(username, |u| &u.username));
        let keys = [registration_key.clone(), person_key.clone()];
        let (policy, mut records, values) = self.read_with_counters(&keys, &limits::meter_keys(&meters)).await?;
        let person = decode::<PersonLimits>(&person_key, records.pop().flatten())?;
        let registration = decode::<Registration>(&registration_key, records.pop().flatten())?;
        let within = person
            .as_ref()
            .map_or(Ok(()), |p| p.value.check_block(now))
            .and_then(|()| limits::check_meters(&meters, &values, now));
        if let Err(over) = within {
            return Err(self.refuse(over, user.as_ref().map(|u| &u.username), None).await);
        }
        // Administrators may always reset, with two methods; the answer says only what the
        // policy says, so nothing tells an administrator's account apart.
        let scope = user.map(|user| (Scope::of(self, &policy, &user), user));
        // Whom a reset is told to is kept from here, so completion need not ask the directory
        // again.
        let (subject, administrator, required, directory_email, locked) = match scope {
            Some((scope, user)) if scope.in_scope => {
                (Some(user.username), scope.administrator, scope.methods_required(&policy), user.email, user.locked)
            }
            _ => (None, false, policy.methods_required(), None, false),
        };
        // Only a subject's registration counts.
        let registration = registration.filter(|_| subject.is_some());
        let (mut methods, registration_version) =
            registration.map_or((Vec::new(), 0), |r| (r.value.methods, r.version));
        // Administrators never use security questions (two gates, neither a question); they
        // get the decoys of a name without questions, so nothing tells them apart.
        if administrator {
            methods.retain(|m| m.kind != MethodKind::Questions);
        }
        let decoy_questions = if policy.allows_method(MethodKind::Questions)
            && !methods.iter().any(|m| m.kind == MethodKind::Questions)
        {
            decoy_questions(&self.hasher, username.as_str(), policy.questions_to_register())
        } else {
            Vec::new()
        };
        // Where the deployment asks it, a registered authenticator app must be one of the
        // methods proved (ASVS 6.4.3); only a proof tells the caller so.
        let must_prove = (self.settings.authenticator_required
            && policy.allows_method(MethodKind::Totp)
            && methods.iter().any(|m| m.kind == MethodKind::Totp))
        .then_some(MethodKind::Totp);
        let id = SessionId::generate(&*self.ports.rng, &tag);
        let session = ResetSession {
            subject,
            created_at: now,
            expires_at: now.plus_secs(self.settings.session_ttl_secs),
            required,
            state: ResetState::Started,
            codes: Vec::new(),
            methods,
            registration_version,
            answered: Vec::new(),
            decoy_questions,
            must_prove,
            administrator,
            directory_email,
            locked,
            partly_written: false,
            codes_asked: 0,
        };
        let open = put(&session_key(&self.session_hash(&id)), &Versioned::new(session))?;
        let mut writes = vec![spend_challenge, open];
        writes.extend(meters.iter().map(Meter::count));
        match save_all(&*self.ports.store, &writes).await {
            Ok(()) => {}
            // The spent challenge existed already, or a meter filled meanwhile.
            Err(StoreError::Conflict) => {
                let (_, values) =
                    records::load_with_counters(&*self.ports.store, &[], &limits::meter_keys(&meters)).await?;
                return Err(match limits::check_meters(&meters, &values, now) {
                    Err(over) => self.refuse(over, None, None).await,
                    Ok(()) => FlowError::ChallengeFailed,
                });
            }
            Err(e) => return Err(e.into()),
        }
        Ok(ResetStarted { session: id, methods: policy.reset_methods(), required: policy.methods_required() })
    }

    /// Sends a code if `destination` is one the person registered for `method`; answers the
    /// same either way. Every code after the session's first needs a fresh solved `challenge`,
    /// spent in the same write.
    #[tracing::instrument(skip_all, fields(method = %method))]
    pub async fn send_code(
        &self,
        id: &SessionId,
        method: MethodKind,
        destination: &str,
        challenge: Option<&str>,
    ) -> Result<CodeSent, FlowError> {
        let (sent, delivery) = self.decide_code(id, method, destination, challenge).await?;
        if let Some(delivery) = delivery {
            self.deliver(delivery).await;
        }
        Ok(sent)
    }

    /// [`Sspr::send_code`] up to the answer: the session saved, and the code to deliver when
    /// the destination matched. The caller delivers it with [`Sspr::deliver`], before or after
    /// answering (the local server answers first, so a decoy and a real send take the same
    /// time).
    pub async fn decide_code(
        &self,
        id: &SessionId,
        method: MethodKind,
        destination: &str,
        challenge: Option<&str>,
    ) -> Result<(CodeSent, Option<Delivery>), FlowError> {
        let code = Code::generate(&*self.ports.rng, self.settings.code_digits);
        if !method.is_delivered() {
            return Err(FlowError::MethodNotAvailable);
        }
        let destination = Destination::parse(method, destination)?;
        let challenge = challenge.map(|c| self.check_challenge(c)).transpose()?;
        let limits = &self.settings.limits;
        let person_key = limits::person_key(id.limits_tag());
        // The spent challenge is read with the session: one spent already is refused at once.
        let mut more = vec![person_key.clone()];
        more.extend(challenge.iter().map(|(key, _)| key.clone()));
        for _ in 0..CONFLICT_RETRIES {
            let now = self.ports.clock.now();
            // The source address's meters, the phone number's, and the deployment's texts.
            let mut meters = self.address_meters(Action::SendCode, now);
            if let Destination::Phone(phone) = &destination {
                meters.extend(limits::phone_meters(&self.hasher, limits, phone.as_str(), now));
                meters.push(limits::sms_budget(&self.hasher, limits, now));
            }
            let mut read = self.read_session_counted(id, &more, &limits::meter_keys(&meters)).await?;
            if !read.policy.allows_method(method) {
                return Err(FlowError::MethodNotAvailable);
            }
            read.policy.allows_destination(&destination)?;
            if challenge.is_some() && read.rest.pop().flatten().is_some() {
                return Err(FlowError::ChallengeFailed);
            }
            let person = decode::<PersonLimits>(&person_key, read.rest.pop().flatten())?;
            let mut session = read.live()?;
            if session.value.codes_asked > 0 && challenge.is_none() {
                return Err(FlowError::ChallengeFailed);
            }
            if session.value.failures_for(method) >= self.settings.max_code_failures {
                return Err(FlowError::TooManyAttempts);
            }
            let subject = session.value.subject.as_ref();
            let mut person = self
                .within_limits(person, Counted::Send(method), &meters, &read.counters, subject, Some(method), now)
                .await?;
            if !session.value.state.awaits(method) {
                return Err(FlowError::AlreadyVerified);
            }
            let deliver = DeliveredCode.issue(
                &self.attempt(id, method),
                self.settings.code_ttl_secs,
                &mut session.value,
                &destination,
                &code,
            );
            person.value.note(Counted::Send(method), limits, now);
            session.value.codes_asked += 1;
            // Recorded either way, in the same write: a code asked for a destination that is
            // not registered is worth an administrator's eye.
            let mut sent = Happened::new(EventKind::CodeSent, session.value.subject.as_ref())
                .method(method)
                .destination(destination.hint());
            if !deliver {
                sent = sent.failed("destination_not_registered");
            }
            let mut writes = vec![put(&session_key(&self.session_hash(id)), &session)?, put(&person_key, &person)?];
            writes.extend(challenge.iter().map(|(_, spend)| spend.clone()));
            writes.extend(self.audit(sent)?);
            // Every request counts on the address and the number; only a text or call made
            // spends the day's budget (the last meter of a phone), which a decoy counts by 0:
            // the write is the same whoever asks.
            let budgeted = matches!(destination, Destination::Phone(_));
            writes.extend(meters.iter().enumerate().map(|(i, meter)| {
                let spends = !budgeted || i + 1 < meters.len() || deliver;
                meter.count_by(i64::from(spends))
            }));
            match save_all(&*self.ports.store, &writes).await {
                Ok(()) => {
                    let delivery = deliver.then(|| Delivery {
                        method,
                        destination: destination.clone(),
                        code: code.clone(),
                        subject: session.value.subject.clone(),
                    });
                    return Ok((CodeSent { expires_in: self.settings.code_ttl_secs }, delivery));
                }
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(FlowError::Conflict)
    }

    /// Sends a reset code once the answer is decided. A failed delivery never changes the
    /// answer (which would tell that the destination is registered): it is logged and audited.
    pub async fn deliver(&self, delivery: Delivery) {
        let Delivery { method, destination, code, subject } = delivery;
        let (destination, subject) = (&destination, subject.as_ref());
        if let Err(e) = self.deliver_code(method, destination, &code, CodePurpose::Reset).await {
            tracing::error!(error = %e, "a reset code could not be delivered");
            let failed = Happened::new(EventKind::CodeSent, subject)
                .method(method)
                .destination(destination.hint())
                .failed("delivery_failed");
            let recorded = match self.audit(failed) {
                Ok(writes) => save_all(&*self.ports.store, &writes).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            if let Err(e) = recorded {
                tracing::warn!(error = %e, "a failed delivery could not be audited");
            }
        }
    }

    /// The security questions to answer in this session: drawn at random from the registered
    /// ones (or the name's decoys) the first time, and the same until they are answered.
    #[tracing::instrument(skip_all)]
    pub async fn reset_questions(&self, id: &SessionId) -> Result<QuestionsDrawn, FlowError> {
        let method = MethodKind::Questions;
        for _ in 0..CONFLICT_RETRIES {
            let mut read = self.read_session(id, &[]).await?;
            if !read.policy.allows_method(method) {
                return Err(FlowError::MethodNotAvailable);
            }
            let mut session = read.live()?;
            if !session.value.state.awaits(method) {
                return Err(FlowError::AlreadyVerified);
            }
            if session.value.failures_for(method) >= self.settings.max_code_failures {
                return Err(FlowError::TooManyAttempts);
            }
            let drawn = session.value.answered_mut(method).drawn.clone();
            let drawn = if drawn.is_empty() {
                let candidates = questions::candidates(&session.value);
                let n = read.policy.questions_to_reset().min(candidates.len());
                let drawn = questions::draw(&*self.ports.rng, &candidates, n);
                session.value.answered_mut(method).drawn = drawn.clone();
                match save(&*self.ports.store, &session_key(&self.session_hash(id)), &session).await {
                    Ok(_) => drawn,
                    Err(StoreError::Conflict) => continue,
                    Err(e) => return Err(e.into()),
                }
            } else {
                drawn
            };
            let questions = drawn
                .into_iter()
                .map(|id| ShownQuestion { text: questions::text_in(&session.value, &id), id })
                .collect();
            return Ok(QuestionsDrawn { questions });
        }
        Err(FlowError::Conflict)
    }

    /// Checks a proof of `method`. Every wrong proof counts, whether or not anything was sent;
    /// the fifth kills the method for this session. A proof that may be used once (an
    /// authenticator code) is spent in the same write as the session; one already spent counts
    /// as wrong.
    #[tracing::instrument(skip_all, fields(method = %method))]
    pub async fn verify_method<'p>(
        &self,
        id: &SessionId,
        method: MethodKind,
        proof: impl Into<Proof<'p>>,
    ) -> Result<MethodVerified, FlowError> {
        let proof = proof.into();
        let token = ResetToken::generate(&*self.ports.rng);
        // A record the proof must not have spent yet, read with the session after a conflict.
        let mut once_seen: Option<RecordKey> = None;
        let limits = &self.settings.limits;
        let person_key = limits::person_key(id.limits_tag());
        for _ in 0..CONFLICT_RETRIES {
            let now = self.ports.clock.now();
            let meters = self.address_meters(Action::Verify, now);
            let mut more = once_seen.clone().into_iter().collect::<Vec<_>>();
            more.push(person_key.clone());
            let mut read = self.read_session_counted(id, &more, &limits::meter_keys(&meters)).await?;
            let verifier = verifier(method).filter(|_| read.policy.allows_method(method));
            let Some(verifier) = verifier else {
                return Err(FlowError::MethodNotAvailable);
            };
            let person = decode::<PersonLimits>(&person_key, read.rest.pop().flatten())?;
            let already_spent = read.rest.pop().flatten().is_some();
            let mut session = read.live()?;
            if session.value.state.verified().contains(&method) {
                return Err(FlowError::AlreadyVerified);
            }
            // A method this session killed stays dead, whatever the limits say.
            if session.value.failures_for(method) >= self.settings.max_code_failures {
                return Err(FlowError::TooManyAttempts);
            }
            // Tries count across sessions, known names or not; wrong ones towards the block.
            let subject = session.value.subject.as_ref();
            let mut person = self
                .within_limits(person, Counted::Attempt(method), &meters, &read.counters, subject, Some(method), now)
                .await?;
            let mut writes = Vec::new();
            let outcome = match verifier.verify(&self.attempt(id, method), &mut session.value, &proof).await {
                Verdict::RefusedUnchanged(e) => return Err(e),
                Verdict::Refused(e) => Err(e),
                Verdict::Proved { once: Some(once), .. } if already_spent && once_seen.as_ref() == Some(&once.key) => {
                    Err(session.value.refuse_replay(method, self.settings.max_code_failures))
                }
                Verdict::Proved { once, .. } => {
                    let state = std::mem::replace(&mut session.value.state, ResetState::Started);
                    let (required, must) = (session.value.required, session.value.must_prove);
                    session.value.state = state.prove(method, required, must, || self.token_hash(id, &token))?;
                    if let Some(once) = once {
                        writes.push(spend(&once.key, once.until)?);
                        once_seen = Some(once.key);
                    }
                    Ok(())
                }
            };
            writes.push(put(&session_key(&self.session_hash(id)), &session)?);
            person.value.note(Counted::Attempt(method), limits, now);
            if outcome.is_err() {
                person.value.note(Counted::Failure, limits, now);
            }
            writes.push(put(&person_key, &person)?);
            writes.extend(meters.iter().map(Meter::count));
            let subject = session.value.subject.as_ref();
            let happened = match &outcome {
                Ok(()) => Happened::new(EventKind::VerificationPassed, subject),
                Err(e) if session.value.failures_for(method) >= self.settings.max_code_failures => {
                    Happened::new(EventKind::Blocked, subject).reason(e)
                }
                Err(e) => Happened::new(EventKind::VerificationFailed, subject).reason(e),
            };
            writes.extend(self.audit(happened.method(method))?);
            match save_all(&*self.ports.store, &writes).await {
                Ok(()) => session.version += 1,
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
            outcome?;
            let verified = session.value.state.verified().to_vec();
            let reset_token = matches!(session.value.state, ResetState::TokenIssued { .. }).then(|| token.clone());
            // With the token issued nothing remains; without it, at least one method does.
            let remaining = match reset_token {
                Some(_) => 0,
                None => session.value.required.saturating_sub(verified.len()).max(1),
            };
            let locked = reset_token.as_ref().map(|_| session.value.locked);
            let unlock_offered = locked
                .map(|locked| locked && read.policy.unlock_without_reset && self.ports.directory.lockout().is_some());
            return Ok(MethodVerified { verified, remaining, reset_token, locked, unlock_offered });
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
        // An unlock needs a directory with a lockout; asked before anything is claimed.
        let unlocker = match completion {
            Completion::UnlockOnly => Some(self.ports.directory.lockout().ok_or(FlowError::UnlockNotAvailable)?),
            Completion::NewPassword(_) => None,
        };
        let key = session_key(&self.session_hash(id));
        // Claim the token with a conditional write: of concurrent completions one wins.
        let Claimed { mut session, password, username, policy, limits_version } =
            self.claim_token(id, &key, &self.token_hash(id, token), &completion).await?;

        // After a partly applied change, only the part still missing is written.
        let finishing = session.value.partly_written;
        let applied = match (&password, unlocker) {
            (Some(password), _) if finishing => self.ports.directory.finish_password(&username, password).await,
            (Some(password), _) => self.ports.directory.set_password(&username, password).await,
            (None, Some(lockout)) => lockout.unlock(&username).await,
            (None, None) => Err(DirectoryError::Unavailable(Unavailable::new("neither a password nor an unlock"))),
        };
        let unlock_only = password.is_none();
        let proved = session.value.state.verified().to_vec();
        if let Err(e) = applied {
            // Nothing changed in the directory, or (hybrid) only its first half: give the token
            // back so the person can try again, or finish.
            let partly = matches!(e, DirectoryError::PartlyApplied { .. });
            if partly {
                tracing::error!(error = %e, "the new password is written on premises only");
            }
            let e = FlowError::from(e);
            session.value.state = session.value.state.clone().release_token();
            session.value.partly_written |= partly;
            let kind = if partly { EventKind::WritebackIncomplete } else { EventKind::ResetFailed };
            let failed = Happened::new(kind, Some(&username)).methods(&proved).reason(&e);
            if let Err(release) = self.save_with_event(&key, &session, failed).await {
                tracing::error!(error = %release, "a claimed reset token could not be released");
            }
            if partly && !finishing {
                // A password did change: the person (and, for an administrator, the others)
                // are told now, whether or not the cloud half is ever finished.
                self.tell_of_reset(&policy, &username, false, &proved, &session.value).await;
            }
            return Err(e);
        }
        session.value.state = session.value.state.clone().complete(self.ports.clock.now())?;
        let kind = if unlock_only { EventKind::Unlocked } else { EventKind::ResetSucceeded };
        if let Err(e) =
            self.save_with_event(&key, &session, Happened::new(kind, Some(&username)).methods(&proved)).await
        {
            // The password is changed; the session stays claimed, so the token stays spent.
            tracing::error!(error = %e, "a completed reset could not be recorded");
        }
        // A successful reset starts the name's limits afresh.
        if limits_version > 0 {
            if let Err(e) = self.ports.store.delete(&limits::person_key(id.limits_tag()), limits_version).await {
                tracing::warn!(error = %e, "the limits of a reset name could not be cleared");
            }
        }
        if !unlock_only {
            if let Err(e) = self.ports.directory.sign_out_everywhere(&username).await {
                tracing::warn!(error = %e, "sessions elsewhere could not be ended");
            }
        }
        // The methods the claim checked against the registration: every address registered now
        // (told already when the first half of a hybrid change was written).
        if !finishing {
            self.tell_of_reset(&policy, &username, unlock_only, &proved, &session.value).await;
        }
        tracing::info!(unlock_only, "reset completed");
        Ok(ResetCompleted { done: true })
    }

    /// Moves the session to `Completing` if the token matches, every method proved is still
    /// registered, and the new password meets the rules. The session is read, then claimed in
    /// one transaction with a check that the registration is still the version the session
    /// opened with; only when it changed is the registration read to see whether the proved
    /// methods survived the change.
    async fn claim_token(
        &self,
        id: &SessionId,
        key: &RecordKey,
        presented: &Digest,
        completion: &Completion,
    ) -> Result<Claimed, FlowError> {
        let mut read = self.read_session(id, &[limits::person_key(id.limits_tag())]).await?;
        let limits_version = read.rest.pop().flatten().map_or(0, |limits| limits.version);
        let (mut policy, mut session) = (read.policy.clone(), read.live()?);
        for _ in 0..CONFLICT_RETRIES {
            let claimed = session.value.state.clone().claim_token(presented)?;
            let username = session.value.subject.clone().ok_or(FlowError::InvalidToken)?;
            let password = match completion {
                // With writeback off, nothing is written to the directory: the helpdesk resets.
                Completion::NewPassword(_) if !policy.writeback => return Err(FlowError::WritebackOff),
                Completion::UnlockOnly if !policy.unlock_without_reset => return Err(FlowError::UnlockNotAvailable),
                // A password half written is finished, not traded for an unlock.
                Completion::UnlockOnly if session.value.partly_written => return Err(FlowError::WritebackIncomplete),
                Completion::NewPassword(raw) => {
                    match NewPassword::parse(secrecy::ExposeSecret::expose_secret(raw), &policy.password, &username) {
                        Ok(password) => Some(password),
                        Err(reasons) => {
                            let refused = FlowError::PasswordRejected(reasons);
                            let proved = session.value.state.verified().to_vec();
                            let failed = Happened::new(EventKind::ResetFailed, Some(&username))
                                .methods(&proved)
                                .reason(&refused);
                            if let Err(e) = save_all(&*self.ports.store, &self.audit(failed)?).await {
                                tracing::warn!(error = %e, "a refused password could not be audited");
                            }
                            return Err(refused);
                        }
                    }
                }
                Completion::UnlockOnly => None,
            };
            let registration_key = registration_key(&username);
            let mut claiming = session.clone();
            claiming.value.state = claimed;
            let writes = [
                Write::Check { key: registration_key.clone(), version: session.value.registration_version },
                put(key, &claiming)?,
            ];
            match save_all(&*self.ports.store, &writes).await {
                Ok(()) => {
                    claiming.version += 1;
                    return Ok(Claimed { session: claiming, password, username, policy, limits_version });
                }
                Err(StoreError::Conflict) => {}
                Err(e) => return Err(e.into()),
            }
            // The session or the registration changed: read both, now that the name is known.
            let mut read = self.read_session(id, std::slice::from_ref(&registration_key)).await?;
            let registration = decode::<Registration>(&registration_key, read.rest.pop().flatten())?;
            policy = read.policy.clone();
            session = read.live()?;
            let current = registration.unwrap_or_else(|| Versioned::new(Registration::default()));
            // A method removed since it was proved no longer counts.
            if !session.value.proved_methods().all(|(id, destination)| current.value.still_has(id, destination)) {
                return Err(FlowError::MethodNotAvailable);
            }
            session.value.methods = current.value.methods;
            session.value.registration_version = current.version;
        }
        Err(FlowError::Conflict)
    }
}

impl Sspr {
    /// Tells the person of a reset (every registered address and the directory's) and, after
    /// an administrator's, every other administrator, as the policy says. A notice that cannot
    /// be sent is logged, never fatal: the password is changed already.
    async fn tell_of_reset(
        &self,
        policy: &Policy,
        username: &Username,
        unlock_only: bool,
        proved: &[MethodKind],
        session: &ResetSession,
    ) {
        if !policy.notify_user && !policy.notify_admins {
            return;
        }
        let notice = ResetNotice {
            username: username.clone(),
            unlock_only,
            at: self.ports.clock.now(),
            source_ip: current_request().source_ip,
            methods: proved.to_vec(),
            helpdesk: policy.helpdesk.as_ref().map(|h| h.as_str().to_owned()),
        };
        let branding = &self.settings.branding;
        if policy.notify_user {
            let mut to: BTreeMap<String, &Email> = emails_of(&session.methods).map(|e| (e.to_string(), e)).collect();
            if let Some(email) = &session.directory_email {
                to.insert(email.to_string(), email);
            }
            match branding.reset_notice(&notice) {
                Ok(message) => self.notify_all(to.into_values(), &message).await,
                Err(e) => tracing::error!(error = %e, "the reset notice could not be written"),
            }
        }
        if policy.notify_admins && session.administrator {
            let mut to = BTreeMap::new();
            for group in &self.settings.admin_groups {
                match self.ports.directory.members_of(group).await {
                    Ok(members) => to.extend(
                        members
                            .into_iter()
                            .filter(|m| &m.username != username)
                            .filter_map(|m| m.email)
                            .map(|e| (e.to_string(), e)),
                    ),
                    Err(e) => tracing::warn!(error = %e, "the administrators to tell could not be listed"),
                }
            }
            match branding.admin_reset_notice(&notice) {
                Ok(message) => self.notify_all(to.values(), &message).await,
                Err(e) => tracing::error!(error = %e, "the administrators' notice could not be written"),
            }
        }
    }

    /// Saves the session together with the audit event of what just happened to it.
    async fn save_with_event(
        &self,
        key: &RecordKey,
        session: &Versioned<ResetSession>,
        happened: Happened,
    ) -> Result<(), StoreError> {
        let mut writes = vec![put(key, session)?];
        writes.extend(self.audit(happened)?);
        save_all(&*self.ports.store, &writes).await
    }
}

struct SessionRead {
    policy: Policy,
    session: Option<Versioned<ResetSession>>,
    rest: Vec<Option<StoredRecord>>,
    /// The meters read with the session, in the order asked.
    counters: Vec<i64>,
    now: crate::types::Timestamp,
}

impl SessionRead {
    /// The session, if it exists and has not expired.
    fn live(&mut self) -> Result<Versioned<ResetSession>, FlowError> {
        let session = self.session.take().ok_or(FlowError::InvalidSession)?;
        if session.value.is_expired(self.now) {
            return Err(FlowError::SessionExpired);
        }
        Ok(session)
    }
}

struct Claimed {
    session: Versioned<ResetSession>,
    password: Option<NewPassword>,
    username: Username,
    /// The policy the claim was made under.
    policy: Policy,
    /// The version of the name's limits when the session was read (0: none).
    limits_version: u64,
}

#[cfg(test)]
mod tests;
