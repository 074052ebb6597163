// interop.mjs mints and verifies link tokens with panva/jose for token/interop_test.go.
//
// It reads one JSON array of requests on stdin and writes one JSON array of results, in the same
// order, on stdout. Requests:
//
//   {"op": "sign", "jwk": {private JWK with alg}, "header": {protected header}, "claims": {...}}
//     -> {"token": "..."}
//   {"op": "verify", "token": "...", "jwks": {"keys": [...]}, "audience": "...", "issuer": "...",
//    "typ": "magic-link+jwt", "now": <unix seconds>}
//     -> {"header": {...}, "claims": {...}} or {"error": "<jose error code>: <message>"}
//
// Errors of one request are reported in its result; a broken request stream exits with status 1.
import { SignJWT, createLocalJWKSet, importJWK, jwtVerify } from 'jose';

async function sign(req) {
  const key = await importJWK(req.jwk, req.header.alg);
  const token = await new SignJWT(req.claims).setProtectedHeader(req.header).sign(key);
  return { token };
}

async function verificationKey(jwks) {
  const secrets = jwks.keys.filter((k) => k.kty === 'oct');
  if (secrets.length === 0) {
    return createLocalJWKSet(jwks);
  }
  if (secrets.length !== jwks.keys.length || secrets.length !== 1) {
    throw new Error('a JWKS with a secret must hold exactly that one key');
  }
  return importJWK(secrets[0], secrets[0].alg);
}

async function verify(req) {
  const key = await verificationKey(req.jwks);
  const options = { audience: req.audience, typ: req.typ, requiredClaims: ['exp', 'iat', 'sub', 'jti'] };
  if (req.issuer) {
    options.issuer = req.issuer;
  }
  if (req.now) {
    options.currentDate = new Date(req.now * 1000);
  }
  if (req.algorithms) {
    options.algorithms = req.algorithms;
  }
  try {
    const { payload, protectedHeader } = await jwtVerify(req.token, key, options);
    return { header: protectedHeader, claims: payload };
  } catch (err) {
    return { error: `${err.code ?? err.name}: ${err.message}` };
  }
}

async function handle(req) {
  try {
    switch (req.op) {
      case 'sign':
        return await sign(req);
      case 'verify':
        return await verify(req);
      default:
        return { error: `unknown op ${JSON.stringify(req.op)}` };
    }
  } catch (err) {
    return { error: `${err.code ?? err.name}: ${err.message}` };
  }
}

const chunks = [];
for await (const chunk of process.stdin) {
  chunks.push(chunk);
}
const requests = JSON.parse(Buffer.concat(chunks).toString('utf8'));
if (!Array.isArray(requests)) {
  process.stderr.write('interop.mjs: stdin must be a JSON array of requests\n');
  process.exit(1);
}
const results = [];
for (const req of requests) {
  results.push(await handle(req));
}
process.stdout.write(JSON.stringify(results));
