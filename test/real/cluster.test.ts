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
});

// Serial: it must not add its processes to the load while the test above times a restart.
test.serial("item 5 (--nodes 4,7): two subnets get a proxy per directed cross-subnet link to the XNet port, canister ranges in cluster.json, and the second subnet the root replicas' URLs", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "subnetlab-up-two-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cluster = await Cluster.up({ out: dir, nodes: [2, 1], replicaEntry: STAND_IN });
  try {
    const info = cluster.writeInfo();
    const [s0, s1] = info.subnets;
    t.deepEqual(s0!.replicas[0]!.proxies, ["s0-r0-to-r1", "s0-r0-to-s1-r0"]);
    t.deepEqual(s1!.replicas[0]!.proxies, ["s1-r0-to-s0-r0", "s1-r0-to-s0-r1"]);
    t.deepEqual(s0!.canisterRanges, [["rwlgt-iiaaa-aaaaa-aaaaa-cai", "n5n4y-3aaaa-aaaaa-p777q-cai"]], "2^20 ids from 0 (run-dir.ts clusterRegistry)");
    t.deepEqual(s1!.canisterRanges[0]![0], "5v3p4-iyaaa-aaaaa-qaaaa-cai", "the second subnet's range starts at 2^20");
    const s1r0 = s1!.replicas[0]!;
    await eventually("s1/r0 hears both root replicas over XNet", async () => (await seenBy(s1r0.httpUrl)).join() === "s0/r0,s0/r1");
    const seen = (await (await fetch(`${s1r0.httpUrl}/seen`)).json()) as { rootUrls: string[] };
    t.deepEqual(seen.rootUrls, s0!.replicas.map((r) => r.httpUrl), "a non-root replica is told where the root replicas serve HTTP");
    const root = (await (await fetch(`${s0!.replicas[0]!.httpUrl}/seen`)).json()) as { rootUrls: string[] };
    t.deepEqual(root.rootUrls, [], "a root replica is not");
    const toxiproxy = new Toxiproxy(info.toxiproxy);
    for (const name of ["s0-r0-to-s1-r0", "s0-r1-to-s1-r0"]) {
      const proxy = await toxiproxy.get(name);
      await proxy.update({ enabled: false, listen: proxy.listen, upstream: proxy.upstream });
    }
    await eventually("the disabled XNet proxies cut s1/r0 off from s0", async () => (await seenBy(s1r0.httpUrl)).length === 0);
    await eventually("the other direction has proxies of its own: s0/r0 still hears s1/r0", async () => (await seenBy(s0!.replicas[0]!.httpUrl)).includes("s1/r0"));
    t.pass();
  } finally {
    await cluster.stop();
  }
});
