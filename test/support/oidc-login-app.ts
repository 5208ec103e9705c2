import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { adminRequest } from "./hydra.js";

/** The person the login app signs in, whoever asks: the test sets who that is before each flow. */
export interface TestUser {
  subject: string;
  email: string;
  /** Any JSON: a test may send what a hostile provider would. */
  groups: unknown;
}

export interface OidcLoginApp {
  loginUrl: string;
  consentUrl: string;
  setUser(user: TestUser): void;
  close(): Promise<void>;
}

/**
 * Hydra's login and consent steps for the tests (no form, no password): Hydra redirects the browser
 * here with a challenge; the app accepts it through Hydra's admin API and redirects back. The
 * consent puts `email` and `groups` into `session.id_token`, which Hydra adds to the ID token
 * (oauth2/handler.go, `Extra: session.Session.IDToken`), also on every refresh.
 */
export async function startOidcLoginApp(adminSocket: string, user: TestUser): Promise<OidcLoginApp> {
  let current = user;
  const admin = <T>(method: string, path: string, body?: unknown) => adminRequest<T>(adminSocket, method, path, body);

  const login = async (challenge: string) => {
    const asked = await admin<{ skip: boolean; subject: string }>("GET", `/admin/oauth2/auth/requests/login?login_challenge=${challenge}`);
    return admin<{ redirect_to: string }>("PUT", `/admin/oauth2/auth/requests/login/accept?login_challenge=${challenge}`, {
      subject: asked.skip ? asked.subject : current.subject,
      remember: false,
    });
  };
  const consent = async (challenge: string) => {
    const asked = await admin<{ requested_scope: string[]; requested_access_token_audience: string[] }>(
      "GET",
      `/admin/oauth2/auth/requests/consent?consent_challenge=${challenge}`,
    );
    return admin<{ redirect_to: string }>("PUT", `/admin/oauth2/auth/requests/consent/accept?consent_challenge=${challenge}`, {
      grant_scope: asked.requested_scope,
      grant_access_token_audience: asked.requested_access_token_audience,
      remember: false,
      session: { id_token: { email: current.email, email_verified: true, groups: current.groups } },
    });
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const loginChallenge = url.searchParams.get("login_challenge");
    const consentChallenge = url.searchParams.get("consent_challenge");
    const step =
      url.pathname === "/login" && loginChallenge
        ? login(encodeURIComponent(loginChallenge))
        : url.pathname === "/consent" && consentChallenge
          ? consent(encodeURIComponent(consentChallenge))
          : undefined;
    if (!step) {
      res.writeHead(400, { "content-type": "text/plain" }).end(`login app: unexpected ${url.pathname}\n`);
      return;
    }
    step.then(
      (accepted) => res.writeHead(302, { location: accepted.redirect_to }).end(),
      (error: Error) => res.writeHead(502, { "content-type": "text/plain" }).end(`login app: ${error.message}\n`),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    loginUrl: `${base}/login`,
    consentUrl: `${base}/consent`,
    setUser: (user) => {
      current = user;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
