// The IC's limits on a canister module, checked on the raw bytes before binaryen sees them
// (issue #11 item 5): a module over a limit is refused in milliseconds with an InvalidModuleError
// naming the limit, instead of binaryen spending a minute on it (or failing with an exception of
// its own). The walk reads section headers and the few counts the limits need; everything else
// (instructions, types, validation) is binaryen's job afterwards.
import { gunzipSync } from "node:zlib";
import { InvalidModuleError, limitRefusal } from "./invalid-module.ts";

/**
 * Largest uncompressed module: 100 MiB (dfinity/ic rs/config/src/embedders.rs WASM_MAX_SIZE;
 * portal "Canister resource limits": "Wasm total size, per canister 100MiB").
 */
export const MAX_MODULE_BYTES = 100 * 1024 * 1024;
/**
 * Largest code section: 10 MiB (rs/embedders/src/wasm_utils/validation.rs
 * MAX_CODE_SECTION_SIZE_IN_BYTES; portal: "Wasm code section, per canister 10MiB"; newer replicas
 * allow somewhat more).
 */
export const MAX_CODE_SECTION_BYTES = 10 * 1024 * 1024;
/** At most 50,000 functions defined (imports not counted; rs/config/src/embedders.rs MAX_FUNCTIONS, validation.rs). */
export const MAX_FUNCTIONS = 50_000;
/** At most 1,000 globals defined (rs/config/src/embedders.rs MAX_GLOBALS; the portal lists the same). */
export const MAX_GLOBALS = 1_000;
/**
 * `icp:public …` / `icp:private …` custom sections: at most 16, with at most 1 MiB of contents in
 * all (rs/config/src/embedders.rs MAX_CUSTOM_SECTIONS, MAX_CUSTOM_SECTIONS_SIZE).
 */
export const MAX_ICP_CUSTOM_SECTIONS = 16;
export const MAX_ICP_CUSTOM_SECTION_BYTES = 1024 * 1024;
/** At most 1,000 exported methods with names of at most 20,000 bytes in all (MAX_NUMBER_EXPORTED_FUNCTIONS, MAX_SUM_EXPORTED_FUNCTION_NAME_LENGTHS). */
export const MAX_EXPORTED_METHODS = 1_000;
export const MAX_EXPORTED_NAME_BYTES = 20_000;

const SECTION = { custom: 0, function: 3, global: 6, export: 7, code: 10, data: 11, tag: 13 } as const;

/** The gzip magic bytes (RFC 1952) with the deflate method: a compressed module starts with them. */
const GZIP_MAGIC = [0x1f, 0x8b, 0x08] as const;

export const isGzipped = (bytes: Uint8Array): boolean => GZIP_MAGIC.every((b, i) => bytes[i] === b);

/**
 * The Wasm bytes of a module as uploaded: install_code accepts gzip-compressed modules (interface
 * spec "Canister module format"), whose uncompressed size counts against MAX_MODULE_BYTES. The
 * module hash stays the hash of the bytes as uploaded, as on the IC. gunzip is a pure function of
 * its input, so replicas agree on the result.
 */
export function uncompressedModule(bytes: Uint8Array): Uint8Array {
  if (!isGzipped(bytes)) return bytes;
  try {
    return new Uint8Array(gunzipSync(bytes, { maxOutputLength: MAX_MODULE_BYTES }));
  } catch (e) {
    const why = e instanceof RangeError ? `it uncompresses to more than ${MAX_MODULE_BYTES} bytes (100 MiB)` : `it does not decompress (${e instanceof Error ? e.message : String(e)})`;
    throw new InvalidModuleError(`gzip-compressed module refused: ${why}`);
  }
}

export interface IcpCustomSection {
  /** The name after `icp:public ` / `icp:private ` (e.g. `candid:service`). */
  readonly name: string;
  readonly visibility: "public" | "private";
  readonly contents: Uint8Array;
}

/**
 * The module's `icp:public <name>` and `icp:private <name>` custom sections, in module order
 * (spec "Canister module format"): the state tree serves them at /canister/<id>/metadata/<name>,
 * the private ones to controllers only. `bytes` is an uncompressed, already validated module.
 */
export function icpCustomSections(bytes: Uint8Array): IcpCustomSection[] {
  const sections: IcpCustomSection[] = [];
  for (const { id, body, end } of moduleSections(bytes)) {
    if (id !== SECTION.custom) continue;
    const name = body.name();
    const match = /^icp:(public|private) (.*)$/s.exec(name);
    if (match !== null) sections.push({ name: match[2] ?? "", visibility: match[1] as "public" | "private", contents: bytes.slice(body.pos, end) });
  }
  return sections;
}

/** The sections of a module after its 8-byte header: id, a reader over the body, where it ends. */
function* moduleSections(bytes: Uint8Array): Generator<{ readonly id: number; readonly body: Reader; readonly end: number }> {
  const r = new Reader(bytes, 8);
  while (!r.done()) {
    const id = r.byte();
    const size = r.u32();
    const end = r.pos + size;
    if (end > bytes.length) throw new InvalidModuleError("truncated module section");
    yield { id, body: new Reader(bytes.subarray(0, end), r.pos), end };
    r.pos = end;
  }
}

/**
 * The 4 KiB pages of memory 0 that the module's active data segments initialise, sorted — the only
 * pages an instance can hold non-zero bytes in before its code runs (everything the code writes
 * goes through the write barrier). Undefined when a segment's offset is not a constant (a
 * `global.get`): then every page of the initial memory may hold data. `bytes` is an uncompressed,
 * already validated module. Knowing the pages spares an install reading every page of a fresh
 * memory (each first read of which the OS serves with a page fault).
 */
export function activeDataPages(bytes: Uint8Array, pageBytes: number): readonly number[] | undefined {
  const pages = new Set<number>();
  for (const { id, body } of moduleSections(bytes)) {
    if (id !== SECTION.data) continue;
    for (let n = body.u32(); n > 0; n--) {
      const flags = body.u32();
      if (flags === 1) {
        const length = body.u32(); // passive: written by memory.init, through the barrier
        body.pos += length;
        continue;
      }
      if (flags === 2 && body.u32() !== 0) return undefined; // another memory: not ours to reason about
      const offset = body.constantOffset();
      if (offset === undefined) return undefined;
      const length = body.u32();
      body.pos += length;
      for (let p = Math.floor(offset / pageBytes); p * pageBytes < offset + length; p++) pages.add(p);
    }
  }
  return [...pages].sort((a, b) => a - b);
}

/** The total size limit alone: the first check, before the module is even hashed. */
export function checkModuleSize(bytes: Uint8Array): void {
  if (bytes.length > MAX_MODULE_BYTES) {
    throw limitRefusal(
      `Wasm module size of ${bytes.length} exceeds the maximum allowed size of ${MAX_MODULE_BYTES}.`,
      "Try shrinking the module using tools like `ic-wasm` or splitting the logic across multiple canisters.",
      "wasm-module-too-large",
    );
  }
}

/** What the raw walk learnt, for the checks after binaryen. */
export interface ModuleScan {
  /** Names of every custom section, in order. */
  readonly customSections: readonly string[];
  /** The module has a tag section: it uses exception handling. */
  readonly hasTagSection: boolean;
}

/** Reads a module's sections; throws InvalidModuleError when it is not one or breaks a limit. */
export function scanModule(bytes: Uint8Array): ModuleScan {
  checkModuleSize(bytes);
  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    throw new InvalidModuleError("not a Wasm module (bad magic number)");
  }
  const r = new Reader(bytes, 8);
  const customSections: string[] = [];
  let icpSections = 0;
  let icpBytes = 0;
  let hasTagSection = false;
  let functions = 0;
  let globals = 0;
  while (!r.done()) {
    const id = r.byte();
    const size = r.u32();
    const end = r.pos + size;
    if (end > bytes.length) throw new InvalidModuleError("truncated module section");
    const body = new Reader(bytes.subarray(0, end), r.pos);
    switch (id) {
      case SECTION.custom: {
        const name = body.name();
        customSections.push(name);
        if (name.startsWith("icp:public ") || name.startsWith("icp:private ")) {
          icpSections++;
          icpBytes += end - body.pos;
        }
        break;
      }
      case SECTION.code:
        if (size > MAX_CODE_SECTION_BYTES) {
          throw limitRefusal(
            `Wasm module code section size of ${size} exceeds the maximum allowed size of ${MAX_CODE_SECTION_BYTES}.`,
            "Try shrinking the module code section using tools like `ic-wasm` or splitting the logic across multiple canisters.",
            "wasm-module-code-section-too-large",
          );
        }
        break;
      case SECTION.function:
        functions = body.u32();
        break;
      case SECTION.global:
        globals = body.u32();
        break;
      case SECTION.export:
        checkExportedMethods(exportedFunctionNames(body));
        break;
      case SECTION.tag:
        hasTagSection = true;
        break;
    }
    r.pos = end;
  }
  if (functions > MAX_FUNCTIONS) {
    throw limitRefusal(
      `Wasm module defined ${functions} functions which exceeds the maximum number allowed ${MAX_FUNCTIONS}.`,
      "Try spliting this canister into multiple canisters.",
      "wasm-module-too-many-functions",
    );
  }
  if (globals > MAX_GLOBALS) {
    throw limitRefusal(
      `Wasm module defined ${globals} globals which exceeds the maximum number allowed ${MAX_GLOBALS}.`,
      "Try collecting multiple globals into a single structured which can be stored on the heap.",
      "wasm-module-too-many-globals",
    );
  }
  if (icpSections > MAX_ICP_CUSTOM_SECTIONS) {
    throw new InvalidModuleError(`module has ${icpSections} icp: custom sections; at most ${MAX_ICP_CUSTOM_SECTIONS} are allowed`);
  }
  if (icpBytes > MAX_ICP_CUSTOM_SECTION_BYTES) {
    throw new InvalidModuleError(`icp: custom sections hold ${icpBytes} bytes; at most ${MAX_ICP_CUSTOM_SECTION_BYTES} (1 MiB) are allowed`);
  }
  return { customSections, hasTagSection };
}

/**
 * Spec "Canister module format": exported methods (`canister_update|query|composite_query <name>`)
 * each once, at most 1,000 of them with names of at most 20,000 bytes in all.
 */
export function checkExportedMethods(exports: readonly string[]): void {
  const methods = new Set<string>();
  let nameBytes = 0;
  for (const name of exports) {
    const match = /^canister_(update|query|composite_query) (.*)$/s.exec(name);
    if (match === null) continue;
    const method = match[2] ?? "";
    if (methods.has(method)) {
      throw limitRefusal(
        `Duplicate function '${method}' exported multiple times with different call types: update, query, or composite_query.`,
        `Try defining different versions of the function for each call type, e.g. \`${method}_update\`, \`${method}_query\`, etc.`,
        "wasm-module-duplicate-exports",
      );
    }
    methods.add(method);
    nameBytes += new TextEncoder().encode(method).length;
  }
  if (methods.size > MAX_EXPORTED_METHODS) {
    throw limitRefusal(
      "The number of exported functions called `canister_update <name>`, `canister_query <name>`, or `canister_composite_query <name>` " +
        `is ${methods.size} which exceeds ${MAX_EXPORTED_METHODS}.`,
      "Try combining multiple endpoints into a single endpoint.",
      "wasm-module-exports-too-many-methods",
    );
  }
  if (nameBytes > MAX_EXPORTED_NAME_BYTES) {
    throw limitRefusal(
      "The sum of `<name>` lengths in exported functions called `canister_update <name>`, `canister_query <name>`, or " +
        `\`canister_composite_query <name>\` is ${nameBytes} which exceeds the allowed limit of ${MAX_EXPORTED_NAME_BYTES}.`,
      "Try using shorter method names.",
      "wasm-module-sum-of-exported-name-lengths-too-large",
    );
  }
}

// --- the few section contents the limits need ------------------------------------------------------

function exportedFunctionNames(r: Reader): string[] {
  const names: string[] = [];
  for (let n = r.u32(); n > 0; n--) {
    const name = r.name();
    const kind = r.byte();
    r.u32();
    if (kind === 0) names.push(name);
  }
  return names;
}

/** A cursor over module bytes; every read past the end is a malformed module, not a crash. */
class Reader {
  constructor(
    private readonly bytes: Uint8Array,
    public pos: number,
  ) {}

  done(): boolean {
    return this.pos >= this.bytes.length;
  }

  byte(): number {
    const b = this.bytes[this.pos++];
    if (b === undefined) throw new InvalidModuleError("truncated module");
    return b;
  }

  /** Unsigned LEB128 of at most 32 bits. */
  u32(): number {
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
    }
    throw new InvalidModuleError("malformed module (integer too long)");
  }

  /** A data segment's offset expression when it is `i32.const c end` or `i64.const c end`. */
  constantOffset(): number | undefined {
    const op = this.byte();
    if (op !== 0x41 && op !== 0x42) return undefined;
    const value = this.signedLeb();
    if (this.byte() !== 0x0b) return undefined;
    // i32.const is read as unsigned (a Wasm address); i64 offsets beyond 2^53 cannot be in memory.
    const unsigned = op === 0x41 ? BigInt.asUintN(32, value) : BigInt.asUintN(64, value);
    return unsigned <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(unsigned) : undefined;
  }

  /** Signed LEB128 of at most 64 bits. */
  private signedLeb(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const b = this.byte();
      result |= BigInt(b & 0x7f) << shift;
      shift += 7n;
      if ((b & 0x80) === 0) return (b & 0x40) !== 0 ? result - (1n << shift) : result;
      if (shift > 63n) throw new InvalidModuleError("malformed module (integer too long)");
    }
  }

  name(): string {
    const length = this.u32();
    const end = this.pos + length;
    if (end > this.bytes.length) throw new InvalidModuleError("truncated module (a name runs past its section)");
    const text = new TextDecoder().decode(this.bytes.subarray(this.pos, end));
    this.pos = end;
    return text;
  }
}
