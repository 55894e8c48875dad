//! The product on fakes, for fast tests of the flows' branches without HTTP: a store in memory
//! (counted, and losing races on demand), a directory in memory, senders that record, and a
//! clock that moves only when told.

use std::sync::Arc;

use super::directory::MemoryDirectory;
use super::senders::RecordingSender;
use super::store::{CountingStore, FaultyStore, MemoryStore};
use crate::methods::totp::TotpSeed;
use crate::notify::Branding;
use crate::policy::Policy;
use crate::ports::{ManualClock, SystemRng};
use crate::registration::SignedIn;
use crate::reset::challenge::solve;
use crate::secret::Pepper;
use crate::types::{Code, MethodKind, Timestamp, Username};
use crate::{Ports, Settings, Sspr};

pub const ALICE: &str = "alice";
pub const ALICE_EMAIL: &str = "alice@example.com";
pub const ALICE_PHONE: &str = "+15555550101";

pub struct World {
    pub sspr: Sspr,
    pub store: Arc<CountingStore<FaultyStore<MemoryStore>>>,
    pub directory: MemoryDirectory,
    pub sent: RecordingSender,
    pub clock: ManualClock,
}

impl World {
    /// alice, in `SSPR-Users`, on a directory without lockout; everyone may reset.
    pub fn new() -> Self {
        Self::with_directory(MemoryDirectory::new())
    }

    pub fn with_directory(directory: MemoryDirectory) -> Self {
        directory.add_user(ALICE, "alice-old-Passw0rd", &["SSPR-Users"]);
        Self::on(directory.clone(), Arc::new(directory))
    }

    /// A hybrid organisation: `directory` on premises (with a lockout), alice in `cloud` too,
    /// the cloud retried without waiting.
    pub fn hybrid(cloud: MemoryDirectory) -> Self {
        let directory = MemoryDirectory::with_lockout();
        directory.add_user(ALICE, "alice-old-Passw0rd", &["SSPR-Users"]);
        cloud.add_user(ALICE, "alice-old-Passw0rd", &[]);
        let hybrid = crate::hybrid::HybridDirectory::new(Arc::new(directory.clone()), Arc::new(cloud))
            .with_retry_delays(vec![std::time::Duration::ZERO; 2]);
        Self::on(directory, Arc::new(hybrid))
    }

    /// The world whose directory port is `port`, `directory` the one the tests look into.
    fn on(directory: MemoryDirectory, port: Arc<dyn crate::ports::Directory>) -> Self {
        let store = Arc::new(CountingStore::new(FaultyStore::new(MemoryStore::new())));
        let sent = RecordingSender::default();
        let clock = ManualClock::new(Timestamp(1_800_000_000));
        let branding = Branding { organisation: "Example".into(), public_url: "https://reset.example.com".into() };
        let mut settings = Settings::new(branding, Policy::default());
        // A light proof of work: the tests solve it by trying every number.
        settings.challenge_max_number = 20;
        settings.challenge_ceiling = 80;
        let ports = Ports {
            store: store.clone(),
            directory: port,
            sms: Arc::new(sent.clone()),
            voice: Arc::new(sent.clone()),
            mailer: Arc::new(sent.clone()),
            clock: Arc::new(clock.clone()),
            rng: Arc::new(SystemRng),
        };
        let pepper = Pepper::new(vec![7; 32]).expect("a long enough pepper");
        Self { sspr: Sspr::new(ports, pepper, settings), store, directory, sent, clock }
    }

    /// alice, signed in just now.
    pub fn alice(&self) -> SignedIn {
        SignedIn { username: username(ALICE), groups: vec!["SSPR-Users".into()], signed_in_at: Some(self.clock_now()) }
    }

    fn clock_now(&self) -> Timestamp {
        crate::ports::Clock::now(&self.clock)
    }

    /// A solved proof-of-work challenge.
    pub fn challenge(&self) -> String {
        solve(&self.sspr.new_challenge()).expect("a solvable challenge")
    }

    /// The code in the last message to `to`.
    pub fn last_code_to(&self, to: &str) -> Code {
        let sent = self.sent.sent_to(to);
        let text = &sent.last().unwrap_or_else(|| panic!("nothing was sent to {to}")).text;
        let digits = text.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 8).expect("an 8-digit code");
        Code::parse(digits).expect("a code")
    }

    /// The code read out in the last call to `to`: the digits between "code is:" and the next
    /// full stop.
    pub fn last_spoken_code_to(&self, to: &str) -> Code {
        let sent = self.sent.sent_to(to);
        let call = sent.iter().rev().find(|s| s.channel == "voice").unwrap_or_else(|| panic!("no call to {to}"));
        let spoken = call.text.split("code is:").nth(1).and_then(|rest| rest.split('.').next()).expect("a code");
        Code::parse(&spoken.chars().filter(char::is_ascii_digit).collect::<String>()).expect("a code")
    }

    /// Registers `destination` for alice, as the registration page does.
    pub async fn register(&self, kind: MethodKind, destination: &str) {
        let alice = self.alice();
        self.sspr.begin_method(&alice, kind, destination).await.expect("confirmation code sent");
        let code = if kind == MethodKind::Voice {
            self.last_spoken_code_to(destination)
        } else {
            self.last_code_to(destination)
        };
        self.sspr.confirm_method(&alice, kind, &code).await.expect("method confirmed");
    }
}

impl World {
    /// Adds an authenticator app for alice, as the page does: the app reads the key shown, and
    /// its first code confirms it. Returns the app's seed; the confirming code's step is spent.
    pub async fn register_totp(&self) -> TotpSeed {
        let alice = self.alice();
        let enrolment = self.sspr.begin_totp(&alice).await.expect("enrolment");
        let seed = seed_of(&enrolment.manual_key);
        let code = Code::parse(&seed.code_at(self.clock_now())).expect("a code");
        self.sspr.confirm_method(&alice, MethodKind::Totp, &code).await.expect("app confirmed");
        seed
    }

    /// The code alice's app shows now.
    pub fn app_code(&self, seed: &TotpSeed) -> Code {
        Code::parse(&seed.code_at(self.clock_now())).expect("a code")
    }
}

/// The seed behind a key shown for typing (base32 in groups of four).
pub fn seed_of(manual_key: &str) -> TotpSeed {
    let secret = totp_rs::Secret::try_from_base32(manual_key.replace(' ', "")).expect("base32");
    TotpSeed::from_bytes(secret.as_bytes()).expect("a 20-byte seed")
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

pub fn username(name: &str) -> Username {
    Username::parse(name).expect("a valid name")
}
