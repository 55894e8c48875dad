//! The reset policy (docs/architecture.md, "Policy"): who may reset, with which methods and
//! how many; the store keeps it and admins will edit it.

use serde::{Deserialize, Serialize};

use crate::methods::questions::{MAX_QUESTIONS, MIN_QUESTIONS};
use crate::password::PasswordRules;
use crate::ports::DirectoryUser;
use crate::types::MethodKind;

/// Who may use self-service password reset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "mode", content = "group")]
pub enum Enablement {
    None,
    /// Members of one group (nested membership counts).
    Selected(String),
    Everyone,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    pub enablement: Enablement,
    pub methods_enabled: Vec<MethodKind>,
    pub methods_required: u8,
    pub require_registration: bool,
    pub reconfirm_days: u16,
    /// Security questions a person registers (3–5).
    pub questions_to_register: u8,
    /// Security questions answered at reset (3–5, and no more than are registered).
    pub questions_to_reset: u8,
    /// Whether people may write questions of their own besides the bank's.
    pub questions_custom_allowed: bool,
    pub password: PasswordRules,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            enablement: Enablement::Everyone,
            methods_enabled: vec![MethodKind::Email, MethodKind::Sms, MethodKind::Totp],
            methods_required: 1,
            require_registration: true,
            reconfirm_days: 180,
            questions_to_register: 3,
            questions_to_reset: 3,
            questions_custom_allowed: false,
            password: PasswordRules::default(),
        }
    }
}

impl Policy {
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

    /// Whether the policy lets this person reset their password themselves.
    pub fn covers(&self, user: &DirectoryUser) -> bool {
        user.enabled
            && match &self.enablement {
                Enablement::None => false,
                Enablement::Everyone => true,
                Enablement::Selected(group) => user.groups.iter().any(|g| g == group),
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Username;

    fn user(groups: &[&str], enabled: bool) -> DirectoryUser {
        DirectoryUser {
            username: Username::parse("alice").expect("name"),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            enabled,
        }
    }

    #[test]
    fn enablement_decides_who_may_reset() {
        let mut p = Policy::default();
        assert!(p.covers(&user(&[], true)));
        assert!(!p.covers(&user(&[], false)));
        p.enablement = Enablement::Selected("SSPR-Users".into());
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
}
