// The registration page signed in through an OpenID Connect provider (tests/browser/oidc/
// provider.mjs, npm oidc-provider): the local server runs with SSPR_OIDC_ISSUER and
// SSPR_OIDC_AUDIENCE, the page sends alice to the provider, she signs in there and comes back
// signed in, registers an email address with the code from the outbox, and a reset by that
// email then succeeds. Run by tests/run.sh with SSPR_URL (the server) and SSPR_OIDC_ISSUER.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  askEmailCode,
  axeFindings,
  BASE,
  closeBrowser,
  codeSentTo,
  explained,
  launchBrowser,
  newPage,
  noteSecret,
  outbox,
  requiredEnv,
  shot,
} from '../support.mjs';

const ISSUER = requiredEnv('SSPR_OIDC_ISSUER', 'http://127.0.0.1:4000');
const EMAIL = 'alice.oidc@example.com';
const NEW_PASSWORD = 'Issuer-Signed-Reset-93';

before(launchBrowser);
after(closeBrowser);

/** Signs in at the provider's own login and consent pages, from the page's button. */
async function signInAtProvider(page, login) {
  await page.locator('#signin-oidc-button').click();
  await page.waitForURL((url) => url.origin === ISSUER);
  await shot(page, 'oidc-provider-login');
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill('any password: the provider checks it');
  await page.locator('button[type="submit"]').click();
  // Consent, the first time this client asks.
  const consent = page.locator('button[type="submit"]', { hasText: /continue/i });
  await Promise.race([
    consent.waitFor({ state: 'visible' }).then(() => consent.click()),
    page.waitForURL((url) => url.origin === new URL(BASE).origin),
  ]);
  await page.waitForURL((url) => url.origin === new URL(BASE).origin);
}

test('alice signs in through the provider, registers an email address, and resets by it', { timeout: 240_000 }, async () => {
  const { context, page } = await newPage();
  const errors = [];
  // Errors of the product's pages (the provider's own pages load things of their own).
  page.on('console', (m) => {
    if (m.type() === 'error' && (m.location().url || page.url()).startsWith(BASE)) errors.push(m.text());
  });
  try {
    await explained(page, async () => {
      await page.goto(`${BASE}/register`);
      await page.locator('#signin-oidc-button').waitFor({ state: 'visible' });
      assert.equal(await page.locator('#signin-form').isHidden(), true, 'no local password form');
      await shot(page, 'oidc-register-signed-out');

      const authorize = page.waitForRequest((r) => r.url().startsWith(`${ISSUER}/auth`));
      const signedIn = signInAtProvider(page, 'alice');
      const asked = new URL((await authorize).url()).searchParams;
      assert.equal(asked.get('code_challenge_method'), 'S256');
      assert.ok(asked.get('code_challenge') && asked.get('state') && asked.get('nonce'), 'PKCE, state and nonce');
      assert.equal(asked.get('client_id'), 'sspr-register-page');
      await signedIn;

      await page.locator('#email-destination').waitFor({ state: 'visible' });
      assert.ok(!page.url().includes('code='), 'the code left the address bar');
      const stored = await page.evaluate(() => ({ local: JSON.stringify({ ...localStorage }), session: { ...sessionStorage } }));
      assert.equal(stored.local, '{}', 'nothing in localStorage');
      noteSecret(stored.session['sspr.signin']);
      await shot(page, 'oidc-register-signed-in');
      // axe-core is injected, which the page's policy forbids: it runs in a second context
      // without the policy, signed in with the same token (this one keeps the policy, so a
      // request to the issuer it did not allow would have failed the sign-in above).
      const checked = await newPage({ bypassCSP: true });
      try {
        await checked.page.addInitScript((session) => {
          for (const [k, v] of Object.entries(session)) sessionStorage.setItem(k, v);
        }, stored.session);
        await checked.page.goto(`${BASE}/register`);
        await checked.page.locator('#email-destination').waitFor({ state: 'visible' });
        assert.deepEqual(await axeFindings(checked.page), [], 'axe-core finds nothing on the signed-in page');
      } finally {
        await checked.context.close();
      }

      const seen = (await outbox()).length;
      await page.locator('#email-destination').fill(EMAIL);
      await page.locator('#email-send').click();
      const code = await codeSentTo(EMAIL, seen);
      await page.locator('#email-code').fill(code);
      await page.locator('#email-confirm').click();
      await page.locator('#methods li', { hasText: 'Email' }).waitFor({ state: 'visible' });
    });

    await explained(page, async () => {
      const seen = await askEmailCode(page, 'alice', EMAIL);
      await page.locator('#reset-code').fill(await codeSentTo(EMAIL, seen));
      await page.locator('#reset-verify').click();
      await page.locator('#new-password').waitFor({ state: 'visible' });
      noteSecret(NEW_PASSWORD);
      await page.locator('#new-password').fill(NEW_PASSWORD);
      await page.locator('#new-password-confirm').fill(NEW_PASSWORD);
      await page.locator('#reset-complete').click();
      await page.locator('#reset-done').waitFor({ state: 'visible' });
    });
    assert.deepEqual(errors, [], 'no console error (a CSP violation would be one)');
  } finally {
    await context.close();
  }
});
