// Calls the issuing API with Clerk's npm SDK, unmodified, and prints what it answered as JSON.
// Usage: CLERK_SECRET_KEY=<key> node clerk.mjs <apiUrl> create <userId> <expiresInSeconds>
//        CLERK_SECRET_KEY=<key> node clerk.mjs <apiUrl> revoke <id>
import { createClerkClient } from "@clerk/backend";

const [apiUrl, op, ...args] = process.argv.slice(2);
const clerk = createClerkClient({ secretKey: process.env.CLERK_SECRET_KEY, apiUrl });

try {
  let t;
  if (op === "create") {
    t = await clerk.signInTokens.createSignInToken({ userId: args[0], expiresInSeconds: Number(args[1]) });
  } else if (op === "revoke") {
    t = await clerk.signInTokens.revokeSignInToken(args[0]);
  } else {
    throw new Error(`unknown operation ${op}`);
  }
  console.log(JSON.stringify({ ok: true, constructor: t.constructor.name, token: t }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, status: e.status, errors: e.errors ?? [{ message: String(e) }] }));
}
