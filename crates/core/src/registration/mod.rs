//! Registration of recovery methods by a signed-in person (docs/architecture.md): a
//! destination is saved only after the code sent to it is confirmed; changes are announced on
//! the other channels. Each call reads once (its records with the policy) and writes once.

mod authenticator;
mod questions;
#[cfg(test)]
mod tests;

pub use questions::QuestionBank;

use std::collections::BTreeSet;

use serde::Serialize;

use crate::audit::{EventKind, Happened};
use crate::limits::{self, Counted, Meter, PersonLimits};
use crate::methods::delivered_code::CodePurpose;
use crate::notify::MethodChange;
use crate::policy::Policy;
use crate::ports::{StoreError, Write};
use crate::records::{
    decode, pending_key, put, registration_key, save, save_all, Held, PendingMethod, RegisteredMethod, Registration,
    Versioned,
};
use crate::secret::Digest;
use crate::types::{Code, Destination, MethodId, MethodKind, Timestamp, Username};
use crate::{FlowError, Sspr, CONFLICT_RETRIES};

/// Who is signed in, as the JWT authorizer (or the local sign-in) vouches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub username: Username,
    pub groups: Vec<String>,
    /// When the person signed in; `None` if the identity provider did not say.
    pub signed_in_at: Option<Timestamp>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct MethodSummary {
    pub id: String,
    pub kind: MethodKind,
    pub hint: String,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct RegistrationStatus {
    pub registered: bool,
    /// Whether the sign-in application should send the person to `/register` now.
    pub must_register: bool,
    /// The day re-confirmation falls due (`YYYY-MM-DD`, UTC): the last confirmation plus the
    /// policy's days; `None` with nothing registered or when the policy never asks.
    pub reconfirm_due: Option<String>,
    pub methods: Vec<MethodSummary>,
}

/// Whether a person may use self-service reset, and as an administrator: administrators always
/// may, whatever the enablement, and must prove two different methods (docs/security.md,
/// "Administrators").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    pub in_scope: bool,
    pub administrator: bool,
}

impl Scope {
    pub const OUT: Scope = Scope { in_scope: false, administrator: false };

    pub fn of(sspr: &Sspr, policy: &Policy, user: &crate::ports::DirectoryUser) -> Scope {
        let administrator = user.enabled && sspr.is_administrator(user);
        Scope { in_scope: administrator || policy.covers(user), administrator }
    }

    /// Methods to prove at reset: the policy's, and two for an administrator.
    pub fn methods_required(self, policy: &Policy) -> usize {
        if self.administrator {
            2
        } else {
            policy.methods_required()
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ConfirmationSent {
    pub expires_in: i64,
}

impl Sspr {
    fn confirmation_hash(&self, user: &Username, kind: MethodKind, destination: &Destination, code: &Code) -> Digest {
        self.hasher.digest(
            "confirm-code",
            &[
                user.as_str().as_bytes(),
                kind.as_str().as_bytes(),
                destination.as_str().as_bytes(),
                code.expose().as_bytes(),
            ],
        )
    }

    /// The person's registration, with the policy, in one round trip.
    async fn read_registration(&self, user: &Username) -> Result<(Policy, Versioned<Registration>), FlowError> {
        let key = registration_key(user);
        let (policy, mut records) = self.read_with_policy(std::slice::from_ref(&key)).await?;
        let registration = decode::<Registration>(&key, records.pop().flatten())?
            .unwrap_or_else(|| Versioned::new(Registration::default()));
        Ok((policy, registration))
    }

    /// Whether this person may use self-service reset at all, and whether as an administrator.
    async fn scope(&self, policy: &Policy, who: &SignedIn) -> Result<Scope, FlowError> {
        Ok(match self.ports.directory.find_user(&who.username).await? {
            Some(user) => Scope::of(self, policy, &user),
            None => Scope::OUT,
        })
    }

    fn status_of(&self, registration: &Registration, scope: Scope, policy: &Policy) -> RegistrationStatus {
        let registered = !registration.methods.is_empty();
        let now = self.ports.clock.now();
        let due = registration.reconfirm_due(policy.reconfirm_days);
        // Methods the policy disabled do not count; one kind proves one method at reset.
        let usable: BTreeSet<MethodKind> =
            registration.methods.iter().map(|m| m.kind).filter(|k| policy.allows_method(*k)).collect();
        let too_few = usable.len() < scope.methods_required(policy);
        let overdue = due.is_some_and(|due| due <= now);
        RegistrationStatus {
            registered,
            must_register: scope.in_scope && policy.require_registration && (too_few || overdue),
            reconfirm_due: due.map(Timestamp::date),
            methods: registration
                .methods
                .iter()
                .map(|m| MethodSummary { id: m.id.as_str().to_owned(), kind: m.kind, hint: m.hint() })
                .collect(),
        }
    }

    /// "These are still right": the person re-confirms their methods as they are.
    #[tracing::instrument(skip_all)]
    pub async fn confirm_registration(&self, who: &SignedIn) -> Result<RegistrationStatus, FlowError> {
        let key = registration_key(&who.username);
        for _ in 0..CONFLICT_RETRIES {
            let (policy, mut registration) = self.read_registration(&who.username).await?;
            if registration.value.methods.is_empty() {
                return Err(FlowError::NothingToConfirm);
            }
            registration.value.confirmed_at = Some(self.ports.clock.now());
            let kinds: Vec<MethodKind> = registration.value.methods.iter().map(|m| m.kind).collect();
            let mut writes = vec![put(&key, &registration)?];
            writes
                .extend(self.audit(Happened::new(EventKind::MethodsReconfirmed, Some(&who.username)).methods(&kinds))?);
            match save_all(&*self.ports.store, &writes).await {
                Ok(()) => {}
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
            let scope = self.scope(&policy, who).await?;
            return Ok(self.status_of(&registration.value, scope, &policy));
        }
        Err(FlowError::Conflict)
    }

    /// Tells the person of a change on each channel in `to` that can carry a notice (email
    /// and SMS), once per address, unless the policy turned notices to people off.
    async fn announce(&self, policy: &Policy, who: &Username, change: &MethodChange, to: &[RegisteredMethod]) {
        if !policy.notify_user {
            return;
        }
        let branding = &self.settings.branding;
        let mut told = BTreeSet::new();
        for method in to {
            let Some(destination) = method.destination() else { continue };
            if !told.insert(destination.as_str().to_owned()) {
                continue;
            }
            let sent = match (method.kind, destination) {
                (MethodKind::Email, Destination::Email(email)) => {
                    self.ports.mailer.send_email(email, &branding.methods_changed(change)).await
                }
                (MethodKind::Sms, Destination::Phone(phone)) => {
                    self.notice_sms(phone, &branding.methods_changed_sms(change), Some(who)).await
                }
                _ => {
                    told.remove(destination.as_str());
                    continue;
                }
            };
            if let Err(e) = sent {
                tracing::warn!(error = %e, "a notice of a change could not be sent");
            }
        }
    }

    #[tracing::instrument(skip_all)]
    pub async fn registration_status(&self, who: &SignedIn) -> Result<RegistrationStatus, FlowError> {
        let (policy, registration) = self.read_registration(&who.username).await?;
        let scope = self.scope(&policy, who).await?;
        Ok(self.status_of(&registration.value, scope, &policy))
    }

    /// Changing recovery methods needs a sign-in of the last few minutes: a stolen, long-lived
    /// session must not be enough to add an attacker's phone or remove the owner's.
    fn require_recent_sign_in(&self, who: &SignedIn) -> Result<(), FlowError> {
        let now = self.ports.clock.now();
        let recent = who.signed_in_at.is_some_and(|at| {
            at.0 <= now.0.saturating_add(60) && now.0.saturating_sub(at.0) <= self.settings.recent_signin_secs
        });
        if recent {
            Ok(())
        } else {
            Err(FlowError::RecentSignInRequired)
        }
    }

    /// Whether this person may change their methods now: a recent sign-in, and in the policy's scope.
    async fn may_register(&self, policy: &Policy, who: &SignedIn) -> Result<(), FlowError> {
        self.require_recent_sign_in(who)?;
        if !self.scope(policy, who).await?.in_scope {
            return Err(FlowError::NotEnabled);
        }
        Ok(())
    }

    /// Tells the person's other channels that `added` was added, and answers with the status.
    async fn announce_added(
        &self,
        policy: &Policy,
        who: &SignedIn,
        registration: &Registration,
        added: &RegisteredMethod,
    ) -> Result<RegistrationStatus, FlowError> {
        let scope = self.scope(policy, who).await?;
        let others: Vec<RegisteredMethod> = registration
            .methods
            .iter()
            .filter(|m| m.id != added.id && (m.destination().is_none() || m.destination() != added.destination()))
            .cloned()
            .collect();
        let change = MethodChange { what: "added", method: added.describe(), at: added.added_at };
        self.announce(policy, &who.username, &change, &others).await;
        Ok(self.status_of(registration, scope, policy))
    }

    /// Sends a confirmation code to a destination the person wants to register; needs a recent
    /// sign-in.
    #[tracing::instrument(skip_all, fields(kind = %kind))]
    pub async fn begin_method(
        &self,
        who: &SignedIn,
        kind: MethodKind,
        destination: &str,
    ) -> Result<ConfirmationSent, FlowError> {
        let code = Code::generate(&*self.ports.rng, self.settings.code_digits);
        let key = pending_key(&who.username, kind);
        if !kind.is_delivered() {
            return Err(FlowError::MethodNotAvailable);
        }
        let destination = Destination::parse(kind, destination)?;
        let limits = &self.settings.limits;
        let person_key = limits::person_key(&limits::person_tag(&self.hasher, &who.username));
        for _ in 0..CONFLICT_RETRIES {
            let now = self.ports.clock.now();
            // The destination's meter, and for a phone the deployment's texts of the day.
            let mut meters = vec![limits::registration_meter(&self.hasher, limits, destination.as_str(), now)];
            if let Destination::Phone(_) = &destination {
                meters.push(limits::sms_budget(&self.hasher, limits, now));
            }
            let keys = [key.clone(), person_key.clone()];
            let (policy, mut records, values) = self.read_with_counters(&keys, &limits::meter_keys(&meters)).await?;
            if !policy.allows_method(kind) {
                return Err(FlowError::MethodNotAvailable);
            }
            policy.allows_destination(&destination)?;
            self.may_register(&policy, who).await?;
            let person = decode::<PersonLimits>(&person_key, records.pop().flatten())?;
            let who_name = Some(&who.username);
            let mut person =
                self.within_limits(person, Counted::Registration, &meters, &values, who_name, Some(kind), now).await?;
            let existing = decode::<PendingMethod>(&key, records.pop().flatten())?;
            let failures = existing.as_ref().map_or(0, |p| p.value.failures);
            if failures >= self.settings.max_code_failures {
                return Err(FlowError::TooManyAttempts);
            }
            let pending = Versioned {
                value: PendingMethod {
                    kind,
                    code_hash: self.confirmation_hash(&who.username, kind, &destination, &code).to_hex(),
                    destination: destination.clone(),
                    issued_at: now,
                    expires_at: now.plus_secs(self.settings.code_ttl_secs),
                    failures,
                },
                version: existing.map_or(0, |p| p.version),
            };
            person.value.note(Counted::Registration, limits, now);
            let mut writes = vec![put(&key, &pending)?, put(&person_key, &person)?];
            writes.extend(meters.iter().map(Meter::count));
            match save_all(&*self.ports.store, &writes).await {
                Ok(()) => {
                    self.deliver_code(kind, &destination, &code, CodePurpose::Confirm).await?;
                    return Ok(ConfirmationSent { expires_in: self.settings.code_ttl_secs });
                }
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(FlowError::Conflict)
    }

    /// Saves the pending destination if `code` is the one sent to it: the code is spent and
    /// the registration saved in one transaction.
    #[tracing::instrument(skip_all, fields(kind = %kind))]
    pub async fn confirm_method(
        &self,
        who: &SignedIn,
        kind: MethodKind,
        code: &Code,
    ) -> Result<RegistrationStatus, FlowError> {
        if kind == MethodKind::Totp {
            return self.confirm_totp(who, code).await;
        }
        let key = pending_key(&who.username, kind);
        let registration_key = registration_key(&who.username);
        for _ in 0..CONFLICT_RETRIES {
            let (policy, mut records) = self.read_with_policy(&[key.clone(), registration_key.clone()]).await?;
            let mut registration = decode::<Registration>(&registration_key, records.pop().flatten())?
                .unwrap_or_else(|| Versioned::new(Registration::default()));
            let mut pending =
                decode::<PendingMethod>(&key, records.pop().flatten())?.ok_or(FlowError::NoPendingCode)?;
            let now = self.ports.clock.now();
            let max = self.settings.max_code_failures;
            if pending.value.failures >= max {
                return Err(FlowError::TooManyAttempts);
            }
            let expected = self.confirmation_hash(&who.username, kind, &pending.value.destination, code);
            if !expected.matches_hex(&pending.value.code_hash) {
                pending.value.failures += 1;
                match save(&*self.ports.store, &key, &pending).await {
                    Ok(_) if pending.value.failures >= max => return Err(FlowError::TooManyAttempts),
                    Ok(_) => return Err(FlowError::InvalidCode),
                    Err(StoreError::Conflict) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            if now >= pending.value.expires_at {
                return Err(FlowError::CodeExpired);
            }
            let destination = pending.value.destination.clone();
            let added = match registration.value.find(kind, &destination) {
                Some(existing) => existing.clone(),
                None => {
                    let added = RegisteredMethod {
                        id: MethodId::generate(&*self.ports.rng),
                        kind,
                        held: Held::Destination { destination: destination.clone() },
                        added_at: now,
                    };
                    registration.value.methods.push(added.clone());
                    added
                }
            };
            registration.value.confirmed_at = Some(now);
            // Spending the code and saving the method happen together: a second confirmation
            // with the same code finds nothing pending.
            let mut writes = vec![
                Write::Delete { key: key.clone(), version: pending.version },
                put(&registration_key, &registration)?,
            ];
            writes.extend(
                self.audit(
                    Happened::new(EventKind::MethodRegistered, Some(&who.username))
                        .method(kind)
                        .destination(destination.hint()),
                )?,
            );
            match save_all(&*self.ports.store, &writes).await {
                Ok(()) => {}
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
            return self.announce_added(&policy, who, &registration.value, &added).await;
        }
        Err(FlowError::Conflict)
    }

    /// Removes a registered method; needs a recent sign-in.
    #[tracing::instrument(skip_all)]
    pub async fn remove_method(&self, who: &SignedIn, id: &MethodId) -> Result<RegistrationStatus, FlowError> {
        self.require_recent_sign_in(who)?;
        for _ in 0..CONFLICT_RETRIES {
            let (policy, mut registration) = self.read_registration(&who.username).await?;
            let before = registration.value.clone();
            let Some(removed) = before.methods.iter().find(|m| &m.id == id) else {
                return Err(FlowError::MethodNotFound);
            };
            registration.value.methods.retain(|m| &m.id != id);
            // Changing the methods is confirming the rest.
            let now = self.ports.clock.now();
            registration.value.confirmed_at = Some(now);
            let mut writes = vec![put(&registration_key(&who.username), &registration)?];
            let mut removal = Happened::new(EventKind::MethodRemoved, Some(&who.username)).method(removed.kind);
            if let Some(destination) = removed.destination() {
                removal = removal.destination(destination.hint());
            }
            writes.extend(self.audit(removal)?);
            match save_all(&*self.ports.store, &writes).await {
                Ok(()) => {}
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
            let scope = self.scope(&policy, who).await?;
            // Every channel that was registered hears of it, the removed one included.
            let change = MethodChange { what: "removed", method: removed.describe(), at: now };
            self.announce(&policy, &who.username, &change, &before.methods).await;
            return Ok(self.status_of(&registration.value, scope, &policy));
        }
        Err(FlowError::Conflict)
    }
}
