// Issue 12 item 8: `subnetlab toxiproxy` as a process — it prints one line with its API URL,
// serves the Toxiproxy API (checked with toxiproxy-node-client), creates --config's proxies at
// start, and stops cleanly on SIGTERM.
import test from "ava";
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Toxiproxy } from "toxiproxy-node-client";
import { dial, echoServer, roundTripMs } from "./toxiproxy-helpers.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const CLI = join(ROOT, "bin/subnetlab.js");
const env = { ...process.env, GITHUB_ACTIONS: "" };

test("item 8: subnetlab toxiproxy --port 0 prints its URL, serves the API with --config's proxies, and stops on SIGTERM", async (t) => {
  const upstream = await echoServer();
  t.teardown(() => upstream.close());
  const config = join(mkdtempSync(join(tmpdir(), "subnetlab-toxiproxy-")), "proxies.json");
  writeFileSync(config, JSON.stringify([{ name: "echo", listen: "127.0.0.1:0", upstream: upstream.address }]));
  const child = spawn(process.execPath, [CLI, "toxiproxy", "--port", "0", "--seed", "9", "--config", config], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  t.teardown(() => child.kill("SIGKILL"));
  let stdout = "";
  let stderr = "";
  child.stderr.on("data", (data: Buffer) => (stderr += data.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on("data", (data: Buffer) => {
      stdout += data.toString();
      const found = /http:\/\/127\.0\.0\.1:\d+/.exec(stdout);
      if (found !== null) resolve(found[0]);
    });
    child.once("exit", (code) => reject(new Error(`exited ${code} before serving: ${stderr}`)));
  });
  t.regex(stdout, /seed 9, 1 proxies from /);
  const client = new Toxiproxy(url);
  t.is(await client.getVersion(), '{"version": "2.12.0"}\n');
  const proxy = await client.get("echo");
  const peer = await dial(proxy.listen);
  t.teardown(() => peer.socket.destroy());
  t.not(await roundTripMs(peer, "via the CLI"), undefined);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  child.kill("SIGTERM");
  t.is(await exited, 0, stderr);
  t.regex(stdout, /stopped \(SIGTERM\)/);
  t.true(await peer.untilClosed(2000), "its proxies' connections close with it");
});

/** Runs the CLI to its end; the three runs of the next test go side by side (each loads the whole CLI). */
function run(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (data: Buffer) => (stdout += data.toString()));
    child.stderr.on("data", (data: Buffer) => (stderr += data.toString()));
    child.once("close", (status) => resolve({ status, stdout, stderr }));
  });
}

test("item 8: subnetlab --help documents toxiproxy; a bad --port or --config is a one-line usage error", async (t) => {
  const config = join(mkdtempSync(join(tmpdir(), "subnetlab-toxiproxy-")), "bad.json");
  writeFileSync(config, JSON.stringify({ name: "not an array" }));
  const [help, badPort, badConfig] = await Promise.all([run("--help"), run("toxiproxy", "--port", "70000"), run("toxiproxy", "--port", "0", "--config", config)]);
  t.is(help.status, 0);
  for (const word of ["subnetlab toxiproxy [--port 8474] [--host 127.0.0.1] [--config FILE] [--seed N]", "--port P", "--host H", "--config FILE"]) t.true(help.stdout.includes(word), word);
  t.is(badPort.status, 2);
  t.regex(badPort.stderr, /^subnetlab: toxiproxy: --port takes a TCP port from 0 to 65535/);
  t.is(badConfig.status, 2);
  t.regex(badConfig.stderr, /--config .*bad\.json: expected a JSON array of proxies/);
  t.is(badConfig.stderr.trim().split("\n").length, 1);
});
