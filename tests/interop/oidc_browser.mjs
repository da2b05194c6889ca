// Headless Chromium (puppeteer-core) through sign-in at a real identity provider
// (oidc-provider, tests/interop/oidc_idp.mjs) into `kimai-mcp serve --auth-backend oidc
// --auto-provision`: MCP client registration, /authorize, our continue page, the provider's
// login and consent pages, our callback, the code exchange and a tool call (user_current) as
// that person. tests/interop/oidc.sh starts everything and runs this with Node 22.
//
// Cases: a person mapped in users.json (oidc_identity), a person provisioned at first sign-in
// (and found again at the second), and the refusals — an address outside
// --provision-allowed-domains, an unverified e-mail address, an ambiguous match, a disabled Kimai
// user, a nonce the browser changed on its way to the provider, an expired ID token (the
// provider's clock behind) — each on the neutral page, ending the client's request with
// access_denied, its reason in the server's log under the page's reference. Then a key rotation at
// the provider: the next sign-in works, with one more fetch of the key set.
//
// Figures: the sign-in round trip (from /authorize to the client's redirect URI with a code,
// login and consent at the provider included) over INTEROP_ROUNDS sign-ins, median and p99, and
// the provisioning time the server logs. Written to INTEROP_FIGURES as well.
//
// Environment: INTEROP_BASE (the --public-url), INTEROP_IDP (the issuer), INTEROP_SERVE_LOG (the
// server's stderr), INTEROP_BROWSER_DIR, INTEROP_CHROMIUM, INTEROP_ISSUED (codes and tokens are
// appended for the caller's log check), INTEROP_FIGURES, INTEROP_ROUNDS (default 20), INTEROP_TLS
// (1: the base is nginx with a self-signed certificate; the sign-in cookie must be Secure),
// INTEROP_SCREENSHOTS (a folder: PNGs of our continue page and of the neutral page).
// Prints `ok   NAME` / `FAIL NAME: DETAIL`, other lines indented; exits 1 on any failure.
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const env = process.env;
const base = env.INTEROP_BASE.replace(/\/$/, '');
const idp = env.INTEROP_IDP.replace(/\/$/, '');
const resource = base + '/mcp';
const rounds = Number(env.INTEROP_ROUNDS || 20);
const require = createRequire(join(env.INTEROP_BROWSER_DIR, 'package.json'));
const { default: puppeteer } = await import(pathToFileURL(require.resolve('puppeteer-core')).href);

// ------------------------------------------------------------------ output and checks
const secrets = new Map();
function remember(value, label) {
  if (typeof value === 'string' && value.length >= 8 && !secrets.has(value)) {
    secrets.set(value, label);
    if (env.INTEROP_ISSUED) appendFileSync(env.INTEROP_ISSUED, value + '\n');
  }
}
function mask(text) {
  let s = String(text);
  for (const [value, label] of [...secrets].sort((a, b) => b[0].length - a[0].length)) s = s.split(value).join(label);
  return s;
}
let passed = 0, failed = 0;
function check(name, ok, detail = '') {
  if (ok) passed++; else failed++;
  let d = mask(typeof detail === 'string' ? detail : JSON.stringify(detail)).replace(/\s*\n\s*/g, ' ⏎ ');
  if (d.length > 700) d = d.slice(0, 700) + '…';
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${!ok && d ? ': ' + d : ''}`);
  return ok;
}
const info = (line) => console.log('     ' + mask(line));
const b64url = (buf) => buf.toString('base64url');

// ------------------------------------------------------------------ the client's redirect URI
let callbackWaiter = null;
const callbackServer = createServer((req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  if (url.pathname === '/callback') {
    for (const k of ['code', 'state']) remember(url.searchParams.get(k) ?? undefined, `<${k}>`);
    if (callbackWaiter) callbackWaiter(url);
  }
  res.writeHead(url.pathname === '/callback' ? 200 : 404, { 'Content-Type': 'text/html; charset=utf-8' });
  res.end('<!doctype html><html lang="en"><title>Done</title><h1>You can close this window.</h1></html>');
});
await new Promise((resolve) => callbackServer.listen(0, '127.0.0.1', resolve));
const redirectUri = `http://127.0.0.1:${callbackServer.address().port}/callback`;
const nextCallback = (ms) => new Promise((resolve) => {
  const t = setTimeout(() => { callbackWaiter = null; resolve(null); }, ms);
  callbackWaiter = (url) => { clearTimeout(t); callbackWaiter = null; resolve(url); };
});

// ------------------------------------------------------------------ helpers
async function postForm(path, fields) {
  return fetch(base + path, {
    method: 'POST', redirect: 'manual',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  });
}
async function control(path) {
  const res = await fetch(idp + path, { method: path === '/__test/stats' ? 'GET' : 'POST' });
  return res.json();
}
async function rpcResult(res) {
  const text = await res.text();
  if ((res.headers.get('content-type') || '').includes('text/event-stream')) {
    const data = text.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).filter(Boolean);
    return data.length ? JSON.parse(data[data.length - 1]) : {};
  }
  return text ? JSON.parse(text) : {};
}
// The code exchange and user_current: the Kimai username it shows, or an error text.
async function actAs(clientId, auth, code) {
  const res = await postForm('/token', {
    grant_type: 'authorization_code', code, redirect_uri: redirectUri, client_id: clientId,
    code_verifier: auth.verifier, resource,
  });
  const tokens = await res.json().catch(() => ({}));
  remember(tokens.access_token, '<access-token>'); remember(tokens.refresh_token, '<refresh-token>');
  if (res.status !== 200 || !tokens.access_token) return { error: `token: ${res.status} ${JSON.stringify(tokens)}` };
  const headers = {
    'Content-Type': 'application/json', Accept: 'application/json, text/event-stream',
    Authorization: `Bearer ${tokens.access_token}`,
  };
  let r = await fetch(resource, {
    method: 'POST', headers, body: JSON.stringify({
      jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'interop-oidc', version: '0' } },
    }),
  });
  const init = await rpcResult(r);
  if (r.status !== 200 || !init.result) return { error: `initialize: ${r.status} ${JSON.stringify(init).slice(0, 300)}` };
  const session = r.headers.get('mcp-session-id');
  if (session) headers['Mcp-Session-Id'] = session;
  headers['MCP-Protocol-Version'] = init.result.protocolVersion;
  await (await fetch(resource, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) })).text();
  r = await fetch(resource, {
    method: 'POST', headers,
    body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'user_current', arguments: {} } }),
  });
  const call = await rpcResult(r);
  if (session) await (await fetch(resource, { method: 'DELETE', headers })).text();
  const text = (call.result?.content || []).map((c) => c.text || '').join('\n');
  const user = /^Username: (.*)$/m.exec(text)?.[1];
  return user ? { user } : { error: `tools/call: ${r.status} ${text || JSON.stringify(call).slice(0, 300)}` };
}
function newAuthorization(clientId) {
  const verifier = b64url(randomBytes(32));
  const challenge = b64url(createHash('sha256').update(verifier).digest());
  const state = b64url(randomBytes(16));
  remember(verifier, '<code-verifier>');
  const url = new URL(base + '/authorize');
  url.search = new URLSearchParams({
    response_type: 'code', client_id: clientId, redirect_uri: redirectUri,
    code_challenge: challenge, code_challenge_method: 'S256', state, resource,
  }).toString();
  return { url: url.href, verifier, state };
}
const serveLog = () => readFileSync(env.INTEROP_SERVE_LOG, 'utf8');
const foreign = new Set();   // origins other than loopback that a page asked for
const percentile = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};

// ------------------------------------------------------------------ registration and browser
let clientId = null, browser = null;
{
  const res = await fetch(base + '/register', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      client_name: 'kimai-mcp interop (OIDC)', redirect_uris: [redirectUri], token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
    }),
  });
  const reg = await res.json().catch(() => ({}));
  check('POST /register: a public client', res.status === 201 && !!reg.client_id, `${res.status} ${JSON.stringify(reg)}`);
  clientId = reg.client_id;
  browser = await puppeteer.launch({
    executablePath: env.INTEROP_CHROMIUM || '/usr/bin/chromium', headless: true,
    // Behind nginx (INTEROP_TLS=1) the certificate is a throw-away self-signed one.
    args: ['--no-sandbox', '--no-first-run', '--disable-gpu', ...(env.INTEROP_TLS === '1' ? ['--ignore-certificate-errors'] : [])],
  });
  info(`browser ${await browser.version()}; provider ${idp}; redirect_uri http://127.0.0.1:<port>/callback`);
}
if (!clientId) await finish();

// One sign-in in a fresh browser profile (no provider session): our continue page, the provider's
// login (any password) and consent pages, back to us. Returns where it ended.
async function signIn(account, { tamperNonce = false, inspect = false } = {}) {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  const seen = { tampered: false };
  // This machine has no network: the provider's pages' web-font import from another origin is
  // refused at once (instead of waiting for DNS), so the figures measure the loopback path.
  await page.setRequestInterception(true);
  page.on('request', (r) => {
    if (r.isInterceptResolutionHandled()) return;
    const u = new URL(r.url());
    if (u.protocol.startsWith('http') && u.hostname !== '127.0.0.1') {
      foreign.add(u.origin);
      r.abort();
    } else if (tamperNonce && r.url().startsWith(idp + '/auth?')) {
      u.searchParams.set('nonce', b64url(randomBytes(32)));
      seen.tampered = true;
      r.continue({ url: u.href });
    } else {
      r.continue();
    }
  });
  const auth = newAuthorization(clientId);
  const t0 = performance.now();
  const waiting = nextCallback(20000);
  const first = await page.goto(auth.url, { waitUntil: 'load' });
  const ours = {
    status: first.status(), path: new URL(page.url()).pathname,
    csp: first.headers()['content-security-policy'] || '',
    ...(await page.evaluate(() => ({
      heading: document.querySelector('h1')?.textContent || '',
      passwordFields: document.querySelectorAll('input[type="password"]').length,
      continueText: document.querySelector('button[value="continue"]')?.textContent || '',
      scripts: document.scripts.length,
    }))),
  };
  if (inspect && env.INTEROP_SCREENSHOTS) await page.screenshot({ path: join(env.INTEROP_SCREENSHOTS, 'continue.png') });
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('button[value="continue"]')]);
  if (inspect) {
    const c = (await page.browserContext().cookies()).find((k) => k.name.startsWith('kmoidc_'));
    ours.signInCookie = c ? { path: c.path, httpOnly: c.httpOnly, sameSite: c.sameSite, secure: c.secure } : null;
  }
  const atProvider = page.url().startsWith(idp + '/interaction/');
  if (atProvider) {
    await page.type('input[name="login"]', account);
    await page.type('input[name="password"]', 'any-password-the-dev-login-takes');
    await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('button[type="submit"]')]);
  }
  const consent = page.url().startsWith(idp + '/interaction/');
  let last = null;
  if (consent) {
    const done = page.waitForNavigation({ waitUntil: 'load' }).catch(() => null);
    await page.click('button[type="submit"]');
    last = await done;
  }
  // Success reaches the redirect URI at once; a refusal stays on our neutral page.
  const cb = await Promise.race([waiting, new Promise((r) => setTimeout(() => r(null), 3000))]);
  const ms = performance.now() - t0;
  const landed = new URL(page.url());
  const body = await page.evaluate(() => document.body?.innerText || '');
  const result = { context, page, auth, cb, ms, ours, atProvider, consent, landed, status: last?.status(), body, seen };
  if (inspect) result.headers = last?.headers() || {};
  return result;
}

// The callback server's request after clicking "Return to the application".
async function returnLink(page) {
  const waiting = nextCallback(5000);
  await page.click('a[href^="http://127.0.0.1"]').catch(() => {});
  return waiting;
}

// ------------------------------------------------------------------ 1. a mapped person, and the round trip
const times = [];
await (async () => {
  const r = await signIn('john', { inspect: true });
  check('our page after /authorize: 200, "Continue with" the provider, no password field, no script, a CSP whose form-action names the provider',
    r.ours.status === 200 && r.ours.path === '/oauth/login' && r.ours.passwordFields === 0 && r.ours.scripts === 0
      && r.ours.continueText.includes(new URL(idp).host) && r.ours.csp.includes(`form-action 'self'`) && r.ours.csp.includes(idp),
    r.ours);
  check("the provider's own login and consent pages were shown", r.atProvider && r.consent, { login: r.atProvider, consent: r.consent });
  const sc = r.ours.signInCookie;
  check(`the sign-in cookie kmoidc_…: Path=/oauth/oidc, HttpOnly, SameSite=Lax${env.INTEROP_TLS === '1' ? ', Secure' : ''}`,
    !!sc && sc.path === '/oauth/oidc' && sc.httpOnly && sc.sameSite === 'Lax' && sc.secure === (env.INTEROP_TLS === '1'), sc);
  const code = r.cb?.searchParams.get('code');
  check('a person mapped by oidc_identity (case differs): the redirect URI gets a code, our state and iss',
    !!code && r.cb.searchParams.get('state') === r.auth.state && r.cb.searchParams.get('iss') === base + '/',
    r.cb ? Object.fromEntries(r.cb.searchParams) : `stayed on ${r.landed.pathname}: ${r.status} ${r.body.slice(0, 300)}`);
  if (code) {
    const who = await actAs(clientId, r.auth, code);
    check('… and user_current over /mcp acts as john_user', who.user === 'john_user', who);
  }
  await r.context.close();
  for (let i = 0; i < rounds; i++) {
    const s = await signIn('john');
    if (s.cb?.searchParams.get('code')) times.push(s.ms);
    await s.context.close();
  }
  check(`${rounds} more sign-ins of the mapped person through the provider's pages all reach the redirect URI with a code`,
    times.length === rounds, `${times.length} of ${rounds}`);
})().catch((e) => check('mapped person: ran to the end', false, e.stack || String(e)));

// ------------------------------------------------------------------ 2. a provisioned person
let provisionMs = null;
await (async () => {
  const before = serveLog();
  const r = await signIn('tara');
  const code = r.cb?.searchParams.get('code');
  check('a person without a users.json entry (tara.lead@example.com): provisioned at the first sign-in, the redirect URI gets a code',
    !!code, r.cb ? Object.fromEntries(r.cb.searchParams) : `stayed on ${r.landed.pathname}: ${r.status} ${r.body.slice(0, 300)}`);
  if (code) {
    const who = await actAs(clientId, r.auth, code);
    check('… and user_current acts as tara_lead, with the token Kimai just made', who.user === 'tara_lead', who);
  }
  const line = serveLog().slice(before.length).split('\n').find((l) => l.includes('provisioning: tara.lead@example.com is Kimai user tara_lead'));
  provisionMs = Number(/checked in (\d+) ms/.exec(line || '')?.[1]);
  check('the server logs the match (rule normalized) and the provisioning time', !!line && line.includes('rule normalized') && provisionMs >= 0, line || '(no line)');
  await r.context.close();
  // The second sign-in uses the provisioned user: no second token.
  const again = await signIn('tara');
  const code2 = again.cb?.searchParams.get('code');
  const who2 = code2 ? await actAs(clientId, again.auth, code2) : { error: 'no code' };
  const lines = serveLog().split('\n').filter((l) => l.includes('provisioning: tara.lead@example.com is Kimai user')).length;
  check('a second sign-in of that person acts as tara_lead without provisioning again', who2.user === 'tara_lead' && lines === 1, { who2, lines });
  await again.context.close();
})().catch((e) => check('provisioned person: ran to the end', false, e.stack || String(e)));

// ------------------------------------------------------------------ 3. the refusals
async function refused(name, account, reason, opts = {}) {
  try {
    const r = await signIn(account, opts);
    if (opts.tamperNonce) info(`the browser changed the nonce on its way to the provider: ${r.seen.tampered ? 'yes' : 'no'}`);
    const reference = /reference: (\w+)/.exec(r.body)?.[1];
    if (opts.screenshot && env.INTEROP_SCREENSHOTS) await r.page.screenshot({ path: join(env.INTEROP_SCREENSHOTS, 'refused.png') });
    check(`${name}: the neutral page (403, "Sign-in not possible", a reference), no code`,
      r.status === 403 && r.body.includes('Sign-in not possible') && !!reference && !r.cb,
      { status: r.status, landed: r.landed.pathname, body: r.body.slice(0, 300), callback: r.cb && Object.fromEntries(r.cb.searchParams) });
    const back = r.cb ?? await returnLink(r.page);
    check(`${name}: "Return to the application" ends the client's request with access_denied and its state`,
      back?.searchParams.get('error') === 'access_denied' && back.searchParams.get('state') === r.auth.state && !back.searchParams.get('code'),
      back ? Object.fromEntries(back.searchParams) : 'the redirect URI was not reached');
    const line = serveLog().split('\n').find((l) => reference && l.includes(`reference ${reference}`));
    check(`${name}: the server's log gives the reason under that reference (${reason})`, !!line && line.includes(reason), line || '(no line)');
    if (line) info(line.replace(/^.*?refused/, 'refused').slice(0, 260));
    // Nothing on the page says why.
    check(`${name}: the page does not say why`, !/nonce|verified|ambiguous|disabled|domain|expired|@/.test(r.body), r.body.slice(0, 300));
    await r.context.close();
  } catch (e) {
    check(`${name}: ran to the end`, false, e.stack || String(e));
  }
}
await refused('an address outside --provision-allowed-domains', 'outsider', 'not in --provision-allowed-domains', { screenshot: true });
await refused('an unverified e-mail address', 'unverified', 'not verified');
await refused('an ambiguous match (sam_jones and samjones for sam.jones@example.com)', 'sam', 'ambiguous');
await refused('a disabled Kimai user (olga_disabled)', 'olga', 'disabled (olga_disabled)');
await refused('a nonce changed on the way to the provider', 'kai', 'nonce', { tamperNonce: true });
await control('/__test/clock?offset=-200');
await refused('an expired ID token (the provider 200 s behind, ID tokens valid 120 s)', 'kai', 'expired');
await control('/__test/clock?offset=0');

// ------------------------------------------------------------------ 4. key rotation
await (async () => {
  const before = await control('/__test/stats');
  await control('/__test/rotate');
  const r = await signIn('kai');
  const code = r.cb?.searchParams.get('code');
  const after = await control('/__test/stats');
  check('after the provider rotates its signing key, the next sign-in works (kai, provisioned)', !!code,
    r.cb ? Object.fromEntries(r.cb.searchParams) : `stayed on ${r.landed.pathname}: ${r.status} ${r.body.slice(0, 300)}`);
  check('… with exactly one more fetch of the key set (the unknown kid)', after.jwks === before.jwks + 1, { before: before.jwks, after: after.jwks });
  if (code) {
    const who = await actAs(clientId, r.auth, code);
    check('… and user_current acts as kai_user', who.user === 'kai_user', who);
  }
  await r.context.close();
})().catch((e) => check('key rotation: ran to the end', false, e.stack || String(e)));

info(`requests to other origins, refused (all from the provider's pages): ${[...foreign].join(', ') || 'none'}`);

// ------------------------------------------------------------------ figures
if (times.length) {
  const med = percentile(times, 50), p99 = percentile(times, 99);
  const line = `sign-in round trip through the identity provider (login and consent pages, ${times.length} sign-ins): median ${med.toFixed(0)} ms, p99 ${p99.toFixed(0)} ms, min ${Math.min(...times).toFixed(0)} ms; provisioning of a new user: ${Number.isFinite(provisionMs) ? provisionMs + ' ms' : 'n/a'} (server log)`;
  info(line);
  if (env.INTEROP_FIGURES) writeFileSync(env.INTEROP_FIGURES, line + '\n');
}
await finish();

async function finish() {
  if (browser) await browser.close().catch(() => {});
  callbackServer.close();
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
