//! Registration of security questions: chosen from the bank (or written, where the policy
//! allows), checked against the rules, and saved with each answer's Argon2id hash — never to
//! an administrator (docs/security.md, "Security questions").

use secrecy::{ExposeSecret as _, SecretString};
use serde::Serialize;

use super::SignedIn;
use crate::audit::{EventKind, Happened};
use crate::methods::questions::{self, check_registration, hash_answer, Answer, HeldAnswer, Question, BANK};
use crate::policy::Policy;
use crate::ports::StoreError;
use crate::records::{decode, put, registration_key, save_all, Held, RegisteredMethod, Registration, Versioned};
use crate::registration::RegistrationStatus;
use crate::types::{MethodId, MethodKind, ParseError};
use crate::{FlowError, Sspr, CONFLICT_RETRIES};

/// What the registration page offers.
#[derive(Debug, Serialize)]
pub struct QuestionBank {
    pub bank: Vec<questions::ShownQuestion>,
    pub to_register: usize,
    pub custom_allowed: bool,
}

impl Sspr {
    /// Whether this person may register security questions: the policy enables them, the
    /// person is in scope, and is no administrator.
    async fn may_use_questions(&self, policy: &Policy, who: &SignedIn) -> Result<(), FlowError> {
        if !policy.allows_method(MethodKind::Questions) {
            return Err(FlowError::MethodNotAvailable);
        }
        match self.ports.directory.find_user(&who.username).await? {
            Some(user) if self.is_administrator(&user) => Err(FlowError::MethodNotAvailable),
            Some(user) if policy.covers(&user) => Ok(()),
            _ => Err(FlowError::NotEnabled),
        }
    }

    /// The bank of questions, and how many to register.
    #[tracing::instrument(skip_all)]
    pub async fn question_bank(&self, who: &SignedIn) -> Result<QuestionBank, FlowError> {
        let policy = self.policy().await?;
        self.may_use_questions(&policy, who).await?;
        Ok(QuestionBank {
            bank: BANK
                .iter()
                .map(|(id, text)| questions::ShownQuestion { id: (*id).to_owned(), text: (*text).to_owned() })
                .collect(),
            to_register: policy.questions_to_register(),
            custom_allowed: self.settings.questions_custom_allowed,
        })
    }

    /// Registers security questions, replacing any registered before; needs a recent sign-in.
    /// `chosen` pairs a bank id (or custom text) with its answer.
    #[tracing::instrument(skip_all, fields(count = chosen.len()))]
    pub async fn register_questions(
        &self,
        who: &SignedIn,
        chosen: &[(String, SecretString)],
    ) -> Result<RegistrationStatus, FlowError> {
        let key = registration_key(&who.username);
        let (policy, mut records) = self.read_with_policy(std::slice::from_ref(&key)).await?;
        self.may_use_questions(&policy, who).await?;
        self.require_recent_sign_in(who)?;
        let parsed = chosen
            .iter()
            .map(|(q, a)| {
                Ok((Question::parse(q, self.settings.questions_custom_allowed)?, Answer::normalise(a.expose_secret())?))
            })
            .collect::<Result<Vec<_>, ParseError>>()?;
        let checked = check_registration(parsed, policy.questions_to_register())?;
        // Argon2id is slow on purpose: it runs off the async worker threads.
        let rng = std::sync::Arc::clone(&self.ports.rng);
        let held = tokio::task::spawn_blocking(move || {
            let mut custom = 0;
            checked
                .iter()
                .map(|(question, answer)| {
                    let (id, text) = match question {
                        Question::Bank(id) => ((*id).to_owned(), None),
                        Question::Custom(text) => {
                            custom += 1;
                            (format!("c{custom}"), Some(text.clone()))
                        }
                    };
                    HeldAnswer { id, custom: text, hash: hash_answer(&*rng, answer) }
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| crate::ports::Unavailable::new(format!("hashing answers: {e}")))?;

        let mut registration = decode::<Registration>(&key, records.pop().flatten())?
            .unwrap_or_else(|| Versioned::new(Registration::default()));
        for _ in 0..CONFLICT_RETRIES {
            let now = self.ports.clock.now();
            registration.value.methods.retain(|m| m.kind != MethodKind::Questions);
            let added = RegisteredMethod {
                id: MethodId::generate(&*self.ports.rng),
                kind: MethodKind::Questions,
                held: Held::Answers { answers: held.clone() },
                added_at: now,
            };
            registration.value.methods.push(added.clone());
            registration.value.confirmed_at = Some(now);
            let mut writes = vec![put(&key, &registration)?];
            writes.extend(self.audit(
                Happened::new(EventKind::MethodRegistered, Some(&who.username)).method(MethodKind::Questions),
            )?);
            match save_all(&*self.ports.store, &writes).await {
                Ok(()) => return self.announce_added(&policy, who, &registration.value, &added).await,
                Err(StoreError::Conflict) => {
                    registration = crate::records::load::<Registration>(&*self.ports.store, &key)
                        .await?
                        .unwrap_or_else(|| Versioned::new(Registration::default()));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(FlowError::Conflict)
    }
}
