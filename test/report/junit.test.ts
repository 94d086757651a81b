// JUnit XML as CI systems read it: well-formed (checked by fast-xml-parser and by a strict little
// checker of our own), testsuites > testsuite > testcase with the required attributes, counts
// that add up, failures carrying the verdict, the violations, the replay command and the repro.
import test from "ava";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { renderJUnit, writeJUnit, xmlAttr, type JUnitCase } from "../../harness/report/junit.ts";

/**
 * A strict well-formedness check for the XML subset we write: one prolog, elements with quoted
 * attributes (no raw < or stray & in values, no duplicates), text without raw < or stray &,
 * properly nested tags, one root, and only characters XML 1.0 allows.
 */
export function wellFormedProblems(xml: string): string[] {
  const problems: string[] = [];
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/.test(xml)) problems.push("character not allowed in XML 1.0");
  if (/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(xml)) problems.push("lone surrogate");
  const entity = /&(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/y;
  const text = (s: string, where: string): void => {
    if (s.includes("<")) problems.push(`raw < in ${where}`);
    for (let i = s.indexOf("&"); i >= 0; i = s.indexOf("&", i + 1)) {
      entity.lastIndex = i;
      if (!entity.test(s)) problems.push(`stray & in ${where}: ${JSON.stringify(s.slice(i, i + 12))}`);
    }
  };
  let rest = xml.replace(/^<\?xml version="1\.0" encoding="UTF-8"\?>\n/, "");
  if (rest === xml) problems.push("missing XML declaration");
  const stack: string[] = [];
  let roots = 0;
  const tag = /^<(\/?)([A-Za-z_][\w.-]*)((?:\s+[A-Za-z_][\w.-]*\s*=\s*"[^"]*")*)\s*(\/?)>/;
  while (rest.length > 0) {
    const lt = rest.indexOf("<");
    const chunk = lt < 0 ? rest : rest.slice(0, lt);
    if (chunk.length > 0) {
      if (stack.length === 0 && chunk.trim() !== "") problems.push("text outside the root");
      text(chunk, "text");
    }
    if (lt < 0) break;
    rest = rest.slice(lt);
    const m = tag.exec(rest);
    if (m === null) {
      problems.push(`malformed tag at ${JSON.stringify(rest.slice(0, 40))}`);
      break;
    }
    const [whole, closing, name = "", attrs = "", selfClosing] = m;
    const seen = new Set<string>();
    for (const a of attrs.matchAll(/([A-Za-z_][\w.-]*)\s*=\s*"([^"]*)"/g)) {
      if (seen.has(a[1] ?? "")) problems.push(`duplicate attribute ${a[1]}`);
      seen.add(a[1] ?? "");
      text(a[2] ?? "", `attribute ${a[1]}`);
    }
    if (closing === "/") {
      if (stack.pop() !== name) problems.push(`mismatched </${name}>`);
    } else {
      if (stack.length === 0) roots++;
      if (selfClosing !== "/") stack.push(name);
    }
    rest = rest.slice(whole.length);
  }
  if (stack.length > 0) problems.push(`unclosed ${stack.join(", ")}`);
  if (roots !== 1) problems.push(`${roots} root elements`);
  return problems;
}

const NASTY = `fork at <height> 8 & "quoted" 'single' \u0001bell\u0007 tab\there\r\nnext line ]]> emoji 🧪 lone \ud800 surrogate`;

const CASES: JUnitCase[] = [
  { name: "baseline (seed 1)", classname: "subnetlab.scenario", timeS: 1.5, outcome: "pass" },
  {
    name: `beyond-f (seed 1) ${NASTY}`,
    classname: "subnetlab.scenario",
    timeS: 2.25,
    outcome: "failure",
    message: `safety: expected pass; ${NASTY}`,
    details: `safety: fork at height 8: r3 finalized 130708cf1889; r2 finalized 5bf85b6b6801\nliveness: r3 ended at height 8`,
    replayCommand: `npx subnetlab replay "reports/a & b/repro.json"`,
    reproPath: "reports/a & b/repro.json",
  },
  { name: "fuzz seed 9 (n = 4)", classname: "subnetlab.fuzz", timeS: 0.4, outcome: "error", message: "harness error: assertion failed <x>", details: "AssertionError: stack\n  at f (a.ts:1)" },
  { name: "no message", classname: "subnetlab.fuzz", timeS: Number.NaN, outcome: "failure" },
];

const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: "", htmlEntities: true, isArray: (name) => name === "testcase" || name === "testsuite" });

interface Parsed {
  testsuites: {
    name: string; tests: string; failures: string; errors: string; time: string;
    testsuite: { name: string; tests: string; failures: string; errors: string; skipped: string; time: string; testcase: { classname: string; name: string; time: string; failure?: { message: string; type: string; "#text": string }; error?: { message: string; type: string; "#text": string } }[] }[];
  };
}

test("the JUnit XML is well-formed, by fast-xml-parser and by the strict checker", (t) => {
  const xml = renderJUnit("subnetlab suite", CASES);
  t.is(XMLValidator.validate(xml), true);
  t.deepEqual(wellFormedProblems(xml), []);
});

test("the strict checker catches what it must", (t) => {
  const head = `<?xml version="1.0" encoding="UTF-8"?>\n`;
  t.deepEqual(wellFormedProblems(`${head}<a><b/></a>`), []);
  t.true(wellFormedProblems(`${head}<a>&</a>`).length > 0);
  t.true(wellFormedProblems(`${head}<a m="<"/>`).length > 0);
  t.true(wellFormedProblems(`${head}<a><b></a>`).length > 0);
  t.true(wellFormedProblems(`${head}<a>\u0001</a>`).length > 0);
  t.true(wellFormedProblems(`${head}<a/><b/>`).length > 0);
  t.true(wellFormedProblems(`${head}<a m="1" m="2"/>`).length > 0);
});

test("testsuites > testsuite > testcase with the required attributes and consistent counts", (t) => {
  const doc = parser.parse(renderJUnit("subnetlab suite", CASES)) as Parsed;
  const suites = doc.testsuites;
  t.is(suites.name, "subnetlab suite");
  t.is(suites.tests, "4");
  t.is(suites.failures, "2");
  t.is(suites.errors, "1");
  t.is(suites.time, "4.150");
  const suite = suites.testsuite[0];
  if (suite === undefined) return t.fail("no testsuite");
  for (const attr of ["name", "tests", "failures", "errors", "skipped", "time"] as const) t.not(suite[attr], undefined, attr);
  t.is(suite.testcase.length, Number(suite.tests));
  t.is(suite.testcase.filter((c) => c.failure !== undefined).length, Number(suite.failures));
  t.is(suite.testcase.filter((c) => c.error !== undefined).length, Number(suite.errors));
  for (const c of suite.testcase) {
    t.truthy(c.classname);
    t.truthy(c.name);
    t.regex(c.time, /^\d+\.\d{3}$/);
  }
  t.is(suite.testcase[3]?.time, "0.000", "NaN time becomes 0");
});

test("a failure carries the verdict, the violations, the replay command and the repro path", (t) => {
  const doc = parser.parse(renderJUnit("subnetlab suite", CASES)) as Parsed;
  const cases = doc.testsuites.testsuite[0]?.testcase ?? [];
  const failing = cases[1]?.failure;
  if (failing === undefined) return t.fail("no failure element");
  t.is(failing.type, "safety");
  t.true(failing.message.startsWith("safety: expected pass; fork at <height> 8 & \"quoted\" 'single' bell tab\there"), failing.message);
  t.false(failing.message.includes("\n"), "the message attribute is one line");
  const body = failing["#text"];
  t.regex(body, /fork at height 8: r3 finalized 130708cf1889/);
  t.regex(body, /liveness: r3 ended at height 8/);
  t.true(body.includes(`reproduce with: npx subnetlab replay "reports/a & b/repro.json"`));
  t.true(body.includes("repro bundle: reports/a & b/repro.json"));
  t.true(cases[1]?.name.includes("🧪"));
  const error = cases[2]?.error;
  t.is(error?.type, "harness-error");
  t.regex(error?.["#text"] ?? "", /AssertionError/);
  t.is(cases[3]?.failure?.type, "failure");
  t.is(cases[0]?.failure, undefined);
});

test("attribute escaping keeps line breaks and tabs through attribute normalisation", (t) => {
  const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<a m="${xmlAttr("one\ntwo\tthree & <four> \"five\"")}"/>`;
  t.deepEqual(wellFormedProblems(xml), []);
  t.is((parser.parse(xml) as { a: { m: string } }).a.m, "one\ntwo\tthree & <four> \"five\"");
});

test("an empty suite is valid; writeJUnit writes the same text; a timestamp is optional", (t) => {
  const empty = renderJUnit("subnetlab fuzz", []);
  t.deepEqual(wellFormedProblems(empty), []);
  t.regex(empty, /<testsuite name="subnetlab fuzz" tests="0" failures="0" errors="0" skipped="0" time="0.000">/);
  const stamped = renderJUnit("s", CASES, { timestamp: new Date(Date.UTC(2026, 10, 25, 9, 0, 0)), hostname: "ci<1>" });
  t.regex(stamped, /timestamp="2026-11-25T09:00:00" hostname="ci&lt;1&gt;"/);
  t.deepEqual(wellFormedProblems(stamped), []);
  const path = join(mkdtempSync(join(tmpdir(), "subnetlab-junit-")), "junit.xml");
  writeJUnit(path, "subnetlab suite", CASES);
  t.is(readFileSync(path, "utf8"), renderJUnit("subnetlab suite", CASES));
});
