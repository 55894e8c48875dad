//! The texts the product sends. Links come from configuration, never from a request (S12);
//! the only secret a message ever carries is the code it exists to deliver.

use crate::ports::EmailMessage;
use crate::types::{Code, Timestamp};

/// What the messages say about where they come from.
#[derive(Debug, Clone)]
pub struct Branding {
    pub organisation: String,
    /// Base URL of the hosted pages, from configuration.
    pub public_url: String,
}

/// The digits of a code spaced out with pauses, so a voice reads them one at a time.
fn spoken_digits(code: &Code) -> String {
    code.expose().chars().map(String::from).collect::<Vec<_>>().join(", ")
}

impl Branding {
    fn link(&self, path: &str) -> String {
        format!("{}{path}", self.public_url.trim_end_matches('/'))
    }

    fn email(&self, subject: String, paragraphs: &[String]) -> EmailMessage {
        let text = format!("{}\n\n-- {}\n", paragraphs.join("\n\n"), self.organisation);
        let html_paragraphs: String =
            paragraphs.iter().map(|p| format!("<p>{}</p>", html_escape::encode_text(p))).collect();
        let html = format!(
            "<!doctype html><html><body>{html_paragraphs}<p>&mdash; {}</p></body></html>",
            html_escape::encode_text(&self.organisation)
        );
        EmailMessage { subject, text, html }
    }

    pub fn reset_code_sms(&self, code: &Code, minutes: i64) -> String {
        format!(
            "{} password reset code: {}. It expires in {minutes} minutes. Never share it.",
            self.organisation,
            code.expose()
        )
    }

    pub fn reset_code_email(&self, code: &Code, minutes: i64) -> EmailMessage {
        self.email(
            format!("Your {} password reset code", self.organisation),
            &[
                format!("Your password reset code is {}. It expires in {minutes} minutes.", code.expose()),
                "If you did not ask to reset your password, ignore this message; nothing changes.".into(),
                "Never share this code: nobody from the helpdesk will ask for it.".into(),
            ],
        )
    }

    /// What a voice call reads out: the code's digits one by one, twice.
    pub fn code_call(&self, code: &Code, purpose: &str, minutes: i64) -> String {
        let spoken = spoken_digits(code);
        format!(
            "This is {}. Your {purpose} code is: {spoken}. Again, your code is: {spoken}. It expires in {minutes} \
             minutes. Never share it.",
            self.organisation
        )
    }

    pub fn confirmation_code_sms(&self, code: &Code, minutes: i64) -> String {
        format!(
            "{} code to confirm this number for password reset: {}. It expires in {minutes} minutes.",
            self.organisation,
            code.expose()
        )
    }

    pub fn confirmation_code_email(&self, code: &Code, minutes: i64) -> EmailMessage {
        self.email(
            format!("Confirm your {} recovery email", self.organisation),
            &[
                format!(
                    "Your code to confirm this address for password reset is {}. It expires in {minutes} minutes.",
                    code.expose()
                ),
                "If you did not ask for this, ignore this message.".into(),
            ],
        )
    }

    pub fn password_changed(&self, unlock_only: bool) -> EmailMessage {
        let (subject, what) = if unlock_only {
            ("Your account was unlocked", "Your account was unlocked with self-service password reset.")
        } else {
            ("Your password was changed", "Your password was changed with self-service password reset.")
        };
        self.email(
            format!("{} — {subject}", self.organisation),
            &[
                what.to_owned(),
                format!(
                    "If this was not you, reset your password now at {} and contact your administrator.",
                    self.link("/reset")
                ),
            ],
        )
    }

    /// A reminder to re-confirm the recovery methods by `due` (`YYYY-MM-DD`).
    pub fn reconfirm_reminder(&self, due: &str) -> EmailMessage {
        self.email(
            format!("{} — please confirm your recovery methods", self.organisation),
            &[
                format!(
                    "Please check that your password reset methods are still yours by {due}: {}",
                    self.link("/register")
                ),
                "If they are, confirm them; if not, remove them and add new ones. You need them to reset \
                 your password yourself."
                    .into(),
            ],
        )
    }

    pub fn reconfirm_reminder_sms(&self, due: &str) -> String {
        format!(
            "{}: please confirm your password reset methods by {due} at {}",
            self.organisation,
            self.link("/register")
        )
    }

    /// The notice of a change to the recovery methods, by email: what changed (the method
    /// masked, never its full destination) and when.
    pub fn methods_changed(&self, change: &MethodChange) -> EmailMessage {
        self.email(
            format!("{} — your recovery methods changed", self.organisation),
            &[
                format!(
                    "A recovery method was {} on your account: {}, on {} UTC.",
                    change.what,
                    change.method,
                    change.at.to_rfc3339().replace('T', " at ").trim_end_matches('Z')
                ),
                format!(
                    "If this was not you, review your methods at {} and contact your helpdesk at once.",
                    self.link("/register")
                ),
            ],
        )
    }

    /// The same notice by text message.
    pub fn methods_changed_sms(&self, change: &MethodChange) -> String {
        format!(
            "{}: a recovery method ({}) was {} on your account on {} UTC. Not you? Contact your helpdesk.",
            self.organisation,
            change.method,
            change.what,
            change.at.to_rfc3339().replace('T', " at ").trim_end_matches('Z')
        )
    }
}

/// A change to someone's recovery methods, as a notice names it.
#[derive(Debug, Clone)]
pub struct MethodChange {
    /// "added" or "removed".
    pub what: &'static str,
    /// The method as a person recognises it: its kind and masked destination.
    pub method: String,
    pub at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_come_from_configuration_and_html_is_escaped() {
        let b = Branding { organisation: "A&B <Corp>".into(), public_url: "https://reset.example.com/".into() };
        let m = b.password_changed(false);
        assert!(m.text.contains("https://reset.example.com/reset"));
        assert!(m.html.contains("A&amp;B &lt;Corp&gt;"));
        assert!(!m.html.contains("<Corp>"));
    }
}
