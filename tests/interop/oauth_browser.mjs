// A real browser through the OAuth 2.1 sign-in page of `kimai-mcp serve --public-url`: headless
// Chromium driven by puppeteer-core (tests/interop/oauth.sh runs it with Node 22).
//
// Registers a public client (token_endpoint_auth_method none) whose redirect URI is a tiny HTTP
// server of this script on 127.0.0.1, builds an authorization request with PKCE S256, state and
// resource, and opens it in Chromium. Checks the sign-in page (heading, labelled fields, lang, no
// scripts, CSP, X-Frame-Options, the CSRF cookie, no request to another origin), a wrong secret
// (401 with a visible role="alert", the form still usable), the right one (the callback gets code,
// state and iss), the code exchange (PKCE, one use only), /mcp with the access token (the right
// Kimai user), Cancel (error=access_denied) and a form POST without the CSRF cookie (refused).
//
// Environment (secrets only from here, never the command line):
//   INTEROP_BASE         http://127.0.0.1:PORT (the --public-url)
//   INTEROP_SLUG         the user slug to sign in with
//   INTEROP_SECRET       its auth secret
//   INTEROP_USER         the sim username user_current must name
//   INTEROP_BROWSER_DIR  the npm prefix holding puppeteer-core
//   INTEROP_CHROMIUM     the browser (default /usr/bin/chromium)
//   INTEROP_ISSUED       a file to which every code, token and CSRF value issued is appended (for
//                        the caller's mask and log check)
// Prints `ok   NAME` / `FAIL NAME: DETAIL` per check, other lines indented, and a closing
// `N passed, M failed`; exits 1 if any check failed. Nothing secret is printed.
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const env = process.env;
const base = env.INTEROP_BASE.replace(/\/$/, '');
const issuer = base + '/';
const resource = base + '/mcp';
const slug = env.INTEROP_SLUG;
const secret = env.INTEROP_SECRET;
const expectedUser = env.INTEROP_USER;
const require = createRequire(join(env.INTEROP_BROWSER_DIR, 'package.json'));
const { default: puppeteer } = await import(pathToFileURL(require.resolve('puppeteer-core')).href);

// ------------------------------------------------------------------ output, masking, checks
const secrets = new Map([[slug, '<slug>'], [secret, '<auth-secret>']]);
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
  if (d.length > 600) d = d.slice(0, 600) + '…';
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${!ok && d ? ': ' + d : ''}`);
  return ok;
}
const info = (line) => console.log('     ' + mask(line));
const b64url = (buf) => buf.toString('base64url');

// ------------------------------------------------------------------ the redirect_uri listener
const callbacks = [];
let callbackWaiter = null;
const callbackServer = createServer((req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  if (url.pathname === '/callback') {
    callbacks.push(url);
    for (const k of ['code', 'state']) remember(url.searchParams.get(k) ?? undefined, `<${k}>`);
    if (callbackWaiter) callbackWaiter(url);
  }
  res.writeHead(url.pathname === '/callback' ? 200 : 404, { 'Content-Type': 'text/html; charset=utf-8' });
  res.end('<!doctype html><html lang="en"><title>Done</title><h1>You can close this window.</h1></html>');
});
await new Promise((resolve) => callbackServer.listen(0, '127.0.0.1', resolve));
const redirectUri = `http://127.0.0.1:${callbackServer.address().port}/callback`;
const nextCallback = (ms = 10000) => new Promise((resolve, reject) => {
  const t = setTimeout(() => { callbackWaiter = null; reject(new Error(`no request to the redirect_uri within ${ms} ms`)); }, ms);
  callbackWaiter = (url) => { clearTimeout(t); callbackWaiter = null; resolve(url); };
});

// ------------------------------------------------------------------ helpers
async function postForm(path, fields, headers = {}) {
  return fetch(base + path, {
    method: 'POST', redirect: 'manual',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(fields).toString(),
  });
}
function newAuthorization(clientId) {
  const verifier = b64url(randomBytes(32));              // 43 characters
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
// One JSON-RPC message from a Streamable HTTP response: JSON, or the last `data:` of an SSE body.
async function rpcResult(res) {
  const text = await res.text();
  if ((res.headers.get('content-type') || '').includes('text/event-stream')) {
    const data = text.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).filter(Boolean);
    return data.length ? JSON.parse(data[data.length - 1]) : {};
  }
  return text ? JSON.parse(text) : {};
}
async function mcpCall(accessToken) {
  const headers = {
    'Content-Type': 'application/json', Accept: 'application/json, text/event-stream',
    Authorization: `Bearer ${accessToken}`,
  };
  let res = await fetch(resource, {
    method: 'POST', headers, body: JSON.stringify({
      jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'interop-oauth-browser', version: '0' } },
    }),
  });
  const init = await rpcResult(res);
  if (res.status !== 200 || !init.result) return { error: `initialize: ${res.status} ${JSON.stringify(init).slice(0, 300)}` };
  const session = res.headers.get('mcp-session-id');
  if (session) headers['Mcp-Session-Id'] = session;
  headers['MCP-Protocol-Version'] = init.result.protocolVersion;
  res = await fetch(resource, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) });
  await res.text();
  res = await fetch(resource, {
    method: 'POST', headers,
    body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'user_current', arguments: {} } }),
  });
  const call = await rpcResult(res);
  if (session) await (await fetch(resource, { method: 'DELETE', headers })).text();
  const text = (call.result?.content || []).map((c) => c.text || '').join('\n');
  return { status: res.status, text, isError: call.result?.isError, raw: call, protocol: init.result.protocolVersion };
}
function parseCsp(header) {
  const out = {};
  for (const part of (header || '').split(';')) {
    const [name, ...values] = part.trim().split(/\s+/);
    if (name) out[name.toLowerCase()] = values;
  }
  return out;
}

// ------------------------------------------------------------------ the flow
// Each section checks on even when an earlier one failed (sections that need an earlier result
// say so and are skipped without it), so one failure does not hide the rest.
async function section(name, body) {
  try {
    await body();
  } catch (e) {
    check(`${name}: ran to the end`, false, e.stack || String(e));
  }
}
const shortCookieName = (name) => name.replace(/_[A-Za-z0-9_-]{6,}$/, '_…');
let browser, page, clientId;
const requests = [];              // every request the page made
const formPosts = [];             // the Origin header of each form POST the browser sent

await section('registration and browser start', async () => {
  const res = await fetch(base + '/register', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      client_name: 'kimai-mcp interop (Chromium)', redirect_uris: [redirectUri], token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
    }),
  });
  const reg = await res.json().catch(() => ({}));
  remember(reg.client_secret, '<client-secret>');
  check('POST /register (token_endpoint_auth_method none): 201 with a client_id and no client_secret',
    res.status === 201 && typeof reg.client_id === 'string' && reg.client_id && !reg.client_secret, `${res.status} ${JSON.stringify(reg)}`);
  clientId = reg.client_id;

  browser = await puppeteer.launch({
    executablePath: env.INTEROP_CHROMIUM || '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--no-first-run', '--disable-gpu'],
  });
  info(`browser ${await browser.version()}, redirect_uri http://127.0.0.1:<port>/callback`);
  page = await browser.newPage();
  page.on('request', (r) => {
    requests.push(r.url());
    if (r.method() === 'POST' && r.url().startsWith(base + '/oauth/login')) formPosts.push(r.headers().origin ?? '(none)');
  });
});
if (!clientId || !page) {
  check('a client and a browser to continue with', false, 'registration or browser start failed');
  await finish();
}

// Opens a new authorization request in the browser; returns it with the page's response.
async function openAuthorization() {
  const auth = newAuthorization(clientId);
  const response = await page.goto(auth.url, { waitUntil: 'load' });
  remember(new URL(page.url()).searchParams.get('txn') ?? undefined, '<txn>');
  for (const c of await page.cookies(base + '/oauth/login')) remember(c.value, '<csrf>');
  const hidden = await page.evaluate(() => Object.fromEntries(
    [...document.querySelectorAll('form input[type="hidden"]')].map((e) => [e.name, e.value])));
  remember(hidden.txn, '<txn>'); remember(hidden.csrf, '<csrf>');
  return { ...auth, response, hidden };
}
async function submit(button) {
  const [response] = await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click(`button[value="${button}"]`)]);
  return response;
}
// Submits the form with a button and waits (3 s at most) for the browser to reach the redirect_uri;
// its URL, or null after a failed check that shows where the browser stayed instead.
async function submitToCallback(button, name) {
  const waiting = nextCallback(3000).catch(() => null);   // handled: no unhandled rejection later
  const response = await submit(button);
  const cb = await waiting;
  if (!cb) {
    const text = await page.evaluate(() => document.body?.innerText || '');
    check(`${name}: the browser lands on the redirect_uri`, false,
      `it stayed on ${new URL(page.url()).pathname}: ${response?.status()} ${text.slice(0, 300)}`);
  }
  return cb;
}

// --- the sign-in page
let first = null;
await section('the sign-in page', async () => {
  first = await openAuthorization();
  const response = first.response;
  const chain = response.request().redirectChain().map((r) => new URL(r.url()).pathname);
  const landed = new URL(page.url());
  check('GET /authorize redirects to /oauth/login?txn=…, which answers 200 text/html',
    chain.length === 1 && chain[0] === '/authorize' && landed.origin === base && landed.pathname === '/oauth/login'
      && !!landed.searchParams.get('txn') && response.status() === 200 && (response.headers()['content-type'] || '').startsWith('text/html'),
    `redirects via ${JSON.stringify(chain)} to ${landed.pathname}, ${response.status()} ${response.headers()['content-type']}`);

  const dom = await page.evaluate(() => {
    const label = (id) => document.querySelector(`label[for="${id}"]`)?.textContent.trim() || null;
    const form = document.querySelector('form');
    const field = (name) => form?.querySelector(`input[name="${name}"]`);
    return {
      lang: document.documentElement.getAttribute('lang'),
      heading: document.querySelector('h1, h2, [role="heading"]')?.textContent.trim() || null,
      title: document.title,
      usernameLabel: label('username'), secretLabel: label('secret'),
      usernameInput: !!document.querySelector('input#username[name="username"]'),
      secretType: document.querySelector('input#secret[name="secret"]')?.type || null,
      scripts: document.scripts.length + document.querySelectorAll('[onload],[onclick],[onerror],[onsubmit]').length,
      formMethod: form?.getAttribute('method')?.toLowerCase(), formAction: form?.getAttribute('action'),
      txn: field('txn')?.type === 'hidden' ? field('txn').value : null,
      csrf: field('csrf')?.type === 'hidden' ? field('csrf').value : null,
      signIn: !!form?.querySelector('button[type="submit"][name="action"][value="sign-in"]'),
      deny: !!form?.querySelector('button[type="submit"][name="action"][value="deny"][formnovalidate]'),
    };
  });
  check('the page has a heading, a title and <html lang>',
    !!dom.heading && !!dom.title && !!dom.lang, { heading: dom.heading, title: dom.title, lang: dom.lang });
  check('#username and #secret (type=password) have labels (label[for=username], label[for=secret])',
    dom.usernameInput && dom.secretType === 'password' && !!dom.usernameLabel && !!dom.secretLabel,
    { usernameInput: dom.usernameInput, secretType: dom.secretType, usernameLabel: dom.usernameLabel, secretLabel: dom.secretLabel });
  info(`labels: "${dom.usernameLabel}", "${dom.secretLabel}"; heading: "${dom.heading}"`);
  check('the form posts to /oauth/login with hidden txn and csrf and Sign in / Cancel (formnovalidate) buttons',
    dom.formMethod === 'post' && dom.formAction === '/oauth/login' && !!dom.txn && !!dom.csrf && dom.signIn && dom.deny,
    { method: dom.formMethod, action: dom.formAction, txn: !!dom.txn, csrf: !!dom.csrf, signIn: dom.signIn, deny: dom.deny });
  check('no script elements or inline event handlers', dom.scripts === 0, `${dom.scripts} found`);

  const headers = response.headers();
  const csp = parseCsp(headers['content-security-policy']);
  const scriptSrc = csp['script-src'] || csp['default-src'] || [];
  check("Content-Security-Policy has default-src 'none' and allows no inline script",
    !!headers['content-security-policy'] && (csp['default-src'] || []).join(' ') === "'none'"
      && !scriptSrc.includes("'unsafe-inline'") && !scriptSrc.includes("'unsafe-eval'")
      && !(csp['script-src-elem'] || []).includes("'unsafe-inline'") && !(csp['script-src-attr'] || []).includes("'unsafe-inline'"),
    `Content-Security-Policy: ${headers['content-security-policy']}`);
  info(`Content-Security-Policy: ${headers['content-security-policy']}`);
  check('X-Frame-Options: DENY', (headers['x-frame-options'] || '').toUpperCase() === 'DENY', `X-Frame-Options: ${headers['x-frame-options']}`);

  const cookies = await page.cookies(base + '/oauth/login');
  const csrfCookie = cookies.find((c) => c.name.startsWith('kmcsrf_'));
  check("a CSRF cookie kmcsrf_…: Path=/oauth, HttpOnly, SameSite=Strict, equal to the form's csrf field",
    !!csrfCookie && csrfCookie.path === '/oauth' && csrfCookie.httpOnly && csrfCookie.sameSite === 'Strict' && csrfCookie.value === dom.csrf,
    csrfCookie ? { path: csrfCookie.path, httpOnly: csrfCookie.httpOnly, sameSite: csrfCookie.sameSite, equalsField: csrfCookie.value === dom.csrf }
      : `no such cookie; the browser holds ${JSON.stringify(cookies.map((c) => ({ name: shortCookieName(c.name), path: c.path,
        httpOnly: c.httpOnly, sameSite: c.sameSite, equalsField: c.value === dom.csrf })))}`);

  const foreign = requests.filter((u) => !u.startsWith('data:') && !u.startsWith('blob:') && new URL(u).origin !== base);
  check('loading the page requested nothing from another origin', foreign.length === 0, foreign.join(', '));
  info(`requests while loading: ${requests.map((u) => new URL(u).pathname).join(', ')}`);
});

// --- a wrong secret
await section('a wrong secret', async () => {
  if (!(await page.$('#secret'))) first = await openAuthorization();
  const wrongSecret = b64url(randomBytes(24));
  remember(wrongSecret, '<wrong-secret>');
  await page.type('#username', slug);
  await page.type('#secret', wrongSecret);
  const started = Date.now();
  const response = await submit('sign-in');
  const delay = Date.now() - started;
  const after = await page.evaluate(() => {
    const alert = document.querySelector('[role="alert"]');
    const u = document.querySelector('#username'), s = document.querySelector('#secret');
    return {
      alertText: alert?.textContent.trim() || null,
      alertVisible: !!alert && alert.checkVisibility() && alert.getBoundingClientRect().height > 0,
      fields: !!u && !!s && !u.disabled && !s.disabled && !u.readOnly && !s.readOnly,
      secretValue: s ? s.value : null,
      usernameKept: !!u?.value,
      focus: document.activeElement && document.activeElement !== document.body
        ? `${document.activeElement.tagName.toLowerCase()}${document.activeElement.id ? '#' + document.activeElement.id : ''}` : 'none',
      html: document.documentElement.outerHTML,
      scripts: document.scripts.length,
      txn: document.querySelector('input[name="txn"]')?.value || null,
      csrf: document.querySelector('input[name="csrf"]')?.value || null,
    };
  });
  remember(after.csrf ?? undefined, '<csrf>');
  info(`the browser's form POST carried Origin: ${formPosts[formPosts.length - 1] ?? '(not seen)'}`);
  check('a wrong secret: 401 with a visible role="alert" "Invalid user slug or auth secret."',
    response.status() === 401 && after.alertVisible && !!after.alertText?.includes('Invalid user slug or auth secret.'),
    `${response.status()}, alert ${JSON.stringify(after.alertText)}, visible ${after.alertVisible}`);
  info(`the answer came after ${delay} ms; focus on load: ${after.focus}; slug field refilled: ${after.usernameKept ? 'yes' : 'no'}`);
  check('the 401 page does not echo the wrong secret, has no scripts and keeps the strict CSP and DENY',
    !after.html.includes(wrongSecret) && after.secretValue === '' && after.scripts === 0
      && (parseCsp(response.headers()['content-security-policy'])['default-src'] || []).join(' ') === "'none'"
      && (response.headers()['x-frame-options'] || '').toUpperCase() === 'DENY',
    { echoed: after.html.includes(wrongSecret), secretField: after.secretValue === null ? 'missing' : after.secretValue === '' ? 'empty' : 'filled',
      scripts: after.scripts, csp: response.headers()['content-security-policy'], xfo: response.headers()['x-frame-options'] });
  let focused = null;
  if (after.fields) {
    await page.focus('#secret');
    focused = await page.evaluate(() => document.activeElement?.id);
  }
  check('after the 401 the form is usable again (fields enabled, #secret takes focus)',
    after.fields && focused === 'secret' && !!after.txn && !!after.csrf, { fieldsEnabled: after.fields, focused, txn: !!after.txn, csrf: !!after.csrf });
});

// --- the right secret, the code exchange, /mcp
await section('the right secret', async () => {
  let auth = first;
  if (!(await page.$('#secret'))) {
    info('(no sign-in form on the page after the wrong secret: a new authorization request for this step)');
    auth = await openAuthorization();
  }
  await page.$eval('#username', (e) => { e.value = ''; });
  await page.$eval('#secret', (e) => { e.value = ''; });
  await page.type('#username', slug);
  await page.type('#secret', secret);
  const cb = await submitToCallback('sign-in', 'the right slug and secret');
  if (!cb) return;
  const code = cb.searchParams.get('code');
  check('the right slug and secret: the browser lands on the redirect_uri with code, the same state and iss = issuer',
    new URL(page.url()).pathname === '/callback' && !!code && cb.searchParams.get('state') === auth.state
      && cb.searchParams.get('iss') === issuer && !cb.searchParams.get('error'),
    { landedOn: new URL(page.url()).origin + new URL(page.url()).pathname, code: !!code,
      stateMatches: cb.searchParams.get('state') === auth.state, iss: cb.searchParams.get('iss'), error: cb.searchParams.get('error') });
  if (!code) return;

  const exchange = () => postForm('/token', {
    grant_type: 'authorization_code', code, redirect_uri: redirectUri, client_id: clientId, code_verifier: auth.verifier, resource,
  });
  let res = await exchange();
  const tokens = await res.json().catch(() => ({}));
  remember(tokens.access_token, '<access-token>'); remember(tokens.refresh_token, '<refresh-token>');
  check('POST /token (authorization_code, PKCE verifier, resource): access_token, Bearer, expires_in 3600, refresh_token',
    res.status === 200 && !!tokens.access_token && tokens.token_type === 'Bearer' && tokens.expires_in === 3600 && !!tokens.refresh_token,
    `${res.status} ${JSON.stringify(tokens)}`);
  check('the token response has Cache-Control: no-store (RFC 6749 §5.1)', /no-store/i.test(res.headers.get('cache-control') || ''),
    `Cache-Control: ${res.headers.get('cache-control')}`);
  if (tokens.access_token) {
    const r = await mcpCall(tokens.access_token);
    check(`/mcp with the access token: initialize and tools/call user_current act as ${expectedUser}`,
      !r.error && r.status === 200 && !r.isError && r.text.includes('Current user') && r.text.includes(`Username: ${expectedUser}\n`),
      r.error || `${r.status} ${r.text || JSON.stringify(r.raw)}`);
    if (r.protocol) info(`/mcp negotiated protocol version ${r.protocol}`);
  }
  // The same code again (after the /mcp call: a server may revoke what the code gave on a replay).
  res = await exchange();
  const body = await res.json().catch(() => ({}));
  remember(body.access_token, '<access-token>'); remember(body.refresh_token, '<refresh-token>');
  check('the same code a second time: 400 invalid_grant', res.status === 400 && body.error === 'invalid_grant',
    `${res.status} ${JSON.stringify(body)}`);
  if (tokens.access_token) {
    const r = await mcpCall(tokens.access_token);
    info(`after the replayed code, the access token it gave ${r.error ? 'is refused (' + r.error.slice(0, 40) + ')' : 'still works'}`);
  }
});

// --- Cancel
await section('Cancel', async () => {
  const auth = await openAuthorization();
  const cb = await submitToCallback('deny', 'Cancel');
  if (!cb) return;
  check('Cancel: the redirect_uri gets error=access_denied with the state and iss, and no code',
    cb.searchParams.get('error') === 'access_denied' && cb.searchParams.get('state') === auth.state
      && cb.searchParams.get('iss') === issuer && !cb.searchParams.get('code'),
    { error: cb.searchParams.get('error'), stateMatches: cb.searchParams.get('state') === auth.state,
      iss: cb.searchParams.get('iss'), code: !!cb.searchParams.get('code') });
});

// --- CSRF: the form's fields (right slug and secret) posted from Node without the browser's cookies
await section('CSRF', async () => {
  const refused = (r, location) => r.status >= 400 && r.status < 500 && !/[?&]code=/.test(location || '');
  const attempt = async () => {
    const a = await openAuthorization();
    const cookies = (await page.cookies(base + '/oauth/login'));
    return { verifier: a.verifier, cookies, form: { ...a.hidden, username: slug, secret, action: 'sign-in' } };
  };
  let a = await attempt();
  let res = await postForm('/oauth/login', a.form);
  let location = res.headers.get('location');
  await res.text();
  check('POST /oauth/login with the right fields but no CSRF cookie is refused (4xx, no code)', refused(res, location),
    `${res.status} Location: ${location}`);
  const forged = a.cookies.map((c) => `${c.name}=${b64url(randomBytes(32))}`).join('; ');
  res = await postForm('/oauth/login', a.form, { Cookie: forged });
  location = res.headers.get('location');
  await res.text();
  check('… and with CSRF cookies whose values differ from the field (4xx, no code)', refused(res, location), `${res.status} Location: ${location}`);

  // Control: the same request with the browser's cookies gets a code, so the refusals above were the cookie's doing.
  a = await attempt();
  res = await postForm('/oauth/login', a.form, { Cookie: a.cookies.map((c) => `${c.name}=${c.value}`).join('; ') });
  location = res.headers.get('location') || '';
  await res.text();
  const controlCode = location.startsWith(redirectUri + '?') ? new URL(location).searchParams.get('code') : null;
  remember(controlCode ?? undefined, '<code>');
  check("control: the same POST with the browser's cookies gets 302 to the redirect_uri with a code",
    res.status === 302 && !!controlCode, `${res.status} Location: ${location.split('?')[0]}`);

  // PKCE: that code with a wrong code_verifier.
  if (controlCode) {
    res = await postForm('/token', {
      grant_type: 'authorization_code', code: controlCode, redirect_uri: redirectUri, client_id: clientId,
      code_verifier: b64url(randomBytes(32)), resource,
    });
    const body = await res.json().catch(() => ({}));
    remember(body.access_token, '<access-token>'); remember(body.refresh_token, '<refresh-token>');
    check('POST /token with a code and a wrong code_verifier: 400 invalid_grant', res.status === 400 && body.error === 'invalid_grant',
      `${res.status} ${JSON.stringify(body)}`);
  }
});

// --- an unregistered redirect_uri is never redirected to (RFC 6749 §4.1.2.1)
await section('an unregistered redirect_uri', async () => {
  const evil = new URL(newAuthorization(clientId).url);
  evil.searchParams.set('redirect_uri', 'http://127.0.0.1:9/elsewhere');
  const res = await fetch(evil.href, { redirect: 'manual' });
  const location = res.headers.get('location') || '';
  await res.text();
  check('GET /authorize with an unregistered redirect_uri: an error, no redirect to it',
    res.status >= 400 && res.status < 500 && !location.includes('127.0.0.1:9/'), `${res.status} Location: ${location.split('?')[0]}`);
});

// --- a bad transaction
await section('an unknown txn', async () => {
  const response = await page.goto(`${base}/oauth/login?txn=${b64url(randomBytes(16))}`, { waitUntil: 'load' });
  const text = await page.evaluate(() => document.body?.innerText || '');
  check('GET /oauth/login with an unknown txn: 400 "Invalid or expired authorization request"',
    response.status() === 400 && text.includes('Invalid or expired authorization request'), `${response.status()} ${text.slice(0, 200)}`);
});

await finish();

async function finish() {
  if (browser) await browser.close().catch(() => {});
  callbackServer.close();
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
