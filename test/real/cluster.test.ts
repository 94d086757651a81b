// Issue 12 item 5: `subnetlab up`'s process and proxy management, with a stand-in replica process
// (test/real/stand-in-replica.ts) so the test exercises the cluster, not consensus: one process per
// replica, every directed link through its own proxy of the embedded Toxiproxy server (driven here
// with toxiproxy-node-client), a SIGKILLed replica restarted and its proxies retargeted, a run
// directory resumed, and everything stopped.
import test from "ava";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Toxiproxy } from "toxiproxy-node-client";
import { Cluster } from "../../harness/real/cluster.ts";
import { RunDirError } from "../../harness/real/run-dir.ts";

const STAND_IN = new URL("./stand-in-replica.ts", import.meta.url).pathname;

async function seenBy(url: string): Promise<string[]> {
  const res = await fetch(`${url}/seen`);
  return ((await res.json()) as { seen: string[] }).seen;
}

async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`not within ${timeoutMs} ms: ${what}`);
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test("item 5: up runs one process per replica behind per-link proxies, restarts a killed one, and stops everything", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "subnetlab-up-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lines: string[] = [];
  const cluster = await Cluster.up({ out: dir, nodes: [3], replicaEntry: STAND_IN, progress: (l) => lines.push(l) });
  try {
    const info = cluster.writeInfo();
    t.deepEqual(JSON.parse(readFileSync(join(dir, "cluster.json"), "utf8")), JSON.parse(JSON.stringify(info)));
    const [r0, r1, r2] = info.subnets[0]!.replicas;
    t.is(info.subnets[0]!.replicas.length, 3);
    t.regex(info.rootKey, /^308182301d060d2b0601040182dc7c0503010201060c2b0601040182dc7c05030201036100[0-9a-f]{192}$/, "133-byte BLS DER");
    t.deepEqual(r0!.proxies, ["s0-r0-to-r1", "s0-r0-to-r2"]);
    t.is(new Set([r0!.pid, r1!.pid, r2!.pid]).size, 3, "one process each");
    await eventually("every replica hears both peers", async () => (await seenBy(r0!.httpUrl)).length === 2 && (await seenBy(r1!.httpUrl)).length === 2);

    // A partition of r0 → r1 with the real Toxiproxy client: r1 stops hearing r0, r2 still does.
    const toxiproxy = new Toxiproxy(info.toxiproxy);
    const link = await toxiproxy.get("s0-r0-to-r1");
    // Below the ephemeral range (stable-ports.ts), so that re-enabling can always bind it again.
    for (const p of Object.values(await toxiproxy.getAll())) t.true(Number(p.listen.split(":").at(-1)) < 32_768, `${p.name} listens on ${p.listen}`);
    await link.update({ enabled: false, listen: link.listen, upstream: link.upstream });
    await eventually("r1 no longer hears r0", async () => !(await seenBy(r1!.httpUrl)).includes("s0/r0"));
    t.true((await seenBy(r2!.httpUrl)).includes("s0/r0"));
    await toxiproxy.reset();
    await eventually("healed", async () => (await seenBy(r1!.httpUrl)).includes("s0/r0"));

    // Crash r2: the supervisor restarts it on new ports and points the proxies at them.
    cluster.signal("s0/r2", "SIGKILL");
    await eventually("r2 restarted", async () => cluster.info().subnets[0]!.replicas[2]!.pid !== r2!.pid && alive(cluster.info().subnets[0]!.replicas[2]!.pid));
    const restarted = cluster.info().subnets[0]!.replicas[2]!;
    await eventually("r0 hears the restarted r2 again", async () => (await seenBy(r0!.httpUrl)).includes("s0/r2"));
    await eventually("the restarted r2 hears r0 and r1", async () => (await seenBy(restarted.httpUrl)).length === 2);
    t.true(lines.some((l) => /s0\/r2 exited; restarting/.test(l)));
  } finally {
    await cluster.stop();
  }
  for (const r of cluster.info().subnets[0]!.replicas) t.false(alive(r.pid), `${r.name} stopped`);

  // The directory resumes with its keys; another shape is refused with the reason.
  await t.throwsAsync(Cluster.up({ out: dir, nodes: [4], replicaEntry: STAND_IN }), { instanceOf: RunDirError, message: /holds a cluster of 3 replicas, not 4/ });
  const again = await Cluster.up({ out: dir, replicaEntry: STAND_IN });
  t.is(again.info().rootKey, JSON.parse(readFileSync(join(dir, "cluster.json"), "utf8")).rootKey, "same keys after resuming");
  await again.stop();
  t.true(existsSync(join(dir, "nodes", "s0-r0", "replica.log")));
  // Several subnets would run without XNet between them: refused with the reason, nothing created.
  const two = join(dir, "two");
  await t.throwsAsync(Cluster.up({ out: two, nodes: [4, 7], replicaEntry: STAND_IN }), { instanceOf: RunDirError, message: /several subnets .* not supported in real mode yet/ });
  t.false(existsSync(two));
});
