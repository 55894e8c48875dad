//! Security questions (S6 and "Security questions" in docs/security.md): a bank of predefined
//! questions, custom ones where the policy allows, answers normalised and kept only as
//! Argon2id hashes. At reset a random subset of the registered questions is drawn for the
//! session and redrawn after a wrong answer; a name with no questions (unknown, unregistered,
//! or an administrator, who may never use them) gets a stable, plausible set from the bank, and
//! every check runs Argon2 as many times whoever asks.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization as _;
use zeroize::Zeroizing;

use super::{Attempt, Proof, Verdict, Verifier};
use crate::ports::Rng;
use crate::reset::session::ResetSession;
use crate::secret::KeyedHasher;
use crate::types::{MethodKind, ParseError};
use crate::FlowError;

/// The fewest and most questions a person registers, and answers at reset.
pub const MIN_QUESTIONS: usize = 3;
pub const MAX_QUESTIONS: usize = 5;
/// Limits of a custom question, and of an answer once normalised, in characters.
pub const QUESTION_MAX_CHARS: usize = 200;
pub const ANSWER_MIN_CHARS: usize = 3;
pub const ANSWER_MAX_CHARS: usize = 40;
/// Anything longer is refused before it is normalised or hashed.
const RAW_ANSWER_MAX_BYTES: usize = 400;

/// The predefined questions: an id that never changes, and the text.
pub const BANK: [(&str, &str); 24] = [
    ("q01", "In what city were you born?"),
    ("q02", "In what city did your parents meet?"),
    ("q03", "What was the name of your first pet?"),
    ("q04", "What was the first name of your first boss?"),
    ("q05", "What was the name of the street you grew up on?"),
    ("q06", "What was the name of your primary school?"),
    ("q07", "What was the make and model of your first car?"),
    ("q08", "What is the middle name of your oldest sibling?"),
    ("q09", "What was your childhood nickname?"),
    ("q10", "What was the first concert you went to?"),
    ("q11", "In what town was your first job?"),
    ("q12", "What is the first name of your oldest cousin?"),
    ("q13", "What was the name of your favourite teacher?"),
    ("q14", "What was the name of your first stuffed toy?"),
    ("q15", "Where did you go on your first holiday abroad?"),
    ("q16", "What was the first film you saw in a cinema?"),
    ("q17", "What is your maternal grandmother's first name?"),
    ("q18", "What is your paternal grandfather's first name?"),
    ("q19", "What was the name of your childhood best friend?"),
    ("q20", "In what city or town did you meet your partner?"),
    ("q21", "What was the name of the hospital where you were born?"),
    ("q22", "What was your favourite food as a child?"),
    ("q23", "What was the name of the first company you worked for?"),
    ("q24", "What was the first book you loved to read?"),
];

/// The text of a bank question.
pub fn bank_text(id: &str) -> Option<&'static str> {
    BANK.iter().find(|(bank_id, _)| *bank_id == id).map(|(_, text)| *text)
}

/// A question a person picks to register: from the bank, or their own words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Question {
    Bank(&'static str),
    Custom(String),
}

impl Question {
    /// A bank id, or — where the policy allows custom questions — any other text of up to 200
    /// characters.
    pub fn parse(s: &str, custom_allowed: bool) -> Result<Self, ParseError> {
        let s = s.trim();
        if let Some((id, _)) = BANK.iter().find(|(id, _)| *id == s) {
            return Ok(Question::Bank(id));
        }
        if !custom_allowed {
            return Err(ParseError::new("question", "is not a question of the bank"));
        }
        let text: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.chars().count() < 10 || text.chars().count() > QUESTION_MAX_CHARS {
            return Err(ParseError::new("question", "must be 10 to 200 characters"));
        }
        if text.chars().any(char::is_control) {
            return Err(ParseError::new("question", "may not contain control characters"));
        }
        Ok(Question::Custom(text))
    }

    pub fn text(&self) -> &str {
        match self {
            Question::Bank(id) => bank_text(id).unwrap_or_default(),
            Question::Custom(text) => text,
        }
    }
}

/// An answer, normalised: Unicode NFKC, case-folded, inner spaces collapsed, trimmed. Never
/// printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Answer(Zeroizing<String>);

impl Answer {
    pub fn normalise(raw: &str) -> Result<Self, ParseError> {
        if raw.len() > RAW_ANSWER_MAX_BYTES {
            return Err(ParseError::new("answer", "is too long"));
        }
        let nfkc: String = raw.nfkc().collect();
        let folded: String = caseless::default_case_fold_str(&nfkc).nfkc().collect();
        let words: Vec<&str> = folded.split_whitespace().collect();
        Ok(Self(Zeroizing::new(words.join(" "))))
    }

    fn expose(&self) -> &str {
        &self.0
    }

    fn chars(&self) -> usize {
        self.0.chars().count()
    }
}

impl fmt::Debug for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Answer([redacted])")
    }
}

/// Words too common to count as giving a question's answer away.
const COMMON_WORDS: [&str; 30] = [
    "the", "and", "was", "were", "what", "who", "whom", "whose", "which", "where", "when", "why", "how", "your", "you",
    "did", "does", "for", "from", "that", "this", "with", "are", "has", "have", "had", "not", "but", "its", "our",
];

fn words(s: &str) -> BTreeSet<String> {
    let folded: String = caseless::default_case_fold_str(&s.nfkc().collect::<String>());
    folded
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 3 && !COMMON_WORDS.contains(w))
        .map(str::to_owned)
        .collect()
}

/// The questions and answers a person registers, checked: 3 to 5 (at least what the policy
/// asks for), no question twice, no answer twice, each answer 3 to 40 characters and free of
/// its question's words.
pub fn check_registration(
    chosen: Vec<(Question, Answer)>,
    to_register: usize,
) -> Result<Vec<(Question, Answer)>, ParseError> {
    if chosen.len() < to_register.max(MIN_QUESTIONS) || chosen.len() > MAX_QUESTIONS {
        return Err(ParseError::new("answers", "must answer as many questions as asked, at most 5"));
    }
    let mut questions = BTreeSet::new();
    let mut answers = BTreeSet::new();
    for (question, answer) in &chosen {
        if !questions.insert(caseless::default_case_fold_str(question.text())) {
            return Err(ParseError::new("question", "is chosen twice"));
        }
        if !(ANSWER_MIN_CHARS..=ANSWER_MAX_CHARS).contains(&answer.chars()) {
            return Err(ParseError::new("answer", "must be 3 to 40 characters"));
        }
        if !answers.insert(answer.expose().to_owned()) {
            return Err(ParseError::new("answer", "is given twice: each question needs its own answer"));
        }
        if !words(answer.expose()).is_disjoint(&words(question.text())) {
            return Err(ParseError::new("answer", "may not contain words of its question"));
        }
    }
    Ok(chosen)
}

/// A registered question with its answer's Argon2id hash (a PHC string with its own salt).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldAnswer {
    /// A bank id, or `c1`…`c5` for a custom question.
    pub id: String,
    /// The words of a custom question.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<String>,
    pub hash: String,
}

impl HeldAnswer {
    pub fn text(&self) -> &str {
        self.custom.as_deref().or_else(|| bank_text(&self.id)).unwrap_or_default()
    }
}

impl fmt::Debug for HeldAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HeldAnswer {{ id: {:?}, .. }}", self.id)
    }
}

/// Argon2id, m=19456 KiB, t=2, p=1 (OWASP's first choice).
pub fn argon2() -> Argon2<'static> {
    let params = Params::new(19_456, 2, 1, None).expect("valid Argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The PHC string of `answer` under a fresh 16-byte salt. Slow on purpose: call it off the
/// async worker threads.
pub fn hash_answer(rng: &dyn Rng, answer: &Answer) -> String {
    let mut salt = [0u8; 16];
    rng.fill(&mut salt);
    let salt = SaltString::encode_b64(&salt).expect("16 bytes make a valid salt");
    argon2().hash_password(answer.expose().as_bytes(), &salt).expect("Argon2 hashes any answer").to_string()
}

/// Whether `answer` is the one hashed in `phc` (compared in constant time by the crate).
/// Slow on purpose: call it off the async worker threads.
pub fn answer_matches(answer: &Answer, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|hash| argon2().verify_password(answer.expose().as_bytes(), &hash).is_ok())
}

/// A hash no answer matches, with the same parameters, checked where no answer is held so a
/// check costs the same whoever asks.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let unguessable = hex::encode(rand::random::<[u8; 32]>());
        hash_answer(&crate::ports::SystemRng, &Answer(Zeroizing::new(unguessable)))
    })
}

/// `n` of `candidates`, drawn at random without repeats.
pub fn draw(rng: &dyn Rng, candidates: &[String], n: usize) -> Vec<String> {
    let mut pool = candidates.to_vec();
    let mut drawn = Vec::with_capacity(n.min(pool.len()));
    while drawn.len() < n && !pool.is_empty() {
        let mut bytes = [0u8; 4];
        rng.fill(&mut bytes);
        let i = usize::try_from(u32::from_le_bytes(bytes)).unwrap_or_default() % pool.len();
        drawn.push(pool.swap_remove(i));
    }
    drawn
}

/// The questions a name with none registered appears to have: `count` bank questions chosen by
/// a keyed hash of the name, the same every time it is asked, and unpredictable without the
/// pepper.
pub fn decoy_questions(hasher: &KeyedHasher, name: &str, count: usize) -> Vec<String> {
    let mut pool: Vec<&str> = BANK.iter().map(|(id, _)| *id).collect();
    let mut chosen = Vec::with_capacity(count);
    let folded = caseless::default_case_fold_str(name);
    for round in 0u8.. {
        if chosen.len() >= count || pool.is_empty() {
            break;
        }
        let digest = hasher.digest("decoy-questions", &[folded.as_bytes(), &[round]]).to_hex();
        let n = usize::from_str_radix(&digest[..8], 16).unwrap_or_default();
        chosen.push(pool.swap_remove(n % pool.len()).to_owned());
    }
    chosen
}

/// What a drawn question shows at reset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShownQuestion {
    pub id: String,
    pub text: String,
}

/// The questions a session's subject appears to have: the registered ones, or the session's
/// decoys.
pub fn candidates(session: &ResetSession) -> Vec<String> {
    match session.registered_kind(MethodKind::Questions).and_then(|m| m.answers()) {
        Some(answers) => answers.iter().map(|a| a.id.clone()).collect(),
        None => session.decoy_questions.clone(),
    }
}

/// The text of question `id` in a session.
pub fn text_in(session: &ResetSession, id: &str) -> String {
    let registered = session.registered_kind(MethodKind::Questions).and_then(|m| m.answers());
    registered
        .and_then(|answers| answers.iter().find(|a| a.id == id).map(|a| a.text().to_owned()))
        .or_else(|| bank_text(id).map(str::to_owned))
        .unwrap_or_default()
}

/// The verifier of security questions: every drawn question must be answered, and all rightly.
pub struct SecurityQuestions;

#[async_trait]
impl Verifier for SecurityQuestions {
    async fn verify(&self, attempt: &Attempt<'_>, session: &mut ResetSession, proof: &Proof<'_>) -> Verdict {
        let Proof::Answers(given) = proof else {
            return Verdict::RefusedUnchanged(FlowError::InvalidInput(ParseError::new(
                "answers",
                "are needed for security questions",
            )));
        };
        let method = attempt.method;
        if session.failures_for(method) >= attempt.max_failures {
            return Verdict::RefusedUnchanged(FlowError::TooManyAttempts);
        }
        let drawn = session.answered_mut(method).drawn.clone();
        if drawn.is_empty() {
            return Verdict::RefusedUnchanged(FlowError::NoQuestionsDrawn);
        }
        let given_ids: BTreeSet<&str> = given.iter().map(|(id, _)| id.as_str()).collect();
        let drawn_ids: BTreeSet<&str> = drawn.iter().map(String::as_str).collect();
        if given.len() != drawn.len() || given_ids != drawn_ids {
            return Verdict::RefusedUnchanged(FlowError::InvalidInput(ParseError::new(
                "answers",
                "must answer each question drawn, once",
            )));
        }
        let registered = session.registered_kind(method).cloned();
        let held = registered.as_ref().and_then(|m| m.answers());
        // One Argon2 check per drawn question, against the held hash or the decoy: the same
        // work whoever asks, and no early exit on the first wrong answer.
        let checks: Vec<(Answer, String, bool)> = drawn
            .iter()
            .map(|id| {
                let answer = given.iter().find(|(g, _)| g == id).map(|(_, a)| a.clone()).expect("checked above");
                match held.and_then(|h| h.iter().find(|a| &a.id == id)) {
                    Some(h) => (answer, h.hash.clone(), true),
                    None => (answer, decoy_hash().to_owned(), false),
                }
            })
            .collect();
        let right = tokio::task::spawn_blocking(move || {
            checks.iter().map(|(answer, hash, real)| answer_matches(answer, hash) && *real).fold(true, |all, r| all & r)
        })
        .await
        .unwrap_or(false);
        let answered = session.answered_mut(method);
        // Right or wrong, these questions are done: a wrong answer redraws the subset.
        answered.drawn.clear();
        match (right, registered) {
            (true, Some(m)) => {
                answered.proved = Some(m.id.clone());
                Verdict::Proved { id: m.id, once: None }
            }
            _ => {
                answered.failures += 1;
                Verdict::Refused(if answered.failures >= attempt.max_failures {
                    FlowError::TooManyAttempts
                } else {
                    FlowError::WrongAnswers
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::SystemRng;
    use crate::secret::Pepper;

    fn answer(s: &str) -> Answer {
        Answer::normalise(s).expect("an answer")
    }

    #[test]
    fn the_bank_has_at_least_twenty_distinct_questions() {
        let ids: BTreeSet<_> = BANK.iter().map(|(id, _)| id).collect();
        let texts: BTreeSet<_> = BANK.iter().map(|(_, t)| t).collect();
        assert!(BANK.len() >= 20);
        assert_eq!((ids.len(), texts.len()), (BANK.len(), BANK.len()));
        assert!(BANK.iter().all(|(_, t)| t.len() <= QUESTION_MAX_CHARS));
    }

    #[test]
    fn answers_are_normalised_before_anything_else() {
        // NFKC (the full-width letters and the ligature), case folding (ß folds to ss), inner
        // spaces collapsed, ends trimmed.
        assert_eq!(answer("  Ｍａｉｎ   STREET\t").expose(), "main street");
        assert_eq!(answer("Straße").expose(), answer("STRASSE").expose());
        assert_eq!(answer("ﬁsh").expose(), "fish");
        assert_eq!(format!("{:?}", answer("secret")), "Answer([redacted])");
        assert!(Answer::normalise(&"a".repeat(401)).is_err());
    }

    fn pick(pairs: &[(&str, &str)], custom: bool) -> Result<Vec<(Question, Answer)>, ParseError> {
        pairs.iter().map(|(q, a)| Ok((Question::parse(q, custom)?, answer(a)))).collect()
    }

    #[test]
    fn registrations_follow_the_rules() {
        let ok = pick(&[("q01", "Lisbon"), ("q03", "Rex the dog"), ("q07", "Fiat Panda")], false).expect("parsed");
        assert!(check_registration(ok, 3).is_ok());
        let cases: [(&[(&str, &str)], &str); 6] = [
            (&[("q01", "Lisbon"), ("q03", "Rex")], "answers"),
            (&[("q01", "Lisbon"), ("q01", "Porto"), ("q07", "Fiat")], "question"),
            (&[("q01", "Lisbon"), ("q03", " LISBON "), ("q07", "Fiat")], "answer"),
            (&[("q01", "Li"), ("q03", "Rex"), ("q07", "Fiat")], "answer"),
            (&[("q01", "Lisbon"), ("q03", "my pet Rex"), ("q07", "Fiat")], "answer"),
            (&[("q01", &"x".repeat(41)), ("q03", "Rex"), ("q07", "Fiat")], "answer"),
        ];
        for (pairs, field) in cases {
            let err = check_registration(pick(pairs, false).expect("parsed"), 3).expect_err("refused");
            assert_eq!(err.field, field, "{pairs:?}: {err}");
        }
        let five = [("q01", "aaa"), ("q02", "bbb"), ("q03", "ccc"), ("q04", "ddd"), ("q05", "eee")];
        assert!(check_registration(pick(&five, false).expect("parsed"), 5).is_ok());
        assert!(check_registration(pick(&five[..4], false).expect("parsed"), 5).is_err(), "the policy asks for 5");
        let six = [five.as_slice(), &[("q06", "fff")]].concat();
        assert!(check_registration(pick(&six, false).expect("parsed"), 3).is_err(), "at most 5");
    }

    #[test]
    fn custom_questions_only_where_allowed() {
        assert!(Question::parse("What is my favourite colour?", false).is_err());
        let q = Question::parse("  What is my   favourite colour? ", true).expect("custom");
        assert_eq!(q.text(), "What is my favourite colour?");
        assert!(Question::parse("short?", true).is_err());
        assert!(Question::parse(&"x".repeat(201), true).is_err());
        assert_eq!(Question::parse("q05", true), Ok(Question::Bank("q05")));
    }

    #[test]
    fn answers_are_argon2id_with_owasp_parameters_and_their_own_salt() {
        let a = answer("Lisbon");
        let h1 = hash_answer(&SystemRng, &a);
        let h2 = hash_answer(&SystemRng, &a);
        assert!(h1.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h1}");
        assert_ne!(h1, h2, "a salt per answer");
        assert!(!h1.to_lowercase().contains("lisbon"));
        assert!(answer_matches(&answer(" lisbon "), &h1));
        assert!(!answer_matches(&answer("Porto"), &h1));
        assert!(!answer_matches(&a, decoy_hash()));
        assert!(
            decoy_hash().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "a decoy check costs as much as a real one"
        );
        assert!(!answer_matches(&a, "not a hash"));
    }

    #[test]
    fn decoy_questions_are_stable_per_name_and_differ_between_names() {
        let hasher = KeyedHasher::new(Pepper::new(vec![9; 32]).expect("pepper"));
        let a = decoy_questions(&hasher, "nobody", 3);
        assert_eq!(a, decoy_questions(&hasher, "NOBODY", 3), "stable, whatever the case");
        assert_eq!(a.len(), 3);
        assert_eq!(a.iter().collect::<BTreeSet<_>>().len(), 3, "no repeats");
        assert!(a.iter().all(|id| bank_text(id).is_some()));
        let others: BTreeSet<Vec<String>> =
            (0..20).map(|i| decoy_questions(&hasher, &format!("someone-{i}"), 3)).collect();
        assert!(others.len() > 10, "names get different sets");
    }

    #[test]
    fn draws_are_subsets_without_repeats() {
        let candidates: Vec<String> = (1..=5).map(|i| format!("q0{i}")).collect();
        let drawn = draw(&SystemRng, &candidates, 3);
        assert_eq!(drawn.iter().collect::<BTreeSet<_>>().len(), 3);
        assert!(drawn.iter().all(|d| candidates.contains(d)));
        assert_eq!(draw(&SystemRng, &candidates[..2], 3).len(), 2, "never more than there are");
    }
}
