// Issue 12 item 10, the parts of `up --containers` that need no Docker engine (so they run in
// npm test): reading ldd's listing for the image, the image's content tag, the standalone replica's
// --peers argument, and where the engine is looked for. The engine-backed suite is
// test/containers/up-containers.test.ts (npm run test:containers).
import test from "ava";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { locateDockerHost } from "../../harness/real/containers/engine.ts";
import { IMAGE_NODE, ImageBuildError, imageTagOf, parseLdd } from "../../harness/real/containers/image.ts";
import { CONTAINER_P2P_PORT, parsePeersArgument, peersArgument, portOption } from "../../harness/real/containers/standalone.ts";
import { replicaId } from "../../harness/types.ts";

// The shape of glibc's ldd output for Debian 12's /usr/bin/node (copied from `ldd /usr/bin/node` on this machine kind).
const LDD_NODE = `	linux-vdso.so.1 (0x00007f6728963000)
	libdl.so.2 => /lib/x86_64-linux-gnu/libdl.so.2 (0x00007f672894d000)
	libstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007f6728600000)
	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f672841e000)
	/lib64/ld-linux-x86-64.so.2 (0x00007f6728965000)
`;

test("item 10: the image holds every library ldd lists, the loader under the path the binary asks for, and no vdso", (t) => {
  t.deepEqual(parseLdd(LDD_NODE), ["/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libdl.so.2", "/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib64/ld-linux-x86-64.so.2"]);
});

test("item 10: a library the host lacks, or an ldd line of an unknown shape, stops the build with the line", (t) => {
  t.throws(() => parseLdd(`${LDD_NODE}\tlibfoo.so.1 => not found\n`), { instanceOf: ImageBuildError, message: /libfoo\.so\.1 => not found/ });
  t.throws(() => parseLdd("\tstatically linked\n"), { instanceOf: ImageBuildError, message: /statically linked/ });
});

test("item 10: the image tag changes with a library's bytes, not with the listing's order, so an unchanged runtime is never rebuilt", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "subnetlab-image-tag-"));
  try {
    const lib = join(dir, "libc.so.6");
    writeFileSync(lib, "one");
    const files = [{ target: IMAGE_NODE, source: process.execPath }, { target: "/lib/libc.so.6", source: lib }];
    const tag = imageTagOf(files);
    t.regex(tag, /^subnetlab\/replica-runtime:[0-9a-f]{16}$/);
    t.is(imageTagOf([...files].reverse()), tag, "order of the listing does not matter");
    writeFileSync(lib, "two");
    t.not(imageTagOf(files), tag, "new library bytes, new tag");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("item 10: a standalone replica is told every peer by container alias and the fixed P2P port, and a wrong --peers is refused", (t) => {
  const text = peersArgument("s0", 4, replicaId(2));
  t.is(text, `0=s0-r0:${CONTAINER_P2P_PORT},1=s0-r1:${CONTAINER_P2P_PORT},3=s0-r3:${CONTAINER_P2P_PORT}`);
  t.deepEqual([...parsePeersArgument(text, replicaId(2), 4)], [[0, "s0-r0:4100"], [1, "s0-r1:4100"], [3, "s0-r3:4100"]]);
  t.throws(() => parsePeersArgument("0=s0-r0:4100,1=s0-r1:4100", replicaId(2), 4), { message: /names 2 peers; a subnet of 4 needs all 3/ });
  t.throws(() => parsePeersArgument("0=s0-r0:4100,1=s0-r1:4100,2=s0-r2:4100", replicaId(2), 4), { message: /node 2 is not a peer/ });
  t.throws(() => parsePeersArgument("0=s0-r0,1=s0-r1:4100,3=s0-r3:4100", replicaId(2), 4), { message: /not host:port/ });
  t.throws(() => parsePeersArgument("0=a:1,0=b:1,3=c:1", replicaId(2), 4), { message: /twice/ });
  t.is(portOption("p2p-port", undefined, 0), 0);
  t.is(portOption("p2p-port", "4100", 0), 4100);
  t.throws(() => portOption("http-port", "80a", 0), { message: /--http-port "80a" is not a port/ });
});

test("item 10: the engine is the caller's DOCKER_HOST first, else the system socket, else the daemon of scripts/docker-engine.ts", (t) => {
  t.is(locateDockerHost({ DOCKER_HOST: "tcp://10.0.0.1:2375" }), "tcp://10.0.0.1:2375");
  const state = mkdtempSync(join(tmpdir(), "subnetlab-docker-state-"));
  const saved = process.env.SUBNETLAB_DOCKER_STATE;
  try {
    process.env.SUBNETLAB_DOCKER_STATE = state;
    const found = locateDockerHost({});
    // /var/run/docker.sock wins where a system engine runs; otherwise nothing is there yet.
    t.true(found === undefined || found === "unix:///var/run/docker.sock", String(found));
    writeFileSync(join(state, "docker.sock"), "");
    t.is(locateDockerHost({}) ?? "", found ?? `unix://${join(state, "docker.sock")}`);
  } finally {
    if (saved === undefined) delete process.env.SUBNETLAB_DOCKER_STATE;
    else process.env.SUBNETLAB_DOCKER_STATE = saved;
    rmSync(state, { recursive: true, force: true });
  }
});

test("item 10: the command line documents --containers and refuses the proxy option with it", (t) => {
  const cli = (...args: string[]) => spawnSync(process.execPath, [new URL("../../bin/subnetlab.js", import.meta.url).pathname, ...args], { encoding: "utf8" });
  t.regex(cli("--help").stdout, /--containers +up: one container per replica/);
  const refused = cli("up", "--containers", "--toxiproxy-port", "8474", "--out", join(tmpdir(), "subnetlab-never-created"));
  t.is(refused.status, 2, refused.stderr);
  t.regex(refused.stderr, /--toxiproxy-port does not apply to --containers/);
});
