// An OAuth 2.0 authorization server for tests: npm oauth2-mock-server issues and signs the
// tokens; this wrapper adds what a real provider enforces and the mock does not (client
// authentication, single-use codes bound to client and redirect URI, S256 PKCE, rotating
// single-use refresh tokens, revocation), plus counters and injected faults for tests.
//
//   node scripts/peers/oauth-server.mjs '[{"client_id": "...", "client_secret": "...",
//                                          "jwks": {"keys": [public JWK]}}]'
//
// Modules come from $SWITCHYARD_TEST_PEERS_NODE_MODULES (default .peers/node/node_modules).
// Listens on 127.0.0.1 on a free port, prints {"issuer": ..., "port": ...} on one line, and
// exits when stdin closes, so the test process that started it cannot leak it.
//
// Admin API (JSON) under /__admin/: GET stats, GET token_requests (one entry per token request:
// grant_type, client_id, client_auth method, status, error), POST revoke, POST faults,
// POST config, POST delay_token. See handleAdmin below.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const nodeModules =
  process.env.SWITCHYARD_TEST_PEERS_NODE_MODULES || resolve(here, '../../.peers/node/node_modules');

// ESM resolves bare names next to this file, not in the peers' node_modules: resolve there.
async function importPeer(name, from = join(nodeModules, 'noop.js')) {
  const path = createRequire(from).resolve(name);
  return { module: await import(pathToFileURL(path).href), path };
}
const mock = await importPeer('oauth2-mock-server');
const { OAuth2Issuer, OAuth2Service } = mock.module;
// The jose the mock itself uses (it signs the tokens with it).
const { module: jose } = await importPeer('jose', mock.path);

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const SUPPORTED_GRANTS = ['authorization_code', 'refresh_token', 'client_credentials'];

const clients = new Map();
for (const spec of JSON.parse(process.argv[2] ?? '[]')) {
  if (typeof spec.client_id !== 'string' || spec.client_id === '') {
    throw new Error('every client needs a client_id');
  }
  clients.set(spec.client_id, {
    id: spec.client_id,
    secret: spec.client_secret ?? null,
    jwks: spec.jwks ? jose.createLocalJWKSet(spec.jwks) : null,
  });
}

const stats = {
  token_requests: { authorization_code: 0, refresh_token: 0, client_credentials: 0 },
  client_auth: { client_secret_basic: 0, client_secret_post: 0, private_key_jwt: 0, none: 0 },
  invalid_grant: 0,
  invalid_client: 0,
  faults_served: 0,
  abandoned: 0,
  authorizations: 0,
  revocations: 0,
};
const config = { expires_in: 3600, authorize_error: null, delay_token_ms: 0 };
const faults = []; // [{status, delay_ms, remaining}], consumed front first
const codes = new Map(); // code -> {client_id, redirect_uri, code_challenge, method, scope, used}
const refreshTokens = new Map(); // token -> {client_id, scope, used, revoked}
const usedAssertionIds = new Set();
// One entry per token request, in order: what a test asserts about a single exchange.
const tokenLog = []; // {grant_type, client_id, client_auth, status, error}

const issuer = new OAuth2Issuer();
await issuer.keys.generate('RS256');
const service = new OAuth2Service(issuer);

const sleep = (ms) => new Promise((done) => setTimeout(done, ms));
const opaqueToken = () => randomBytes(32).toString('base64url');
const s256 = (verifier) => createHash('sha256').update(verifier).digest('base64url');

function sameSecret(given, expected) {
  const a = Buffer.from(String(given));
  const b = Buffer.from(String(expected));
  return a.length === b.length && timingSafeEqual(a, b);
}

function sendJson(res, status, body, headers = {}) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}

class OAuthError extends Error {
  constructor(status, error, description, headers = {}) {
    super(description);
    this.status = status;
    this.error = error;
    this.headers = headers;
  }
}
const invalidGrant = (why) => new OAuthError(400, 'invalid_grant', why);

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

function tokenUrl() {
  return `${issuer.url}/token`;
}

// Client authentication (RFC 6749 2.3, RFC 7523 2.2): exactly one method per request.
// `entry` (the request's log entry) records the method tried, even when it fails.
async function authenticateClient(req, body, entry) {
  const methods = [];
  const header = req.headers.authorization;
  if (header && /^basic /i.test(header)) methods.push('client_secret_basic');
  if (body.client_secret !== undefined) methods.push('client_secret_post');
  if (body.client_assertion !== undefined || body.client_assertion_type !== undefined) {
    methods.push('private_key_jwt');
  }
  if (methods.length > 1) {
    entry.client_auth = methods.join('+');
    throw invalidClient('more than one client authentication method');
  }
  const method = methods[0] ?? 'none';
  entry.client_auth = method;
  let clientId;
  switch (method) {
    case 'client_secret_basic': {
      const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) throw invalidClient('malformed Basic credentials', true);
      // The id and secret are form-urlencoded before Basic encoding (RFC 6749 2.3.1).
      const formDecode = (s) => decodeURIComponent(s.replace(/\+/g, ' '));
      clientId = formDecode(decoded.slice(0, colon));
      const client = clients.get(clientId);
      if (!client?.secret || !sameSecret(formDecode(decoded.slice(colon + 1)), client.secret)) {
        throw invalidClient('client authentication failed', true);
      }
      break;
    }
    case 'client_secret_post': {
      clientId = body.client_id;
      const client = clients.get(clientId);
      if (!client?.secret || !sameSecret(body.client_secret, client.secret)) {
        throw invalidClient('client authentication failed');
      }
      break;
    }
    case 'private_key_jwt':
      clientId = await verifyClientAssertion(body);
      break;
    default: {
      // A public client (no secret, no keys) identifies itself only.
      clientId = body.client_id;
      const client = clients.get(clientId);
      if (!client || client.secret || client.jwks) throw invalidClient('client authentication required');
    }
  }
  if (body.client_id !== undefined && body.client_id !== clientId) {
    throw invalidClient('client_id does not match the authenticated client');
  }
  stats.client_auth[method] += 1;
  return { clientId, method };
}

async function verifyClientAssertion(body) {
  if (body.client_assertion_type !== JWT_BEARER || typeof body.client_assertion !== 'string') {
    throw invalidClient('client_assertion_type must be jwt-bearer with a client_assertion');
  }
  let claims;
  try {
    claims = jose.decodeJwt(body.client_assertion);
  } catch {
    throw invalidClient('client_assertion is not a JWT');
  }
  const client = clients.get(claims.iss);
  if (!client?.jwks) throw invalidClient('unknown client or no keys registered');
  let payload;
  try {
    ({ payload } = await jose.jwtVerify(body.client_assertion, client.jwks, {
      issuer: client.id,
      subject: client.id,
      audience: [tokenUrl(), issuer.url],
      requiredClaims: ['exp', 'jti'],
    }));
  } catch (error) {
    throw invalidClient(`client_assertion rejected: ${error.code ?? error.message}`);
  }
  if (usedAssertionIds.has(payload.jti)) throw invalidClient('client_assertion jti already used');
  usedAssertionIds.add(payload.jti);
  return client.id;
}

function invalidClient(why, basic = false) {
  stats.invalid_client += 1;
  const headers = basic ? { 'www-authenticate': 'Basic realm="switchyard-test"' } : {};
  return new OAuthError(401, 'invalid_client', why, headers);
}

function checkAuthorizationCode(body, clientId) {
  const grant = codes.get(body.code);
  if (!grant || grant.used) throw invalidGrant('authorization code unknown or already used');
  // Any redemption attempt burns the code, as RFC 6749 10.5 recommends.
  grant.used = true;
  if (grant.client_id !== clientId) throw invalidGrant('code was issued to another client');
  if (body.redirect_uri !== grant.redirect_uri) throw invalidGrant('redirect_uri does not match');
  const verifier = body.code_verifier;
  if (typeof verifier !== 'string' || !/^[A-Za-z0-9\-._~]{43,128}$/.test(verifier)) {
    throw invalidGrant('code_verifier missing or malformed');
  }
  if (s256(verifier) !== grant.code_challenge) throw invalidGrant('code_verifier does not match');
  body.scope ??= grant.scope;
}

function checkRefreshToken(body, clientId) {
  const grant = refreshTokens.get(body.refresh_token);
  if (!grant || grant.used || grant.revoked || grant.client_id !== clientId) {
    throw invalidGrant('refresh token unknown, used, revoked or issued to another client');
  }
  grant.used = true; // rotation: each refresh token is good once
  body.scope ??= grant.scope;
}

// The mock issues every token; our checks run before it and our changes after it.
service.on('beforeTokenSigning', (token, req) => {
  token.payload.client_id = req.body.client_id;
  if (config.expires_in !== null) token.payload.exp = token.payload.iat + config.expires_in;
});
service.on('beforeResponse', (response, req) => {
  if (response.statusCode !== 200) return;
  const body = response.body;
  if (config.expires_in === null) delete body.expires_in;
  else body.expires_in = config.expires_in;
  if (req.body.grant_type === 'client_credentials') return;
  // Replace the mock's refresh token (never checked) with one we track.
  body.refresh_token = opaqueToken();
  refreshTokens.set(body.refresh_token, {
    client_id: req.body.client_id,
    scope: req.body.scope,
    used: false,
    revoked: false,
  });
});
service.on('beforeAuthorizeRedirect', ({ url }, req) => {
  const code = url.searchParams.get('code');
  if (code === null) return;
  if (config.authorize_error !== null) {
    codes.delete(code);
    url.searchParams.delete('code');
    url.searchParams.set('error', config.authorize_error);
    return;
  }
  const q = req.query;
  codes.set(code, {
    client_id: q.client_id,
    redirect_uri: q.redirect_uri,
    code_challenge: q.code_challenge,
    method: q.code_challenge_method,
    scope: q.scope,
    used: false,
  });
  stats.authorizations += 1;
});

async function handleToken(req, res) {
  const raw = await readBody(req);
  const body = Object.fromEntries(new URLSearchParams(raw));
  const entry = { grant_type: body.grant_type ?? null, client_id: null, client_auth: null, status: null, error: null };
  tokenLog.push(entry);
  res.on('finish', () => {
    entry.status = res.statusCode;
  });
  if (body.grant_type in stats.token_requests) stats.token_requests[body.grant_type] += 1;
  if (config.delay_token_ms > 0) await sleep(config.delay_token_ms);
  const fault = faults[0];
  if (fault) {
    fault.remaining -= 1;
    if (fault.remaining <= 0) faults.shift();
    if (fault.delay_ms) await sleep(fault.delay_ms);
    // A client that gave up during the delay (its timeout) finds nothing processed: the
    // request never got past the queue, as behind a provider's overloaded front end.
    if (req.socket.destroyed) {
      stats.abandoned += 1;
      entry.error = 'abandoned';
      return;
    }
    if (fault.status) {
      stats.faults_served += 1;
      entry.error = 'temporarily_unavailable';
      return sendJson(res, fault.status, { error: 'temporarily_unavailable' });
    }
  }
  try {
    if (!SUPPORTED_GRANTS.includes(body.grant_type)) {
      throw new OAuthError(400, 'unsupported_grant_type', 'grant_type not supported');
    }
    const { clientId } = await authenticateClient(req, body, entry);
    entry.client_id = clientId;
    if (body.grant_type === 'authorization_code') checkAuthorizationCode(body, clientId);
    if (body.grant_type === 'refresh_token') checkRefreshToken(body, clientId);
    body.client_id = clientId; // the mock reads it for the id_token audience
  } catch (error) {
    if (!(error instanceof OAuthError)) throw error;
    if (error.error === 'invalid_grant') stats.invalid_grant += 1;
    entry.error = error.error;
    return sendJson(res, error.status, { error: error.error, error_description: error.message }, error.headers);
  }
  // Hand the parsed form to the mock: body-parser skips a request whose stream is finished.
  req.body = body;
  service.requestHandler(req, res);
}

function handleAuthorize(req, res) {
  const query = new URL(req.url, issuer.url).searchParams;
  const client = clients.get(query.get('client_id'));
  const redirectUri = query.get('redirect_uri');
  // An unknown client or redirect target gets an error page, never a redirect (RFC 6749 4.1.2.1).
  if (!client || !redirectUri) {
    return sendJson(res, 400, { error: 'invalid_request', error_description: 'unknown client_id or no redirect_uri' });
  }
  if (query.get('response_type') === 'code' && (!query.get('code_challenge') || query.get('code_challenge_method') !== 'S256')) {
    const back = new URL(redirectUri);
    back.searchParams.set('error', 'invalid_request');
    back.searchParams.set('error_description', 'PKCE with code_challenge_method=S256 is required');
    if (query.get('state')) back.searchParams.set('state', query.get('state'));
    res.writeHead(302, { location: back.href });
    return res.end();
  }
  service.requestHandler(req, res);
}

async function handleRevoke(req, res) {
  const body = Object.fromEntries(new URLSearchParams(await readBody(req)));
  const grant = refreshTokens.get(body.token);
  if (grant) grant.revoked = true;
  stats.revocations += 1;
  res.writeHead(200);
  res.end();
}

function discovery() {
  const base = issuer.url;
  return {
    issuer: base,
    authorization_endpoint: `${base}/authorize`,
    token_endpoint: tokenUrl(),
    jwks_uri: `${base}/jwks`,
    userinfo_endpoint: `${base}/userinfo`,
    revocation_endpoint: `${base}/revoke`,
    introspection_endpoint: `${base}/introspect`,
    end_session_endpoint: `${base}/endsession`,
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    grant_types_supported: SUPPORTED_GRANTS,
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
    token_endpoint_auth_signing_alg_values_supported: ['RS256', 'PS256', 'ES256', 'EdDSA'],
    code_challenge_methods_supported: ['S256'],
    id_token_signing_alg_values_supported: ['RS256'],
    subject_types_supported: ['public'],
  };
}

async function handleAdmin(req, res, path) {
  const input = req.method === 'POST' ? JSON.parse((await readBody(req)) || '{}') : {};
  const count = (value) => (Number.isInteger(value) && value > 0 ? value : 1);
  switch (`${req.method} ${path}`) {
    case 'GET stats':
      return sendJson(res, 200, stats);
    case 'GET token_requests':
      return sendJson(res, 200, tokenLog);
    case 'POST revoke':
      for (const grant of refreshTokens.values()) grant.revoked = true;
      return sendJson(res, 200, { revoked: refreshTokens.size });
    case 'POST faults':
      faults.push({ status: input.status ?? null, delay_ms: input.delay_ms ?? 0, remaining: count(input.count) });
      return sendJson(res, 200, { queued: faults.length });
    case 'POST config':
      if ('expires_in' in input) config.expires_in = input.expires_in;
      if ('authorize_error' in input) config.authorize_error = input.authorize_error;
      return sendJson(res, 200, { expires_in: config.expires_in, authorize_error: config.authorize_error });
    case 'POST delay_token':
      config.delay_token_ms = Number(input.delay_ms) || 0;
      return sendJson(res, 200, { delay_ms: config.delay_token_ms });
    default:
      return sendJson(res, 404, { error: 'unknown admin endpoint' });
  }
}

const server = createServer(async (req, res) => {
  try {
    const path = new URL(req.url, 'http://127.0.0.1').pathname;
    if (path.startsWith('/__admin/')) return await handleAdmin(req, res, path.slice('/__admin/'.length));
    if (req.method === 'POST' && path === '/token') return await handleToken(req, res);
    if (req.method === 'POST' && path === '/revoke') return await handleRevoke(req, res);
    if (req.method === 'GET' && path === '/authorize') return handleAuthorize(req, res);
    if (req.method === 'GET' && path === '/.well-known/openid-configuration') return sendJson(res, 200, discovery());
    service.requestHandler(req, res);
  } catch (error) {
    console.error('oauth-server:', error);
    if (!res.headersSent) sendJson(res, 500, { error: 'server_error' });
  }
});
await new Promise((ready, fail) => server.listen(0, '127.0.0.1').once('listening', ready).once('error', fail));
const { port } = server.address();
issuer.url = `http://127.0.0.1:${port}`;
console.log(JSON.stringify({ issuer: issuer.url, port }));

process.stdin.resume();
process.stdin.on('end', () => {
  server.close();
  process.exit(0);
});
