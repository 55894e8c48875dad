//! The registration state a sign-in application reads, and the notices of change.

use crate::fakes::world::{World, ALICE_EMAIL, ALICE_PHONE};
use crate::policy::Policy;
use crate::types::MethodKind;
use crate::FlowError;

#[tokio::test]
async fn must_register_counts_only_the_methods_the_policy_lets_prove_a_reset() {
    let world = World::new();
    let two = Policy { methods_required: 2, ..Policy::default() };
    world.sspr.save_policy(two.clone()).await.expect("policy");
    world.register(MethodKind::Email, ALICE_EMAIL).await;
    let status = world.sspr.registration_status(&world.alice()).await.expect("status");
    assert!(status.must_register, "one method of the two required");
    world.register(MethodKind::Sms, ALICE_PHONE).await;
    let status = world.sspr.registration_status(&world.alice()).await.expect("status");
    assert!(!status.must_register, "two of two");
    let no_sms = Policy { methods_enabled: vec![MethodKind::Email, MethodKind::Totp], ..two };
    world.sspr.save_policy(no_sms).await.expect("policy");
    let status = world.sspr.registration_status(&world.alice()).await.expect("status");
    assert!(status.must_register, "a method the policy disabled does not count");
}

#[tokio::test]
async fn reconfirmation_falls_due_after_the_policy_days_and_never_with_zero() {
    let world = World::new();
    let r = world.sspr.confirm_registration(&world.alice()).await;
    assert!(matches!(r, Err(FlowError::NothingToConfirm)), "{r:?}");
    world.register(MethodKind::Email, ALICE_EMAIL).await;
    // The world's clock starts on 2027-01-15; 180 days on is 2027-07-14.
    let status = world.sspr.registration_status(&world.alice()).await.expect("status");
    assert_eq!(status.reconfirm_due.as_deref(), Some("2027-07-14"));
    world.clock.advance(180 * 86_400);
    assert!(world.sspr.registration_status(&world.alice()).await.expect("status").must_register, "due today");
    let status = world.sspr.confirm_registration(&world.alice()).await.expect("confirmed");
    assert_eq!((status.must_register, status.reconfirm_due.as_deref()), (false, Some("2028-01-10")));
    world.sspr.save_policy(Policy { reconfirm_days: 0, ..Policy::default() }).await.expect("policy");
    let status = world.sspr.registration_status(&world.alice()).await.expect("status");
    assert_eq!((status.must_register, status.reconfirm_due), (false, None), "0 days: never");
    world.sspr.save_policy(Policy::default()).await.expect("policy");
    let id = crate::types::MethodId::parse(&status.methods[0].id).expect("id");
    let status = world.sspr.remove_method(&world.alice(), &id).await.expect("removed");
    assert_eq!((status.registered, status.reconfirm_due), (false, None), "nothing registered: nothing due");
}

#[tokio::test]
async fn a_new_method_is_announced_on_every_other_channel_masked() {
    let world = World::new();
    world.register(MethodKind::Sms, ALICE_PHONE).await;
    let before = world.sent.sent_to(ALICE_PHONE).len();
    world.register(MethodKind::Email, "alice.new@example.com").await;
    let told = world.sent.sent_to(ALICE_PHONE);
    assert_eq!(told.len(), before + 1, "the phone is told");
    let notice = &told.last().expect("a notice").text;
    assert!(notice.contains("email (a***@example.com)") && notice.contains("added"), "{notice}");
    assert!(notice.contains("2027-01-15 at") && notice.contains("helpdesk"), "the time and the helpdesk: {notice}");
    assert!(!notice.contains("alice.new@example.com"), "never the full new destination");
    let to_new = world.sent.sent_to("alice.new@example.com");
    assert!(to_new.iter().all(|m| !m.text.contains("was added")), "the new address is not told of itself");
}

#[tokio::test]
async fn with_notices_to_people_off_a_change_is_not_announced() {
    let world = World::new();
    world.register(MethodKind::Sms, ALICE_PHONE).await;
    world.sspr.save_policy(Policy { notify_user: false, ..Policy::default() }).await.expect("policy");
    let before = world.sent.sent_to(ALICE_PHONE).len();
    world.register(MethodKind::Email, "alice.new@example.com").await;
    assert_eq!(world.sent.sent_to(ALICE_PHONE).len(), before, "nothing told");
}
