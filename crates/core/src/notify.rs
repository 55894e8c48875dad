//! The texts the product sends. Links come from configuration, never from a request (S12);
//! the only secret a message ever carries is the code it exists to deliver.

use crate::ports::{EmailMessage, Unavailable};
use crate::types::{Code, MethodKind, Timestamp, Username};

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

    /// The notice to the person after a reset or an unlock: when, from where, with which
    /// methods, and where to turn if it was not them (docs/security.md, S10).
    pub fn reset_notice(&self, notice: &ResetNotice) -> Result<EmailMessage, Unavailable> {
        let subject = if notice.unlock_only { "your account was unlocked" } else { "your password was changed" };
        self.render(format!("{} — {subject}", self.organisation), "reset_notice", notice)
    }

    /// The notice to every other administrator after an administrator's reset.
    pub fn admin_reset_notice(&self, notice: &ResetNotice) -> Result<EmailMessage, Unavailable> {
        let what = if notice.unlock_only { "account was unlocked" } else { "password was changed" };
        self.render(format!("{} — an administrator's {what}", self.organisation), "admin_reset_notice", notice)
    }

    /// Renders the text and HTML templates `name` with the notice.
    fn render(&self, subject: String, name: &str, notice: &ResetNotice) -> Result<EmailMessage, Unavailable> {
        let helpdesk = notice.helpdesk.as_deref();
        let context = minijinja::context! {
            organisation => &self.organisation,
            reset_link => self.link("/reset"),
            username => notice.username.as_str(),
            unlock_only => notice.unlock_only,
            at => notice.at.to_rfc3339().replace('T', " at ").trim_end_matches('Z'),
            source_ip => &notice.source_ip,
            methods => notice.methods.iter().map(|m| method_name(*m)).collect::<Vec<_>>(),
            helpdesk => helpdesk,
            helpdesk_label => helpdesk.map(|h| h.trim_start_matches("mailto:")),
        };
        let render = |file: &str| {
            templates()
                .get_template(file)
                .and_then(|t| t.render(&context))
                .map_err(|e| Unavailable::new(format!("template {file}: {e}")))
        };
        Ok(EmailMessage { subject, text: render(&format!("{name}.txt"))?, html: render(&format!("{name}.html"))? })
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

/// What a notice of a reset tells.
#[derive(Debug, Clone)]
pub struct ResetNotice {
    pub username: Username,
    pub unlock_only: bool,
    pub at: Timestamp,
    /// Where the reset came from, as the request showed it.
    pub source_ip: Option<String>,
    /// The methods proved.
    pub methods: Vec<MethodKind>,
    /// The policy's helpdesk link; `None`: "contact your administrator".
    pub helpdesk: Option<String>,
}

/// A method as a notice names it.
fn method_name(kind: MethodKind) -> &'static str {
    match kind {
        MethodKind::Email => "email",
        MethodKind::Sms => "text message",
        MethodKind::Voice => "voice call",
        MethodKind::Totp => "authenticator app",
        MethodKind::Questions => "security questions",
    }
}

/// The notice templates, text and HTML; HTML ones escape every value (by their `.html` name).
fn templates() -> &'static minijinja::Environment<'static> {
    static TEMPLATES: std::sync::OnceLock<minijinja::Environment<'static>> = std::sync::OnceLock::new();
    TEMPLATES.get_or_init(|| {
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        for (name, source) in [
            ("reset_notice.txt", include_str!("../templates/reset_notice.txt")),
            ("reset_notice.html", include_str!("../templates/reset_notice.html")),
            ("admin_reset_notice.txt", include_str!("../templates/admin_reset_notice.txt")),
            ("admin_reset_notice.html", include_str!("../templates/admin_reset_notice.html")),
        ] {
            if let Err(e) = env.add_template(name, source) {
                tracing::error!(error = %e, template = name, "a notice template does not parse");
            }
        }
        env
    })
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

    fn notice(helpdesk: Option<&str>) -> ResetNotice {
        ResetNotice {
            username: Username::parse("o'brien<b>").expect("name"),
            unlock_only: false,
            at: Timestamp(1_795_564_810),
            source_ip: Some("198.51.100.7".into()),
            methods: vec![MethodKind::Sms, MethodKind::Totp],
            helpdesk: helpdesk.map(str::to_owned),
        }
    }

    #[test]
    fn links_come_from_configuration_and_html_is_escaped() {
        let b = Branding { organisation: "A&B <Corp>".into(), public_url: "https://reset.example.com/".into() };
        let m = b.reset_notice(&notice(None)).expect("rendered");
        assert!(m.text.contains("https://reset.example.com/reset"));
        assert!(m.html.contains("A&amp;B &lt;Corp&gt;"));
        assert!(!m.html.contains("<Corp>") && !m.html.contains("<b>"), "{}", m.html);
    }

    #[test]
    fn a_reset_notice_says_when_from_where_with_what_and_where_to_get_help() {
        let b = Branding { organisation: "Example".into(), public_url: "https://reset.example.com".into() };
        let m = b.reset_notice(&notice(Some("mailto:help@example.com"))).expect("rendered");
        assert_eq!(m.subject, "Example — your password was changed");
        for part in ["2026-11-25 at 00:00:10 UTC", "198.51.100.7", "text message, authenticator app"] {
            assert!(m.text.contains(part) && m.html.contains(part), "{part}: {}", m.text);
        }
        assert!(m.text.contains("This wasn't you? Contact your helpdesk now: mailto:help@example.com"), "{}", m.text);
        assert!(m.html.contains(r#"<a href="mailto:help@example.com">help@example.com</a>"#), "{}", m.html);
        let without = b.reset_notice(&notice(None)).expect("rendered");
        assert!(without.text.contains("Contact your administrator now"));
        let unlocked = b.reset_notice(&ResetNotice { unlock_only: true, ..notice(None) }).expect("rendered");
        assert!(unlocked.subject.ends_with("your account was unlocked") && unlocked.text.contains("was unlocked"));
        let admins = b.admin_reset_notice(&notice(None)).expect("rendered");
        assert!(admins.subject.contains("an administrator's password was changed"));
        assert!(admins.text.contains("o'brien<b>") && admins.html.contains("o&#x27;brien&lt;b&gt;"), "{}", admins.html);
    }
}
