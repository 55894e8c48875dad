// Browser end-to-end test of the unlock, on a local server whose directory is OpenLDAP (slapd
// with ppolicy: three wrong passwords lock an account). dave registers an email address; three
// wrong sign-ins lock him out; on the reset page nothing tells of the lock until his code is
// verified, and then "Unlock my account only" is offered beside the new password; it opens the
// account, and his own password signs in again. The new page state is checked by axe-core.
//
// Needs a running local server (`sspr serve` with SSPR_DIRECTORY=ldap on the test server of
// tests/ldap/slapd.sh, its outbox as the sender):
//   SSPR_URL  its base URL, e.g. http://127.0.0.1:8081
//   SSPR_OUTBOX_FILE  its data folder's outbox.jsonl (a server over a real directory does not
//                     serve /dev/outbox)
//   SSPR_LOCKOUT_USER, SSPR_LOCKOUT_PASSWORD  the person (default dave, of the OpenLDAP server)
// and the variables of ../support.mjs.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE,
  axeFindings,
  closeBrowser,
  codeSentTo,
  explained,
  launchBrowser,
  newPage,
  noteSecret,
  outbox,
  shot,
  signIn as signInAs,
} from '../support.mjs';

// dave of tests/ldap/data.ldif.in, unless another person of another directory is named (e.g.
// carol of the Samba AD of tests/ldap/samba.sh).
const DAVE = process.env.SSPR_LOCKOUT_USER || 'dave';
const DAVE_PASSWORD = process.env.SSPR_LOCKOUT_PASSWORD || 'dave-demo-Passw0rd';
const EMAIL = `${DAVE}@example.com`;
noteSecret(DAVE_PASSWORD);

before(launchBrowser);
after(closeBrowser);

const signIn = (page, password) => signInAs(page, DAVE, password);

test('a locked-out person is offered the unlock only after proving who they are, and it opens the account', { timeout: 240_000 }, async () => {
  const { context, page } = await newPage({ bypassCSP: true });
  try {
    await explained(page, async () => {
      // --- registration, with the directory's password ----------------------------------
      await signIn(page, DAVE_PASSWORD);
      await page.locator('#email-destination').waitFor({ state: 'visible' });
      const seen = (await outbox()).length;
      await page.locator('#email-destination').fill(EMAIL);
      await page.locator('#email-send').click();
      await page.locator('#email-code').fill(await codeSentTo(EMAIL, seen));
      await page.locator('#email-confirm').click();
      await page.locator('#methods li', { hasText: 'Email' }).waitFor({ state: 'visible' });
      await page.locator('#signout').click();
      await page.locator('#signin-username').waitFor({ state: 'visible' });

      // --- three wrong passwords lock the account; then the right one fails too ----------
      for (let i = 0; i < 3; i += 1) {
        await signIn(page, `Wrong-guess-Passw0rd-${i}`);
        await page.locator('#signin-error').waitFor({ state: 'visible' });
      }
      await signIn(page, DAVE_PASSWORD);
      await page.locator('#signin-error').waitFor({ state: 'visible' });
      assert.equal(await page.locator('#account-section').isHidden(), true, 'locked: the right password fails');

      // --- reset: nothing of the lock before the proof ----------------------------------
      await page.goto(`${BASE}/reset`);
      const startAnswer = page.waitForResponse((r) => new URL(r.url()).pathname === '/v1/reset/start');
      await page.locator('#reset-username').fill(DAVE);
      await page.locator('#reset-start').click();
      const started = await (await startAnswer).json();
      assert.equal('locked' in started || 'unlock_offered' in started, false, 'the start tells nothing of a lock');
      await page.locator('#reset-destination').waitFor({ state: 'visible', timeout: 90_000 });
      assert.equal(await page.locator('#unlock-action').isHidden(), true, 'no unlock before a proof');
      await page.locator('#method-email').check();
      await page.locator('#reset-destination').fill(EMAIL);
      const before = (await outbox()).length;
      await page.locator('#reset-send').click();
      await page.locator('#reset-code').waitFor({ state: 'visible' });
      await page.locator('#reset-code').fill(await codeSentTo(EMAIL, before));
      const verifyAnswer = page.waitForResponse((r) => new URL(r.url()).pathname === '/v1/reset/verify');
      await page.locator('#reset-verify').click();
      const verified = await (await verifyAnswer).json();
      assert.equal(verified.locked, true, 'after the proof: locked');
      assert.equal(verified.unlock_offered, true, 'after the proof: the unlock is offered');

      // --- the offer, seen and checked ----------------------------------------------------
      await page.locator('#unlock-action').waitFor({ state: 'visible' });
      await page.locator('#new-password').waitFor({ state: 'visible' });
      await shot(page, 'reset-unlock-offered');
      assert.deepEqual(await axeFindings(page), [], 'no axe-core finding with the unlock offered');

      await page.locator('#reset-unlock').click();
      await page.locator('#reset-done').waitFor({ state: 'visible' });
      assert.match(await page.locator('#reset-done-text').innerText(), /unlocked/);
      await shot(page, 'reset-unlocked');

      // --- his own password works again -----------------------------------------------------
      await signIn(page, DAVE_PASSWORD);
      await page.locator('#signout').waitFor({ state: 'visible' });
    });
  } finally {
    await context.close();
  }
});
