// A minimal headless-Chromium driver for the report tests: the DevTools protocol over
// --remote-debugging-pipe (NUL-terminated JSON on file descriptors 3 and 4), no dependencies.
// It opens a page, collects console errors, uncaught exceptions, log errors and every network
// request, evaluates expressions and takes screenshots.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

export const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-default-apps",
  "--disable-extensions",
  "--mute-audio",
  "--hide-scrollbars",
];

/**
 * Makes sure Chromium is there: if it is missing and we are root with apt-get, installs Debian's
 * package (scripts/install-chromium.sh does the same by hand). Returns why not, or undefined.
 */
export function ensureChromium(root: string): string | undefined {
  if (existsSync(CHROMIUM)) return undefined;
  const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
  const hasApt = spawnSync("sh", ["-c", "command -v apt-get"], { encoding: "utf8" }).status === 0;
  if (!isRoot || !hasApt) return `${CHROMIUM} is absent (install it with scripts/install-chromium.sh as root)`;
  const result = spawnSync("bash", [join(root, "scripts/install-chromium.sh")], { encoding: "utf8", timeout: 600_000 });
  if (result.status !== 0 || !existsSync(CHROMIUM)) return `installing chromium failed: ${(result.stderr || result.stdout).slice(-500)}`;
  return undefined;
}

export interface PageProblems {
  readonly consoleErrors: string[];
  readonly exceptions: string[];
  readonly logErrors: string[];
  readonly requests: string[];
}

interface Pending {
  resolve: (value: Record<string, unknown>) => void;
  reject: (error: Error) => void;
}

export class Browser {
  private readonly child: ChildProcess;
  private readonly profile: string;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners: ((method: string, params: Record<string, unknown>, sessionId?: string) => void)[] = [];
  private buffer = "";
  private sessionId: string | undefined;
  readonly problems: PageProblems = { consoleErrors: [], exceptions: [], logErrors: [], requests: [] };
  readonly stderr: string[] = [];

  private constructor() {
    this.profile = mkdtempSync(join(tmpdir(), "subnetlab-chromium-"));
    this.child = spawn(CHROMIUM, [...CHROMIUM_FLAGS, `--user-data-dir=${this.profile}`, "--remote-debugging-pipe", "about:blank"], {
      stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"],
    });
    (this.child.stderr as Readable).on("data", (chunk: Buffer) => this.stderr.push(chunk.toString()));
    const out = this.child.stdio[4] as Readable;
    out.on("data", (chunk: Buffer) => this.onData(chunk.toString("utf8")));
    this.child.on("exit", () => {
      for (const p of this.pending.values()) p.reject(new Error(`chromium exited: ${this.stderr.join("").slice(-800)}`));
      this.pending.clear();
    });
  }

  static async launch(): Promise<Browser> {
    const browser = new Browser();
    const { targetInfos } = (await browser.send("Target.getTargets")) as { targetInfos: { targetId: string; type: string }[] };
    let target = targetInfos.find((t) => t.type === "page")?.targetId;
    if (target === undefined) target = ((await browser.send("Target.createTarget", { url: "about:blank" })) as { targetId: string }).targetId;
    const { sessionId } = (await browser.send("Target.attachToTarget", { targetId: target, flatten: true })) as { sessionId: string };
    browser.sessionId = sessionId;
    browser.listeners.push((method, params) => browser.collect(method, params));
    await browser.send("Page.enable");
    await browser.send("Runtime.enable");
    await browser.send("Log.enable");
    await browser.send("Network.enable");
    return browser;
  }

  private onData(text: string): void {
    this.buffer += text;
    for (let end = this.buffer.indexOf("\0"); end >= 0; end = this.buffer.indexOf("\0")) {
      const message = JSON.parse(this.buffer.slice(0, end)) as { id?: number; result?: Record<string, unknown>; error?: { message: string }; method?: string; params?: Record<string, unknown>; sessionId?: string };
      this.buffer = this.buffer.slice(end + 1);
      if (message.id !== undefined) {
        const p = this.pending.get(message.id);
        this.pending.delete(message.id);
        if (message.error !== undefined) p?.reject(new Error(message.error.message));
        else p?.resolve(message.result ?? {});
      } else if (message.method !== undefined) {
        for (const l of this.listeners) l(message.method, message.params ?? {}, message.sessionId);
      }
    }
  }

  private collect(method: string, params: Record<string, unknown>): void {
    if (method === "Runtime.consoleAPICalled" && (params.type === "error" || params.type === "assert")) {
      const args = (params.args as { value?: unknown; description?: string }[] | undefined) ?? [];
      this.problems.consoleErrors.push(args.map((a) => a.description ?? String(a.value)).join(" "));
    }
    if (method === "Runtime.exceptionThrown") {
      const details = params.exceptionDetails as { text?: string; exception?: { description?: string } } | undefined;
      this.problems.exceptions.push(`${details?.text ?? ""} ${details?.exception?.description ?? ""}`.trim());
    }
    if (method === "Log.entryAdded") {
      const entry = params.entry as { level?: string; text?: string; url?: string } | undefined;
      if (entry?.level === "error") this.problems.logErrors.push(`${entry.text ?? ""} ${entry.url ?? ""}`.trim());
    }
    if (method === "Network.requestWillBeSent") {
      const request = params.request as { url?: string } | undefined;
      if (request?.url !== undefined) this.problems.requests.push(request.url);
    }
  }

  send(method: string, params: Record<string, unknown> = {}, session = true): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    const message = { id, method, params, ...(session && this.sessionId !== undefined ? { sessionId: this.sessionId } : {}) };
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      (this.child.stdio[3] as Writable).write(`${JSON.stringify(message)}\0`);
    });
  }

  private waitFor(event: string): Promise<Record<string, unknown>> {
    return new Promise((resolve) => {
      const listener = (method: string, params: Record<string, unknown>): void => {
        if (method !== event) return;
        this.listeners.splice(this.listeners.indexOf(listener), 1);
        resolve(params);
      };
      this.listeners.push(listener);
    });
  }

  async open(url: string, width = 1200, height = 900): Promise<void> {
    await this.send("Emulation.setDeviceMetricsOverride", { width, height, deviceScaleFactor: 1, mobile: false });
    const loaded = this.waitFor("Page.loadEventFired");
    const result = (await this.send("Page.navigate", { url })) as { errorText?: string };
    if (result.errorText !== undefined) throw new Error(`navigation to ${url} failed: ${result.errorText}`);
    await loaded;
  }

  /** Evaluates an expression in the page and returns its JSON value. */
  async evaluate<T>(expression: string): Promise<T> {
    const result = (await this.send("Runtime.evaluate", { expression, returnByValue: true, awaitPromise: true })) as { result: { value: T }; exceptionDetails?: { text: string } };
    if (result.exceptionDetails !== undefined) throw new Error(`evaluate failed: ${result.exceptionDetails.text}`);
    return result.result.value;
  }

  /** A PNG of the page region [y, y + height) at the given width (the whole page when height is omitted). */
  async screenshot(options: { y?: number; height?: number; width?: number } = {}): Promise<Buffer> {
    const pageHeight = await this.evaluate<number>("document.documentElement.scrollHeight");
    const width = options.width ?? (await this.evaluate<number>("document.documentElement.clientWidth"));
    const y = options.y ?? 0;
    const height = Math.min(options.height ?? pageHeight, pageHeight - y);
    const { data } = (await this.send("Page.captureScreenshot", { format: "png", captureBeyondViewport: true, clip: { x: 0, y, width, height, scale: 1 } })) as { data: string };
    return Buffer.from(data, "base64");
  }

  async close(): Promise<void> {
    const exited = new Promise<void>((resolve) => {
      if (this.child.exitCode !== null) resolve();
      else this.child.once("exit", () => resolve());
    });
    try {
      await Promise.race([this.send("Browser.close", {}, false), exited]);
    } catch {
      // Closing races with the exit; either way the process goes.
    }
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(timer);
    rmSync(this.profile, { recursive: true, force: true });
  }
}
