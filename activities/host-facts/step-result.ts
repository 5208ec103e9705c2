import { displaySafe } from "../../core/kernel/text.js";
import { badAnswer } from "./answer.js";

export const RESULT_MARK = "AXION_RESULT";
const states = ["changed", "unchanged", "skipped", "would_change", "cannot"] as const;
export type StepState = (typeof states)[number];
/** The most of a step's detail kept: it is shown to a person and stored in the operation's progress. */
export const MAX_DETAIL = 300;

export interface StepOutput {
  changed: boolean;
  skipped: boolean;
  state: StepState;
  detail: string;
}

/**
 * A step's last `AXION_RESULT <state> <detail>` line: the state one of the
 * known words, the detail (which may quote host values) escaped and cut to
 * MAX_DETAIL characters. No result line, or an unknown state, is an error
 * naming the step: a step that cannot say what it did did not do it.
 */
export function parseStepOutput(stdout: string, step = "step"): StepOutput {
  const line = stdout
    .split("\n")
    .reverse()
    .find((l) => l.startsWith(`${RESULT_MARK} `));
  if (!line) throw badAnswer(step, "finished without a result line");
  const [, word = "", ...rest] = line.split(" ");
  const state = states.find((s) => s === word);
  if (!state) throw badAnswer(step, "answered an unknown result", word);
  const text = rest.join(" ");
  const detail = displaySafe(text.length > MAX_DETAIL ? `${text.slice(0, MAX_DETAIL)}…` : text);
  return { changed: state === "changed", skipped: state === "skipped", state, detail };
}
