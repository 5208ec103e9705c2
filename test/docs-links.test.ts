// test lane: fast
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { test } from "node:test";

/** The README and every page under docs/: their relative links and #anchors must lead somewhere. */
const pages = [
  "README.md",
  ...readdirSync("docs")
    .filter((f) => f.endsWith(".md"))
    .map((f) => join("docs", f)),
];

/** GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens, repeats numbered. */
function anchorsOf(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  const withoutCode = markdown.replace(/^```[\s\S]*?^```/gm, "");
  for (const [, heading] of withoutCode.matchAll(/^#{1,6} +(.+?) *#*$/gm)) {
    const base = (heading as string)
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\- _]/gu, "")
      .replace(/ /g, "-");
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

function linksOf(markdown: string): string[] {
  const withoutCode = markdown.replace(/^```[\s\S]*?^```/gm, "").replace(/`[^`\n]*`/g, "");
  return [...withoutCode.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1] as string);
}

test("every relative link in the README and docs/ names a file that exists, and every #anchor a heading in it", () => {
  const broken: string[] = [];
  let checked = 0;
  for (const page of pages) {
    for (const link of linksOf(readFileSync(page, "utf8"))) {
      if (/^[a-z]+:/i.test(link)) continue;
      checked++;
      const [path, anchor] = link.split("#", 2) as [string, string | undefined];
      const target = path === "" ? page : normalize(join(dirname(page), path));
      if (!existsSync(target)) {
        broken.push(`${page}: ${link} (no file ${target})`);
        continue;
      }
      if (anchor !== undefined && target.endsWith(".md") && !anchorsOf(readFileSync(target, "utf8")).has(anchor))
        broken.push(`${page}: ${link} (no heading #${anchor} in ${target})`);
    }
  }
  assert.deepEqual(broken, []);
  assert.ok(checked >= 15, `the README and docs link to each other (${checked} links checked)`);
});

test("the README is a front door: at most 200 lines, no words about sessions or branches", () => {
  const readme = readFileSync("README.md", "utf8");
  assert.ok(readme.split("\n").length <= 200, `README.md has ${readme.split("\n").length} lines`);
  for (const page of pages) {
    const text = readFileSync(page, "utf8");
    assert.doesNotMatch(text, /\b(this|last|previous|next|other) sessions?'?\b(?! (key|module|layer|per))/i, page);
    assert.doesNotMatch(text, /\bbranch `?s\d+-/i, page);
  }
});

test("the anchor rule matches GitHub's for the headings these pages use", () => {
  assert.deepEqual(
    [...anchorsOf("# Changing a workflow safely\n## The `axion` command\n## Limits\n## Limits\n")],
    ["changing-a-workflow-safely", "the-axion-command", "limits", "limits-1"],
  );
});
