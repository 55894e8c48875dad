// The reset page: username and a proof of work, then one code per required method, then a new
// password (or an unlock only). The session handle and reset token live in memory only.

import {
  $,
  api as request,
  clearError as clearShownError,
  CODE_PATTERN,
  errorCode,
  fillList,
  messageFor,
  passwordProblems,
  resetPasswordToggles,
  setBusy,
  setStatus,
  showError as showErrorText,
  tidyCode,
  tidyPhone,
  wirePasswordToggles,
} from './common.js';

const KINDS = ['email', 'sms', 'voice', 'totp', 'questions'];
// Methods whose code is sent to a destination the person types; the app's code is on the phone.
const SENT = ['email', 'sms', 'voice'];

const el = {
  error: $('reset-error'),
  help: $('reset-help'),
  status: $('reset-status'),
  lead: $('reset-lead'),
  startForm: $('start-form'),
  username: $('reset-username'),
  start: $('reset-start'),
  sendForm: $('send-form'),
  sendIntro: $('send-intro'),
  choice: {
    email: $('choice-email'),
    sms: $('choice-sms'),
    voice: $('choice-voice'),
    totp: $('choice-totp'),
    questions: $('choice-questions'),
  },
  radio: {
    email: $('method-email'),
    sms: $('method-sms'),
    voice: $('method-voice'),
    totp: $('method-totp'),
    questions: $('method-questions'),
  },
  destinationField: $('destination-field'),
  destination: $('reset-destination'),
  destinationLabel: $('reset-destination-label'),
  send: $('reset-send'),
  verifyForm: $('verify-form'),
  code: $('reset-code'),
  codeHint: $('reset-code-hint'),
  verify: $('reset-verify'),
  back: $('reset-back'),
  questionsForm: $('questions-form'),
  questionsFields: $('questions-fields'),
  questionsVerify: $('questions-verify'),
  questionsBack: $('questions-back'),
  passwordForm: $('password-form'),
  newPassword: $('new-password'),
  newPasswordConfirm: $('new-password-confirm'),
  reasons: $('password-reasons'),
  complete: $('reset-complete'),
  unlock: $('reset-unlock'),
  unlockAction: $('unlock-action'),
  done: $('reset-done'),
  doneText: $('reset-done-text'),
};

/** What the reset has reached so far; never written to storage. */
const state = {
  session: null,
  resetToken: null,
  username: '',
  offered: [],
  required: 1,
  verified: [],
  method: null,
  /** Codes asked for in this session: each after the first needs a fresh proof of work. */
  codesAsked: 0,
};

const STEPS = [el.startForm, el.sendForm, el.verifyForm, el.questionsForm, el.passwordForm, el.done];

function showStep(step, focus) {
  for (const s of STEPS) {
    s.hidden = s !== step;
  }
  if (focus) {
    focus.focus();
  }
}

function forget() {
  state.session = null;
  state.resetToken = null;
  state.verified = [];
  state.method = null;
  state.codesAsked = 0;
  el.code.value = '';
  el.destination.value = '';
  el.questionsFields.replaceChildren();
  el.newPassword.value = '';
  el.newPasswordConfirm.value = '';
  resetPasswordToggles();
  fillList(el.reasons, []);
}

// --- where to get help ----------------------------------------------------------------------

// The helpdesk of the last failed call: a link ('mailto:' or https), '' for none, null when the
// error shown next did not come from the API.
let failedHelp = null;

/** Calls the API; a failure remembers the helpdesk link its body carries. */
async function api(method, path, body) {
  const result = await request(method, path, body);
  if (!result.ok) {
    const link = typeof result.data.helpdesk === 'string' ? result.data.helpdesk : '';
    failedHelp = /^(mailto:|https:\/\/)/.test(link) ? link : '';
  }
  return result;
}

/** Shows an error; one from the API comes with where to get help. */
function showError(target, text) {
  showErrorText(target, text);
  if (!text) {
    el.help.hidden = true;
  } else if (failedHelp !== null) {
    el.help.replaceChildren('Need help? ');
    if (failedHelp) {
      const link = document.createElement('a');
      link.href = failedHelp;
      link.textContent = failedHelp.replace(/^mailto:/, '');
      el.help.append('Contact your helpdesk: ', link, '.');
    } else {
      el.help.append('Contact your administrator.');
    }
    el.help.hidden = false;
  }
  failedHelp = null;
}

function clearError(target) {
  clearShownError(target);
  el.help.hidden = true;
}

/** Back to the first step, with a reason when there is one. */
function restart(message) {
  forget();
  setStatus(el.status, '');
  showError(el.error, message || '');
  showStep(el.startForm, el.username);
}

// --- proof of work ---------------------------------------------------------------------------

function hexToBytes(hex) {
  if (typeof hex !== 'string' || hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    return null;
  }
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i += 1) {
    bytes[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  }
  return bytes;
}

function sameBytes(a, b) {
  if (a.length !== b.length) {
    return false;
  }
  for (let i = 0; i < a.length; i += 1) {
    if (a[i] !== b[i]) {
      return false;
    }
  }
  return true;
}

const nextTick = () => new Promise((resolve) => setTimeout(resolve, 0));

/** Finds n in 0..=maxnumber with SHA-256(salt + n) = challenge, a batch at a time. */
async function solve(challenge) {
  const subtle = globalThis.crypto && globalThis.crypto.subtle;
  if (!subtle) {
    throw new Error('insecure-context');
  }
  const target = hexToBytes(challenge.challenge);
  const max = Number(challenge.maxnumber);
  if (challenge.algorithm !== 'SHA-256' || !target || !Number.isSafeInteger(max) || max < 0) {
    return null;
  }
  const encoder = new TextEncoder();
  const salt = String(challenge.salt);
  const batch = 1000;
  for (let first = 0; first <= max; first += batch) {
    const last = Math.min(max, first + batch - 1);
    const digests = [];
    for (let n = first; n <= last; n += 1) {
      digests.push(subtle.digest('SHA-256', encoder.encode(salt + String(n))));
    }
    const results = await Promise.all(digests);
    for (let i = 0; i < results.length; i += 1) {
      if (sameBytes(new Uint8Array(results[i]), target)) {
        return first + i;
      }
    }
    await nextTick();
  }
  return null;
}

function toBase64(text) {
  let binary = '';
  for (const byte of new TextEncoder().encode(text)) {
    binary += String.fromCharCode(byte);
  }
  return btoa(binary);
}

/** Fetches a challenge and answers the payload for /v1/reset/start, or a failed result. */
async function solvedChallenge() {
  const got = await api('GET', '/v1/reset/challenge');
  if (!got.ok) {
    return { result: got };
  }
  const c = got.data;
  const number = await solve(c);
  if (number === null) {
    return { result: { ok: false, status: 0, data: { error: 'challenge_failed' } } };
  }
  const payload = toBase64(
    JSON.stringify({ algorithm: c.algorithm, challenge: c.challenge, number, salt: c.salt, signature: c.signature }),
  );
  return { payload };
}

// --- step 1: start ---------------------------------------------------------------------------

async function onStart(event) {
  event.preventDefault();
  clearError(el.error);
  const username = el.username.value.trim();
  if (!username) {
    showError(el.error, 'Enter your username.');
    el.username.focus();
    return;
  }
  setBusy(el.start, true);
  el.username.readOnly = true;
  setStatus(el.status, 'Checking your browser…');
  let result = null;
  try {
    // A spent or expired challenge is answered with challenge_failed: one more go with a new one.
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const solved = await solvedChallenge();
      if (solved.payload) {
        result = await api('POST', '/v1/reset/start', { username, challenge: solved.payload });
      } else {
        result = solved.result;
      }
      if (result.ok || errorCode(result) !== 'challenge_failed') {
        break;
      }
    }
  } catch (err) {
    const insecure = err && err.message === 'insecure-context';
    result = {
      ok: false,
      status: 0,
      data: {
        error: 'browser',
        message: insecure
          ? 'This page must be opened over HTTPS to work.'
          : 'Your browser could not complete the check. Reload the page and try again.',
      },
    };
  } finally {
    setBusy(el.start, false);
    el.username.readOnly = false;
  }
  setStatus(el.status, '');
  if (!result || !result.ok) {
    showError(el.error, messageFor(result));
    el.username.focus();
    return;
  }
  const data = result.data;
  if (typeof data.session !== 'string' || !data.session) {
    showError(el.error, 'Something went wrong. Try again.');
    return;
  }
  state.session = data.session;
  state.codesAsked = 0;
  state.username = username;
  state.offered = Array.isArray(data.methods) ? data.methods.filter((m) => KINDS.includes(m)) : [];
  state.required = Number.isInteger(data.required) && data.required > 0 ? data.required : 1;
  state.verified = [];
  if (state.offered.length === 0) {
    restart('Self-service password reset is not available. Contact your IT help desk.');
    return;
  }
  toSend();
}

// --- step 2: choose a method and send a code -------------------------------------------------

function chosenMethod() {
  return KINDS.find((k) => el.radio[k].checked && !el.choice[k].hidden) || null;
}

/** How the destination field asks for each kind of destination. */
const DESTINATION_FIELD = {
  sms: {
    label: 'Your registered mobile number',
    input: { type: 'tel', autocomplete: 'tel', inputMode: 'tel', placeholder: '+12025550123', maxLength: 24 },
  },
  voice: {
    label: 'Your registered phone number',
    input: { type: 'tel', autocomplete: 'tel', inputMode: 'tel', placeholder: '+12025550123', maxLength: 24 },
  },
  email: {
    label: 'Your registered email address',
    input: { type: 'email', autocomplete: 'email', inputMode: 'email', placeholder: 'name@example.com', maxLength: 254 },
  },
};

/** Shows the destination field for a code to send, and nothing to type for the app. */
function describeDestination() {
  const method = chosenMethod();
  const sent = SENT.includes(method);
  el.destinationField.hidden = !sent;
  el.send.textContent = method === 'voice' ? 'Call me' : sent ? 'Send code' : 'Continue';
  if (sent) {
    const field = DESTINATION_FIELD[method];
    el.destinationLabel.textContent = field.label;
    Object.assign(el.destination, field.input);
  }
}

function toSend() {
  const left = state.offered.filter((k) => !state.verified.includes(k));
  for (const kind of KINDS) {
    el.choice[kind].hidden = !left.includes(kind);
  }
  if (!chosenMethod() && left.length > 0) {
    el.radio[left[0]].checked = true;
  }
  const more = state.required - state.verified.length;
  if (state.verified.length > 0) {
    el.sendIntro.textContent =
      more > 1 ? `Verified. Now verify ${more} more methods.` : 'Verified. Now verify one more method.';
  } else {
    el.sendIntro.textContent =
      state.required > 1
        ? `Choose one of the methods you registered. You will need to verify ${state.required} of them.`
        : 'Choose one of the methods you registered.';
  }
  el.destination.value = '';
  describeDestination();
  showStep(el.sendForm, el.destinationField.hidden ? el.radio[chosenMethod()] : el.destination);
}

function destinationProblem(method, value) {
  const phone = method === 'sms' || method === 'voice';
  if (!value) {
    return phone ? 'Enter your phone number.' : 'Enter your email address.';
  }
  if (phone && !/^\+[1-9][0-9]{6,14}$/.test(value)) {
    return 'Enter the phone number in international format, starting with + and the country code, e.g. +12025550123.';
  }
  if (method === 'email' && !/^[^\s@]+@[^\s@]+$/.test(value)) {
    return 'Enter a full email address, like name@example.com.';
  }
  return '';
}

async function onSend(event) {
  event.preventDefault();
  clearError(el.error);
  const method = chosenMethod();
  if (!method) {
    showError(el.error, 'Choose a method.');
    return;
  }
  if (method === 'questions') {
    await askQuestions('');
    return;
  }
  if (!SENT.includes(method)) {
    // Nothing to send: the app shows its code already.
    state.method = method;
    el.code.value = '';
    el.codeHint.textContent = 'Enter the 6-digit code your authenticator app shows now.';
    setStatus(el.status, '');
    showStep(el.verifyForm, el.code);
    return;
  }
  const destination = method === 'email' ? el.destination.value.trim() : tidyPhone(el.destination.value);
  const problem = destinationProblem(method, destination);
  if (problem) {
    showError(el.error, problem);
    el.destination.focus();
    return;
  }
  setBusy(el.send, true);
  setStatus(el.status, 'Sending…');
  let result = null;
  // After the first code, each new one needs a fresh check: one more go if it was refused.
  for (let attempt = 0; attempt < 2; attempt += 1) {
    const body = { session: state.session, method, destination };
    if (state.codesAsked > 0) {
      setStatus(el.status, 'Checking your browser…');
      const solved = await solvedChallenge().catch(() => ({ result: null }));
      if (!solved.payload) {
        result = solved.result || { ok: false, status: 0, data: { error: 'challenge_failed' } };
        break;
      }
      body.challenge = solved.payload;
      setStatus(el.status, 'Sending…');
    }
    result = await api('POST', '/v1/reset/send-code', body);
    if (result.ok || errorCode(result) !== 'challenge_failed' || state.codesAsked === 0) {
      break;
    }
  }
  setBusy(el.send, false);
  if (result.ok) {
    state.codesAsked += 1;
  }
  if (!result.ok) {
    setStatus(el.status, '');
    const code = errorCode(result);
    if (code === 'session_expired' || code === 'invalid_session') {
      restart(messageFor(result));
      return;
    }
    showError(el.error, messageFor(result));
    el.destination.focus();
    return;
  }
  state.method = method;
  el.code.value = '';
  el.codeHint.textContent =
    method === 'voice'
      ? 'Enter the code read out in the call. It is valid for a few minutes.'
      : 'Enter the code from the message. It is valid for a few minutes.';
  setStatus(
    el.status,
    method === 'voice'
      ? 'If this matches what you registered, we are calling you with a code.'
      : 'If this matches what you registered, a code is on its way.',
  );
  showStep(el.verifyForm, el.code);
}

// --- step 3: verify the code -----------------------------------------------------------------

async function onVerify(event) {
  event.preventDefault();
  clearError(el.error);
  const code = tidyCode(el.code.value);
  if (!CODE_PATTERN.test(code)) {
    showError(
      el.error,
      SENT.includes(state.method) ? 'Enter the code from the message, digits only.' : 'Enter the code from the app, digits only.',
    );
    el.code.focus();
    return;
  }
  setBusy(el.verify, true);
  const result = await api('POST', '/v1/reset/verify', { session: state.session, method: state.method, code });
  setBusy(el.verify, false);
  el.code.value = '';
  if (!result.ok) {
    const reason = errorCode(result);
    if (reason === 'invalid_code') {
      showError(el.error, messageFor(result));
      el.code.focus();
    } else if (reason === 'code_expired' || reason === 'no_pending_code' || reason === 'already_verified') {
      setStatus(el.status, '');
      showError(el.error, messageFor(result));
      toSend();
    } else if (['session_expired', 'invalid_session', 'too_many_attempts'].includes(reason)) {
      restart(messageFor(result));
    } else {
      showError(el.error, messageFor(result));
      el.code.focus();
    }
    return;
  }
  onVerified(result.data);
}

/** A method is proved: on to the new password, or to the next method. */
function onVerified(data) {
  state.verified = Array.isArray(data.verified) ? data.verified.filter((m) => KINDS.includes(m)) : [state.method];
  if (data.remaining === 0 && typeof data.reset_token === 'string' && data.reset_token) {
    state.resetToken = data.reset_token;
    // Offered only when the directory reports the account locked, which the server says only
    // now that the person is verified.
    el.unlockAction.hidden = data.unlock_offered !== true;
    setStatus(el.status, 'Verified.');
    fillList(el.reasons, []);
    showStep(el.passwordForm, el.newPassword);
    return;
  }
  setStatus(el.status, 'Verified.');
  toSend();
}

// --- step 3, for security questions ---------------------------------------------------------

/** Fetches the questions drawn for this session and asks them; `note` explains a redraw. */
async function askQuestions(note) {
  setBusy(el.send, true);
  const result = await api('POST', '/v1/reset/questions', { session: state.session });
  setBusy(el.send, false);
  if (!result.ok || !Array.isArray(result.data.questions)) {
    const reason = errorCode(result);
    if (['session_expired', 'invalid_session', 'too_many_attempts'].includes(reason)) {
      restart(messageFor(result));
      return;
    }
    showError(el.error, messageFor(result.ok ? { data: {} } : result));
    toSend();
    return;
  }
  state.method = 'questions';
  el.questionsFields.replaceChildren(
    ...result.data.questions.map((q, i) => {
      const field = document.createElement('div');
      field.className = 'field';
      const label = document.createElement('label');
      label.htmlFor = `answer-${i + 1}`;
      label.textContent = String(q.text ?? '');
      const input = document.createElement('input');
      input.id = `answer-${i + 1}`;
      input.type = 'text';
      input.autocomplete = 'off';
      input.spellcheck = false;
      input.maxLength = 40;
      input.dataset.question = String(q.id ?? '');
      field.append(label, input);
      return field;
    }),
  );
  if (note) {
    showError(el.error, note);
  }
  setStatus(el.status, '');
  showStep(el.questionsForm, el.questionsFields.querySelector('input'));
}

async function onVerifyQuestions(event) {
  event.preventDefault();
  clearError(el.error);
  const inputs = [...el.questionsFields.querySelectorAll('input')];
  const empty = inputs.find((input) => input.value.trim() === '');
  if (empty) {
    showError(el.error, 'Answer every question.');
    empty.focus();
    return;
  }
  const answers = inputs.map((input) => ({ id: input.dataset.question, answer: input.value }));
  setBusy(el.questionsVerify, true);
  const result = await api('POST', '/v1/reset/verify', { session: state.session, method: 'questions', answers });
  setBusy(el.questionsVerify, false);
  for (const input of inputs) {
    input.value = '';
  }
  if (result.ok) {
    el.questionsFields.replaceChildren();
    onVerified(result.data);
    return;
  }
  const reason = errorCode(result);
  if (reason === 'wrong_answers' || reason === 'no_questions_drawn') {
    // The questions are drawn anew after a wrong answer.
    await askQuestions(messageFor(result));
  } else if (['session_expired', 'invalid_session', 'too_many_attempts'].includes(reason)) {
    restart(messageFor(result));
  } else {
    showError(el.error, messageFor(result));
  }
}

function onBack() {
  clearError(el.error);
  setStatus(el.status, '');
  el.code.value = '';
  toSend();
}

// --- step 4: new password or unlock ----------------------------------------------------------

function finish(unlockOnly) {
  forget();
  clearError(el.error);
  setStatus(el.status, '');
  el.doneText.textContent = unlockOnly
    ? 'Your account is unlocked. Sign in with your current password.'
    : 'Your password has been changed. Use it the next time you sign in.';
  el.lead.hidden = true;
  showStep(el.done, el.done);
}

function onCompleteFailed(result) {
  const reason = errorCode(result);
  if (['token_used', 'invalid_token', 'session_expired', 'invalid_session', 'not_verified'].includes(reason)) {
    restart(messageFor(result));
    return;
  }
  if (reason === 'writeback_incomplete') {
    // The organisation's directory has the new password; pressing again with the same one
    // finishes the cloud half. An unlock is no longer the question.
    el.unlockAction.hidden = true;
    showError(el.error, messageFor(result));
    el.complete.focus();
    return;
  }
  if (reason === 'password_rejected') {
    const reasons = Array.isArray(result.data.reasons)
      ? result.data.reasons.filter((r) => typeof r === 'string' && r)
      : [];
    fillList(el.reasons, reasons);
    showError(el.error, reasons.length ? 'That password cannot be used. See the reasons below.' : messageFor(result));
    el.newPassword.focus();
    return;
  }
  showError(el.error, messageFor(result));
}

async function onComplete(event) {
  event.preventDefault();
  clearError(el.error);
  setStatus(el.status, '');
  fillList(el.reasons, []);
  const password = el.newPassword.value;
  const problems = passwordProblems(password, el.newPasswordConfirm.value, state.username);
  if (problems.length > 0) {
    fillList(el.reasons, problems);
    showError(el.error, 'That password cannot be used yet. See the reasons below.');
    el.newPassword.focus();
    return;
  }
  await complete({ new_password: password }, el.complete, el.unlock, 'Saving your new password…');
}

async function onUnlock() {
  clearError(el.error);
  fillList(el.reasons, []);
  await complete({ unlock_only: true }, el.unlock, el.complete, 'Unlocking your account…');
}

/** Spends the reset token on `choice` (a new password or an unlock), `busy` showing progress. */
async function complete(choice, busy, other, progress) {
  setBusy(busy, true);
  other.disabled = true;
  setStatus(el.status, progress);
  const result = await api('POST', '/v1/reset/complete', {
    session: state.session,
    reset_token: state.resetToken,
    ...choice,
  });
  setBusy(busy, false);
  other.disabled = false;
  setStatus(el.status, '');
  if (result.ok) {
    finish(choice.unlock_only === true);
  } else {
    onCompleteFailed(result);
  }
}

// --- wiring ----------------------------------------------------------------------------------

el.startForm.addEventListener('submit', onStart);
el.sendForm.addEventListener('submit', onSend);
el.verifyForm.addEventListener('submit', onVerify);
el.passwordForm.addEventListener('submit', onComplete);
el.back.addEventListener('click', onBack);
el.questionsForm.addEventListener('submit', onVerifyQuestions);
el.questionsBack.addEventListener('click', () => {
  el.questionsFields.replaceChildren();
  onBack();
});
el.unlock.addEventListener('click', onUnlock);
for (const kind of KINDS) {
  el.radio[kind].addEventListener('change', () => {
    el.destination.value = '';
    describeDestination();
  });
}
wirePasswordToggles();
// Secrets do not outlive the page, even in the back/forward cache.
window.addEventListener('pagehide', forget);
window.addEventListener('pageshow', (event) => {
  if (event.persisted) {
    restart('');
  }
});
showStep(el.startForm);
