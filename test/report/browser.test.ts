// report.html in a real browser: headless Chromium opens a freshly recorded run's page over
// file://, and we check that nothing goes wrong (no console error, no exception, no request but
// the page itself), that the timeline and the charts are drawn (SVG marks with real geometry),
// and take a screenshot. Chromium is Debian's /usr/bin/chromium: installed on the fly when we are
// root with apt (as in CI), else the test is skipped with the reason.
//
// SUBNETLAB_UPDATE_SCREENSHOT=1 npx ava test/report/browser.test.ts  rewrites docs/report-screenshot.png.
import test from "ava";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { renderHtmlReport, type HtmlReportInput } from "../../harness/report/html.ts";
import { writeIndexHtml } from "../../harness/report/index-page.ts";
import { recordRun } from "../../harness/replay/record.ts";
import { loadScenario } from "../../harness/scenario/load.ts";
import { Browser, CHROMIUM, ensureChromium } from "./chromium.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const unavailable = ensureChromium(ROOT);
if (unavailable !== undefined) console.log(`skipping the headless Chromium report test: ${unavailable}`);
const browserTest = unavailable === undefined ? test.serial : test.serial.skip;

interface Drawn {
  lanes: number;
  progressPaths: number;
  progressWidths: number[];
  faultBands: number;
  faultRows: number;
  firstViolation: boolean;
  heightSeries: number;
  histogramBars: number;
  rateBars: number;
  payloadDots: number;
  divergentCells: number;
  violationCards: number;
  verdict: string;
  replay: string;
  svgWidths: number[];
}

const DRAWN = `(() => {
  const q = (s) => document.querySelectorAll(s);
  const width = (el) => el.getBoundingClientRect().width;
  return {
    lanes: q("#timeline-chart g.lane").length,
    progressPaths: q("#timeline-chart path.progress").length,
    progressWidths: [...q("#timeline-chart path.progress")].map((p) => p.getBBox().width),
    faultBands: q("#timeline-chart rect.fault-band").length,
    faultRows: q("#timeline-chart g.fault-row").length,
    firstViolation: document.getElementById("first-violation") !== null,
    heightSeries: q("#height-chart path.series").length,
    histogramBars: q("#latency-histogram g.hbar rect").length,
    rateBars: q("#block-rate rect.rbar").length,
    payloadDots: q("#payload-chart circle").length,
    divergentCells: q("#state-hash-table td.div").length,
    violationCards: q("article.violation").length,
    verdict: document.getElementById("verdict").textContent,
    replay: document.getElementById("replay-command").textContent,
    svgWidths: [...q("svg.chart")].map(width),
  };
})()`;

browserTest("report.html renders in headless Chromium with no errors, its charts drawn", async (t) => {
  t.timeout(60_000);
  const out = mkdtempSync(join(tmpdir(), "subnetlab-browser-"));
  const loaded = await loadScenario(join(ROOT, "scenarios", "beyond-f.ts"));
  const { report } = recordRun({ scenario: loaded.scenario, scenarioFile: loaded.path, contentHash: loaded.contentHash, seed: 1, outDir: join(out, "beyond-f"), keepTrace: false });
  const index = writeIndexHtml(out);
  const browser = await Browser.launch();
  try {
    const page = pathToFileURL(join(out, "beyond-f", "report.html")).href;
    await browser.open(page, 1200, 900);
    const drawn = await browser.evaluate<Drawn>(DRAWN);
    t.is(drawn.lanes, report.n);
    t.is(drawn.progressPaths, report.n);
    t.true(drawn.progressWidths.every((w) => w > 100), `progress paths have width: ${drawn.progressWidths.join(",")}`);
    t.true(drawn.faultBands >= (report.faults ?? []).length);
    t.is(drawn.faultRows, (report.faults ?? []).length);
    t.true(drawn.firstViolation);
    t.is(drawn.heightSeries, report.n);
    t.is(drawn.histogramBars, report.latencyHistogram.length);
    t.true(drawn.rateBars > 10);
    t.true(drawn.payloadDots > 0);
    t.true(drawn.divergentCells >= 1, "the forked replica's state hash is marked");
    t.is(drawn.violationCards, report.violations.length);
    t.regex(drawn.verdict, /SAFETY VIOLATED — fork at height \d+/);
    t.regex(drawn.replay, /^npx subnetlab replay .*repro\.json$/);
    t.true(drawn.svgWidths.length >= 5 && drawn.svgWidths.every((w) => w > 600), `charts are laid out: ${drawn.svgWidths.join(",")}`);
    const shot = await browser.screenshot({ y: 0, height: 1500 });
    t.deepEqual([...shot.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "a PNG");
    t.true(shot.length > 20_000, `screenshot has content (${shot.length} bytes)`);
    writeFileSync(join(out, "report.png"), shot);
    // The copy button must not throw, with or without clipboard access.
    await browser.evaluate(`document.querySelector("button.copy").click()`);
    await browser.evaluate("new Promise((resolve) => requestAnimationFrame(() => resolve(1)))");

    if (process.env.SUBNETLAB_UPDATE_SCREENSHOT === "1") {
      // The documentation shows the command as the CLI prints it for the default output directory.
      const docPage = join(out, "beyond-f", "doc.html");
      const full = JSON.parse(readFileSync(join(out, "beyond-f", "report.json"), "utf8")) as HtmlReportInput;
      writeFileSync(docPage, renderHtmlReport({ ...full, replayCommand: "npx subnetlab replay reports/beyond-f-seed1/repro.json" }));
      await browser.open(pathToFileURL(docPage).href, 1200, 900);
      writeFileSync(join(ROOT, "docs", "report-screenshot.png"), await browser.screenshot({ y: 0, height: 1500 }));
      browser.problems.requests.splice(0);
    }

    await browser.open(pathToFileURL(index.path).href, 1200, 900);
    const rows = await browser.evaluate<number>(`document.querySelectorAll("#runs tbody tr").length`);
    t.is(rows, index.runs.length);

    t.deepEqual(browser.problems.consoleErrors, [], "console errors");
    t.deepEqual(browser.problems.exceptions, [], "uncaught exceptions");
    t.deepEqual(browser.problems.logErrors, [], "log errors");
    t.deepEqual(browser.problems.requests.filter((u) => u !== page && u !== pathToFileURL(index.path).href), [], "no other request: the pages are self-contained");
    t.log(`${CHROMIUM}: ${drawn.lanes} lanes, ${drawn.faultBands} fault bands, screenshot ${join(out, "report.png")}`);
  } finally {
    await browser.close();
  }
});

browserTest("the browser check is not vacuous: it sees console errors, exceptions and requests", async (t) => {
  t.timeout(30_000);
  const dir = mkdtempSync(join(tmpdir(), "subnetlab-browser-bad-"));
  const bad = join(dir, "bad.html");
  writeFileSync(bad, `<!doctype html><title>bad</title><img src="missing.png"><script>console.error("boom"); undefinedFunction();</script>`);
  const browser = await Browser.launch();
  try {
    await browser.open(pathToFileURL(bad).href);
    await browser.evaluate("1");
    t.true(browser.problems.consoleErrors.some((e) => e.includes("boom")), browser.problems.consoleErrors.join("; "));
    t.true(browser.problems.exceptions.some((e) => e.includes("undefinedFunction")), browser.problems.exceptions.join("; "));
    t.true(browser.problems.requests.some((u) => u.endsWith("missing.png")), browser.problems.requests.join("; "));
  } finally {
    await browser.close();
  }
});
