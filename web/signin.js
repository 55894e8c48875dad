// Sign-in through the organisation's OpenID Connect issuer, for the registration page: the
// authorization code flow with PKCE (S256), `state` and `nonce` checked, done by oauth4webapi
// (web/oauth4webapi.js, the npm package's own file; the test script checks it is unchanged).
// Where to sign in comes from /config.json ({issuer, client_id, scopes, api_base}); an issuer of
// null means the local server's own sign-in. The ID token is kept in sessionStorage (it ends
// with the tab), never in localStorage; the flow's secrets only until the issuer sends the
// person back.

import * as oauth from './oauth4webapi.js';

const FLOW_KEY = 'sspr.oidc.flow';

/** The pages' configuration; the local sign-in when it cannot be read. */
export async function pageConfig() {
  try {
    const response = await fetch('/config.json', { cache: 'no-store', redirect: 'error' });
    if (response.ok) {
      const config = await response.json();
      if (config && typeof config === 'object') return config;
    }
  } catch {
    // Fall through: the local sign-in.
  }
  return { issuer: null };
}

/** http is allowed only for an issuer on this machine (a test or a local provider). */
function options(issuer) {
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(new URL(issuer).hostname);
  return loopback ? { [oauth.allowInsecureRequests]: true } : {};
}

async function discover(config) {
  const issuer = new URL(config.issuer);
  const response = await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...options(config.issuer) });
  return oauth.processDiscoveryResponse(issuer, response);
}

function redirectUri() {
  return `${window.location.origin}${window.location.pathname}`;
}

/**
 * Sends the person to the issuer. `fresh`: they must sign in again there, whatever session they
 * have (`prompt=login`, `max_age=0`), for a change that needs a recent sign-in.
 */
export async function beginSignIn(config, fresh = false) {
  const as = await discover(config);
  const verifier = oauth.generateRandomCodeVerifier();
  const flow = { verifier, state: oauth.generateRandomState(), nonce: oauth.generateRandomNonce(), fresh };
  sessionStorage.setItem(FLOW_KEY, JSON.stringify(flow));
  const url = new URL(as.authorization_endpoint);
  url.searchParams.set('client_id', config.client_id);
  url.searchParams.set('redirect_uri', redirectUri());
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('scope', config.scopes || 'openid');
  url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(verifier));
  url.searchParams.set('code_challenge_method', 'S256');
  url.searchParams.set('state', flow.state);
  url.searchParams.set('nonce', flow.nonce);
  if (fresh) {
    url.searchParams.set('prompt', 'login');
    url.searchParams.set('max_age', '0');
  }
  window.location.assign(url.href);
}

/**
 * Finishes a sign-in the issuer sent the person back from: `null` when this page load is not
 * one; else `{token, username}`, or throws with a sentence to show. The code leaves the
 * address bar either way.
 */
export async function finishSignIn(config) {
  const here = new URL(window.location.href);
  if (!here.searchParams.has('code') && !here.searchParams.has('error')) return null;
  const flow = JSON.parse(sessionStorage.getItem(FLOW_KEY) || 'null');
  sessionStorage.removeItem(FLOW_KEY);
  window.history.replaceState(null, '', here.pathname);
  if (!flow) throw new Error('The sign-in could not be finished. Sign in again.');
  const as = await discover(config);
  const client = { client_id: config.client_id };
  let params;
  try {
    params = oauth.validateAuthResponse(as, client, here, flow.state);
  } catch {
    throw new Error('The sign-in was not completed. Sign in again.');
  }
  const response = await oauth.authorizationCodeGrantRequest(
    as,
    client,
    oauth.None(),
    params,
    redirectUri(),
    flow.verifier,
    options(config.issuer),
  );
  const result = await oauth.processAuthorizationCodeResponse(as, client, response, {
    expectedNonce: flow.nonce,
    requireIdToken: true,
    ...(flow.fresh ? { maxAge: 300 } : {}),
  });
  const claims = oauth.getValidatedIdTokenClaims(result);
  const username = claims.preferred_username || claims['cognito:username'] || claims.sub;
  return { token: result.id_token, username: String(username) };
}

/**
 * Ends the issuer's session too: at its end-session endpoint, or, for a Cognito user pool (which
 * publishes none), at the /logout of its sign-in domain, whose return address is `logout_uri`.
 */
export async function endSession(config, idToken) {
  let as;
  try {
    as = await discover(config);
  } catch {
    return;
  }
  let url;
  if (as.end_session_endpoint) {
    url = new URL(as.end_session_endpoint);
    url.searchParams.set('client_id', config.client_id);
    url.searchParams.set('post_logout_redirect_uri', redirectUri());
    if (idToken) url.searchParams.set('id_token_hint', idToken);
  } else if (isCognito(as) && as.authorization_endpoint) {
    url = new URL('/logout', as.authorization_endpoint);
    url.searchParams.set('client_id', config.client_id);
    url.searchParams.set('logout_uri', redirectUri());
  } else {
    return;
  }
  window.location.assign(url.href);
}

/** A Cognito user pool's issuer: https://cognito-idp.REGION.amazonaws.com/POOL. */
function isCognito(as) {
  return /^cognito-idp\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$/.test(new URL(as.issuer).hostname);
}
