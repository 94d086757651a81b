// JUnit XML for CI systems: one <testcase> per scenario run or fuzz run; failures carry the
// verdict, the violations, the replay command and the repro path.
import { writeFileSync } from "node:fs";

export interface JUnitCase {
  readonly name: string;
  readonly classname: string;
  readonly timeS: number;
  readonly outcome: "pass" | "failure" | "error";
  readonly message?: string;
  readonly details?: string;
  readonly replayCommand?: string;
  readonly reproPath?: string;
}

const xml = (text: string): string =>
  text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&apos;")
    // Characters XML 1.0 cannot carry at all.
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, "");

export function renderJUnit(suiteName: string, cases: readonly JUnitCase[]): string {
  const failures = cases.filter((c) => c.outcome === "failure").length;
  const errors = cases.filter((c) => c.outcome === "error").length;
  const total = cases.reduce((sum, c) => sum + c.timeS, 0);
  const body = cases.map((c) => {
    const open = `    <testcase classname="${xml(c.classname)}" name="${xml(c.name)}" time="${c.timeS.toFixed(3)}"`;
    if (c.outcome === "pass") return `${open}/>`;
    const text = [c.details ?? c.message ?? "", c.replayCommand === undefined ? "" : `reproduce with: ${c.replayCommand}`, c.reproPath === undefined ? "" : `repro: ${c.reproPath}`].filter((l) => l !== "").join("\n");
    const tag = c.outcome === "failure" ? "failure" : "error";
    return `${open}>\n      <${tag} message="${xml(c.message ?? c.outcome)}" type="${xml(c.outcome === "failure" ? (c.message ?? "").split(":")[0] ?? "failure" : "harness-error")}">${xml(text)}</${tag}>\n    </testcase>`;
  });
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="${xml(suiteName)}" tests="${cases.length}" failures="${failures}" errors="${errors}" time="${total.toFixed(3)}">\n  <testsuite name="${xml(suiteName)}" tests="${cases.length}" failures="${failures}" errors="${errors}" skipped="0" time="${total.toFixed(3)}">\n${body.join("\n")}\n  </testsuite>\n</testsuites>\n`;
}

export function writeJUnit(path: string, suiteName: string, cases: readonly JUnitCase[]): void {
  writeFileSync(path, renderJUnit(suiteName, cases));
}
