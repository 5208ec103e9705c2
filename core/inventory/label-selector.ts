import { type AnyColumn, and, type SQL, sql } from "drizzle-orm";
import { AppError } from "../kernel/errors.js";
import { hasUnsafeCharacters } from "../kernel/text.js";
import { labelKey, labelValue, shown } from "../kernel/validation.js";

/**
 * Kubernetes-style label selectors: `role=web`, `role==web`, `env!=dev`,
 * `tier in (a,b)`, `tier notin (a,b)`, `gpu` (has the key), `!legacy` (has not),
 * joined by commas (and). As in Kubernetes, `!=` and `notin` also match servers
 * without the key. The empty selector matches everything.
 */
export type Requirement =
  | { key: string; op: "eq" | "neq"; value: string }
  | { key: string; op: "in" | "notin"; values: string[] }
  | { key: string; op: "exists" | "absent" };

export const MAX_SELECTOR_LENGTH = 1024;
export const MAX_REQUIREMENTS = 64;
export const MAX_SET_VALUES = 64;

type TokenKind = "word" | "!" | "=" | "==" | "!=" | "(" | ")" | "," | "end";
/** `at` is the 1-based character position, shown in errors. */
interface Token {
  kind: TokenKind;
  text: string;
  at: number;
}

const punctuation = new Set(["!", "=", "(", ")", ","]);
const blank = new Set([" ", "\t"]);

class SelectorError extends Error {
  constructor(
    readonly at: number,
    message: string,
  ) {
    super(message);
  }
}

function describe(token: Token): string {
  return token.kind === "end" ? "end of selector" : shown(token.text);
}

function tokenize(chars: string[]): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < chars.length) {
    const c = chars[i] as string;
    if (blank.has(c)) {
      i++;
      continue;
    }
    if (hasUnsafeCharacters(c)) throw new SelectorError(i + 1, "control characters are not allowed");
    if ((c === "!" || c === "=") && chars[i + 1] === "=") {
      tokens.push({ kind: c === "!" ? "!=" : "==", text: `${c}=`, at: i + 1 });
      i += 2;
      continue;
    }
    if (punctuation.has(c)) {
      tokens.push({ kind: c as TokenKind, text: c, at: i + 1 });
      i++;
      continue;
    }
    const start = i;
    while (
      i < chars.length &&
      !blank.has(chars[i] as string) &&
      !punctuation.has(chars[i] as string) &&
      !hasUnsafeCharacters(chars[i] as string)
    )
      i++;
    tokens.push({ kind: "word", text: chars.slice(start, i).join(""), at: start + 1 });
  }
  tokens.push({ kind: "end", text: "", at: chars.length + 1 });
  return tokens;
}

class Parser {
  private next = 0;
  constructor(private readonly tokens: Token[]) {}

  private peek(): Token {
    return this.tokens[this.next] as Token;
  }

  private take(): Token {
    const token = this.peek();
    if (token.kind !== "end") this.next++;
    return token;
  }

  selector(): Requirement[] {
    const requirements: Requirement[] = [];
    if (this.peek().kind === "end") return requirements;
    for (;;) {
      const start = this.peek();
      if (requirements.length === MAX_REQUIREMENTS) throw new SelectorError(start.at, `at most ${MAX_REQUIREMENTS} requirements`);
      requirements.push(this.requirement());
      const after = this.take();
      if (after.kind === "end") return requirements;
      if (after.kind !== ",") throw new SelectorError(after.at, `expected "," or end of selector, found ${describe(after)}`);
    }
  }

  private requirement(): Requirement {
    if (this.peek().kind === "!") {
      this.take();
      return { key: this.key(), op: "absent" };
    }
    const key = this.key();
    const op = this.peek();
    switch (op.kind) {
      case "=":
      case "==":
      case "!=":
        this.take();
        return { key, op: op.kind === "!=" ? "neq" : "eq", value: this.optionalValue() };
      case ",":
      case "end":
        return { key, op: "exists" };
      case "word":
        if (op.text === "in" || op.text === "notin") {
          this.take();
          return { key, op: op.text, values: this.valueSet(op.text) };
        }
    }
    throw new SelectorError(
      op.at,
      `expected an operator (=, ==, !=, in, notin), "," or end of selector after key ${shown(key)}, found ${describe(op)}`,
    );
  }

  private key(): string {
    const token = this.take();
    if (token.kind !== "word") throw new SelectorError(token.at, `expected a label key, found ${describe(token)}`);
    if (!labelKey.test(token.text)) throw new SelectorError(token.at, `${shown(token.text)} is not a valid label key`);
    return token.text;
  }

  private value(token: Token): string {
    if (!labelValue.test(token.text)) {
      throw new SelectorError(token.at, `${shown(token.text)} is not a valid label value (at most 63 letters, digits, '.', '_' or '-')`);
    }
    return token.text;
  }

  /** `key=` selects the empty value, as in Kubernetes. */
  private optionalValue(): string {
    const token = this.peek();
    if (token.kind === "," || token.kind === "end") return "";
    if (token.kind !== "word") throw new SelectorError(token.at, `expected a value, found ${describe(token)}`);
    return this.value(this.take());
  }

  private valueSet(operator: string): string[] {
    const open = this.take();
    if (open.kind !== "(") throw new SelectorError(open.at, `expected "(" after ${operator}, found ${describe(open)}`);
    const values: string[] = [];
    for (;;) {
      const token = this.take();
      if (token.kind !== "word") throw new SelectorError(token.at, `expected a value, found ${describe(token)}`);
      if (values.length === MAX_SET_VALUES) throw new SelectorError(token.at, `at most ${MAX_SET_VALUES} values in a set`);
      values.push(this.value(token));
      const after = this.take();
      if (after.kind === ")") return values;
      if (after.kind !== ",") throw new SelectorError(after.at, `expected ")" after value list, found ${describe(after)}`);
    }
  }
}

/** Parses a selector; bad input is InvalidArgument naming `field` and the position (1-based character). */
export function parseSelector(text: string, field = "selector"): Requirement[] {
  const chars = Array.from(text);
  if (chars.length > MAX_SELECTOR_LENGTH) throw AppError.invalid(field, `must be at most ${MAX_SELECTOR_LENGTH} characters`);
  try {
    return new Parser(tokenize(chars)).selector();
  } catch (error) {
    if (error instanceof SelectorError) throw AppError.invalid(field, `position ${error.at}: ${error.message}`);
    throw error;
  }
}

function requirementCondition(labels: AnyColumn, r: Requirement): SQL {
  const value = sql`(${labels} ->> ${r.key}::text)`;
  switch (r.op) {
    case "eq":
      return sql`${value} = ${r.value}::text`;
    case "neq":
      return sql`${value} is distinct from ${r.value}::text`;
    case "in":
      return sql`${value} in (${sql.join(
        r.values.map((v) => sql`${v}::text`),
        sql`, `,
      )})`;
    case "notin":
      return sql`(${value} is null or ${value} not in (${sql.join(
        r.values.map((v) => sql`${v}::text`),
        sql`, `,
      )}))`;
    // Label values are strings, never JSON null, so "has the key" is "has a value".
    case "exists":
      return sql`${value} is not null`;
    case "absent":
      return sql`${value} is null`;
  }
}

/** The SQL condition on a jsonb labels column; undefined (no condition) for the empty selector. */
export function selectorCondition(labels: AnyColumn, requirements: Requirement[]): SQL | undefined {
  if (requirements.length === 0) return undefined;
  return and(...requirements.map((r) => requirementCondition(labels, r)));
}
