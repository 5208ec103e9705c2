import { Code, ConnectError, type Transport } from "@connectrpc/connect";
import { TransportProvider } from "@connectrpc/connect-query";
import { QueryCache, QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { useCallback, useMemo, useState } from "react";
import { FleetPage } from "./FleetPage.js";
import { SignIn } from "./SignIn.js";
import { apiTransport } from "./transport.js";

/** Signed out: the sign-in form. Signed in: the console over a transport that holds the token. */
export function App() {
  const [session, setSession] = useState<{ transport: Transport } | undefined>();
  const [notice, setNotice] = useState<string | undefined>();

  const signOut = useCallback((why?: string) => {
    setSession(undefined);
    setNotice(why);
  }, []);

  const queryClient = useMemo(
    () =>
      new QueryClient({
        queryCache: new QueryCache({
          onError: (error) => {
            if (error instanceof ConnectError && error.code === Code.Unauthenticated)
              signOut("The API refused this token: it is unknown, revoked or expired.");
          },
        }),
        defaultOptions: {
          queries: { retry: (count, error) => !(error instanceof ConnectError && error.code !== Code.Unavailable) && count < 2 },
        },
      }),
    [signOut],
  );

  if (!session) {
    return (
      <SignIn
        notice={notice}
        onToken={(token) => {
          queryClient.clear();
          setNotice(undefined);
          setSession({ transport: apiTransport(token) });
        }}
      />
    );
  }
  return (
    <TransportProvider transport={session.transport}>
      <QueryClientProvider client={queryClient}>
        <header className="top">
          <h1>Axion</h1>
          <button
            type="button"
            onClick={() => {
              queryClient.clear();
              signOut("Signed out.");
            }}
          >
            Sign out
          </button>
        </header>
        <FleetPage />
      </QueryClientProvider>
    </TransportProvider>
  );
}
