import { type FormEvent, useId, useRef } from "react";

/**
 * The token is read from the field once, handed over and the field cleared: it is not kept in
 * React state, the URL (the form never submits to the server) or any storage.
 */
export function SignIn({ notice, onToken }: { notice?: string; onToken: (token: string) => void }) {
  const field = useRef<HTMLInputElement>(null);
  const id = useId();
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const input = field.current;
    const token = input?.value.trim() ?? "";
    if (input) input.value = "";
    if (token) onToken(token);
  };
  return (
    <main className="sign-in">
      <h1>Axion console</h1>
      <form onSubmit={submit} method="post" action="#" aria-describedby={`${id}-help`}>
        <label htmlFor={`${id}-token`}>API token</label>
        <input id={`${id}-token`} ref={field} type="password" autoComplete="off" spellCheck={false} required />
        <p id={`${id}-help`} className="help">
          An organization token (as `axion login` takes). It is kept in this tab's memory only: reloading the page signs you out.
        </p>
        <button type="submit">Sign in</button>
      </form>
      {notice ? (
        <p role="status" className="notice">
          {notice}
        </p>
      ) : null}
    </main>
  );
}
