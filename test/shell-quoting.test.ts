// test lane: fast
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import {
  adminUserScript,
  agentInstallScript,
  agentStateScript,
  authorizedKeyScript,
  vacuumJournalScript,
} from "../activities/host-scripts.js";
import { quote, sh } from "../activities/ssh/shell.js";

const MARK = "\u0001VALUE\u0001";

/** Every sh`…` template in a source file, with each `${…}` replaced by MARK and escapes cooked as JavaScript would. */
function shTemplates(source: string): { line: number; text: string }[] {
  const found: { line: number; text: string }[] = [];
  const pattern = /(?<![\w$.])sh`/g;
  for (let m = pattern.exec(source); m; m = pattern.exec(source)) {
    let i = m.index + 3;
    let text = "";
    while (i < source.length && source[i] !== "`") {
      if (source[i] === "\\") {
        const next = source[i + 1] as string;
        text += next === "n" ? "\n" : next === "t" ? "\t" : next;
        i += 2;
      } else if (source.startsWith("${", i)) {
        i = skipExpression(source, i + 2);
        text += MARK;
      } else text += source[i++];
    }
    found.push({ line: source.slice(0, m.index).split("\n").length, text });
  }
  return found;
}

/** The index just past the `}` closing an interpolation that starts at `i`, skipping strings and nested templates. */
function skipExpression(source: string, i: number): number {
  let depth = 0;
  while (i < source.length) {
    const c = source[i] as string;
    if (c === "'" || c === '"') {
      i++;
      while (source[i] !== c) i += source[i] === "\\" ? 2 : 1;
    } else if (c === "`") {
      i++;
      while (source[i] !== "`") {
        if (source[i] === "\\") i += 2;
        else if (source.startsWith("${", i)) i = skipExpression(source, i + 2) - 1;
        i++;
      }
    } else if (c === "{") depth++;
    else if (c === "}") {
      if (depth === 0) return i + 1;
      depth--;
    }
    i++;
  }
  throw new Error("unterminated interpolation");
}

type Context = "top" | "double-quoted" | "single-quoted" | "substitution" | "parenthesis" | "backtick";

/**
 * The quoting context of each MARK in a POSIX shell script: a small lexer for what
 * these scripts use (quotes, backslashes, $(…), (…), backticks, comments).
 */
function contextsOfValues(script: string): Context[] {
  const stack: Context[] = ["top"];
  const contexts: Context[] = [];
  for (let i = 0; i < script.length; i++) {
    if (script.startsWith(MARK, i)) {
      contexts.push(stack.at(-1) as Context);
      i += MARK.length - 1;
      continue;
    }
    const c = script[i] as string;
    const where = stack.at(-1) as Context;
    if (where === "single-quoted") {
      if (c === "'") stack.pop();
    } else if (where === "double-quoted") {
      if (c === "\\") i++;
      else if (c === '"') stack.pop();
      else if (script.startsWith("$(", i)) {
        stack.push("substitution");
        i++;
      } else if (c === "`") stack.push("backtick");
    } else {
      if (c === "\\") i++;
      else if (c === "'") stack.push("single-quoted");
      else if (c === '"') stack.push("double-quoted");
      else if (script.startsWith("$(", i)) {
        stack.push("substitution");
        i++;
      } else if (c === "(") stack.push("parenthesis");
      else if (c === ")" && (where === "substitution" || where === "parenthesis")) stack.pop();
      else if (c === "`") {
        if (where === "backtick") stack.pop();
        else stack.push("backtick");
      } else if (c === "#" && (i === 0 || /\s/.test(script[i - 1] as string))) {
        while (i < script.length && script[i] !== "\n") i++;
      }
    }
  }
  assert.deepEqual(stack, ["top"], "the script's quotes and parentheses are balanced");
  return contexts;
}

function activitySources(dir = "activities"): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return activitySources(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

describe("shell quoting", () => {
  const runLocally = (script: string): string => execFileSync("sh", ["-c", script], { encoding: "utf8" });

  test("a quoted value is one inert word: $(…), backticks, quotes, newlines and globs are not interpreted", () => {
    const dir = mkdtempSync(join(tmpdir(), "axion-quote-"));
    try {
      const canary = join(dir, "pwned");
      const values = [
        `$(touch ${canary})`,
        `\`touch ${canary}\``,
        `it's "quoted" \\ back\\slash`,
        "two\nlines\n",
        "semi; touch x && echo y | cat > z",
        "*",
        "~root",
        // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion, meant literally
        "$HOME ${PATH}",
        "tab\there",
        "ünïcødé ✓",
        "",
      ];
      for (const value of values) {
        assert.equal(runLocally(sh`printf '%s' ${value}`.text), value, `printed back exactly: ${JSON.stringify(value)}`);
        assert.equal(runLocally(sh`set -- ${value}; echo $#`.text), "1\n", `one word: ${JSON.stringify(value)}`);
      }
      assert.equal(existsSync(canary), false, "no command inside a value ran");
      assert.equal(runLocally(sh`printf '%s|' ${["a b", "$(id)"]}`.text), "a b|$(id)|", "arrays are quoted element by element");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a value that could be read as an option, or holds a NUL, is refused", () => {
    for (const value of ["-rf", "--help", "-", "-oProxyCommand=touch /tmp/x", -1]) {
      assert.throws(() => quote(value), /option/, `refused: ${String(value)}`);
      assert.throws(() => sh`ls ${value}`, /option/);
    }
    assert.throws(() => quote("a\u0000b"), /NUL/);
    assert.equal(quote("a-b"), "a-b", "a dash inside a value is fine");
    assert.equal(quote("x --y"), "'x --y'");
  });

  test("every host script builder refuses an option-like value in each of its parameters", () => {
    const builders: [string, (value: string) => unknown][] = [
      ["adminUserScript", (v) => adminUserScript(v, "check")],
      ["authorizedKeyScript user", (v) => authorizedKeyScript(v, "ssh-ed25519 AAAA", "add", "check")],
      ["authorizedKeyScript key", (v) => authorizedKeyScript("axion", v, "remove", "apply")],
      ["agentStateScript sha256", (v) => agentStateScript(v, "http://api:8080")],
      ["agentInstallScript binary", (v) => agentInstallScript(v, "/home/a/cfg", "ab")],
      ["agentInstallScript config", (v) => agentInstallScript("/home/a/bin", v, "ab")],
      ["agentInstallScript sha256", (v) => agentInstallScript("/home/a/bin", "/home/a/cfg", v)],
      ["vacuumJournalScript", (v) => vacuumJournalScript(Number(v))],
    ];
    for (const [name, build] of builders) assert.throws(() => build("-5"), /option/, name);
  });

  test("no interpolated value of any sh`` template in activities/ sits inside double or single quotes", () => {
    const hazards: string[] = [];
    let templates = 0;
    for (const path of activitySources()) {
      for (const { line, text } of shTemplates(readFileSync(path, "utf8"))) {
        templates++;
        contextsOfValues(text).forEach((context, n) => {
          if (context === "double-quoted" || context === "single-quoted") hazards.push(`${path}:${line} value #${n + 1} is ${context}`);
        });
      }
    }
    assert.ok(templates >= 15, `found the templates (${templates})`);
    assert.deepEqual(hazards, []);
  });

  test("the scanner sees a value inside double quotes, and not one inside $(…) within them", () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: TypeScript source text for the scanner
    const [unsafe] = shTemplates('sh`echo "port ${port} open"`');
    assert.deepEqual(contextsOfValues(unsafe?.text ?? ""), ["double-quoted"]);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: TypeScript source text for the scanner
    const [nested] = shTemplates('sh`[ "$(cat "$f" ${x})" = y ] && echo ${`a ${b}`} # "${c}`');
    assert.deepEqual(contextsOfValues(nested?.text ?? ""), ["substitution", "top"]);
  });
});
