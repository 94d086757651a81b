// Candid bytes as a person reads them, for report.html and `diff` (issue 11, item 10). A Candid
// message carries its own type table (the DIDL header: magic, types, argument types), so any
// reply can be decoded without knowing the method: the header is walked here to count the
// arguments, then @dfinity/candid decodes each argument at its wire type (IDL.Unknown) and the
// values are printed in Candid's text syntax, `(record { minted = 1_000_000 : nat; … })`. On the
// wire, record fields and variant cases are only 32-bit hashes of their names; names come from a
// `.did` file when one is known (every identifier in it is hashed), else the number is shown.
import { IDL, idlLabelToId } from "@dfinity/candid";
import { hexToBytes } from "@noble/hashes/utils.js";
import { existsSync, readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Scenario } from "../scenario/scenario.ts";

/** Label hash (decimal) → name: record fields and variant cases named in `.did` files. */
export type CandidNames = Readonly<Record<string, string>>;

export type CandidView = { readonly ok: true; readonly text: string } | { readonly ok: false; readonly error: string };

/** Vector elements shown before "… n more" (a report cell, not a dump). */
const VEC_ELEMENTS_SHOWN = 32;

const MAGIC = [0x44, 0x49, 0x44, 0x4c]; // "DIDL"

/** Decodes a whole Candid message (all its arguments) to Candid text; a typed error for anything else. */
export function decodeCandid(bytes: Uint8Array, names: CandidNames = {}): CandidView {
  const count = argumentCount(bytes);
  if (typeof count === "string") return { ok: false, error: count };
  let values: unknown[];
  try {
    values = IDL.decode(Array.from({ length: count }, () => IDL.Unknown), bytes);
  } catch (e) {
    return { ok: false, error: `not valid Candid: ${e instanceof Error ? e.message : String(e)}` };
  }
  const args = values.map((value) => {
    const type = (value as { type(): IDL.Type }).type();
    return render(type, unbox(value), names);
  });
  return { ok: true, text: `(${args.join(", ")})` };
}

export function decodeCandidHex(hex: string, names: CandidNames = {}): CandidView {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) return { ok: false, error: "not hex" };
  return decodeCandid(hexToBytes(hex), names);
}

/** Every run of hex in `text` that starts with the DIDL magic ("4449444c…"). */
const CANDID_HEX = /\b4449444c(?:[0-9a-f]{2})*\b/g;

/**
 * `text` with the decoded value after each Candid hex in it — "reply 4449444c00017d05" becomes
 * "reply 4449444c00017d05 = (5 : nat)", and a damaged one says why it does not decode; text
 * without Candid comes back unchanged.
 */
export function withDecodedCandid(text: string, names: CandidNames = {}): string {
  return text.replace(CANDID_HEX, (hex) => {
    const view = decodeCandidHex(hex, names);
    return view.ok ? `${hex} = ${view.text}` : `${hex} (${view.error})`;
  });
}

/** The decoded values of the Candid hex runs in `text` (empty when there are none or none decode). */
export function candidValuesIn(text: string, names: CandidNames = {}): string[] {
  return [...text.matchAll(CANDID_HEX)].map((m) => decodeCandidHex(m[0], names)).flatMap((v) => (v.ok ? [v.text] : []));
}

/** Names for label hashes from a `.did` file's text: every identifier and quoted label in it. */
export function candidNamesOfDid(did: string): Record<string, string> {
  const names: Record<string, string> = {};
  const withoutComments = did.replace(/\/\/[^\n]*/g, "").replace(/\/\*[\s\S]*?\*\//g, "");
  const quoted = [...withoutComments.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1] ?? "");
  const identifiers = withoutComments.replace(/"(?:[^"\\]|\\.)*"/g, " ").match(/[A-Za-z_][A-Za-z0-9_]*/g) ?? [];
  for (const name of [...identifiers, ...quoted]) {
    // "_123_" is Candid's spelling of the numeric label 123, not a name.
    if (/^_\d+_$/.test(name)) continue;
    names[String(idlLabelToId(name))] ??= name;
  }
  return names;
}

/**
 * The Candid interface of a canister module: `did` when given, else the `.did` beside the module
 * with the module's stem (fixtures/…/ledger.classic.wasm → ledger.did). Paths are relative to `root`.
 */
export function didPathOf(root: string, wasm: string, did?: string): string | undefined {
  if (did !== undefined) return existsSync(join(root, did)) ? join(root, did) : undefined;
  const stem = basename(wasm).replace(/\.wasm$/, "").replace(/\.(classic|eop)$/, "");
  const sibling = join(root, dirname(wasm), `${stem}.did`);
  return existsSync(sibling) ? sibling : undefined;
}

const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** Label names from the `.did` files of every canister of a scenario (on any subnet). */
export function candidNamesOfScenario(scenario: Pick<Scenario, "canisters" | "subnets">): Record<string, string> {
  return candidNamesOfCanisters(REPO_ROOT, [...(scenario.canisters ?? []), ...(scenario.subnets ?? []).flatMap((s) => s.canisters ?? [])]);
}

/** Label names from the `.did` files of the given canisters (module paths relative to `root`). */
export function candidNamesOfCanisters(root: string, canisters: readonly { readonly wasm: string; readonly did?: string }[]): Record<string, string> {
  const names: Record<string, string> = {};
  for (const c of canisters) {
    const path = didPathOf(root, c.wasm, c.did);
    if (path === undefined) continue;
    for (const [hash, name] of Object.entries(candidNamesOfDid(readFileSync(path, "utf8")))) names[hash] ??= name;
  }
  return names;
}

// ---- the DIDL header -----------------------------------------------------------------------------

/** Type opcodes with a body in the type table (Candid spec, "Types"): opt, vec, record, variant, func, service. */
const enum Op { Opt = -18, Vec = -19, Record = -20, Variant = -21, Func = -22, Service = -23 }

class HeaderReader {
  private at = 0;
  constructor(private readonly bytes: Uint8Array) {}
  byte(): number {
    const b = this.bytes[this.at++];
    if (b === undefined) throw new RangeError("the header ends early");
    return b;
  }
  leb(): number {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      const b = this.byte();
      value += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return value;
      if (shift > 49) throw new RangeError("LEB128 number too long");
    }
  }
  sleb(): number {
    let value = 0;
    let shift = 0;
    let b: number;
    do {
      b = this.byte();
      value += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if (shift > 56) throw new RangeError("SLEB128 number too long");
    } while ((b & 0x80) !== 0);
    return (b & 0x40) !== 0 ? value - 2 ** shift : value;
  }
  skip(n: number): void {
    if (this.at + n > this.bytes.length) throw new RangeError("the header ends early");
    this.at += n;
  }
}

/** How many arguments a Candid message holds (read from its header), or why it is not Candid. */
export function argumentCount(bytes: Uint8Array): number | string {
  if (bytes.length < MAGIC.length || MAGIC.some((m, i) => bytes[i] !== m)) return "not Candid (no DIDL magic)";
  const r = new HeaderReader(bytes.subarray(MAGIC.length));
  try {
    const types = r.leb();
    for (let t = 0; t < types; t++) skipTypeEntry(r);
    return r.leb();
  } catch (e) {
    return `not valid Candid: ${e instanceof Error ? e.message : String(e)}`;
  }
}

function skipTypeEntry(r: HeaderReader): void {
  const op = r.sleb();
  switch (op) {
    case Op.Opt:
    case Op.Vec:
      r.sleb();
      return;
    case Op.Record:
    case Op.Variant:
      for (let n = r.leb(), i = 0; i < n; i++) {
        r.leb();
        r.sleb();
      }
      return;
    case Op.Func:
      for (let n = r.leb(), i = 0; i < n; i++) r.sleb();
      for (let n = r.leb(), i = 0; i < n; i++) r.sleb();
      r.skip(r.leb());
      return;
    case Op.Service:
      for (let n = r.leb(), i = 0; i < n; i++) {
        r.skip(r.leb());
        r.sleb();
      }
      return;
    default:
      throw new RangeError(`type table entry with opcode ${op}`);
  }
}

// ---- values as Candid text -----------------------------------------------------------------------

/** Top-level values come boxed (IDL.Unknown attaches their type); nested ones are plain. */
function unbox(value: unknown): unknown {
  return value instanceof Boolean || value instanceof String || value instanceof Number || value instanceof BigInt ? value.valueOf() : value;
}

function resolved(type: IDL.Type): IDL.Type {
  let t = type;
  while (t instanceof IDL.RecClass) {
    const inner = t.getType();
    if (inner === undefined) break;
    t = inner;
  }
  return t;
}

/** A label as Candid text: its name when known, else its number (`_123_` on the JS side). */
function labelOf(key: string, names: CandidNames): string {
  const numeric = /^_(\d+)_$/.exec(key);
  if (numeric === null) return key;
  return names[numeric[1] ?? ""] ?? numeric[1] ?? key;
}

/** 1000000 → "1_000_000", as Candid's text format allows. */
function grouped(digits: string): string {
  const sign = digits.startsWith("-") ? "-" : "";
  return sign + digits.replace(/^-/, "").replace(/\B(?=(\d{3})+(?!\d))/g, "_");
}

function quoted(text: string): string {
  let out = '"';
  for (const ch of text) {
    const code = ch.codePointAt(0) ?? 0;
    if (ch === '"' || ch === "\\") out += `\\${ch}`;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\t") out += "\\t";
    else if (ch === "\r") out += "\\r";
    else if (code < 0x20 || code === 0x7f) out += `\\u{${code.toString(16)}}`;
    else out += ch;
  }
  return `${out}"`;
}

function blob(bytes: Uint8Array): string {
  let out = 'blob "';
  for (const b of bytes) out += b >= 0x20 && b < 0x7f && b !== 0x22 && b !== 0x5c ? String.fromCharCode(b) : `\\${b.toString(16).padStart(2, "0")}`;
  return `${out}"`;
}

function render(type: IDL.Type, value: unknown, names: CandidNames): string {
  const t = resolved(type);
  if (t instanceof IDL.NullClass) return "null";
  if (t instanceof IDL.BoolClass) return value === true ? "true" : "false";
  if (t instanceof IDL.ReservedClass) return "reserved";
  if (t instanceof IDL.TextClass) return quoted(String(value));
  if (t instanceof IDL.NatClass || t instanceof IDL.IntClass || t instanceof IDL.FixedNatClass || t instanceof IDL.FixedIntClass) return `${grouped(String(value))} : ${t.name}`;
  if (t instanceof IDL.FloatClass) return `${String(value)} : ${t.name}`;
  if (t instanceof IDL.PrincipalClass) return `principal ${quoted(principalText(value))}`;
  if (t instanceof IDL.OptClass) {
    const [inner] = value as [unknown?];
    return (value as unknown[]).length === 0 ? "null" : `opt ${render(t._type, inner, names)}`;
  }
  if (t instanceof IDL.VecClass) {
    const elementType = resolved(t._type);
    if (elementType instanceof IDL.FixedNatClass && elementType._bits === 8) return blob(value as Uint8Array);
    const items = Array.from(value as Iterable<unknown>);
    const shown = items.slice(0, VEC_ELEMENTS_SHOWN).map((v) => render(t._type, v, names));
    if (items.length > VEC_ELEMENTS_SHOWN) shown.push(`… ${items.length - VEC_ELEMENTS_SHOWN} more`);
    return shown.length === 0 ? "vec {}" : `vec { ${shown.join("; ")} }`;
  }
  if (t instanceof IDL.TupleClass) {
    const items = value as unknown[];
    const fields = t._fields.map(([, ft], i) => render(ft, items[i], names));
    return fields.length === 0 ? "record {}" : `record { ${fields.join("; ")} }`;
  }
  if (t instanceof IDL.RecordClass) {
    const record = value as Record<string, unknown>;
    const fields = t._fields.map(([key, ft]) => `${labelOf(key, names)} = ${render(ft, record[key], names)}`);
    return fields.length === 0 ? "record {}" : `record { ${fields.join("; ")} }`;
  }
  if (t instanceof IDL.VariantClass) {
    const [key, inner] = Object.entries(value as Record<string, unknown>)[0] ?? ["?", null];
    const caseType = t._fields.find(([k]) => k === key)?.[1];
    const payload = caseType === undefined || resolved(caseType) instanceof IDL.NullClass ? "" : ` = ${render(caseType, inner, names)}`;
    return `variant { ${labelOf(key, names)}${payload} }`;
  }
  if (t instanceof IDL.FuncClass) {
    const [principal, method] = value as [unknown, string];
    return `func ${quoted(principalText(principal))}.${method}`;
  }
  if (t instanceof IDL.ServiceClass) return `service ${quoted(principalText(value))}`;
  return `(${t.name})`;
}

function principalText(value: unknown): string {
  return typeof (value as { toText?: unknown })?.toText === "function" ? (value as { toText(): string }).toText() : String(value);
}
