// The replica image for `subnetlab up --containers` (issue 12 item 10), built locally: no registry
// is reachable from these machines, so nothing may be pulled.
//
// The cheapest robust image: FROM scratch holding only this host's `node` binary, the shared
// libraries `ldd` lists for it and an empty /tmp (tsx keeps its cache there). The project's code
// is not copied in: the cluster bind-mounts the few folders the replica needs, read-only and at
// their host paths (see `projectMounts`), so a code change needs no rebuild and the image depends
// only on the Node runtime. Its tag carries a hash of every file it holds, so a second build is an
// `image exists` check (research/containers-toxiproxy.md §2.1: about 2.3 s for the first build).
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { ContainerRuntimeClient } from "testcontainers";

export const IMAGE_REPOSITORY = "subnetlab/replica-runtime";
/** The node binary's path inside the image. */
export const IMAGE_NODE = "/usr/bin/node";

const DOCKERFILE = "FROM scratch\nCOPY rootfs/ /\nENTRYPOINT [\"/usr/bin/node\"]\n";

/** One file of the image: where it goes and where its bytes come from on this host. */
export interface ImageFile {
  readonly target: string;
  readonly source: string;
}

/** A failure to build: the message says which step and why. */
export class ImageBuildError extends Error {}

/**
 * The files of the image: the node binary and each library the dynamic loader resolves for it,
 * under the path the binary asks for (the loader's path is fixed in the binary, e.g.
 * /lib64/ld-linux-x86-64.so.2, and is often a symlink on the host: its target's bytes are copied).
 */
export function runtimeFiles(): ImageFile[] {
  const nodeBinary = process.execPath;
  let listing: string;
  try {
    listing = execFileSync("ldd", [nodeBinary], { encoding: "utf8" });
  } catch (e) {
    throw new ImageBuildError(`ldd ${nodeBinary} failed (is this a dynamically linked Linux node?): ${(e as Error).message}`);
  }
  const files: ImageFile[] = [{ target: IMAGE_NODE, source: realpathSync(nodeBinary) }];
  for (const library of parseLdd(listing)) files.push({ target: library, source: realpathSync(library) });
  return files;
}

/** The absolute library paths in `ldd` output (`name => /path (addr)` and the bare loader line). */
export function parseLdd(listing: string): string[] {
  const paths: string[] = [];
  for (const line of listing.split("\n")) {
    const text = line.trim();
    if (text === "" || text.startsWith("linux-vdso") || text.startsWith("linux-gate")) continue;
    if (text.includes("=> not found")) throw new ImageBuildError(`the node binary needs a library this host lacks: ${text}`);
    const match = /(?:=>\s*)?(\/\S+)\s+\(0x[0-9a-f]+\)$/.exec(text);
    if (match === null) throw new ImageBuildError(`unexpected ldd line: ${JSON.stringify(text)}`);
    paths.push(match[1] as string);
  }
  if (paths.length === 0) throw new ImageBuildError("ldd listed no libraries: a static node cannot be told apart from a failure here");
  return [...new Set(paths)].sort();
}

/**
 * The tag: the repository and a hash of the Dockerfile and of each file's target path and bytes —
 * except the node binary's (100 MB, over 2 s to hash on a loaded 2-core machine), which stands in
 * by what identifies a Node build: its version, the build's configuration, its size and mtime.
 */
export function imageTagOf(files: readonly ImageFile[]): string {
  const hash = createHash("sha256").update(DOCKERFILE);
  for (const f of [...files].sort((a, b) => (a.target < b.target ? -1 : a.target > b.target ? 1 : 0))) {
    hash.update(`\0${f.target}\0`);
    if (f.target === IMAGE_NODE) {
      const stat = statSync(f.source);
      hash.update(JSON.stringify({ version: process.version, config: process.config, size: stat.size, mtimeMs: stat.mtimeMs }));
    } else {
      hash.update(readFileSync(f.source));
    }
  }
  return `${IMAGE_REPOSITORY}:${hash.digest("hex").slice(0, 16)}`;
}

export interface BuiltImage {
  readonly tag: string;
  /** False when an image of the same content was there already. */
  readonly built: boolean;
}

/** Builds the image unless one of the same content exists; answers its tag. */
export async function ensureReplicaImage(client: ContainerRuntimeClient, progress: (line: string) => void = () => undefined): Promise<BuiltImage> {
  const files = runtimeFiles();
  const tag = imageTagOf(files);
  const { ImageName } = await import("testcontainers");
  if (await client.image.exists(ImageName.fromString(tag))) return { tag, built: false };
  progress(`building ${tag} (node ${process.version} and ${files.length - 1} libraries, FROM scratch)`);
  const context = mkdtempSync(join(tmpdir(), "subnetlab-image-"));
  try {
    writeFileSync(join(context, "Dockerfile"), DOCKERFILE);
    for (const f of files) {
      const target = join(context, "rootfs", f.target);
      mkdirSync(dirname(target), { recursive: true });
      cpSync(f.source, target);
    }
    mkdirSync(join(context, "rootfs", "tmp"));
    chmodSync(join(context, "rootfs", "tmp"), 0o1777);
    // FROM scratch pulls nothing (there is no registry to ask).
    await client.image.build(context, { t: tag, labels: { "org.subnetlab.role": "replica-runtime" } });
  } catch (e) {
    throw new ImageBuildError(`building ${tag} failed: ${(e as Error).message}`);
  } finally {
    rmSync(context, { recursive: true, force: true });
  }
  // testcontainers' build resolves at the end of the engine's output even when a step failed.
  if (!(await client.image.exists(ImageName.fromString(tag)))) throw new ImageBuildError(`${tag} does not exist after the build; run again with DEBUG=testcontainers:build to see the engine's output`);
  return { tag, built: true };
}
