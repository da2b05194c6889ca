// A real OpenID Connect identity provider for the sign-in test: the npm package oidc-provider
// (an OpenID Certified implementation; tests/interop/install.sh puts it in target/interop/idp),
// started on 127.0.0.1 with a few accounts and one confidential client, kimai-mcp's. Its own
// login and consent pages (devInteractions: any password is accepted for a known account) are
// what the browser goes through. Run by tests/interop/oidc.sh with Node 22.
//
// Environment:
//   IDP_PORT           the port (127.0.0.1)
//   IDP_DIR            the npm prefix holding oidc-provider
//   IDP_ACCOUNTS       a JSON file: { "<account id>": { claims: email, email_verified, name, … } }
//   IDP_CLIENT_ID, IDP_CLIENT_SECRET, IDP_REDIRECT_URI   kimai-mcp's client at this provider
//
// Test controls (POST, loopback only, not part of any protocol):
//   /__test/rotate         a new RSA signing key under a new kid replaces the old one, as a provider
//                          does when it rotates its keys (the provider is rebuilt with the new key;
//                          sessions and grants live in oidc-provider's shared memory storage)
//   /__test/clock?offset=S the provider's clock runs S seconds off (an ID token then carries an
//                          iat and exp that far from the real time); offset=0 resets it
//   /__test/stats          how often the key set and the discovery document were fetched
// Prints `idp http://127.0.0.1:PORT` on stdout when it listens.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const env = process.env;
const port = Number(env.IDP_PORT);
const issuer = `http://127.0.0.1:${port}`;
const require = createRequire(join(env.IDP_DIR, 'package.json'));
const { default: Provider } = await import(pathToFileURL(require.resolve('oidc-provider')).href);
const accounts = JSON.parse(readFileSync(env.IDP_ACCOUNTS, 'utf8'));

// The provider's clock, for the expired-token case: oidc-provider reads Date.now().
const realNow = Date.now.bind(Date);
let offsetMs = 0;
Date.now = () => realNow() + offsetMs;

const stats = { jwks: 0, discovery: 0, token: 0, rotations: 0 };
let keyNumber = 0;
function newKey() {
  keyNumber += 1;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: `key-${keyNumber}-${randomBytes(4).toString('hex')}`, use: 'sig', alg: 'RS256' };
}
const cookieKeys = [randomBytes(32).toString('hex')];

function build(key) {
  const provider = new Provider(issuer, {
    clients: [{
      client_id: env.IDP_CLIENT_ID,
      client_secret: env.IDP_CLIENT_SECRET,
      redirect_uris: [env.IDP_REDIRECT_URI],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    }],
    async findAccount(ctx, id) {
      const account = accounts[id];
      if (!account) return undefined;
      return { accountId: id, async claims() { return { sub: id, ...account }; } };
    },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'given_name', 'family_name', 'preferred_username'],
    },
    // The scope's claims go into the ID token itself (the relying party reads no userinfo).
    conformIdTokenClaims: false,
    jwks: { keys: [key] },
    cookies: { keys: cookieKeys },
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true } },
    ttl: { IdToken: 120, AccessToken: 600, AuthorizationCode: 60, Interaction: 3600, Session: 3600, Grant: 3600 },
  });
  return provider.callback();
}

let handler = build(newKey());

const server = createServer((req, res) => {
  const url = new URL(req.url, issuer);
  if (url.pathname.startsWith('/__test/')) {
    if (req.method !== 'POST' && url.pathname !== '/__test/stats') { res.writeHead(405).end(); return; }
    if (url.pathname === '/__test/rotate') {
      handler = build(newKey());
      stats.rotations += 1;
    } else if (url.pathname === '/__test/clock') {
      offsetMs = Number(url.searchParams.get('offset') || 0) * 1000;
    } else if (url.pathname !== '/__test/stats') {
      res.writeHead(404).end(); return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ ...stats, offsetSeconds: offsetMs / 1000 }));
    return;
  }
  if (url.pathname === '/jwks') stats.jwks += 1;
  if (url.pathname === '/.well-known/openid-configuration') stats.discovery += 1;
  if (url.pathname === '/token') stats.token += 1;
  handler(req, res);
});
server.listen(port, '127.0.0.1', () => console.log(`idp ${issuer}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
