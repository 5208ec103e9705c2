import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { inspect } from "node:util";
import { setJwksCache } from "openid-client";
import { listenForLoopbackRedirect } from "../core/identity/loopback-redirect.js";
import {
  beginSignIn,
  completeSignIn,
  discoverProvider,
  type OidcProvider,
  oidcSettingsFrom,
  type PendingSignIn,
  refreshSignIn,
  revokeSignIn,
  type SignIn,
} from "../core/identity/oidc.js";
import { loadConfig } from "../core/kernel/config.js";
import type { AppError } from "../core/kernel/errors.js";
import { log } from "../core/kernel/log.js";
import { createPublicClient, hydraFolder, startHydra, type TestHydra } from "./support/hydra.js";
import { type OidcLoginApp, startOidcLoginApp, type TestUser } from "./support/oidc-login-app.js";

/**
 * Single sign-on against a real OpenID Connect provider (Ory Hydra, in-memory) and its login and
 * consent steps (test/support/oidc-login-app.ts), driven by a plain HTTP client that follows the
 * redirects a browser would, with cookies, up to the product's loopback redirect listener.
 */
const alice: TestUser = { subject: "alice-7f3a", email: "alice@example.test", groups: ["platform-admins", "ops"] };

let hydra: TestHydra;
let loginApp: OidcLoginApp;
let provider: OidcProvider;
let confidential: OidcProvider;
let clientSecret: string;
const captured: string[] = [];
/** Client secret, tokens and PKCE verifiers: never in any line, Axion's or Hydra's. */
const secrets = new Set<string>();
/** Authorization codes: never in Axion's lines (Hydra's access log prints its redirects' Location, code included). */
const codes = new Set<string>();
const restoreWrites: (() => void)[] = [];

before(async () => {
  for (const stream of [process.stdout, process.stderr]) {
    const original = stream.write.bind(stream);
    stream.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
      captured.push(String(chunk));
      return original(chunk, ...rest);
    }) as typeof stream.write;
    restoreWrites.push(() => {
      stream.write = original;
    });
  }
  const { adminSocket } = hydraFolder();
  loginApp = await startOidcLoginApp(adminSocket, alice);
  hydra = await startHydra({ loginUrl: loginApp.loginUrl, consentUrl: loginApp.consentUrl, adminSocket });
  const { clientId } = await createPublicClient(hydra.admin);
  const config = loadConfig({ OIDC_ISSUER_URL: hydra.issuerUrl, OIDC_CLIENT_ID: clientId });
  const settings = oidcSettingsFrom(config);
  assert.ok(settings);
  assert.equal(settings.groupsClaim, "groups");
  provider = await discoverProvider(settings);

  const withSecret = await hydra.admin.request<{ client_id: string; client_secret: string }>("POST", "/admin/clients", {
    client_name: "axion-api",
    token_endpoint_auth_method: "client_secret_basic",
    grant_types: ["authorization_code", "refresh_token"],
    response_types: ["code"],
    redirect_uris: ["http://127.0.0.1/callback"],
    scope: "openid offline_access email groups",
  });
  clientSecret = withSecret.client_secret;
  secrets.add(clientSecret);
  confidential = await discoverProvider({ ...settings, clientId: withSecret.client_id, clientSecret });
});

after(async () => {
  for (const restore of restoreWrites) restore();
  await hydra?.stop();
  await loginApp?.close();
});

/** A browser's part: GET, keep cookies, follow redirects until a page answers (the loopback listener's). */
async function followAsBrowser(start: URL): Promise<void> {
  const cookies = new Map<string, string>();
  let url = start;
  for (let hop = 0; hop < 20; hop++) {
    const response = await fetch(url, {
      redirect: "manual",
      headers: cookies.size ? { cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join("; ") } : {},
    });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(";");
      const at = pair?.indexOf("=") ?? -1;
      if (pair && at > 0) cookies.set(pair.slice(0, at), pair.slice(at + 1));
    }
    const location = response.headers.get("location");
    await response.arrayBuffer();
    if (response.status >= 300 && response.status < 400 && location) {
      url = new URL(location, url);
      continue;
    }
    assert.equal(response.status, 200, `${url.origin}${url.pathname} answered ${response.status}`);
    return;
  }
  throw new Error("more than 20 redirects");
}

/** Sends the person through the provider; resolves with the pending attempt and the URL it came back to. */
async function throughProvider(from: OidcProvider): Promise<{ pending: PendingSignIn; callbackUrl: URL }> {
  const loopback = await listenForLoopbackRedirect({ timeoutMs: 30_000 });
  try {
    const pending = await beginSignIn(from, { redirectUri: loopback.redirectUri, scopes: ["openid", "email", "offline_access", "groups"] });
    secrets.add(pending.codeVerifier);
    await followAsBrowser(pending.authorizationUrl);
    const callbackUrl = await loopback.callback;
    const code = callbackUrl.searchParams.get("code");
    if (code) codes.add(code);
    return { pending, callbackUrl };
  } finally {
    await loopback.close();
  }
}

function remember(signIn: SignIn): SignIn {
  for (const token of [signIn.tokens.accessToken, signIn.tokens.refreshToken, signIn.tokens.idToken]) if (token) secrets.add(token);
  return signIn;
}

async function signInAs(user: TestUser, from = provider): Promise<SignIn> {
  loginApp.setUser(user);
  const { pending, callbackUrl } = await throughProvider(from);
  return remember(await completeSignIn(from, pending, callbackUrl));
}

describe("single sign-on through a real OpenID Connect provider (Ory Hydra)", () => {
  let first: SignIn;

  test("the authorization code flow with PKCE signs a person in with subject, email and groups", async () => {
    first = await signInAs(alice);
    assert.deepEqual(first.identity, {
      subject: alice.subject,
      email: alice.email,
      emailVerified: true,
      groups: ["platform-admins", "ops"],
    });
    assert.ok(first.tokens.refreshToken, "a refresh token (offline_access)");
    assert.ok(first.tokens.expiresAt && first.tokens.expiresAt.getTime() > Date.now());
    // Logged or printed whole by mistake, a sign-in shows no token (the last test reads every line).
    log.info("test: a sign-in logged whole", { signIn: first });
    assert.ok(!inspect(first).includes(first.tokens.accessToken) && !JSON.stringify(first).includes(first.tokens.idToken));
  });

  test("the authorization URL carries an S256 challenge, a state and a nonce", async () => {
    const pending = await beginSignIn(provider, { redirectUri: "http://127.0.0.1:1/callback" });
    const query = pending.authorizationUrl.searchParams;
    assert.equal(query.get("code_challenge_method"), "S256");
    assert.ok((query.get("code_challenge") ?? "").length >= 43);
    assert.equal(query.get("state"), pending.state);
    assert.equal(query.get("nonce"), pending.nonce);
    assert.equal(query.get("code_verifier"), null);
  });

  test("a callback whose state is not the attempt's is refused before the code is exchanged", async () => {
    loginApp.setUser(alice);
    const { pending, callbackUrl } = await throughProvider(provider);
    await assert.rejects(completeSignIn(provider, { ...pending, state: "another-attempt" }, callbackUrl), (error: AppError) => {
      assert.equal(error.kind, "unauthenticated");
      assert.match(error.message, /state/);
      return true;
    });
    // The code was not spent: the real attempt still completes.
    remember(await completeSignIn(provider, pending, callbackUrl));
  });

  test("an ID token whose nonce is not the attempt's is refused", async () => {
    loginApp.setUser(alice);
    const { pending, callbackUrl } = await throughProvider(provider);
    await assert.rejects(completeSignIn(provider, { ...pending, nonce: "another-nonce" }, callbackUrl), (error: AppError) => {
      assert.equal(error.kind, "unauthenticated");
      assert.match(error.message, /nonce/);
      return true;
    });
  });

  test("an ID token whose signature is not the provider's key is refused", async () => {
    // The key id and algorithm the provider signs ID tokens with, on another key: the signature
    // check must refuse (not a missing key).
    const header = JSON.parse(Buffer.from(first.tokens.idToken.split(".")[0] ?? "", "base64url").toString()) as {
      kid: string;
      alg: string;
    };
    const { publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const forged = { ...publicKey.export({ format: "jwk" }), kid: header.kid, alg: header.alg, use: "sig" };
    const fooled = await discoverProvider({
      issuerUrl: hydra.issuerUrl,
      clientId: provider.configuration.clientMetadata().client_id,
      groupsClaim: "groups",
    });
    setJwksCache(fooled.configuration, { jwks: { keys: [forged] }, uat: Math.floor(Date.now() / 1000) });
    loginApp.setUser(alice);
    const { pending, callbackUrl } = await throughProvider(fooled);
    await assert.rejects(completeSignIn(fooled, pending, callbackUrl), (error: AppError) => {
      assert.equal(error.kind, "unauthenticated");
      assert.match(error.message, /signature/i);
      return true;
    });
  });

  test("the refresh token gives new tokens for the same person; after revocation it is refused", async () => {
    assert.ok(first.tokens.refreshToken);
    const refreshed = remember(await refreshSignIn(provider, first.tokens.refreshToken, alice.subject));
    assert.equal(refreshed.identity.subject, alice.subject);
    assert.deepEqual(refreshed.identity.groups, ["platform-admins", "ops"]);
    assert.notEqual(refreshed.tokens.accessToken, first.tokens.accessToken);
    assert.ok(refreshed.tokens.refreshToken);
    assert.notEqual(refreshed.tokens.refreshToken, first.tokens.refreshToken);

    await revokeSignIn(provider, refreshed.tokens);
    await assert.rejects(refreshSignIn(provider, refreshed.tokens.refreshToken, alice.subject), (error: AppError) => {
      assert.equal(error.kind, "unauthenticated");
      assert.match(error.message, /refused the refresh: "invalid_grant"/);
      return true;
    });
  });

  test("a refresh that names another subject is refused", async () => {
    const signIn = await signInAs(alice);
    assert.ok(signIn.tokens.refreshToken);
    await assert.rejects(refreshSignIn(provider, signIn.tokens.refreshToken, "mallory"), /names another subject/);
  });

  test("a group name with an escape character is refused, naming the claim", async () => {
    await assert.rejects(signInAs({ ...alice, groups: ["ops", "\u001b]52;c;cGF5bG9hZA==\u0007admins"] }), (error: AppError) => {
      assert.equal(error.kind, "unauthenticated");
      assert.match(error.message, /claim "groups\[1\]" holds a control or bidirectional character/);
      assert.ok(!error.message.includes("\u001b") && error.message.includes("\\u001b"), "the escape shown escaped");
      return true;
    });
  });

  test("too many groups, or groups that are not a list of names, are refused naming the claim", async () => {
    const many = Array.from({ length: 201 }, (_, i) => `group-${i}`);
    await assert.rejects(signInAs({ ...alice, groups: many }), /claim "groups" lists 201 groups, more than 200/);
    await assert.rejects(signInAs({ ...alice, groups: "ops" }), /claim "groups" must be an array of group names/);
    await assert.rejects(signInAs({ ...alice, groups: ["x".repeat(257)] }), /claim "groups\[0\]" is longer than 256 characters/);
  });

  test("a confidential client signs in with its secret", async () => {
    const signIn = await signInAs(alice, confidential);
    assert.equal(signIn.identity.subject, alice.subject);
    await revokeSignIn(confidential, signIn.tokens);
  });

  test("a plain http issuer off loopback, or an issuer without a client id, is refused", async () => {
    await assert.rejects(
      discoverProvider({ issuerUrl: "http://idp.example.test/", clientId: "axion", groupsClaim: "groups" }),
      /OIDC_ISSUER_URL: must be an https URL/,
    );
    assert.throws(() => loadConfig({ OIDC_ISSUER_URL: hydra.issuerUrl }), /OIDC_CLIENT_ID is required when OIDC_ISSUER_URL is set/);
    assert.equal(oidcSettingsFrom(loadConfig({})), undefined);
  });

  test("no client secret, token or PKCE verifier in any line logged by Axion or Hydra; no code in Axion's", () => {
    const ours = captured.join("").split("\n");
    const all = [...ours, ...hydra.output().split("\n")];
    assert.ok(
      ours.some((l) => l.includes("single sign-on completed")),
      "the sign-ins were logged",
    );
    assert.ok(
      all.some((l) => l.includes("/oauth2/token")),
      "Hydra's access log was captured",
    );
    assert.ok(secrets.size > 20 && codes.size > 5);
    for (const [lines, values] of [
      [all, secrets],
      [ours, codes],
    ] as const) {
      for (const value of values) {
        const leaked = lines.find((l) => l.includes(value));
        assert.equal(leaked, undefined, `a secret of ${value.length} characters was logged`);
      }
    }
  });
});
