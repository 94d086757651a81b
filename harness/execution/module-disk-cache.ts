// Instrumented modules kept on disk between processes (issue 13 item 4), so that the workers of a
// `fuzz --ic` campaign, each test process and each CLI run do not instrument the ledger again.
//
// An entry is a pure function of its key: the module's hash, the instrumenter's own code (the
// source of instrument.ts and of every module it imports, transitively) and binaryen's version,
// and the entry format. A changed instrumenter gives another key and so never meets stale output.
// Entries are written to a temporary file and renamed into place (readers see a whole entry or
// none), and each ends with the SHA-256 of everything before it: an entry that is truncated,
// corrupt or written under another key is ignored (and replaced by the next write), never trusted.
// Paranoid mode does not trust a hit either: module-cache.ts instruments afresh and compares.
//
// SUBNETLAB_MODULE_CACHE=off turns the disk cache off; SUBNETLAB_MODULE_CACHE_DIR moves it (default:
// node_modules/.cache/subnetlab/modules in the project, else the OS temporary directory).
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { HashHex } from "../types.ts";
import type { InstrumentedModule } from "./instrument.ts";

/** Bumped when the entry layout changes. */
const FORMAT = "subnetlab-instrumented-module/1";
const MAGIC = Buffer.from("SLIM1\n", "latin1");
const CHECKSUM_BYTES = 32;

/** What the cache saw, for tests and benchmarks. */
export interface DiskCacheStats {
  hits: number;
  misses: number;
  /** Entries found but rejected: truncated, checksum mismatch, or another key inside. */
  rejected: number;
  writes: number;
  /** Writes that failed (read-only disk, …): the cache is an optimisation, so they are only counted. */
  failedWrites: number;
}

type Metadata = Omit<InstrumentedModule, "binary">;

interface Header {
  readonly format: string;
  readonly key: string;
  readonly moduleHash: string;
  readonly binaryBytes: number;
  readonly metadata: Metadata;
}

let writeSequence = 0;

export class ModuleDiskCache {
  readonly stats: DiskCacheStats = { hits: 0, misses: 0, rejected: 0, writes: 0, failedWrites: 0 };
  private keyOfInstrumenter: string | undefined;

  /**
   * `instrumenterKey` names the instrumenter's version (default: instrumenterCodeHash(), computed
   * once on first use); tests pass another to see a changed instrumenter miss.
   */
  constructor(readonly dir: string, private readonly instrumenterKey: () => string = instrumenterCodeHash) {}

  /** The cached instrumentation of the module with this hash, or undefined (a miss or a rejected entry). */
  read(moduleHash: HashHex): InstrumentedModule | undefined {
    const key = this.key();
    const path = this.pathOf(moduleHash, key);
    let bytes: Buffer;
    try {
      bytes = readFileSync(path);
    } catch {
      this.stats.misses++;
      return undefined;
    }
    const entry = decodeEntry(bytes, key, moduleHash);
    if (entry === undefined) {
      this.stats.rejected++;
      return undefined;
    }
    this.stats.hits++;
    return entry;
  }

  /** Stores an instrumentation atomically (temporary file, then rename). */
  write(moduleHash: HashHex, module: InstrumentedModule): void {
    const key = this.key();
    const path = this.pathOf(moduleHash, key);
    const temporary = `${path}.${process.pid}.${writeSequence++}.tmp`;
    try {
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(temporary, encodeEntry(module, key, moduleHash));
      renameSync(temporary, path);
      this.stats.writes++;
    } catch {
      this.stats.failedWrites++;
      rmSync(temporary, { force: true });
    }
  }

  /**
   * The file an entry lives in (tests corrupt it): one folder per instrumenter version, so that the
   * entries a changed instrumenter left behind can be deleted as a whole.
   */
  pathOf(moduleHash: HashHex, key = this.key()): string {
    return join(this.dir, sha256Hex(`${FORMAT}\n${key}`).slice(0, 32), `${moduleHash}.bin`);
  }

  private key(): string {
    this.keyOfInstrumenter ??= this.instrumenterKey();
    return this.keyOfInstrumenter;
  }
}

function encodeEntry(module: InstrumentedModule, key: string, moduleHash: HashHex): Buffer {
  const { binary, ...metadata } = module;
  const header: Header = { format: FORMAT, key, moduleHash, binaryBytes: binary.length, metadata };
  const headerBytes = Buffer.from(JSON.stringify(header), "utf8");
  const length = Buffer.alloc(4);
  length.writeUInt32BE(headerBytes.length);
  const body = Buffer.concat([MAGIC, length, headerBytes, binary]);
  return Buffer.concat([body, createHash("sha256").update(body).digest()]);
}

/** The entry, or undefined when any check fails. */
function decodeEntry(bytes: Buffer, key: string, moduleHash: HashHex): InstrumentedModule | undefined {
  const minimum = MAGIC.length + 4 + CHECKSUM_BYTES;
  if (bytes.length < minimum || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  const body = bytes.subarray(0, bytes.length - CHECKSUM_BYTES);
  if (!createHash("sha256").update(body).digest().equals(bytes.subarray(body.length))) return undefined;
  const headerBytes = body.readUInt32BE(MAGIC.length);
  const headerEnd = MAGIC.length + 4 + headerBytes;
  if (headerEnd > body.length) return undefined;
  let header: Header;
  try {
    header = JSON.parse(body.subarray(MAGIC.length + 4, headerEnd).toString("utf8")) as Header;
  } catch {
    return undefined;
  }
  if (header.format !== FORMAT || header.key !== key || header.moduleHash !== moduleHash || header.binaryBytes !== body.length - headerEnd) return undefined;
  // A copy: the entry's buffer is not shared with anything else that might write to it.
  return { ...header.metadata, binary: new Uint8Array(body.subarray(headerEnd)) };
}

const sha256Hex = (text: string): string => createHash("sha256").update(text).digest("hex");

let codeHash: string | undefined;

/**
 * The instrumenter's version: SHA-256 over binaryen's version and the source of instrument.ts and
 * of every project module it imports, followed transitively (a change to the cost table or the
 * System API's signatures changes the output as much as a change to the pass itself).
 */
export function instrumenterCodeHash(): string {
  if (codeHash !== undefined) return codeHash;
  const hash = createHash("sha256");
  const binaryenPackage = JSON.parse(readFileSync(join(packageDir("binaryen"), "package.json"), "utf8")) as { version: string };
  hash.update(`binaryen ${binaryenPackage.version}\n`);
  const harness = fileURLToPath(new URL("..", import.meta.url));
  for (const file of localImportClosure(fileURLToPath(new URL("./instrument.ts", import.meta.url)))) {
    hash.update(`${relative(harness, file)}\n`).update(readFileSync(file)).update("\n");
  }
  codeHash = hash.digest("hex");
  return codeHash;
}

/** The file and every relative import it reaches, sorted (absolute paths). */
export function localImportClosure(entry: string): string[] {
  const seen = new Set<string>();
  const pending = [entry];
  while (pending.length > 0) {
    const file = pending.pop() as string;
    if (seen.has(file)) continue;
    seen.add(file);
    const source = readFileSync(file, "utf8");
    for (const match of source.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s+"(\.{1,2}\/[^"]+\.ts)"/gm)) {
      pending.push(resolve(dirname(file), match[1] as string));
    }
  }
  return [...seen].sort();
}

function packageDir(name: string): string {
  let dir = dirname(fileURLToPath(import.meta.resolve(name)));
  while (!existsSync(join(dir, "package.json")) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

/** The project's node_modules/.cache, as other tools use it; the OS temporary directory without one. */
function defaultCacheDir(): string {
  const projectModules = fileURLToPath(new URL("../../node_modules", import.meta.url));
  return existsSync(projectModules) ? join(projectModules, ".cache", "subnetlab", "modules") : join(tmpdir(), "subnetlab-module-cache");
}

/** The process's disk cache from the environment, or undefined when SUBNETLAB_MODULE_CACHE=off. */
export function diskCacheFromEnvironment(env: NodeJS.ProcessEnv = process.env): ModuleDiskCache | undefined {
  if (env["SUBNETLAB_MODULE_CACHE"] === "off") return undefined;
  const dir = env["SUBNETLAB_MODULE_CACHE_DIR"];
  return new ModuleDiskCache(dir === undefined || dir === "" ? defaultCacheDir() : dir);
}
