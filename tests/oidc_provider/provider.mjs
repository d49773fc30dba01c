// A real OpenID Connect provider (panva/oidc-provider) on loopback, for Gatehouse's SSO tests.
//
// It signs ID tokens with an RS256 key generated at start, serves discovery, JWKS, the
// authorization, token and userinfo endpoints, and a plain sign-in page of its own. Accounts and
// clients come from the environment (JSON), so each test can shape them:
//
//   OIDC_TEST_ACCOUNTS  [{"login", "password", "sub", "email", "email_verified", "name", "amr"}]
//   OIDC_TEST_CLIENTS   [{"client_id", "client_secret"}]
//   OIDC_TEST_PORT      port to listen on (0, the default, picks a free one)
//
// When it listens it prints one JSON line to stdout: {"ready": true, "issuer": "http://..."}.
// Test-only: any redirect URI on loopback or Django's test client host is accepted.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const DEFAULT_ACCOUNTS = [
  {
    login: 'known', password: 'known-pass', sub: 'sub-known', email: 'known@example.com',
    email_verified: true, name: 'Kim Known', amr: ['pwd'],
  },
  {
    login: 'stranger', password: 'stranger-pass', sub: 'sub-stranger',
    email: 'stranger@example.com', email_verified: true, name: 'Sam Stranger', amr: ['pwd'],
  },
  {
    login: 'mfa', password: 'mfa-pass', sub: 'sub-mfa', email: 'mfa@example.com',
    email_verified: true, name: 'Mia Multifactor', amr: ['pwd', 'mfa'],
  },
  {
    login: 'unverified', password: 'unverified-pass', sub: 'sub-unverified',
    email: 'known@example.com', email_verified: false, name: 'Una Unverified', amr: ['pwd'],
  },
];

function fromEnv(name, fallback) {
  const raw = process.env[name];
  return raw ? JSON.parse(raw) : fallback;
}

const accounts = fromEnv('OIDC_TEST_ACCOUNTS', DEFAULT_ACCOUNTS);
const clients = fromEnv('OIDC_TEST_CLIENTS', [
  { client_id: 'gatehouse', client_secret: 'gatehouse-test-secret' },
]);
const port = Number(process.env.OIDC_TEST_PORT || 0);

const bySub = new Map(accounts.map((account) => [account.sub, account]));
const byLogin = new Map(accounts.map((account) => [account.login, account]));

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(res, status, title, body) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:sans-serif;max-width:28rem;margin:3rem auto}label{display:block;margin:.75rem 0 .25rem}
input{width:100%;padding:.4rem}button{margin-top:1rem;padding:.5rem 1rem}.error{color:#a00}</style></head>
<body><h1>${escapeHtml(title)}</h1>${body}</body></html>`);
}

function readForm(req) {
  return new Promise((resolve, reject) => {
    let data = '';
    req.on('data', (chunk) => {
      data += chunk;
      if (data.length > 10000) reject(new Error('form too large'));
    });
    req.on('end', () => resolve(new URLSearchParams(data)));
    req.on('error', reject);
  });
}

function loginForm(uid, error = '') {
  return `${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login" autocomplete="off">
<label for="login">Username</label><input id="login" name="login" required autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" required>
<button type="submit">Sign in to Test IdP</button></form>`;
}

const server = http.createServer();
server.listen(port, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'test-rs256', alg: 'RS256', use: 'sig' };

  const provider = new Provider(issuer, {
    clients: clients.map((c) => ({
      client_id: c.client_id,
      client_secret: c.client_secret,
      redirect_uris: ['http://127.0.0.1/accounts/oidc/callback/'],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: c.token_endpoint_auth_method || 'client_secret_post',
    })),
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    claims: {
      // As Okta, Entra ID and Keycloak do: how the person authenticated is in every ID token.
      openid: ['sub', 'auth_time', 'amr', 'acr'],
      email: ['email', 'email_verified'],
      profile: ['name', 'given_name', 'family_name'],
    },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    pkce: { required: () => true },
    async findAccount(ctx, sub) {
      const account = bySub.get(sub);
      if (!account) return undefined;
      return {
        accountId: sub,
        async claims() {
          const [given, ...rest] = account.name.split(' ');
          return {
            sub,
            email: account.email,
            email_verified: account.email_verified,
            name: account.name,
            given_name: given,
            family_name: rest.join(' '),
          };
        },
      };
    },
  });
  // Test-only: Django's live server and test client pick their own ports and host names.
  provider.Client.prototype.redirectUriAllowed = function redirectUriAllowed(value) {
    const url = new URL(value);
    return ['127.0.0.1', 'localhost', 'testserver'].includes(url.hostname)
      && url.pathname.endsWith('/login/callback/');
  };
  provider.on('server_error', (ctx, err) => console.error('oidc-provider server_error', err));

  const oidc = provider.callback();

  async function interaction(req, res, url) {
    const details = await provider.interactionDetails(req, res);
    const { uid, prompt, params } = details;
    if (prompt.name === 'consent') {
      // Consent is not what these tests are about: grant what was asked at once.
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
      if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
      if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
      return;
    }
    if (req.method === 'GET') {
      page(res, 200, 'Test IdP sign-in', loginForm(uid));
      return;
    }
    if (req.method === 'POST' && url.pathname.endsWith('/login')) {
      const form = await readForm(req);
      const account = byLogin.get(form.get('login') || '');
      if (!account || account.password !== form.get('password')) {
        page(res, 400, 'Test IdP sign-in', loginForm(uid, 'Wrong username or password.'));
        return;
      }
      await provider.interactionFinished(
        req, res, { login: { accountId: account.sub, amr: account.amr } },
        { mergeWithLastSubmission: false },
      );
      return;
    }
    page(res, 405, 'Not allowed', '<p>Method not allowed.</p>');
  }

  server.on('request', (req, res) => {
    const url = new URL(req.url, issuer);
    if (url.pathname.startsWith('/interaction/')) {
      interaction(req, res, url).catch((err) => {
        console.error('interaction failed', err);
        if (!res.headersSent) page(res, 500, 'Interaction failed', `<p>${escapeHtml(err.message)}</p>`);
      });
      return;
    }
    oidc(req, res);
  });
  process.stdout.write(`${JSON.stringify({ ready: true, issuer })}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
