// Issue 12 (real mode): the cluster's proxies listen below the kernel's ephemeral port range, so a
// disabled proxy's port cannot be taken by a peer's self-connecting dial (stable-ports.ts).
import test from "ava";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { candidatePorts, isPortTaken, portsBelowEphemeral } from "../../harness/real/stable-ports.ts";

const rangeFile = (text: string): string => {
  const path = join(mkdtempSync(join(tmpdir(), "subnetlab-ports-")), "range");
  writeFileSync(path, text);
  return path;
};

test("the proxy range ends just below Linux's ephemeral range (ip_local_port_range)", (t) => {
  t.deepEqual(portsBelowEphemeral(rangeFile("32768\t60999\n")), { first: 20_000, last: 32_767 });
  t.is(portsBelowEphemeral(rangeFile("20500 60999")), undefined, "too little room below: any port");
  t.is(portsBelowEphemeral(rangeFile("garbage")), undefined);
  t.is(portsBelowEphemeral("/nonexistent/range"), undefined);
});

test("candidate ports stay inside the range, start at a random point and wrap around", (t) => {
  const range = { first: 20_000, last: 20_009 };
  t.deepEqual(candidatePorts(range, 4, () => 0.85), [20_008, 20_009, 20_000, 20_001]);
  t.deepEqual(candidatePorts(range, 50, () => 0), Array.from({ length: 10 }, (_, i) => 20_000 + i), "never more than the range holds");
  t.deepEqual(candidatePorts(undefined, 5), [0]);
  t.true(isPortTaken("listen tcp 127.0.0.1:20001: bind: address already in use"));
  t.false(isPortTaken("proxy already exists"));
});
