// Browser end-to-end test of the hosted pages, in Debian's Chromium driven by playwright-core:
// alice registers an email address and a phone number, resets her password with the emailed
// code, and signs in with the new password; she sets up an authenticator app from the QR code
// page (npm `otpauth` plays the app) and resets with it, then chooses security questions from
// the bank and resets by answering them; a code asked for over the limit says how long to
// wait; the pages raise no console error, no
// CSP violation, and no axe-core finding in the states the tests visit.
//
// With SSPR_SCREENSHOTS set to a folder, each page state visited is saved there as a picture.
//
// Needs a running local server (`sspr serve`) with the demo users:
//   SSPR_URL             its base URL, e.g. http://127.0.0.1:8080
//   SSPR_ALICE_PASSWORD  alice's password, as the server printed it at start
// Codes are read from the server's outbox at /dev/outbox.
//
// With SSPR_TEST_SECRETS_FILE set, every code, reset token, session id, sign-in token and
// password the test uses is appended to that file, one a line, so the test script can look for
// each in the server's log afterwards (S9 in docs/security.md).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as OTPAuth from 'otpauth';
import {
  askEmailCode,
  BASE,
  axeFindings,
  closeBrowser,
  codeSentTo,
  explained,
  launchBrowser,
  newPage,
  noteSecret,
  outbox,
  requiredEnv,
  shot,
  signIn as signInAs,
  sleep,
} from './support.mjs';

const ALICE_PASSWORD = requiredEnv('SSPR_ALICE_PASSWORD', "the password printed after 'demo user: alice'");
// The demo administrator's password (fixed in the demo directory, like alice's first one).
const ADMIN_PASSWORD = process.env.SSPR_ADMIN_PASSWORD || 'admin-demo-Passw0rd';

const EMAIL = 'alice@example.com';
const PHONE = '+12025550123';
const NEW_PASSWORD = 'Brand-new-Passw0rd-42';
const APP_PASSWORD = 'App-proved-Passw0rd-43';
const QUESTIONS_PASSWORD = 'Questions-Passw0rd-44';
const ANSWERS = { q01: 'Lisbon', q03: 'Rex the dog', q07: 'Fiat Panda' };

noteSecret(ALICE_PASSWORD);
noteSecret(NEW_PASSWORD);
noteSecret(APP_PASSWORD);
noteSecret(QUESTIONS_PASSWORD);
Object.values(ANSWERS).forEach(noteSecret);

/** alice's password as the tests have left it: they run in order, each resetting it. */
let alicePassword = ALICE_PASSWORD;

/** Signs alice in with `password`. */
const signIn = (page, password) => signInAs(page, 'alice', password);

before(launchBrowser);
after(closeBrowser);

const stepNow = () => Math.floor(Date.now() / 30_000);

/** Registers one method on the registration page: send, read the code, confirm. */
async function registerMethod(page, kind, destination, label) {
  const seen = (await outbox()).length;
  await page.locator(`#${kind}-destination`).fill(destination);
  await page.locator(`#${kind}-send`).click();
  const code = await codeSentTo(destination, seen);
  await page.locator(`#${kind}-code`).fill(code);
  await page.locator(`#${kind}-confirm`).click();
  const item = page.locator('#methods li', { hasText: label });
  await item.waitFor({ state: 'visible' });
  assert.equal(await item.count(), 1, `one ${label} method is listed`);
  assert.equal(await item.locator('button.method-remove').count(), 1, `the ${label} method has a remove button`);
}

test('alice registers email and SMS, resets her password by email, and signs in with it', { timeout: 240_000 }, async () => {
  const { context, page } = await newPage();
  try {
    // --- registration ---------------------------------------------------------------------
    await explained(page, async () => {
      await signIn(page, ALICE_PASSWORD);
      await page.locator('#email-destination').waitFor({ state: 'visible' });

      await registerMethod(page, 'email', EMAIL, 'Email');
      const emailHint = await page.locator('#methods li', { hasText: 'Email' }).innerText();
      assert.match(emailHint, /example\.com/, 'the email method shows its masked address');

      await registerMethod(page, 'sms', PHONE, 'Text message');
      assert.equal(await page.locator('#methods li').count(), 2, 'two methods are listed');

      await page.locator('#signout').click();
      await page.locator('#signin-username').waitFor({ state: 'visible' });
    });

    // --- reset ----------------------------------------------------------------------------
    const seenSecrets = { token: '', session: '' };
    page.on('response', async (response) => {
      const path = new URL(response.url()).pathname;
      if (path === '/v1/reset/verify' || path === '/v1/reset/start') {
        const body = await response.json().catch(() => ({}));
        if (body.reset_token) seenSecrets.token = body.reset_token;
        if (body.session) seenSecrets.session = body.session;
      }
    });
    let code = '';
    await explained(page, async () => {
      const seen = await askEmailCode(page, 'alice', EMAIL);
      assert.match(await page.locator('#reset-status').innerText(), /code is on its way/);
      const first = await codeSentTo(EMAIL, seen);
      // A new code: the page solves a fresh check for it (every code after a session's first
      // needs one), and the new code works.
      const again = (await outbox()).length;
      await page.locator('#reset-back').click();
      await page.locator('#reset-destination').waitFor({ state: 'visible' });
      await page.locator('#method-email').check();
      await page.locator('#reset-destination').fill(EMAIL);
      const secondSend = page.waitForRequest((r) => new URL(r.url()).pathname === '/v1/reset/send-code');
      await page.locator('#reset-send').click();
      assert.ok(JSON.parse((await secondSend).postData()).challenge, 'the second send carries a solved challenge');
      await page.locator('#reset-code').waitFor({ state: 'visible' });
      code = await codeSentTo(EMAIL, again);
      assert.notEqual(code, first, 'a new code');
      noteSecret(first);
      await page.locator('#reset-code').fill(code);
      // The answer is read here: a response listener may not have run yet when the page moves on.
      const verifyAnswer = page.waitForResponse((r) => new URL(r.url()).pathname === '/v1/reset/verify');
      await page.locator('#reset-verify').click();
      const verified = await (await verifyAnswer).json();
      if (verified.reset_token) seenSecrets.token = verified.reset_token;
      await page.locator('#new-password').waitFor({ state: 'visible' });
      assert.ok(seenSecrets.token, 'the verify answer carried a reset token');
      assert.equal(verified.unlock_offered, false, 'not locked (and this directory has no lockout)');
      assert.equal(await page.locator('#unlock-action').isHidden(), true, 'so no unlock is offered');

      // A weak password is refused, with a reason, and the reset is not done.
      await page.locator('#new-password').fill('short');
      await page.locator('#new-password-confirm').fill('short');
      await page.locator('#reset-complete').click();
      await page.waitForFunction(() => {
        const reasons = document.getElementById('password-reasons');
        const error = document.getElementById('reset-error');
        return (
          (!reasons.hidden && reasons.querySelector('li') && reasons.innerText.trim() !== '') ||
          (!error.hidden && error.innerText.trim() !== '')
        );
      });
      assert.equal(await page.locator('#reset-done').isHidden(), true, 'a weak password does not finish the reset');

      // A good one does.
      await page.locator('#new-password').fill(NEW_PASSWORD);
      await page.locator('#new-password-confirm').fill(NEW_PASSWORD);
      await page.locator('#reset-complete').click();
      await page.locator('#reset-done').waitFor({ state: 'visible' });
    });

    // No secret stays on the page or in its address or storage.
    const left = await page.evaluate(() => ({
      url: location.href,
      text: document.body.innerText,
      inputs: [...document.querySelectorAll('input')].map((i) => i.value).join('\n'),
      storage: JSON.stringify({ ...sessionStorage }) + JSON.stringify({ ...localStorage }),
    }));
    for (const [name, secret] of [
      ['code', code],
      ['reset token', seenSecrets.token],
      ['session', seenSecrets.session],
      ['new password', NEW_PASSWORD],
    ]) {
      assert.ok(secret, `${name} was seen`);
      noteSecret(secret);
      assert.ok(!left.url.includes(secret), `the address holds no ${name}`);
      assert.ok(!left.text.includes(secret), `the page text holds no ${name}`);
      assert.ok(!left.inputs.includes(secret), `no input holds the ${name}`);
      assert.ok(!left.storage.includes(secret), `browser storage holds no ${name}`);
    }
    assert.equal(await page.locator('#new-password').inputValue(), '');
    assert.equal(await page.locator('#new-password-confirm').inputValue(), '');

    // --- the old password no longer works, the new one does ---------------------------------
    await explained(page, async () => {
      await signIn(page, ALICE_PASSWORD);
      await page.locator('#signin-error').waitFor({ state: 'visible' });
      assert.notEqual((await page.locator('#signin-error').innerText()).trim(), '');
      assert.equal(await page.locator('#account-section').isHidden(), true);

      await signIn(page, NEW_PASSWORD);
      await page.locator('#signout').waitFor({ state: 'visible' });
      assert.equal(await page.locator('#methods li').count(), 2, 'both methods are still registered');
    });
    alicePassword = NEW_PASSWORD;
  } finally {
    await context.close();
  }
});

test('alice sets up an authenticator app from the QR code and resets with it', { timeout: 240_000 }, async () => {
  const { context, page } = await newPage({ bypassCSP: true });
  try {
    let app;
    let confirmedIn = 0;
    await explained(page, async () => {
      await signIn(page, alicePassword);
      await page.locator('#totp-begin').waitFor({ state: 'visible' });
      await page.locator('#totp-begin').click();
      await page.locator('#totp-qr').waitFor({ state: 'visible' });
      await page.waitForFunction(() => {
        const img = document.getElementById('totp-qr');
        return img.complete && img.naturalWidth > 0;
      });
      const key = (await page.locator('#totp-key').innerText()).trim();
      assert.match(key, /^([A-Z2-7]{4} ){7}[A-Z2-7]{4}$/, 'the key for typing: 160 bits in groups of four');
      noteSecret(key);
      noteSecret(key.replace(/ /g, ''));
      await shot(page, 'register-totp-setup');
      assert.deepEqual(await axeFindings(page), [], 'axe-core: the app setup');

      app = new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(key.replace(/ /g, '')) });
      const right = app.generate();
      await page.locator('#totp-code').fill(right === '111111' ? '222222' : '111111');
      await page.locator('#totp-confirm').click();
      await page.locator('#register-error').waitFor({ state: 'visible' });
      await shot(page, 'register-totp-wrong-code');

      confirmedIn = stepNow();
      const code = app.generate();
      noteSecret(code);
      await page.locator('#totp-code').fill(code);
      await page.locator('#totp-confirm').click();
      await page.locator('#methods li', { hasText: 'Authenticator app' }).waitFor({ state: 'visible' });
      assert.equal(await page.locator('#totp-setup').isHidden(), true, 'the setup closes');
      assert.equal(await page.locator('#totp-key').innerText(), '', 'the key is gone from the page');
      assert.equal(await page.locator('#totp-qr').getAttribute('src'), null, 'the QR code is gone too');
      await shot(page, 'register-totp-registered');
      await page.locator('#signout').click();
      await page.locator('#signin-username').waitFor({ state: 'visible' });
    });

    // The code that confirmed the app is spent: the reset uses the next one.
    while (stepNow() <= confirmedIn) {
      await sleep(250);
    }
    await explained(page, async () => {
      await page.goto(`${BASE}/reset`);
      await page.locator('#reset-username').fill('alice');
      await page.locator('#reset-start').click();
      await page.locator('#choice-totp').waitFor({ state: 'visible', timeout: 90_000 });
      await page.locator('#method-totp').check();
      assert.equal(await page.locator('#reset-destination').isHidden(), true, 'nothing to type for the app');
      assert.equal((await page.locator('#reset-send').innerText()).trim(), 'Continue');
      await shot(page, 'reset-choose-totp');
      assert.deepEqual(await axeFindings(page), [], 'axe-core: choosing the app');
      await page.locator('#reset-send').click();
      await page.locator('#reset-code').waitFor({ state: 'visible' });
      assert.match(await page.locator('#reset-code-hint').innerText(), /authenticator app/);
      await shot(page, 'reset-totp-code');
      assert.deepEqual(await axeFindings(page), [], 'axe-core: the app code');
      const code = app.generate();
      noteSecret(code);
      await page.locator('#reset-code').fill(code);
      await page.locator('#reset-verify').click();
      await page.locator('#new-password').waitFor({ state: 'visible' });
      await page.locator('#new-password').fill(APP_PASSWORD);
      await page.locator('#new-password-confirm').fill(APP_PASSWORD);
      await page.locator('#reset-complete').click();
      await page.locator('#reset-done').waitFor({ state: 'visible' });

      await signIn(page, APP_PASSWORD);
      await page.locator('#signout').waitFor({ state: 'visible' });
    });
    alicePassword = APP_PASSWORD;
  } finally {
    await context.close();
  }
});

test('alice chooses security questions from the bank and resets by answering them', { timeout: 240_000 }, async () => {
  const { context, page } = await newPage({ bypassCSP: true });
  try {
    await explained(page, async () => {
      await signIn(page, alicePassword);
      await page.locator('#questions-panel').waitFor({ state: 'visible' });
      const ids = Object.keys(ANSWERS);
      for (const [i, id] of ids.entries()) {
        await page.locator(`#question-${i + 1}`).selectOption(id);
        await page.locator(`#answer-${i + 1}`).fill(ANSWERS[id]);
      }
      await shot(page, 'register-questions');
      assert.deepEqual(await axeFindings(page), [], 'axe-core: choosing questions');
      await page.locator('#questions-save').click();
      await page.locator('#methods li', { hasText: 'Security questions' }).waitFor({ state: 'visible' });
      assert.match(await page.locator('#register-status').innerText(), /saved/);
      assert.equal(await page.locator('#answer-1').inputValue(), '', 'the answers are cleared from the form');
      await page.locator('#signout').click();
      await page.locator('#signin-username').waitFor({ state: 'visible' });
    });

    await explained(page, async () => {
      await page.goto(`${BASE}/reset`);
      await page.locator('#reset-username').fill('alice');
      await page.locator('#reset-start').click();
      await page.locator('#choice-questions').waitFor({ state: 'visible', timeout: 90_000 });
      await page.locator('#method-questions').check();
      await page.locator('#reset-send').click();
      await page.locator('#questions-form').waitFor({ state: 'visible' });
      const asked = async () =>
        page.locator('#questions-fields input').evaluateAll((inputs) => inputs.map((i) => i.dataset.question));
      assert.deepEqual((await asked()).sort(), Object.keys(ANSWERS).sort(), 'three of three are asked');
      await shot(page, 'reset-questions');
      assert.deepEqual(await axeFindings(page), [], 'axe-core: answering questions');

      // A wrong answer: the questions are asked anew.
      for (const [i, id] of (await asked()).entries()) {
        await page.locator(`#answer-${i + 1}`).fill(i === 0 ? 'not the answer' : ANSWERS[id]);
      }
      await page.locator('#questions-verify').click();
      await page.locator('#reset-error').waitFor({ state: 'visible' });
      assert.match(await page.locator('#reset-error').innerText(), /not right/);
      await shot(page, 'reset-questions-wrong');

      for (const [i, id] of (await asked()).entries()) {
        await page.locator(`#answer-${i + 1}`).fill(ANSWERS[id]);
      }
      await page.locator('#questions-verify').click();
      await page.locator('#new-password').waitFor({ state: 'visible' });
      await page.locator('#new-password').fill(QUESTIONS_PASSWORD);
      await page.locator('#new-password-confirm').fill(QUESTIONS_PASSWORD);
      await page.locator('#reset-complete').click();
      await page.locator('#reset-done').waitFor({ state: 'visible' });
      await signIn(page, QUESTIONS_PASSWORD);
      await page.locator('#signout').waitFor({ state: 'visible' });
    });
    alicePassword = QUESTIONS_PASSWORD;
  } finally {
    await context.close();
  }
});

test('an overdue registration is confirmed with one button', { timeout: 120_000 }, async () => {
  const { context, page } = await newPage({ bypassCSP: true });
  // The server's clock is today's: the first status it gives is made overdue here, as it would
  // be 180 days on; the confirmation itself goes to the server.
  let overdueShown = false;
  await page.route('**/v1/me/registration', async (route) => {
    const response = await route.fetch();
    const status = await response.json();
    if (!overdueShown && status.registered) {
      overdueShown = true;
      status.reconfirm_due = '2000-01-01';
      status.must_register = true;
    }
    await route.fulfill({ response, json: status });
  });
  try {
    await explained(page, async () => {
      await signIn(page, alicePassword);
      await page.locator('#reconfirm-button').waitFor({ state: 'visible' });
      assert.match(await page.locator('#register-notice').innerText(), /still yours/);
      await shot(page, 'register-reconfirm-due');
      assert.deepEqual(await axeFindings(page), [], 'axe-core: re-confirmation due');
      const confirmed = page.waitForResponse((r) => new URL(r.url()).pathname === '/v1/me/registration/confirm');
      await page.locator('#reconfirm-button').click();
      const answer = await (await confirmed).json();
      assert.equal(answer.must_register, false, 'confirmed on the server');
      assert.ok(answer.reconfirm_due > new Date().toISOString().slice(0, 10), 'due again in the future');
      await page.locator('#reconfirm').waitFor({ state: 'hidden' });
      assert.match(await page.locator('#register-status').innerText(), /confirmed/);
    });
  } finally {
    await context.close();
  }
});

/** Calls the API as the demo administrator. */
async function asAdmin(method, path, body) {
  const signin = await fetch(`${BASE}/v1/local/signin`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }),
  });
  assert.equal(signin.status, 200, 'the demo administrator signs in');
  const { token } = await signin.json();
  noteSecret(token);
  const response = await fetch(`${BASE}${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: response.status, body: await response.json().catch(() => ({})) };
}

/** Starts a reset for someone unknown and gets a wrong code refused: the page shows an error. */
async function wrongCode(page) {
  await page.goto(`${BASE}/reset`);
  await page.locator('#reset-username').fill(`nobody-${Date.now()}`);
  await page.locator('#reset-start').click();
  await page.locator('#reset-destination').waitFor({ state: 'visible', timeout: 90_000 });
  await page.locator('#method-email').check();
  await page.locator('#reset-destination').fill('nobody@example.com');
  await page.locator('#reset-send').click();
  await page.locator('#reset-code').waitFor({ state: 'visible' });
  await page.locator('#reset-code').fill('12345678');
  await page.locator('#reset-verify').click();
  await page.locator('#reset-help').waitFor({ state: 'visible' });
  assert.match(await page.locator('#reset-error').textContent(), /code is not right/);
}

test('an error on the reset page says where to get help: the administrator, or the helpdesk the policy names', { timeout: 240_000 }, async () => {
  const { context, page } = await newPage({ bypassCSP: true });
  const read = await asAdmin('GET', '/v1/admin/policy');
  assert.equal(read.status, 200);
  try {
    await explained(page, async () => {
      await wrongCode(page);
      assert.equal((await page.locator('#reset-help').textContent()).trim(), 'Need help? Contact your administrator.');
      await shot(page, 'reset-help-administrator');
      assert.deepEqual(await axeFindings(page), [], 'axe-core: an error without a helpdesk');

      const saved = await asAdmin('PUT', '/v1/admin/policy', { ...read.body, helpdesk: 'mailto:helpdesk@example.com' });
      assert.equal(saved.status, 200, JSON.stringify(saved.body));
      await wrongCode(page);
      const link = page.locator('#reset-help a');
      assert.equal(await link.getAttribute('href'), 'mailto:helpdesk@example.com');
      assert.equal(await link.textContent(), 'helpdesk@example.com');
      await shot(page, 'reset-help-helpdesk');
      assert.deepEqual(await axeFindings(page), [], 'axe-core: an error with the helpdesk');
      const restored = await asAdmin('PUT', '/v1/admin/policy', { ...read.body, version: saved.body.version });
      assert.equal(restored.status, 200, JSON.stringify(restored.body));
    });
  } finally {
    await context.close();
  }
});

test('one code too many says how long to wait, and where to get help', { timeout: 240_000 }, async () => {
  const { context, page } = await newPage({ bypassCSP: true });
  try {
    await explained(page, async () => {
      // Someone unknown is limited like anyone: five texts an hour, the sixth refused.
      const number = `+120255501${String(Date.now() % 100).padStart(2, '0')}`;
      await page.goto(`${BASE}/reset`);
      await page.locator('#reset-username').fill(`nobody-${Date.now()}`);
      await page.locator('#reset-start').click();
      await page.locator('#reset-destination').waitFor({ state: 'visible', timeout: 90_000 });
      for (let n = 1; n <= 5; n += 1) {
        await page.locator('#method-sms').check();
        await page.locator('#reset-destination').fill(number);
        await page.locator('#reset-send').click();
        await page.locator('#reset-code').waitFor({ state: 'visible', timeout: 90_000 });
        await page.locator('#reset-back').click();
        await page.locator('#reset-destination').waitFor({ state: 'visible' });
      }
      await page.locator('#method-sms').check();
      await page.locator('#reset-destination').fill(number);
      await page.locator('#reset-send').click();
      await page.locator('#reset-error').waitFor({ state: 'visible', timeout: 90_000 });
      // The person's limit and the number's are both reached: either may be the one told.
      assert.match(await page.locator('#reset-error').textContent(), /^Too many codes .* Try again in about an hour\.$/);
      assert.equal(await page.locator('#reset-code').isHidden(), true, 'no code is awaited');
      await page.locator('#reset-help').waitFor({ state: 'visible' });
      await shot(page, 'reset-rate-limited');
      assert.deepEqual(await axeFindings(page), [], 'axe-core: over a limit');
    });
  } finally {
    await context.close();
  }
});

test('the pages raise no console error and no CSP violation during a reset start', { timeout: 180_000 }, async () => {
  const { context, page } = await newPage();
  const problems = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('requestfailed', (request) => problems.push(`request failed: ${request.url()}`));
  page.on('response', (response) => {
    if (response.status() >= 400) problems.push(`HTTP ${response.status()}: ${response.url()}`);
  });
  // Not the page's own code: added by the browser driver, outside the page's CSP.
  await context.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'}`);
    });
  });
  // Hold the challenge back a little, so the "checking" state can be seen.
  await page.route('**/v1/reset/challenge', async (route) => {
    await new Promise((resolve) => setTimeout(resolve, 700));
    await route.continue();
  });
  try {
    await explained(page, async () => {
      const response = await page.goto(`${BASE}/reset`);
      const csp = response.headers()['content-security-policy'] || '';
      assert.match(csp, /script-src 'self'/, 'the page is served with its CSP');
      assert.match(csp, /style-src 'self'/, 'the page is served with its CSP');

      // Someone unknown gets the same answer as anyone else.
      await page.locator('#reset-username').fill(`nobody-${Date.now()}`);
      await page.locator('#reset-start').click();
      await page.waitForFunction(
        () => document.getElementById('reset-status').textContent.includes('Checking your browser'),
      );
      assert.equal(await page.locator('#reset-start').isDisabled(), true, 'start waits for the check');
      await page.locator('#reset-destination').waitFor({ state: 'visible', timeout: 90_000 });
      await page.locator('#method-sms').check();
      assert.equal(await page.locator('#reset-destination').getAttribute('type'), 'tel');
      assert.equal(await page.locator('#reset-code').isHidden(), true);
      const resetViolations = await page.evaluate(() => window.__cspViolations);

      await page.goto(`${BASE}/register`);
      await page.locator('#signin-username').waitFor({ state: 'visible' });
      const registerViolations = await page.evaluate(() => window.__cspViolations);

      assert.deepEqual([...resetViolations, ...registerViolations], [], 'no CSP violation');
      assert.deepEqual(problems, [], 'no console error, page error or failed request');
    });
  } finally {
    await context.close();
  }
});
