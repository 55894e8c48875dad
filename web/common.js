// Shared helpers of the reset and registration pages: calls to the API, messages, and small
// DOM helpers. Server text is only ever placed with textContent.

/** Human text for the stable error codes of the API. */
const MESSAGES = {
  network: 'We could not reach the service. Check your connection and try again.',
  internal: 'Something went wrong on our side. Try again later.',
  unavailable: 'The service is unavailable right now. Try again later.',
  unauthenticated: 'Your sign-in has ended. Sign in again.',
  signin_failed: 'The username or password is not correct.',
  recent_signin_required: 'For your safety, sign in again before making this change.',
  invalid_code: 'That code is not right. Check it and try again.',
  code_expired: 'That code has expired. Ask for a new one.',
  too_many_attempts: 'Too many tries. Wait a while, then start again.',
  no_pending_code: 'There is no code waiting to be checked. Ask for a new one.',
  nothing_to_confirm: 'There are no recovery methods to confirm yet. Add one first.',
  wrong_answers: 'One or more answers were not right. Answer these questions instead.',
  no_questions_drawn: 'Those questions are no longer open. Answer the new ones.',
  session_expired: 'This reset has timed out. Start again.',
  invalid_session: 'This reset is no longer valid. Start again.',
  challenge_failed: 'We could not check your browser. Try again.',
  token_used: 'This reset has already been used. Start again if you need to.',
  invalid_token: 'This reset is no longer valid. Start again.',
  unlock_not_available: 'Unlocking without a new password is not available. Choose a new password instead.',
  password_rejected: 'That password cannot be used.',
  method_not_available: 'This method is not available.',
  method_not_found: 'That method was not found. It may already have been removed.',
  already_verified: 'This method is already verified.',
  not_verified: 'Verify your identity first.',
  not_enabled: 'Self-service password reset is not enabled for this account.',
  conflict: 'Something changed at the same time. Try again.',
};

/**
 * Calls the JSON API. Never throws: answers `{ok, status, data}`, where `data` is the parsed
 * JSON body (or `{}`), and a network failure is `{ok: false, status: 0, data: {error: 'network'}}`.
 */
export async function api(method, path, body, token) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store', redirect: 'error' };
  if (body !== undefined && body !== null) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (token) {
    headers.Authorization = `Bearer ${token}`;
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    return { ok: false, status: 0, data: { error: 'network', message: MESSAGES.network } };
  }
  let data = {};
  const text = await response.text().catch(() => '');
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = {};
    }
  }
  if (data === null || typeof data !== 'object') {
    data = {};
  }
  return { ok: response.ok, status: response.status, data };
}

/**
 * The text to show for a failed call: our wording for known codes, else the server's; over a
 * limit, with how long to wait (the answer's `retry_after`).
 */
export function messageFor(result) {
  const text = baseMessage(result);
  const wait = result && result.status === 429 && result.data ? result.data.retry_after : undefined;
  return Number.isInteger(wait) && wait > 0 ? `${text} Try again ${waitText(wait)}.` : text;
}

/** A wait of `seconds` as a person reads it: "in a minute", "in about 40 minutes", "in about 3 hours". */
export function waitText(seconds) {
  const minutes = Math.max(1, Math.ceil(seconds / 60));
  if (minutes < 60) {
    return minutes === 1 ? 'in a minute' : `in about ${minutes} minutes`;
  }
  const hours = Math.round(minutes / 60);
  return hours === 1 ? 'in about an hour' : `in about ${hours} hours`;
}

function baseMessage(result) {
  const data = (result && result.data) || {};
  const code = typeof data.error === 'string' ? data.error : '';
  if (code === 'invalid_input' && typeof data.message === 'string' && data.message) {
    return data.message;
  }
  if (MESSAGES[code]) {
    return MESSAGES[code];
  }
  if (typeof data.message === 'string' && data.message) {
    return data.message;
  }
  if (result && result.status === 429) {
    return MESSAGES.too_many_attempts;
  }
  if (result && result.status >= 500) {
    return MESSAGES.internal;
  }
  return 'Something went wrong. Try again.';
}

/** The stable error code of a failed call, or ''. */
export function errorCode(result) {
  const data = (result && result.data) || {};
  return typeof data.error === 'string' ? data.error : '';
}

export function $(id) {
  const el = document.getElementById(id);
  if (!el) {
    throw new Error(`missing element #${id}`);
  }
  return el;
}

export function show(el) {
  el.hidden = false;
}

export function hide(el) {
  el.hidden = true;
}

/** Shows `text` in an error element (and unhides it); an empty text hides it. */
export function showError(el, text) {
  el.textContent = text || '';
  el.hidden = !text;
}

export function clearError(el) {
  showError(el, '');
}

/** Puts `text` in a live status region. */
export function setStatus(el, text) {
  el.textContent = text || '';
}

/** Disables a button while work is under way, and marks it busy for assistive technology. */
export function setBusy(button, busy) {
  button.disabled = busy;
  if (busy) {
    button.setAttribute('aria-busy', 'true');
  } else {
    button.removeAttribute('aria-busy');
  }
}

/** Replaces the items of a list with one `<li>` per text. */
export function fillList(list, texts) {
  list.replaceChildren(
    ...texts.map((text) => {
      const li = document.createElement('li');
      li.textContent = String(text);
      return li;
    }),
  );
  list.hidden = texts.length === 0;
}

/** A phone number as typed, without the spaces and punctuation people add for reading. */
export function tidyPhone(value) {
  return value.trim().replace(/[\s().-]/g, '');
}

/** A code as typed, digits only. */
export function tidyCode(value) {
  return value.replace(/\s|-/g, '').trim();
}

export const CODE_PATTERN = /^[0-9]{6,10}$/;

/** The checks of a new password the page can make itself; the server has the final word. */
export function passwordProblems(password, confirm, username) {
  const problems = [];
  if (password.length < 8) {
    problems.push('Use at least 8 characters.');
  }
  if (password.length > 256) {
    problems.push('Use at most 256 characters.');
  }
  if (username && password.toLowerCase() === username.trim().toLowerCase()) {
    problems.push('Do not use your username as your password.');
  }
  if (password !== confirm) {
    problems.push('The two passwords do not match.');
  }
  return problems;
}

/** Lets a toggle button (`data-toggle-password` = the field's id) show or hide a password. */
export function wirePasswordToggles(root = document) {
  for (const button of root.querySelectorAll('button[data-toggle-password]')) {
    const input = document.getElementById(button.dataset.togglePassword);
    if (!input) {
      continue;
    }
    button.addEventListener('click', () => {
      const showing = input.type === 'text';
      input.type = showing ? 'password' : 'text';
      button.setAttribute('aria-pressed', String(!showing));
    });
  }
}

/** Puts every password field back to hidden text. */
export function resetPasswordToggles(root = document) {
  for (const button of root.querySelectorAll('button[data-toggle-password]')) {
    const input = document.getElementById(button.dataset.togglePassword);
    if (input) {
      input.type = 'password';
    }
    button.setAttribute('aria-pressed', 'false');
  }
}

export function kindLabel(kind) {
  if (kind === 'email') {
    return 'Email';
  }
  if (kind === 'sms') {
    return 'Text message (SMS)';
  }
  if (kind === 'totp') {
    return 'Authenticator app';
  }
  if (kind === 'questions') {
    return 'Security questions';
  }
  if (kind === 'voice') {
    return 'Voice call';
  }
  return String(kind);
}
