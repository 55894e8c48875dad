// What the browser tests share: the server's address, the browser (Debian's Chromium driven by
// playwright-core), the outbox the codes are read from, pictures of page states, axe-core, and
// the note of every secret used (S9 in docs/security.md: with SSPR_TEST_SECRETS_FILE set, each
// code, reset token, session id, sign-in token and password is appended to that file, one a
// line, so the test script can look for each in the server's log afterwards).
//
//   SSPR_URL          the local server's base URL, e.g. http://127.0.0.1:8080
//   SSPR_CHROMIUM     the browser (default /usr/bin/chromium)
//   SSPR_SCREENSHOTS  a folder to save a picture of each page state visited in
//   SSPR_OUTBOX_FILE  the server's outbox.jsonl, read in place of /dev/outbox

import { appendFileSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

export function requiredEnv(name, example) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: the browser test needs it (e.g. ${name}=${example}).`);
  }
  return value;
}

export const BASE = requiredEnv('SSPR_URL', 'http://127.0.0.1:8080').replace(/\/+$/, '');
const CHROMIUM = process.env.SSPR_CHROMIUM || '/usr/bin/chromium';
export const STEP_TIMEOUT = 60_000;

/** Notes a secret a test used (see above); nothing is written without the variable. */
export function noteSecret(secret) {
  const file = process.env.SSPR_TEST_SECRETS_FILE;
  if (file && typeof secret === 'string' && secret.length >= 8) {
    appendFileSync(file, `${secret}\n`);
  }
}

let browser;

/** Starts the browser (a test file's `before`). */
export async function launchBrowser() {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Stops it (a test file's `after`), even when a test failed. */
export async function closeBrowser() {
  if (browser) {
    await browser.close();
  }
}

/** A page in a fresh context; `options` are the context's (axe-core needs `bypassCSP`). */
export async function newPage(options = {}) {
  const context = await browser.newContext({ viewport: { width: 360, height: 740 }, ...options });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT);
  // The secrets the API hands the pages: sessions, reset tokens, sign-in tokens.
  page.on('response', async (response) => {
    if (!new URL(response.url()).pathname.startsWith('/v1/')) return;
    const body = await response.json().catch(() => ({}));
    for (const field of ['session', 'reset_token', 'token']) noteSecret(body[field]);
  });
  return { context, page };
}

/**
 * Everything the outbox holds, oldest first: from `SSPR_OUTBOX_FILE` (the data folder's
 * outbox.jsonl) when set, which a server over a real directory does not serve, else from
 * /dev/outbox.
 */
export async function outbox() {
  const file = process.env.SSPR_OUTBOX_FILE;
  if (file) {
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter((line) => line.trim())
      .map((line) => JSON.parse(line));
  }
  const response = await fetch(`${BASE}/dev/outbox`, { headers: { Accept: 'application/json' } });
  assert.equal(response.status, 200, 'GET /dev/outbox answers 200 (is this the local server with its outbox?)');
  const entries = await response.json();
  assert.ok(Array.isArray(entries), 'the outbox is a JSON array');
  return entries;
}

/** The 8-digit code of the newest message to `to` that arrived after the first `seen` entries. */
export async function codeSentTo(to, seen) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const entries = await outbox();
    const mine = entries.slice(seen).filter((e) => e.to === to);
    if (mine.length > 0) {
      const match = /\b(\d{8})\b/.exec(mine[mine.length - 1].body);
      assert.ok(match, `the message to ${to} holds an 8-digit code`);
      noteSecret(match[1]);
      return match[1];
    }
    if (Date.now() > deadline) {
      assert.fail(`no message reached ${to} within 20 s`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** The visible error and status texts of a page, to explain a failure. */
async function pageState(page) {
  return page
    .evaluate(() =>
      ['reset-error', 'reset-status', 'register-error', 'register-status', 'signin-error']
        .map((id) => document.getElementById(id))
        .filter((el) => el && !el.hidden && el.textContent.trim())
        .map((el) => `#${el.id}: ${el.textContent.trim()}`)
        .join('; '),
    )
    .catch(() => '');
}

/** Runs `fn`, adding what the page shows to any failure. */
export async function explained(page, fn) {
  try {
    await fn();
  } catch (err) {
    const shown = await pageState(page);
    if (shown && err && typeof err.message === 'string') {
      err.message += `\n  page shows: ${shown} (at ${page.url()})`;
    }
    throw err;
  }
}

/** Saves a picture of the page as `name` when SSPR_SCREENSHOTS names a folder. */
export async function shot(page, name) {
  const dir = process.env.SSPR_SCREENSHOTS;
  if (dir) {
    await page.screenshot({ path: `${dir}/${name}.png`, fullPage: true });
  }
}

/** axe-core's findings on the page as it is now (WCAG 2.1 A and AA, and best practice). */
export async function axeFindings(page) {
  await page.addScriptTag({ path: AXE });
  return page.evaluate(async () => {
    const result = await window.axe.run(document, {
      runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'],
    });
    return result.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  });
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Signs `username` in on the registration page with `password` (the outcome is the caller's). */
export async function signIn(page, username, password) {
  await page.goto(`${BASE}/register`);
  await page.locator('#signin-username').fill(username);
  await page.locator('#signin-password').fill(password);
  await page.locator('#signin-submit').click();
}

/**
 * On the reset page: starts a reset for `username` and asks for a code by email to `email`;
 * answers the outbox's length before the send, for `codeSentTo`.
 */
export async function askEmailCode(page, username, email) {
  await page.goto(`${BASE}/reset`);
  await page.locator('#reset-username').fill(username);
  await page.locator('#reset-start').click();
  await page.locator('#reset-destination').waitFor({ state: 'visible', timeout: 90_000 });
  await page.locator('#method-email').check();
  await page.locator('#reset-destination').fill(email);
  const seen = (await outbox()).length;
  await page.locator('#reset-send').click();
  await page.locator('#reset-code').waitFor({ state: 'visible' });
  return seen;
}
