// The registration page: sign in, then add, confirm and remove recovery methods. The sign-in
// token is kept in sessionStorage, so it ends with the tab.

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

const TOKEN_KEY = 'sspr.signin';
const USER_KEY = 'sspr.username';
// The methods whose codes are sent to a destination; the authenticator app has a panel of its own.
const KINDS = ['email', 'sms'];

const el = {
  status: $('register-status'),
  signinSection: $('signin-section'),
  signinNote: $('signin-note'),
  signinForm: $('signin-form'),
  signinUsername: $('signin-username'),
  signinPassword: $('signin-password'),
  signinSubmit: $('signin-submit'),
  signinError: $('signin-error'),
  account: $('account-section'),
  signedInAs: $('signed-in-as'),
  signout: $('signout'),
  notice: $('register-notice'),
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
  el.signinUsername.focus();
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

  let notice = '';
  if (status.must_register || methods.length === 0) {
    notice = 'Your organisation asks you to register a recovery method. Add one below.';
  } else if (status.reconfirm_due) {
    notice = 'Please check your methods are still yours: send a code to each one again and confirm it.';
  }
  el.notice.textContent = notice;
  el.notice.hidden = !notice;
}

function destinationProblem(kind, value) {
  if (!value) {
    return kind === 'sms' ? 'Enter your mobile number.' : 'Enter your email address.';
  }
  if (kind === 'sms' && !/^\+[1-9][0-9]{6,14}$/.test(value)) {
    return 'Enter the mobile number in international format, starting with + and the country code, e.g. +12025550123.';
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
  const destination = kind === 'sms' ? tidyPhone(k.destination.value) : k.destination.value.trim();
  const problem = destinationProblem(kind, destination);
  if (problem) {
    showError(el.error, problem);
    k.destination.focus();
    return;
  }
  setBusy(k.send, true);
  setStatus(el.status, 'Sending a code…');
  const result = await api('POST', `/v1/me/methods/${kind}`, { destination }, state.token);
  setBusy(k.send, false);
  if (!result.ok) {
    setStatus(el.status, '');
    if (handledAuthFailure(result)) {
      return;
    }
    showError(el.error, messageFor(result));
    k.destination.focus();
    return;
  }
  const minutes = Math.max(1, Math.round(Number(result.data.expires_in) / 60) || 5);
  k.code.value = '';
  show(k.confirmForm);
  setStatus(
    el.status,
    `We sent a code to ${destination}. Enter it below within ${minutes} minute${minutes === 1 ? '' : 's'}.`,
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
el.signout.addEventListener('click', () => {
  signOut('');
  setStatus(el.status, 'You are signed out.');
});
for (const kind of KINDS) {
  el.kind[kind].sendForm.addEventListener('submit', (event) => beginMethod(kind, event));
  el.kind[kind].confirmForm.addEventListener('submit', (event) => confirmMethod(kind, event));
}
el.totp.begin.addEventListener('click', beginTotp);
el.totp.confirmForm.addEventListener('submit', confirmTotp);
el.totp.cancel.addEventListener('click', () => {
  closeTotpSetup();
  setStatus(el.status, '');
  el.totp.begin.focus();
});
el.methods.tabIndex = -1;
wirePasswordToggles();

if (state.token) {
  loadStatus(false);
} else {
  show(el.signinSection);
  hide(el.account);
}
