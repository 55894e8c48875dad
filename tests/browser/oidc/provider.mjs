// An OpenID Connect provider on loopback for the browser test of the registration page's
// sign-in: npm `oidc-provider` (a certified implementation of the specification) with one
// public client, the page, that must use PKCE (S256), and the demo people. Its own development
// login and consent pages stand in for an organisation's sign-in screens: they know only these
// people, and take any password (what is tested is the page's protocol, not the provider's).
//
//   node tests/browser/oidc/provider.mjs PORT REDIRECT_URI
//
// prints "ready" once it listens on http://127.0.0.1:PORT; its ID tokens (RS256) carry
// preferred_username, groups and auth_time.

import Provider from 'oidc-provider';

const [port, redirect] = process.argv.slice(2);
if (!port || !redirect) {
  console.error('usage: provider.mjs PORT REDIRECT_URI');
  process.exit(2);
}

// The demo people, as the local server's embedded directory has them.
const PEOPLE = {
  alice: ['SSPR-Users'],
  bob: ['SSPR-Users'],
  admin: ['SSPR-Users', 'SSPR-Admins'],
};

const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'sspr-register-page',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: [redirect],
      post_logout_redirect_uris: [redirect],
      require_auth_time: true,
    },
  ],
  pkce: { required: () => true },
  scopes: ['openid', 'profile'],
  claims: { openid: ['sub'], profile: ['preferred_username', 'groups'] },
  // The claims of the scopes asked for go into the ID token, which the page sends to the API.
  conformIdTokenClaims: false,
  async findAccount(_ctx, id) {
    const groups = PEOPLE[id];
    if (!groups) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, preferred_username: id, groups }) };
  },
  features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
  cookies: { keys: [`test-only-${process.pid}-${Date.now()}`] },
  // The page runs on another loopback port: its token request is cross-origin.
  clientBasedCORS: () => true,
});
provider.proxy = false;

provider.listen(Number(port), '127.0.0.1', () => {
  console.log('ready');
});
