// Independent verification of uplink's tokens with `jose` (the JWT library
// the PowerSync Service and its demos use): the JWKS is fetched over HTTP,
// and tokens of each algorithm verify with the configured issuer and audience.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, describe, test } from 'node:test';

import * as jose from 'jose';

import { root, startUplink } from './support.mjs';

const ISSUER = 'https://uplink.test';
const AUDIENCE = ['powersync', 'second-service'];
const TTL_SECONDS = 7 * 60;
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'];

function uplinkCli(args, env = {}) {
  return execFileSync(process.env.UPLINK_BIN, args, {
    cwd: root,
    env: { ...process.env, UPLINK_ENVIRONMENT: 'development', ...env },
    encoding: 'utf8',
  });
}

function generateKey(alg) {
  return JSON.parse(uplinkCli(['keys', 'generate', '--alg', alg, '--json']));
}

const claimEnv = {
  UPLINK__AUTH__ISSUER: ISSUER,
  UPLINK__AUTH__AUDIENCE: AUDIENCE.join(','),
  UPLINK__AUTH__TOKEN_TTL: '7m',
};

async function fetchToken(baseUrl, body) {
  const response = await fetch(`${baseUrl}/api/auth/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.equal(response.status, 200);
  return response.json();
}

const cases = [
  { name: 'EdDSA (generated development key)', alg: 'EdDSA', key: null },
  { name: 'EdDSA (configured)', alg: 'EdDSA', key: 'ed25519' },
  { name: 'ES256', alg: 'ES256', key: 'es256' },
  { name: 'RS256', alg: 'RS256', key: 'rs256' },
];

describe('tokens verify with jose against the JWKS over HTTP', () => {
  const running = [];
  after(async () => {
    for (const app of running) await app.stop();
  });

  for (const { name, alg, key } of cases) {
    test(name, async () => {
      const generated = key ? generateKey(key) : null;
      const keyEnv = generated
        ? { UPLINK__AUTH__KEYS: JSON.stringify([{ alg, private_key_pem: generated.private_key_pem }]) }
        : {};
      const app = await startUplink({ env: { ...claimEnv, ...keyEnv } });
      running.push(app);

      const jwksResponse = await fetch(`${app.baseUrl}/.well-known/jwks.json`);
      assert.equal(jwksResponse.headers.get('cache-control'), 'public, max-age=300');
      const jwks = await jwksResponse.json();
      assert.equal(jwks.keys.length, 1);
      const [published] = jwks.keys;
      for (const member of PRIVATE_MEMBERS) assert.ok(!(member in published), `private ${member} published`);
      assert.equal(published.use, 'sig');
      assert.equal(published.alg, alg);
      // kid is the RFC 7638 thumbprint, computed independently by jose.
      assert.equal(published.kid, await jose.calculateJwkThumbprint(published, 'sha256'));
      if (generated) {
        assert.equal(published.kid, generated.kid, 'the kid printed by `uplink keys generate`');
        assert.deepEqual(published, generated.public_jwk);
      }

      const parameters = { org: 'acme', level: 3, tags: ['a', 'b'] };
      const body = await fetchToken(app.baseUrl, { user_id: 'alice@example.com', parameters });
      assert.equal(body.user_id, 'alice@example.com');
      assert.equal(typeof body.powersync_url, 'string');

      const remote = jose.createRemoteJWKSet(new URL(`${app.baseUrl}/.well-known/jwks.json`));
      for (const audience of AUDIENCE) {
        const { payload, protectedHeader } = await jose.jwtVerify(body.token, remote, {
          issuer: ISSUER,
          audience,
          algorithms: [alg],
          requiredClaims: ['sub', 'iat', 'exp'],
        });
        assert.equal(protectedHeader.alg, alg);
        assert.equal(protectedHeader.kid, published.kid);
        assert.equal(payload.sub, 'alice@example.com');
        assert.deepEqual(payload.aud, AUDIENCE);
        assert.ok(Number.isInteger(payload.iat) && Number.isInteger(payload.exp));
        assert.equal(payload.exp - payload.iat, TTL_SECONDS);
        assert.deepEqual(payload.parameters, parameters);
        assert.equal(new Date(body.expires_at).getTime() / 1000, payload.exp);
      }
      await assert.rejects(
        jose.jwtVerify(body.token, remote, { issuer: ISSUER, audience: 'someone-else' }),
        /aud/,
        'a verifier with another audience refuses the token',
      );

      // `uplink token` signs with the same configured key.
      const cliToken = uplinkCli(['token', '--sub', 'bob', '--param', 'org=acme', '--ttl', '5m'], {
        ...claimEnv,
        ...keyEnv,
        UPLINK__SERVER__DATA_DIR: app.dataDir,
        DATABASE_URL: app.dbUrl,
      }).trim();
      const { payload } = await jose.jwtVerify(cliToken, remote, { issuer: ISSUER, audience: 'powersync' });
      assert.equal(payload.sub, 'bob');
      assert.deepEqual(payload.parameters, { org: 'acme' });
      assert.equal(payload.exp - payload.iat, 300);
    });
  }

  test('HS256 (development only) verifies with the shared secret and is not published', async () => {
    const secret = 'a-development-secret-of-at-least-32-bytes';
    const app = await startUplink({
      env: { ...claimEnv, UPLINK__AUTH__KEYS: JSON.stringify([{ alg: 'HS256', kid: 'dev-hs', secret }]) },
    });
    running.push(app);
    const jwks = await (await fetch(`${app.baseUrl}/.well-known/jwks.json`)).json();
    assert.deepEqual(jwks.keys, [], 'a shared secret is never published');
    const body = await fetchToken(app.baseUrl, { user_id: 'carol' });
    const { payload, protectedHeader } = await jose.jwtVerify(body.token, new TextEncoder().encode(secret), {
      issuer: ISSUER,
      audience: 'powersync',
      algorithms: ['HS256'],
    });
    assert.equal(protectedHeader.kid, 'dev-hs');
    assert.equal(payload.sub, 'carol');
    assert.equal(payload.exp - payload.iat, TTL_SECONDS);
  });
});
