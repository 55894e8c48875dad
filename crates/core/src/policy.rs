//! The reset policy (docs/architecture.md, "Policy"): who may reset, with which methods and
//! how many, who is told, and where people get help. One versioned record of the table;
//! administrators read and replace it whole (`/v1/admin/policy`), and every value is checked
//! before it is stored.

use serde::{Deserialize, Serialize};

use crate::methods::questions::{MAX_QUESTIONS, MIN_QUESTIONS};
use crate::password::PasswordRules;
use crate::ports::DirectoryUser;
use crate::types::{Destination, Email, MethodKind, PhoneNumber};

/// Who may use self-service password reset (administrators always may).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Enablement {
    None,
    /// Members of the target group (nested membership counts).
    Selected,
    Everyone,
}

/// Where people get help: a `mailto:` address or an https URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Helpdesk(String);

impl Helpdesk {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        if let Some(address) = raw.strip_prefix("mailto:") {
            return Email::parse(address)
                .map(|_| Self(raw.to_owned()))
                .map_err(|_| "must be a mailto: address or an https URL");
        }
        let url = url::Url::parse(raw).map_err(|_| "must be a mailto: address or an https URL")?;
        if url.scheme() != "https" || url.host_str().is_none_or(str::is_empty) {
            return Err("must be a mailto: address or an https URL");
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not carry a user name or password");
        }
        Ok(Self(url.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Helpdesk {
    type Error = &'static str;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<Helpdesk> for String {
    fn from(h: Helpdesk) -> Self {
        h.0
    }
}

/// The policy. Read leniently from the store (records of earlier versions keep working, see
/// [`Policy::upgrade`]); the administrators' document is parsed strictly by
/// [`PolicyDocument::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Policy {
    pub enablement: Enablement,
    /// The group whose members may reset when the enablement is `selected`.
    pub target_group: Option<String>,
    pub methods_enabled: Vec<MethodKind>,
    /// Methods to prove at reset: 1 or 2 (administrators always 2).
    pub methods_required: u8,
    /// Whether the sign-in application sends people to register when they have too few methods.
    pub require_registration: bool,
    /// Days after which registered methods must be re-confirmed; 0: never.
    pub reconfirm_days: u16,
    /// Security questions a person registers (3–5).
    pub questions_to_register: u8,
    /// Security questions answered at reset (3–5, and no more than are registered).
    pub questions_to_reset: u8,
    /// Tell the person by email after a reset or an unlock.
    pub notify_user: bool,
    /// Tell every other administrator when an administrator resets their password.
    pub notify_admins: bool,
    /// Where people get help; `None`: "contact your administrator".
    pub helpdesk: Option<Helpdesk>,
    /// Whether a reset may write a new password to the directory; off, people are told to
    /// contact the helpdesk.
    pub writeback: bool,
    /// Whether a locked-out person may only unlock, keeping their password (where the
    /// directory has a lockout).
    pub unlock_without_reset: bool,
    pub password: PasswordRules,
    /// The countries (ISO 3166 alpha-2) whose numbers may get texts and calls; a number of any
    /// other country is refused at registration and at reset, before anything is sent.
    pub sms_countries: Vec<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            enablement: Enablement::Everyone,
            target_group: None,
            methods_enabled: vec![MethodKind::Email, MethodKind::Sms, MethodKind::Totp],
            methods_required: 1,
            require_registration: true,
            reconfirm_days: 180,
            questions_to_register: 3,
            questions_to_reset: 3,
            notify_user: true,
            notify_admins: true,
            helpdesk: None,
            writeback: true,
            unlock_without_reset: true,
            password: PasswordRules::default(),
            sms_countries: vec!["US".to_owned()],
        }
    }
}

impl Policy {
    /// A stored policy in the shape of an earlier version made current: the enablement was once
    /// `{mode, group}`. Fields this version no longer has are ignored when it is read.
    pub fn upgrade(body: &mut serde_json::Map<String, serde_json::Value>) {
        if let Some(serde_json::Value::Object(before)) = body.get("enablement").cloned() {
            body.insert("enablement".into(), before.get("mode").cloned().unwrap_or_default());
            if let Some(group) = before.get("group").filter(|g| !g.is_null()) {
                body.insert("target_group".into(), group.clone());
            }
        }
    }

    /// Everyone may reset.
    pub fn everyone() -> Self {
        Self::default()
    }

    /// Members of `group` may reset.
    pub fn selected(group: impl Into<String>) -> Self {
        Self { enablement: Enablement::Selected, target_group: Some(group.into()), ..Self::default() }
    }

    /// Methods the policy enables that this release can prove at reset.
    pub fn reset_methods(&self) -> Vec<MethodKind> {
        let mut kinds: Vec<MethodKind> =
            self.methods_enabled.iter().copied().filter(|k| crate::methods::verifier(*k).is_some()).collect();
        kinds.sort();
        kinds.dedup();
        kinds
    }

    pub fn allows_method(&self, kind: MethodKind) -> bool {
        self.methods_enabled.contains(&kind) && crate::methods::verifier(kind).is_some()
    }

    /// Refuses a phone number of a country texts and calls may not go to.
    pub fn allows_destination(&self, destination: &Destination) -> Result<(), crate::FlowError> {
        match destination {
            Destination::Phone(phone) => match phone.country() {
                Some(country) if self.sms_countries.contains(&country) => Ok(()),
                _ => Err(crate::FlowError::CountryNotAllowed),
            },
            Destination::Email(_) => Ok(()),
        }
    }

    /// Whether the policy lets this person reset their password themselves.
    pub fn covers(&self, user: &DirectoryUser) -> bool {
        user.enabled
            && match self.enablement {
                Enablement::None => false,
                Enablement::Everyone => true,
                Enablement::Selected => self.target_group.as_deref().is_some_and(|group| user.is_member_of(group)),
            }
    }

    pub fn methods_required(&self) -> usize {
        usize::from(self.methods_required.clamp(1, 2))
    }

    /// Security questions to register: 3 to 5.
    pub fn questions_to_register(&self) -> usize {
        usize::from(self.questions_to_register).clamp(MIN_QUESTIONS, MAX_QUESTIONS)
    }

    /// Security questions to answer at reset: 3 to 5, and no more than are registered.
    pub fn questions_to_reset(&self) -> usize {
        usize::from(self.questions_to_reset).clamp(MIN_QUESTIONS, self.questions_to_register())
    }

    /// The first value of the policy that is out of range, naming its field.
    pub fn check(&self) -> Result<(), PolicyError> {
        let field = |field: &'static str, reason: &str| Err(PolicyError::new(field, reason));
        match (self.enablement, self.target_group.as_deref().map(str::trim)) {
            (Enablement::Selected, None | Some("")) => {
                return field("target_group", "is required when the enablement is selected")
            }
            (_, Some(group)) if group.is_empty() || group.chars().count() > 256 => {
                return field("target_group", "must be a group name of 1 to 256 characters")
            }
            _ => {}
        }
        let mut kinds = self.methods_enabled.clone();
        kinds.sort();
        kinds.dedup();
        if kinds.len() != self.methods_enabled.len() {
            return field("methods_enabled", "must not name a method twice");
        }
        if kinds.is_empty() {
            return field("methods_enabled", "must name at least one method");
        }
        if !(1..=2).contains(&self.methods_required) {
            return field("methods_required", "must be 1 or 2");
        }
        if usize::from(self.methods_required) > kinds.len() {
            return field("methods_required", "needs as many different methods enabled");
        }
        if self.reconfirm_days > 730 {
            return field("reconfirm_days", "must be within 0–730");
        }
        let questions = u8::try_from(MIN_QUESTIONS).unwrap_or(3)..=u8::try_from(MAX_QUESTIONS).unwrap_or(5);
        if !questions.contains(&self.questions_to_register) {
            return field("questions_to_register", "must be within 3–5");
        }
        if !questions.contains(&self.questions_to_reset) {
            return field("questions_to_reset", "must be within 3–5");
        }
        if self.questions_to_reset > self.questions_to_register {
            return field("questions_to_reset", "must not be more than questions_to_register");
        }
        let mut countries = self.sms_countries.clone();
        countries.sort();
        countries.dedup();
        if countries.len() != self.sms_countries.len() {
            return field("sms_countries", "must not name a country twice");
        }
        if let Some(unknown) = self.sms_countries.iter().find(|c| !PhoneNumber::is_country(c)) {
            return field(
                "sms_countries",
                &format!("has {unknown:?}, which is no country code (ISO 3166 alpha-2, as US)"),
            );
        }
        self.password.check().map_err(|reason| {
            PolicyError::new(format!("password.{}", reason.split(' ').next().unwrap_or("min_length")), reason)
        })
    }
}

/// A policy value refused, naming its field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {reason}")]
pub struct PolicyError {
    pub field: String,
    pub reason: String,
}

impl PolicyError {
    fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { field: field.into(), reason: reason.into() }
    }
}

/// Every field of the policy document, in the order it is shown.
pub const POLICY_FIELDS: [&str; 15] = [
    "enablement",
    "target_group",
    "methods_enabled",
    "methods_required",
    "require_registration",
    "reconfirm_days",
    "questions_to_register",
    "questions_to_reset",
    "notify_user",
    "notify_admins",
    "helpdesk",
    "writeback",
    "unlock_without_reset",
    "password",
    "sms_countries",
];

/// The policy as administrators read and write it: every field, flat, with the `version` it
/// was read at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyDocument {
    #[serde(flatten)]
    pub policy: Policy,
    /// The stored version: 0 until an administrator first saves one.
    pub version: u64,
}

impl PolicyDocument {
    /// Parses a whole document strictly: every field present, none unknown, each of its type
    /// and within its range; a refusal names the first field at fault.
    pub fn parse(value: &serde_json::Value) -> Result<Self, PolicyError> {
        let serde_json::Value::Object(map) = value else {
            return Err(PolicyError::new("policy", "must be a JSON object"));
        };
        if let Some(unknown) = map.keys().find(|k| *k != "version" && !POLICY_FIELDS.contains(&k.as_str())) {
            return Err(PolicyError::new(unknown.clone(), "is not a policy field"));
        }
        for name in POLICY_FIELDS.iter().chain(&["version"]) {
            if !map.contains_key(*name) {
                return Err(PolicyError::new(*name, "is missing: send the whole policy back"));
            }
        }
        fn field<T: serde::de::DeserializeOwned>(
            map: &serde_json::Map<String, serde_json::Value>,
            name: &'static str,
            expected: &str,
        ) -> Result<T, PolicyError> {
            let value = map.get(name).cloned().unwrap_or(serde_json::Value::Null);
            serde_json::from_value(value).map_err(|_| PolicyError::new(name, format!("must be {expected}")))
        }
        let policy = Policy {
            enablement: field(map, "enablement", "one of \"none\", \"selected\", \"everyone\"")?,
            target_group: field(map, "target_group", "a group name or null")?,
            methods_enabled: field(map, "methods_enabled", "a list of email, sms, voice, totp, questions")?,
            methods_required: field(map, "methods_required", "1 or 2")?,
            require_registration: field(map, "require_registration", "true or false")?,
            reconfirm_days: field(map, "reconfirm_days", "a whole number within 0–730")?,
            questions_to_register: field(map, "questions_to_register", "a whole number within 3–5")?,
            questions_to_reset: field(map, "questions_to_reset", "a whole number within 3–5")?,
            notify_user: field(map, "notify_user", "true or false")?,
            notify_admins: field(map, "notify_admins", "true or false")?,
            helpdesk: match map.get("helpdesk") {
                Some(serde_json::Value::String(raw)) => {
                    Some(Helpdesk::parse(raw).map_err(|reason| PolicyError::new("helpdesk", reason))?)
                }
                Some(serde_json::Value::Null) | None => None,
                Some(_) => return Err(PolicyError::new("helpdesk", "must be null, a mailto: address or an https URL")),
            },
            writeback: field(map, "writeback", "true or false")?,
            unlock_without_reset: field(map, "unlock_without_reset", "true or false")?,
            password: PasswordRules::parse(map.get("password")).map_err(|(f, reason)| PolicyError::new(f, reason))?,
            sms_countries: field(map, "sms_countries", "a list of country codes (ISO 3166 alpha-2, as US)")?,
        };
        let version = field(map, "version", "the version the policy was read at")?;
        policy.check()?;
        Ok(Self { policy, version })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::types::Username;

    fn user(groups: &[&str], enabled: bool) -> DirectoryUser {
        DirectoryUser {
            username: Username::parse("alice").expect("name"),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            enabled,
            locked: false,
            email: None,
        }
    }

    #[test]
    fn enablement_decides_who_may_reset() {
        let mut p = Policy::default();
        assert!(p.covers(&user(&[], true)));
        assert!(!p.covers(&user(&[], false)));
        p = Policy::selected("SSPR-Users");
        assert!(p.covers(&user(&["SSPR-Users"], true)));
        assert!(!p.covers(&user(&["Other"], true)));
        p.enablement = Enablement::None;
        assert!(!p.covers(&user(&["SSPR-Users"], true)));
    }

    #[test]
    fn reset_offers_the_enabled_methods_this_release_can_prove() {
        let mut p = Policy::default();
        assert_eq!(p.reset_methods(), vec![MethodKind::Email, MethodKind::Sms, MethodKind::Totp]);
        assert!(!p.allows_method(MethodKind::Questions), "security questions are off by default");
        p.methods_enabled.extend([MethodKind::Voice, MethodKind::Questions]);
        assert!(p.allows_method(MethodKind::Questions) && p.allows_method(MethodKind::Voice));
        p.methods_enabled = vec![MethodKind::Sms];
        assert!(!p.allows_method(MethodKind::Email));
        p.methods_required = 9;
        assert_eq!(p.methods_required(), 2);
    }

    #[test]
    fn question_counts_stay_within_three_to_five() {
        let mut p = Policy::default();
        assert_eq!((p.questions_to_register(), p.questions_to_reset()), (3, 3));
        (p.questions_to_register, p.questions_to_reset) = (9, 4);
        assert_eq!((p.questions_to_register(), p.questions_to_reset()), (5, 4));
        (p.questions_to_register, p.questions_to_reset) = (3, 5);
        assert_eq!(p.questions_to_reset(), 3, "never more than are registered");
        (p.questions_to_register, p.questions_to_reset) = (0, 0);
        assert_eq!((p.questions_to_register(), p.questions_to_reset()), (3, 3));
    }

    fn document() -> serde_json::Value {
        serde_json::to_value(PolicyDocument { policy: Policy::default(), version: 3 }).expect("json")
    }

    fn refused(change: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) -> String {
        let mut doc = document();
        change(doc.as_object_mut().expect("object"));
        PolicyDocument::parse(&doc).expect_err("refused").field
    }

    #[test]
    fn the_document_is_every_field_flat_with_its_version() {
        let doc = document();
        let mut keys: Vec<&str> = doc.as_object().expect("object").keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut expected: Vec<&str> = POLICY_FIELDS.iter().copied().chain(["version"]).collect();
        expected.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(doc["enablement"], "everyone");
        assert_eq!(doc["helpdesk"], serde_json::Value::Null);
        let parsed = PolicyDocument::parse(&doc).expect("round trip");
        assert_eq!((parsed.policy, parsed.version), (Policy::default(), 3));
    }

    #[test]
    fn every_out_of_range_value_is_refused_with_its_field_named() {
        let set = |name: &'static str, value: serde_json::Value| {
            refused(move |m| {
                m.insert(name.to_owned(), value);
            })
        };
        assert_eq!(refused(|m| drop(m.insert("colour".into(), json!("red")))), "colour");
        assert_eq!(refused(|m| drop(m.remove("notify_user"))), "notify_user");
        assert_eq!(refused(|m| drop(m.remove("version"))), "version");
        assert_eq!(set("enablement", json!("some")), "enablement");
        assert_eq!(set("enablement", json!("selected")), "target_group");
        assert_eq!(set("target_group", json!(7)), "target_group");
        assert_eq!(set("methods_enabled", json!(["email", "pigeon"])), "methods_enabled");
        assert_eq!(set("methods_enabled", json!(["email", "email"])), "methods_enabled");
        assert_eq!(set("methods_enabled", json!([])), "methods_enabled");
        assert_eq!(set("methods_required", json!(0)), "methods_required");
        assert_eq!(set("methods_required", json!(3)), "methods_required");
        assert_eq!(set("methods_required", json!("1")), "methods_required");
        assert_eq!(set("require_registration", json!("yes")), "require_registration");
        assert_eq!(set("reconfirm_days", json!(731)), "reconfirm_days");
        assert_eq!(set("reconfirm_days", json!(-1)), "reconfirm_days");
        assert_eq!(set("questions_to_register", json!(2)), "questions_to_register");
        assert_eq!(set("questions_to_register", json!(6)), "questions_to_register");
        assert_eq!(set("questions_to_reset", json!(6)), "questions_to_reset");
        assert_eq!(set("questions_to_reset", json!(4)), "questions_to_reset", "more than registered");
        assert_eq!(set("notify_user", json!(1)), "notify_user");
        assert_eq!(set("notify_admins", json!(null)), "notify_admins");
        assert_eq!(set("helpdesk", json!("http://help.example.com")), "helpdesk");
        assert_eq!(set("helpdesk", json!("mailto:nobody")), "helpdesk");
        assert_eq!(set("helpdesk", json!("javascript:alert(1)")), "helpdesk");
        assert_eq!(set("helpdesk", json!("https://user:pw@help.example.com")), "helpdesk");
        assert_eq!(set("helpdesk", json!(true)), "helpdesk");
        assert_eq!(set("writeback", json!("on")), "writeback");
        assert_eq!(set("unlock_without_reset", json!([])), "unlock_without_reset");
        assert_eq!(set("password", json!({"min_length": 7, "max_length": 256})), "password.min_length");
        assert_eq!(set("password", json!({"min_length": 8, "max_length": 63})), "password.max_length");
        assert_eq!(set("password", json!({"min_length": 80, "max_length": 64})), "password.min_length");
        assert_eq!(set("password", json!({"min_length": 8})), "password.max_length");
        assert_eq!(set("password", json!({"min_length": 8, "max_length": 64, "x": 1})), "password.x");
        assert_eq!(set("password", json!("long")), "password");
        assert_eq!(set("version", json!("3")), "version");
        // Two methods required need two different methods enabled.
        let two_of_one = refused(|m| {
            m.insert("methods_required".into(), json!(2));
            m.insert("methods_enabled".into(), json!(["email"]));
        });
        assert_eq!(two_of_one, "methods_required");
    }

    #[test]
    fn helpdesk_links_are_mailto_or_https() {
        let mut doc = document();
        doc["helpdesk"] = json!("mailto:help@example.com");
        assert!(PolicyDocument::parse(&doc).is_ok());
        doc["helpdesk"] = json!("https://help.example.com/sspr");
        assert_eq!(
            PolicyDocument::parse(&doc).expect("https").policy.helpdesk.map(|h| h.as_str().to_owned()),
            Some("https://help.example.com/sspr".to_owned())
        );
        doc["enablement"] = json!("selected");
        doc["target_group"] = json!("SSPR-Users");
        assert_eq!(PolicyDocument::parse(&doc).expect("selected").policy.target_group.as_deref(), Some("SSPR-Users"));
    }

    #[test]
    fn policies_stored_by_earlier_versions_still_read() {
        let before = json!({
            "enablement": {"mode": "selected", "group": "SSPR-Users"},
            "methods_enabled": ["sms"],
            "methods_required": 1,
            "require_registration": true,
            "reconfirm_days": 90,
            "questions_custom_allowed": true,
            "password": {"min_length": 10, "max_length": 256}
        });
        let read = |mut stored: serde_json::Value| {
            Policy::upgrade(stored.as_object_mut().expect("object"));
            serde_json::from_value::<Policy>(stored)
        };
        let p: Policy = read(before).expect("read");
        assert_eq!((p.enablement, p.target_group.as_deref()), (Enablement::Selected, Some("SSPR-Users")));
        assert_eq!((p.reconfirm_days, p.password.min_length), (90, 10));
        assert!(p.notify_user && p.writeback, "fields it did not have take their defaults");
        let none: Policy = read(json!({"enablement": {"mode": "none"}})).expect("read");
        assert_eq!(none.enablement, Enablement::None);
    }
}
