import { inspect } from "node:util";
import * as client from "openid-client";
import type { Config } from "../kernel/config.js";
import { AppError } from "../kernel/errors.js";
import { log } from "../kernel/log.js";
import { excerpt } from "../kernel/text.js";
import { identityFromClaims, type SignedInIdentity } from "./oidc-claims.js";

/**
 * Single sign-on through an OpenID Connect provider: the authorization code flow with PKCE (S256),
 * state and nonce, the ID token verified (signature from the provider's JWKS, issuer, audience,
 * nonce, expiry), refresh and revocation. The functions are the steps `axion login --sso` takes
 * around a loopback redirect (core/identity/loopback-redirect.ts): discover, begin (open the URL),
 * complete (with the URL the browser was sent back to), later refresh, and revoke on sign-out.
 */
export interface OidcSettings {
  issuerUrl: string;
  clientId: string;
  /** Absent: a public client, which PKCE alone protects. */
  clientSecret?: string;
  groupsClaim: string;
}

/** The settings from the environment, or undefined when single sign-on is not configured. */
export function oidcSettingsFrom(config: Pick<Config, "OIDC_ISSUER_URL" | "OIDC_CLIENT_ID" | "OIDC_CLIENT_SECRET" | "OIDC_GROUPS_CLAIM">) {
  if (!config.OIDC_ISSUER_URL || !config.OIDC_CLIENT_ID) return undefined;
  return {
    issuerUrl: config.OIDC_ISSUER_URL,
    clientId: config.OIDC_CLIENT_ID,
    clientSecret: config.OIDC_CLIENT_SECRET,
    groupsClaim: config.OIDC_GROUPS_CLAIM,
  } satisfies OidcSettings;
}

/** A discovered provider: its metadata and keys, ready for the flow's steps. */
export interface OidcProvider {
  readonly issuer: string;
  readonly groupsClaim: string;
  readonly configuration: client.Configuration;
}

/** What the client keeps between sending a person to the provider and their return (never logged). */
export interface PendingSignIn {
  authorizationUrl: URL;
  redirectUri: string;
  state: string;
  nonce: string;
  codeVerifier: string;
}

/** The provider's tokens: their values never appear when the object is logged or serialized whole. */
export class SessionTokens {
  constructor(
    readonly accessToken: string,
    readonly refreshToken: string | undefined,
    readonly idToken: string,
    readonly expiresAt: Date | undefined,
  ) {}
  toJSON() {
    return { accessToken: "[redacted]", refreshToken: "[redacted]", idToken: "[redacted]", expiresAt: this.expiresAt };
  }
  [inspect.custom]() {
    return `SessionTokens ${JSON.stringify(this.toJSON())}`;
  }
}

export interface SignIn {
  identity: SignedInIdentity;
  tokens: SessionTokens;
}

export const defaultScopes = ["openid", "email", "offline_access"];

/** Reads the provider's discovery document (and so checks that the issuer it names is the one configured). */
export async function discoverProvider(settings: OidcSettings, options: { timeoutSeconds?: number } = {}): Promise<OidcProvider> {
  const issuer = new URL(settings.issuerUrl);
  const loopback = isLoopbackHost(issuer.hostname);
  if (issuer.protocol !== "https:" && !(issuer.protocol === "http:" && loopback))
    throw AppError.invalid("OIDC_ISSUER_URL", "must be an https URL (plain http only on a loopback address)");
  const auth = settings.clientSecret ? client.ClientSecretBasic(settings.clientSecret) : client.None();
  const execute = [client.enableNonRepudiationChecks, ...(loopback ? [client.allowInsecureRequests] : [])];
  try {
    const configuration = await client.discovery(issuer, settings.clientId, undefined, auth, {
      execute,
      timeout: options.timeoutSeconds ?? 10,
    });
    return { issuer: configuration.serverMetadata().issuer, groupsClaim: settings.groupsClaim, configuration };
  } catch (error) {
    throw providerError("discovery", error);
  }
}

/** The URL to send the person to, with a fresh PKCE verifier, state and nonce for this attempt alone. */
export async function beginSignIn(provider: OidcProvider, options: { redirectUri: string; scopes?: string[] }): Promise<PendingSignIn> {
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const authorizationUrl = client.buildAuthorizationUrl(provider.configuration, {
    redirect_uri: options.redirectUri,
    scope: (options.scopes ?? defaultScopes).join(" "),
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: "S256",
    state,
    nonce,
  });
  return { authorizationUrl, redirectUri: options.redirectUri, state, nonce, codeVerifier };
}

/**
 * Takes the URL the provider sent the browser back to: checks its state, exchanges the code with
 * the PKCE verifier, verifies the ID token (nonce included) and reads the person's claims.
 */
export async function completeSignIn(provider: OidcProvider, pending: PendingSignIn, callbackUrl: URL): Promise<SignIn> {
  let response: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
  try {
    response = await client.authorizationCodeGrant(provider.configuration, callbackUrl, {
      pkceCodeVerifier: pending.codeVerifier,
      expectedState: pending.state,
      expectedNonce: pending.nonce,
      idTokenExpected: true,
    });
  } catch (error) {
    throw providerError("sign-in", error);
  }
  const signIn = signInFrom(provider, response);
  log.info("single sign-on completed", {
    issuer: provider.issuer,
    subject: signIn.identity.subject,
    groups: signIn.identity.groups.length,
  });
  return signIn;
}

/** New tokens for a refresh token; the refreshed ID token must name the same person. */
export async function refreshSignIn(provider: OidcProvider, refreshToken: string, expectedSubject: string): Promise<SignIn> {
  let response: Awaited<ReturnType<typeof client.refreshTokenGrant>>;
  try {
    response = await client.refreshTokenGrant(provider.configuration, refreshToken);
  } catch (error) {
    throw providerError("refresh", error);
  }
  const signIn = signInFrom(provider, response);
  if (signIn.identity.subject !== expectedSubject)
    throw new AppError("unauthenticated", "the identity provider's refreshed ID token names another subject");
  log.info("single sign-on refreshed", { issuer: provider.issuer, subject: expectedSubject });
  return signIn;
}

/** Sign-out: revokes the refresh token (the provider also drops the access tokens issued with it). */
export async function revokeSignIn(provider: OidcProvider, tokens: Pick<SessionTokens, "refreshToken" | "accessToken">): Promise<void> {
  try {
    if (tokens.refreshToken)
      await client.tokenRevocation(provider.configuration, tokens.refreshToken, { token_type_hint: "refresh_token" });
    await client.tokenRevocation(provider.configuration, tokens.accessToken, { token_type_hint: "access_token" });
  } catch (error) {
    throw providerError("revocation", error);
  }
  log.info("single sign-on revoked", { issuer: provider.issuer });
}

function signInFrom(provider: OidcProvider, response: client.TokenEndpointResponse & client.TokenEndpointResponseHelpers): SignIn {
  const claims = response.claims();
  if (!claims || !response.id_token) throw new AppError("unauthenticated", "the identity provider answered without an ID token");
  const identity = identityFromClaims(claims, provider.groupsClaim);
  const expiresIn = response.expiresIn();
  const expiresAt = expiresIn === undefined ? undefined : new Date(Date.now() + expiresIn * 1000);
  return { identity, tokens: new SessionTokens(response.access_token, response.refresh_token, response.id_token, expiresAt) };
}

/**
 * One refusal per step, in our words: the provider's error code (escaped) and the library's error
 * code, never a token, the provider's free-text description or a URL with a code in it.
 */
function providerError(step: string, error: unknown): AppError {
  if (error instanceof client.ResponseBodyError || error instanceof client.AuthorizationResponseError) {
    const kind = error instanceof client.ResponseBodyError && error.status >= 500 ? "unavailable" : "unauthenticated";
    return new AppError(kind, `the identity provider refused the ${step}: ${excerpt(error.error)}`, { cause: error });
  }
  if (error instanceof TypeError) {
    return new AppError("unavailable", `the identity provider could not be reached for the ${step}`, { cause: error });
  }
  if (error instanceof client.ClientError) {
    const code = typeof error.code === "string" && /^[A-Z0-9_]{1,60}$/.test(error.code) ? error.code : "unknown";
    const kind = code === "OAUTH_TIMEOUT" ? "unavailable" : "unauthenticated";
    return new AppError(kind, `the identity provider's answer to the ${step} was refused (${code}: ${failedCheck(error)})`, {
      cause: error,
    });
  }
  return new AppError("unavailable", `the ${step} with the identity provider failed`, { cause: error });
}

/**
 * Which check failed, in oauth4webapi's words (`unexpected ID Token "nonce" claim value`): its
 * messages are fixed texts that keep the values compared in `cause`, never in the message.
 */
function failedCheck(error: Error): string {
  const inner = error.cause instanceof Error && error.cause.name === "OperationProcessingError" ? error.cause : error;
  return excerpt(inner.message, 100);
}

function isLoopbackHost(hostname: string): boolean {
  return hostname === "localhost" || hostname === "[::1]" || /^127(\.\d{1,3}){3}$/.test(hostname);
}
