// The registration page signed in through an OpenID Connect provider (tests/browser/oidc/
// provider.mjs, npm oidc-provider): the local server runs with SSPR_OIDC_ISSUER and
// SSPR_OIDC_AUDIENCE, the page sends alice to the provider, she signs in there and comes back
// signed in, registers an email address with the code from the outbox; once her sign-in is older
// than a change allows, adding a number sends her through the provider again; and a reset by
// that email then succeeds. Run by tests/run.sh with SSPR_URL (the server) and SSPR_OIDC_ISSUER.

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
  sleep,
} from '../support.mjs';

const ISSUER = requiredEnv('SSPR_OIDC_ISSUER', 'http://127.0.0.1:4000');
const EMAIL = 'alice.oidc@example.com';
const PHONE = '+12025550177';
// How recent a sign-in must be for a change, as tests/run.sh starts the server.
const RECENT_SECS = 15;
const NEW_PASSWORD = 'Issuer-Signed-Reset-93';

before(launchBrowser);
after(closeBrowser);

/** Signs in at the provider's own login and consent pages, from the page's button. */
async function signInAtProvider(page, login) {
  await page.locator('#signin-oidc-button').click();
  await loginAtProvider(page, login);
}

/** At the provider's login page: signs in, consents if asked, and is sent back. */
async function loginAtProvider(page, login) {
  await page.waitForURL((url) => url.origin === ISSUER);
  await shot(page, 'oidc-provider-login');
  await page.locator('input[name="login"]').fill(login);
  // The provider's development pages take any password for a person it knows.
  await page.locator('input[name="password"]').fill('demo');
  await page.locator('button[type="submit"]').click();
  // Consent, the first time this client asks; then back to the page. The consent button is
  // looked for only while the provider's page is shown: a waiting locator left behind would
  // click the first "Continue" submit button of whatever page came next.
  const home = new URL(BASE).origin;
  const consent = page.locator('button[type="submit"]', { hasText: /continue/i });
  const deadline = Date.now() + 30_000;
  while (new URL(page.url()).origin !== home) {
    assert.ok(Date.now() < deadline, `still at ${page.url()}`);
    if (new URL(page.url()).origin === ISSUER && (await consent.isVisible().catch(() => false))) {
      await consent.click({ timeout: 2000 }).catch(() => {});
    }
    await sleep(100);
  }
  await page.waitForLoadState();
}

test('alice signs in through the provider, registers an email address, and resets by it', { timeout: 240_000 }, async () => {
  const { context, page } = await newPage();
  const errors = [];
  // Errors of the product's pages (the provider's own pages load things of their own), but the
  // browser's line for the 403 that asks for a fresh sign-in (checked where it happens).
  page.on('console', (m) => {
    const ours = (m.location().url || page.url()).startsWith(BASE);
    if (m.type() === 'error' && ours && !/status of 403/.test(m.text())) errors.push(m.text());
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

    // Her sign-in grows older than a change allows: adding a number sends her through the
    // provider again, which asks for her password whatever session it has, and she is back.
    await explained(page, async () => {
      await sleep((RECENT_SECS + 1) * 1000);
      const again = page.waitForRequest((r) => r.url().startsWith(`${ISSUER}/auth`));
      const refused = page.waitForResponse((r) => new URL(r.url()).pathname === '/v1/me/methods/sms');
      await page.locator('#sms-destination').fill(PHONE);
      await page.locator('#sms-send').click();
      // 403 recent_signin_required (the body is gone once the page has left for the provider;
      // the Rust test checks it): the page's answer to exactly that is the fresh sign-in below.
      assert.equal((await refused).status(), 403);
      const asked = new URL((await again).url()).searchParams;
      assert.equal(asked.get('prompt'), 'login', 'the provider asks for the password again');
      assert.equal(asked.get('max_age'), '0');
      await loginAtProvider(page, 'alice');
      await page.locator('#sms-destination').waitFor({ state: 'visible' });
      const seen = (await outbox()).length;
      await page.locator('#sms-destination').fill(PHONE);
      await page.locator('#sms-send').click();
      const code = await codeSentTo(PHONE, seen);
      await page.locator('#sms-code').fill(code);
      await page.locator('#sms-confirm').click();
      await page.locator('#methods li', { hasText: 'Text message' }).waitFor({ state: 'visible' });
    });

    // The reset, by someone who is not signed in: a page of its own.
    const resetting = await newPage();
    try {
      await explained(resetting.page, async () => {
        const reset = resetting.page;
        const seen = await askEmailCode(reset, 'alice', EMAIL);
        await reset.locator('#reset-code').fill(await codeSentTo(EMAIL, seen));
        await reset.locator('#reset-verify').click();
        await reset.locator('#new-password').waitFor({ state: 'visible' });
        noteSecret(NEW_PASSWORD);
        await reset.locator('#new-password').fill(NEW_PASSWORD);
        await reset.locator('#new-password-confirm').fill(NEW_PASSWORD);
        await reset.locator('#reset-complete').click();
        await reset.locator('#reset-done').waitFor({ state: 'visible' });
      });
    } finally {
      await resetting.context.close();
    }
    // Signing out forgets the token and ends the provider's session too: signing in again
    // asks for the password, not just a click.
    await explained(page, async () => {
      const ending = page.waitForRequest((r) => r.url().startsWith(`${ISSUER}/session/end`));
      await page.locator('#signout').click();
      const asked = new URL((await ending).url()).searchParams;
      assert.equal(asked.get('client_id'), 'sspr-register-page');
      assert.equal(asked.get('post_logout_redirect_uri'), `${BASE}/register`);
      assert.ok(asked.get('id_token_hint'), 'the provider is told whose session ends');
      await shot(page, 'oidc-provider-sign-out');
      await page.locator('button[name="logout"][value="yes"]').click();
      await page.waitForURL(`${BASE}/register`);
      await page.locator('#signin-oidc-button').waitFor({ state: 'visible' });
      const kept = await page.evaluate(() => JSON.stringify({ ...sessionStorage }));
      assert.ok(!kept.includes('sspr.signin'), `the token is forgotten: ${kept}`);
      await page.locator('#signin-oidc-button').click();
      await page.waitForURL((url) => url.origin === ISSUER);
      await page.locator('input[name="login"]').waitFor({ state: 'visible' });
    });
    assert.deepEqual(errors, [], 'no console error (a CSP violation would be one)');
  } finally {
    await context.close();
  }
});

// A Cognito user pool publishes no end-session endpoint; its sign-in domain ends the session at
// /logout. Cognito's sign-in cannot run here (the AWS emulator has no managed login), so its
// discovery document and /logout are stood in for inside the browser, beside the real provider
// above; the policy is lifted for this page alone, as its discovery is at another origin than
// the server's issuer (the template's own policy is a contract test).
test('signing out of a Cognito user pool ends its session at the pool domain', { timeout: 60_000 }, async () => {
  const { context, page } = await newPage({ bypassCSP: true });
  const pool = 'https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEf123';
  const domain = 'https://example-sspr.auth.us-east-1.amazoncognito.com';
  try {
    await page.route(`${pool}/.well-known/openid-configuration`, (route) =>
      route.fulfill({
        json: {
          issuer: pool,
          authorization_endpoint: `${domain}/oauth2/authorize`,
          token_endpoint: `${domain}/oauth2/token`,
          jwks_uri: `${pool}/.well-known/jwks.json`,
          response_types_supported: ['code', 'token'],
          subject_types_supported: ['public'],
          id_token_signing_alg_values_supported: ['RS256'],
        },
        headers: { 'access-control-allow-origin': '*' },
      }),
    );
    await page.route(`${domain}/**`, (route) => route.fulfill({ contentType: 'text/html', body: '<title>Signed out</title>' }));
    await page.goto(`${BASE}/register`);
    await page.locator('#signin-oidc-button').waitFor({ state: 'visible' });
    const logout = page.waitForRequest((r) => r.url().startsWith(`${domain}/logout`), { timeout: 10_000 });
    page
      .evaluate(async (issuer) => {
        const { endSession } = await import('/web/signin.js');
        await endSession({ issuer, client_id: '1a2b3c4d5e6f7g8h9i0j1k2l3m' }, 'a-token');
      }, pool)
      .catch(() => {}); // the page leaves for /logout
    const asked = new URL((await logout).url()).searchParams;
    assert.equal(asked.get('client_id'), '1a2b3c4d5e6f7g8h9i0j1k2l3m');
    assert.equal(asked.get('logout_uri'), `${BASE}/register`, 'back to the page, a sign-out URL of the client');
    assert.equal(asked.get('id_token_hint'), null, 'the token goes nowhere it is not asked for');
  } finally {
    await context.close();
  }
});
