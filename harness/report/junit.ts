// JUnit XML for CI systems (Jenkins, GitLab, GitHub test reporters, Azure, CircleCI): one
// <testsuite> inside <testsuites>, one <testcase> per scenario run or fuzz run. A failing case
// carries <failure message type> whose body has the verdict, the violations, the replay command
// and the repro path; a harness error carries <error>.
import { writeFileSync } from "node:fs";

export interface JUnitCase {
  readonly name: string;
  readonly classname: string;
  readonly timeS: number;
  readonly outcome: "pass" | "failure" | "error";
  /** One line: "safety: fork at height 8 …" (the text before the first colon is the failure type). */
  readonly message?: string;
  /** Longer text: every violation, one per line. */
  readonly details?: string;
  readonly replayCommand?: string;
  readonly reproPath?: string;
  /** The failure or error type; default: the message's first word before ":" (e.g. "safety"). */
  readonly type?: string;
}

export interface JUnitOptions {
  /** ISO 8601 time the suite started (omitted by default, so that the output is reproducible). */
  readonly timestamp?: Date;
  readonly hostname?: string;
}

/** Removes what XML 1.0 cannot carry at all: C0 controls other than tab/LF/CR, lone surrogates, U+FFFE/U+FFFF. */
function xmlChars(text: string): string {
  return text.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "");
}

/** Escapes element content. */
export function xmlText(text: string): string {
  return xmlChars(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** Escapes an attribute value (double-quoted); line breaks and tabs survive attribute normalisation. */
export function xmlAttr(text: string): string {
  return xmlText(text).replace(/"/g, "&quot;").replace(/'/g, "&apos;").replace(/\t/g, "&#9;").replace(/\n/g, "&#10;").replace(/\r/g, "&#13;");
}

const seconds = (s: number): string => (Number.isFinite(s) && s > 0 ? s.toFixed(3) : "0.000");

function typeOf(c: JUnitCase): string {
  if (c.type !== undefined && c.type !== "") return c.type;
  if (c.outcome === "error") return "harness-error";
  const head = /^([A-Za-z][\w.-]*):/.exec(c.message ?? "");
  return head?.[1] ?? "failure";
}

function firstLine(text: string, max = 500): string {
  const line = text.split(/\r\n|\n|\r/)[0] ?? "";
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/** The body of a <failure> or <error>: what happened, then how to reproduce it. */
export function failureBody(c: JUnitCase): string {
  const lines: string[] = [];
  if (c.message !== undefined && c.message !== "") lines.push(c.message);
  if (c.details !== undefined && c.details !== "" && c.details !== c.message) lines.push("", c.details);
  if (c.replayCommand !== undefined || c.reproPath !== undefined) lines.push("");
  if (c.replayCommand !== undefined) lines.push(`reproduce with: ${c.replayCommand}`);
  if (c.reproPath !== undefined) lines.push(`repro bundle: ${c.reproPath}`);
  return lines.join("\n");
}

function testcase(c: JUnitCase): string {
  const open = `    <testcase classname="${xmlAttr(c.classname)}" name="${xmlAttr(c.name)}" time="${seconds(c.timeS)}"`;
  if (c.outcome === "pass") return `${open}/>`;
  const tag = c.outcome === "failure" ? "failure" : "error";
  const message = firstLine(c.message ?? (c.outcome === "failure" ? "failure" : "harness error"));
  const out = c.replayCommand === undefined ? "" : `\n      <system-out>${xmlText(`reproduce with: ${c.replayCommand}`)}</system-out>`;
  return `${open}>\n      <${tag} message="${xmlAttr(message)}" type="${xmlAttr(typeOf(c))}">${xmlText(failureBody(c))}</${tag}>${out}\n    </testcase>`;
}

export function renderJUnit(suiteName: string, cases: readonly JUnitCase[], options: JUnitOptions = {}): string {
  const failures = cases.filter((c) => c.outcome === "failure").length;
  const errors = cases.filter((c) => c.outcome === "error").length;
  const total = cases.reduce((sum, c) => sum + (Number.isFinite(c.timeS) && c.timeS > 0 ? c.timeS : 0), 0);
  const counts = `tests="${cases.length}" failures="${failures}" errors="${errors}"`;
  const stamp = options.timestamp === undefined ? "" : ` timestamp="${options.timestamp.toISOString().slice(0, 19)}"`;
  const host = options.hostname === undefined ? "" : ` hostname="${xmlAttr(options.hostname)}"`;
  return `<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="${xmlAttr(suiteName)}" ${counts} time="${seconds(total)}">
  <testsuite name="${xmlAttr(suiteName)}" ${counts} skipped="0" time="${seconds(total)}"${stamp}${host}>
${cases.map(testcase).join("\n")}${cases.length === 0 ? "" : "\n"}  </testsuite>
</testsuites>
`;
}

export function writeJUnit(path: string, suiteName: string, cases: readonly JUnitCase[], options: JUnitOptions = {}): void {
  writeFileSync(path, renderJUnit(suiteName, cases, options));
}
