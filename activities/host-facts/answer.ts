import { ApplicationFailure } from "@temporalio/common";
import { excerpt, hasUnsafeCharacters } from "../../core/kernel/text.js";
import { FailureType } from "../../workflows/failure-types.js";

/**
 * What a managed host answers is an attacker's text: each fact is read by one
 * bounded parser (length, characters, allowed values) in this folder, and an
 * answer that does not fit is refused with an error naming the fact and quoting
 * a short escaped excerpt. Retrying asks the same host the same question: not retried.
 */
export function badAnswer(fact: string, why: string, value?: string | Buffer): ApplicationFailure {
  const quoted = value === undefined ? "" : `: ${excerpt(typeof value === "string" ? value : value.toString("utf8"))}`;
  return ApplicationFailure.nonRetryable(`${fact}: ${why}${quoted}`, FailureType.HostAnswerInvalid);
}

/** The answer as one line of text: at most `max` characters, no control or bidi characters, matching `pattern`. */
export function oneLine(fact: string, raw: Buffer, max: number, pattern: RegExp, what: string): string {
  const text = raw.toString("utf8").replace(/\n$/, "");
  if (text === "") throw badAnswer(fact, "no answer");
  if (text.length > max) throw badAnswer(fact, `answered ${raw.length} bytes, at most ${max} expected`, text);
  if (text.includes("\n")) throw badAnswer(fact, "answered more than one line", text);
  if (hasUnsafeCharacters(text) || text.includes("\ufffd")) throw badAnswer(fact, "answered control characters or binary", text);
  if (!pattern.test(text)) throw badAnswer(fact, `is not ${what}`, text);
  return text;
}

/** A whole number answered as decimal digits only, at most `max`. */
export function wholeNumber(fact: string, text: string, max: number): number {
  if (!/^\d{1,15}$/.test(text) || Number(text) > max) throw badAnswer(fact, `is not a whole number up to ${max}`, text);
  return Number(text);
}
