// The registration page: sign in, then add, confirm and remove recovery methods. The sign-in
// token is kept in sessionStorage, so it ends with the tab. Sign-in is the local server's own
// form, or the organisation's OpenID Connect issuer when /config.json names one (signin.js).

import {
  $,
  api,
  clearError,
  CODE_PATTERN,
  errorCode,
  hide,
  kindLabel,
  messageFor,
  resetPasswordToggles,
  setBusy,
  setStatus,
  show,
  showError,
  tidyCode,
  tidyPhone,
  wirePasswordToggles,
} from './common.js';
import { beginSignIn, endSession, finishSignIn, pageConfig } from './signin.js';

const config = await pageConfig();
// Signed in by the organisation's issuer rather than the local form.
const viaIssuer = Boolean(config.issuer);

const TOKEN_KEY = 'sspr.signin';
const USER_KEY = 'sspr.username';
// The methods whose codes are sent to a destination; the authenticator app has a panel of its own.
const KINDS = ['email', 'sms', 'voice'];

const el = {
  status: $('register-status'),
  signinSection: $('signin-section'),
  signinNote: $('signin-note'),
  signinForm: $('signin-form'),
  signinUsername: $('signin-username'),
  signinPassword: $('signin-password'),
  signinSubmit: $('signin-submit'),
  signinError: $('signin-error'),
  signinOidc: $('signin-oidc'),
  signinOidcButton: $('signin-oidc-button'),
  signinOidcError: $('signin-oidc-error'),
  account: $('account-section'),
  signedInAs: $('signed-in-as'),
  signout: $('signout'),
  notice: $('register-notice'),
  reconfirm: $('reconfirm'),
  reconfirmButton: $('reconfirm-button'),
  error: $('register-error'),
  methods: $('methods'),
  methodsEmpty: $('methods-empty'),
  kind: {
    email: {
      sendForm: $('email-send-form'),
      destination: $('email-destination'),
      send: $('email-send'),
      confirmForm: $('email-confirm-form'),
      code: $('email-code'),
      confirm: $('email-confirm'),
    },
    sms: {
      sendForm: $('sms-send-form'),
      destination: $('sms-destination'),
      send: $('sms-send'),
      confirmForm: $('sms-confirm-form'),
      code: $('sms-code'),
      confirm: $('sms-confirm'),
    },
    voice: {
      sendForm: $('voice-send-form'),
      destination: $('voice-destination'),
      send: $('voice-send'),
      confirmForm: $('voice-confirm-form'),
      code: $('voice-code'),
      confirm: $('voice-confirm'),
    },
  },
  questions: {
    panel: $('questions-panel'),
    form: $('questions-form'),
    rows: $('questions-rows'),
    save: $('questions-save'),
  },
  totp: {
    start: $('totp-start'),
    begin: $('totp-begin'),
    setup: $('totp-setup'),
    qr: $('totp-qr'),
    key: $('totp-key'),
    confirmForm: $('totp-confirm-form'),
    code: $('totp-code'),
    confirm: $('totp-confirm'),
    cancel: $('totp-cancel'),
  },
};

function stored(key) {
  try {
    return sessionStorage.getItem(key) || '';
  } catch {
    return '';
  }
}

function store(key, value) {
  try {
    if (value) {
      sessionStorage.setItem(key, value);
    } else {
      sessionStorage.removeItem(key);
    }
  } catch {
    // Storage may be off; the sign-in then lasts as long as the page.
  }
}

const state = { token: stored(TOKEN_KEY) || null, username: stored(USER_KEY) };

// --- signed out ------------------------------------------------------------------------------

function clearMethodForms() {
  for (const kind of KINDS) {
    const k = el.kind[kind];
    k.destination.value = '';
    k.code.value = '';
    k.confirmForm.hidden = true;
  }
  closeTotpSetup();
  el.questions.rows.replaceChildren();
  hide(el.questions.panel);
}

/** Forgets the sign-in and shows the sign-in form, with a note when there is one. */
function signOut(note) {
  state.token = null;
  state.username = '';
  store(TOKEN_KEY, '');
  store(USER_KEY, '');
  clearMethodForms();
  el.methods.replaceChildren();
  clearError(el.error);
  setStatus(el.status, '');
  hide(el.account);
  show(el.signinSection);
  el.signinNote.textContent = note || '';
  el.signinNote.hidden = !note;
  el.signinPassword.value = '';
  resetPasswordToggles();
  (viaIssuer ? el.signinOidcButton : el.signinUsername).focus();
}

async function onIssuerSignIn() {
  clearError(el.signinOidcError);
  setBusy(el.signinOidcButton, true);
  try {
    await beginSignIn(config);
  } catch {
    setBusy(el.signinOidcButton, false);
    showError(el.signinOidcError, 'The sign-in service could not be reached. Try again in a moment.');
  }
}

/** Back from the issuer: the sign-in it gave, or why there is none. */
async function onIssuerReturn() {
  let signedIn;
  try {
    signedIn = await finishSignIn(config);
  } catch (e) {
    showError(el.signinOidcError, e instanceof Error && e.message ? e.message : 'The sign-in failed. Sign in again.');
    return false;
  }
  if (!signedIn) return false;
  state.token = signedIn.token;
  state.username = signedIn.username;
  store(TOKEN_KEY, state.token);
  store(USER_KEY, state.username);
  el.signinNote.hidden = true;
  await loadStatus(true);
  return true;
}

async function onSignIn(event) {
  event.preventDefault();
  clearError(el.signinError);
  const username = el.signinUsername.value.trim();
  const password = el.signinPassword.value;
  if (!username || !password) {
    showError(el.signinError, 'Enter your username and password.');
    (username ? el.signinPassword : el.signinUsername).focus();
    return;
  }
  setBusy(el.signinSubmit, true);
  const result = await api('POST', '/v1/local/signin', { username, password });
  setBusy(el.signinSubmit, false);
  el.signinPassword.value = '';
  resetPasswordToggles();
  if (!result.ok || typeof result.data.token !== 'string') {
    showError(el.signinError, messageFor(result.ok ? { data: {} } : result));
    el.signinPassword.focus();
    return;
  }
  state.token = result.data.token;
  state.username = username;
  store(TOKEN_KEY, state.token);
  store(USER_KEY, username);
  el.signinNote.hidden = true;
  await loadStatus(true);
}

// --- signed in -------------------------------------------------------------------------------

/** Handles the failures every /v1/me call shares; answers true when it did. */
function handledAuthFailure(result) {
  const reason = errorCode(result);
  if (result.status === 401 || reason === 'unauthenticated') {
    signOut('Your sign-in has ended. Sign in again.');
    return true;
  }
  if (reason === 'recent_signin_required') {
    if (viaIssuer) {
      // Through the issuer again, who asks for the password whatever session it has.
      setStatus(el.status, 'For your safety, sign in again before making this change.');
      beginSignIn(config, true).catch(() => signOut('For your safety, sign in again before making this change.'));
      return true;
    }
    signOut('For your safety, sign in again before making this change.');
    return true;
  }
  return false;
}

async function loadStatus(justSignedIn) {
  const result = await api('GET', '/v1/me/registration', null, state.token);
  if (!result.ok) {
    if (handledAuthFailure(result)) {
      return;
    }
    showAccount();
    showError(el.error, messageFor(result));
    return;
  }
  render(result.data);
  showAccount();
  await loadQuestionBank();
  if (justSignedIn) {
    setStatus(el.status, 'You are signed in.');
  }
}

function showAccount() {
  hide(el.signinSection);
  clearError(el.signinError);
  el.signedInAs.textContent = state.username ? `Signed in as ${state.username}` : 'Signed in';
  show(el.account);
}

function render(status) {
  const methods = Array.isArray(status.methods) ? status.methods : [];
  el.methods.replaceChildren(
    ...methods.map((m) => {
      const li = document.createElement('li');
      li.className = 'method';
      const text = document.createElement('span');
      text.className = 'method-text';
      const kind = document.createElement('span');
      kind.className = 'method-kind';
      kind.textContent = kindLabel(m.kind);
      const hint = document.createElement('span');
      hint.className = 'method-hint';
      hint.textContent = String(m.hint ?? '');
      text.append(kind, hint);
      const remove = document.createElement('button');
      remove.type = 'button';
      remove.className = 'method-remove secondary small';
      remove.textContent = 'Remove';
      remove.setAttribute('aria-label', `Remove ${kindLabel(m.kind)} ${String(m.hint ?? '')}`);
      remove.addEventListener('click', () => removeMethod(m, remove));
      li.append(text, remove);
      return li;
    }),
  );
  el.methods.hidden = methods.length === 0;
  el.methodsEmpty.hidden = methods.length > 0;

  // The due day is YYYY-MM-DD in UTC, so it compares with today's as text.
  const today = new Date().toISOString().slice(0, 10);
  const overdue = methods.length > 0 && typeof status.reconfirm_due === 'string' && status.reconfirm_due <= today;
  let notice = '';
  if (overdue) {
    notice = 'Please check that these methods are still yours. If they are, confirm them; if not, remove them and add new ones.';
  } else if (status.must_register || methods.length === 0) {
    notice = 'Your organisation asks you to register recovery methods. Add them below.';
  }
  el.notice.textContent = notice;
  el.notice.hidden = !notice;
  el.reconfirm.hidden = !overdue;
}

function destinationProblem(kind, value) {
  const phone = kind === 'sms' || kind === 'voice';
  if (!value) {
    return phone ? 'Enter your phone number.' : 'Enter your email address.';
  }
  if (phone && !/^\+[1-9][0-9]{6,14}$/.test(value)) {
    return 'Enter the phone number in international format, starting with + and the country code, e.g. +12025550123.';
  }
  if (kind === 'email' && !/^[^\s@]+@[^\s@]+$/.test(value)) {
    return 'Enter a full email address, like name@example.com.';
  }
  return '';
}

async function beginMethod(kind, event) {
  event.preventDefault();
  clearError(el.error);
  const k = el.kind[kind];
  const destination = kind === 'email' ? k.destination.value.trim() : tidyPhone(k.destination.value);
  const problem = destinationProblem(kind, destination);
  if (problem) {
    showError(el.error, problem);
    k.destination.focus();
    return;
  }
  setBusy(k.send, true);
  setStatus(el.status, kind === 'voice' ? 'Calling…' : 'Sending a code…');
  const result = await api('POST', `/v1/me/methods/${kind}`, { destination }, state.token);
  setBusy(k.send, false);
  if (!result.ok) {
    setStatus(el.status, '');
    if (handledAuthFailure(result)) {
      return;
    }
    if (errorCode(result) === 'method_not_available') {
      // Not offered by the organisation's policy: the panel goes.
      k.sendForm.closest('.method-panel').hidden = true;
      showError(el.error, `${kindLabel(kind)} is not offered by your organisation.`);
      return;
    }
    showError(el.error, messageFor(result));
    k.destination.focus();
    return;
  }
  const minutes = Math.max(1, Math.round(Number(result.data.expires_in) / 60) || 5);
  k.code.value = '';
  show(k.confirmForm);
  const within = `within ${minutes} minute${minutes === 1 ? '' : 's'}`;
  setStatus(
    el.status,
    kind === 'voice'
      ? `We are calling ${destination} to read out a code. Enter it below ${within}.`
      : `We sent a code to ${destination}. Enter it below ${within}.`,
  );
  k.code.focus();
}

async function confirmMethod(kind, event) {
  event.preventDefault();
  clearError(el.error);
  const k = el.kind[kind];
  const code = tidyCode(k.code.value);
  if (!CODE_PATTERN.test(code)) {
    showError(el.error, 'Enter the code from the message, digits only.');
    k.code.focus();
    return;
  }
  setBusy(k.confirm, true);
  const result = await api('POST', `/v1/me/methods/${kind}/confirm`, { code }, state.token);
  setBusy(k.confirm, false);
  k.code.value = '';
  if (!result.ok) {
    if (handledAuthFailure(result)) {
      return;
    }
    const reason = errorCode(result);
    showError(el.error, messageFor(result));
    if (reason === 'invalid_code') {
      k.code.focus();
    } else {
      // Expired, used up or never sent: a new code is needed.
      hide(k.confirmForm);
      k.destination.focus();
    }
    return;
  }
  k.destination.value = '';
  hide(k.confirmForm);
  if (Array.isArray(result.data.methods)) {
    render(result.data);
  } else {
    await loadStatus(false);
  }
  setStatus(el.status, `${kindLabel(kind)} is registered.`);
}

// --- authenticator app -----------------------------------------------------------------------

/** Hides the app's setup and forgets its key: it is shown once, while it is being set up. */
function closeTotpSetup() {
  const t = el.totp;
  t.qr.removeAttribute('src');
  t.key.textContent = '';
  t.code.value = '';
  hide(t.setup);
  show(t.start);
}

async function beginTotp() {
  clearError(el.error);
  const t = el.totp;
  setBusy(t.begin, true);
  const result = await api('POST', '/v1/me/methods/totp', {}, state.token);
  setBusy(t.begin, false);
  if (!result.ok || typeof result.data.qr_svg !== 'string') {
    if (handledAuthFailure(result)) {
      return;
    }
    showError(el.error, messageFor(result.ok ? { data: {} } : result));
    return;
  }
  // An SVG in an <img> shows a picture and can run nothing.
  t.qr.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(result.data.qr_svg)}`;
  t.key.textContent = String(result.data.manual_key ?? '');
  hide(t.start);
  show(t.setup);
  setStatus(el.status, 'Scan the QR code with your app, then enter the code it shows.');
  t.code.focus();
}

async function confirmTotp(event) {
  event.preventDefault();
  clearError(el.error);
  const t = el.totp;
  const code = tidyCode(t.code.value);
  if (!/^[0-9]{6}$/.test(code)) {
    showError(el.error, 'Enter the 6-digit code the app shows, digits only.');
    t.code.focus();
    return;
  }
  setBusy(t.confirm, true);
  const result = await api('POST', '/v1/me/methods/totp/confirm', { code }, state.token);
  setBusy(t.confirm, false);
  t.code.value = '';
  if (!result.ok) {
    if (handledAuthFailure(result)) {
      return;
    }
    showError(el.error, messageFor(result));
    if (errorCode(result) === 'invalid_code') {
      t.code.focus();
    } else {
      // Expired or used up: the setup starts again with a new key.
      closeTotpSetup();
      t.begin.focus();
    }
    return;
  }
  closeTotpSetup();
  if (Array.isArray(result.data.methods)) {
    render(result.data);
  } else {
    await loadStatus(false);
  }
  setStatus(el.status, 'Your authenticator app is registered.');
}

async function reconfirm() {
  clearError(el.error);
  setBusy(el.reconfirmButton, true);
  const result = await api('POST', '/v1/me/registration/confirm', {}, state.token);
  setBusy(el.reconfirmButton, false);
  if (!result.ok) {
    if (handledAuthFailure(result)) {
      return;
    }
    showError(el.error, messageFor(result));
    return;
  }
  render(result.data);
  setStatus(el.status, 'Thank you: your methods are confirmed.');
}

// --- security questions ----------------------------------------------------------------------

const CUSTOM = 'custom';

/** Offers the bank when the policy allows questions for this person; hides the panel if not. */
async function loadQuestionBank() {
  const q = el.questions;
  const result = await api('GET', '/v1/me/methods/questions', null, state.token);
  if (!result.ok || !Array.isArray(result.data.bank)) {
    // Off in the policy, or not for administrators: nothing to offer.
    q.rows.replaceChildren();
    hide(q.panel);
    return;
  }
  const count = Number.isInteger(result.data.to_register) ? result.data.to_register : 3;
  const custom = result.data.custom_allowed === true;
  const rows = [];
  for (let i = 1; i <= count; i += 1) {
    rows.push(questionRow(i, result.data.bank, custom));
  }
  q.rows.replaceChildren(...rows);
  show(q.panel);
}

/** One question to choose (or write) and its answer. */
function questionRow(n, bank, custom) {
  const row = document.createElement('fieldset');
  row.className = 'question-row';
  const legend = document.createElement('legend');
  legend.textContent = `Question ${n}`;
  const select = document.createElement('select');
  select.id = `question-${n}`;
  select.setAttribute('aria-label', `Question ${n}`);
  const placeholder = new Option('Choose a question…', '');
  select.append(placeholder);
  for (const item of bank) {
    select.append(new Option(String(item.text ?? ''), String(item.id ?? '')));
  }
  if (custom) {
    select.append(new Option('Write my own question…', CUSTOM));
  }
  const own = document.createElement('input');
  own.id = `question-${n}-own`;
  own.type = 'text';
  own.maxLength = 200;
  own.hidden = true;
  own.setAttribute('aria-label', `Your own question ${n}`);
  select.addEventListener('change', () => {
    own.hidden = select.value !== CUSTOM;
    if (!own.hidden) {
      own.focus();
    }
  });
  const label = document.createElement('label');
  label.htmlFor = `answer-${n}`;
  label.textContent = 'Your answer';
  const answer = document.createElement('input');
  answer.id = `answer-${n}`;
  answer.type = 'text';
  answer.autocomplete = 'off';
  answer.spellcheck = false;
  answer.maxLength = 40;
  const field = document.createElement('div');
  field.className = 'field';
  field.append(label, answer);
  row.append(legend, select, own, field);
  return row;
}

/** The questions and answers the form holds, or a problem to show. */
function chosenQuestions() {
  const chosen = [];
  for (const row of el.questions.rows.querySelectorAll('.question-row')) {
    const [select] = row.getElementsByTagName('select');
    const [own, answer] = row.getElementsByTagName('input');
    const question = select.value === CUSTOM ? own.value.trim() : select.value;
    if (!question) {
      return { problem: 'Choose a question in every row.', focus: select.value === CUSTOM ? own : select };
    }
    const text = answer.value.trim().replace(/\s+/g, ' ');
    if (text.length < 3 || text.length > 40) {
      return { problem: 'Each answer needs 3 to 40 characters.', focus: answer };
    }
    chosen.push({ question, answer: answer.value });
  }
  const questions = new Set(chosen.map((c) => c.question));
  if (questions.size !== chosen.length) {
    return { problem: 'Choose a different question in each row.', focus: el.questions.rows };
  }
  const answers = new Set(chosen.map((c) => c.answer.trim().toLowerCase().replace(/\s+/g, ' ')));
  if (answers.size !== chosen.length) {
    return { problem: 'Give each question its own answer.', focus: el.questions.rows };
  }
  return { chosen };
}

async function saveQuestions(event) {
  event.preventDefault();
  clearError(el.error);
  const q = el.questions;
  const { chosen, problem, focus } = chosenQuestions();
  if (problem) {
    showError(el.error, problem);
    focus.focus();
    return;
  }
  setBusy(q.save, true);
  setStatus(el.status, 'Saving your questions…');
  const result = await api('PUT', '/v1/me/methods/questions', { answers: chosen }, state.token);
  setBusy(q.save, false);
  if (!result.ok) {
    setStatus(el.status, '');
    if (handledAuthFailure(result)) {
      return;
    }
    showError(el.error, messageFor(result));
    return;
  }
  for (const input of q.rows.getElementsByTagName('input')) {
    input.value = '';
  }
  if (Array.isArray(result.data.methods)) {
    render(result.data);
  } else {
    await loadStatus(false);
  }
  setStatus(el.status, 'Your security questions are saved.');
}

async function removeMethod(method, button) {
  clearError(el.error);
  setBusy(button, true);
  const result = await api('DELETE', `/v1/me/methods/${encodeURIComponent(method.id)}`, null, state.token);
  if (!result.ok) {
    setBusy(button, false);
    if (handledAuthFailure(result)) {
      return;
    }
    showError(el.error, messageFor(result));
    return;
  }
  if (Array.isArray(result.data.methods)) {
    render(result.data);
  } else {
    await loadStatus(false);
  }
  setStatus(el.status, `${kindLabel(method.kind)} removed.`);
  (el.methods.hidden ? el.kind.email.destination : el.methods).focus();
}

// --- wiring ----------------------------------------------------------------------------------

el.signinForm.addEventListener('submit', onSignIn);
el.signinOidcButton.addEventListener('click', onIssuerSignIn);
el.signout.addEventListener('click', () => {
  const token = state.token;
  signOut('');
  setStatus(el.status, 'You are signed out.');
  if (viaIssuer) endSession(config, token);
});
for (const kind of KINDS) {
  el.kind[kind].sendForm.addEventListener('submit', (event) => beginMethod(kind, event));
  el.kind[kind].confirmForm.addEventListener('submit', (event) => confirmMethod(kind, event));
}
el.questions.form.addEventListener('submit', saveQuestions);
el.reconfirmButton.addEventListener('click', reconfirm);
el.totp.begin.addEventListener('click', beginTotp);
el.totp.confirmForm.addEventListener('submit', confirmTotp);
el.totp.cancel.addEventListener('click', () => {
  closeTotpSetup();
  setStatus(el.status, '');
  el.totp.begin.focus();
});
el.methods.tabIndex = -1;
wirePasswordToggles();

if (viaIssuer) {
  el.signinForm.hidden = true;
  el.signinOidc.hidden = false;
}
if (!(viaIssuer && (await onIssuerReturn()))) {
  if (state.token) {
    loadStatus(false);
  } else {
    show(el.signinSection);
    hide(el.account);
  }
}
