// Candid's textual values (`subnetlab deploy --arg-candid '("alice", 1_000_000 : nat)'`) encoded
// to Candid bytes with @dfinity/candid, for when no .did file is at hand. The types come from
// the values as written: a non-negative number is a `nat` and a negative one an `int` unless
// annotated (`42 : nat8`, `-1 : int32`, `1.5 : float64`); text, bool, null, `principal "…"`,
// `blob "…"` (text with \hh escapes), `opt v`, `vec { v; … }` (element type of the first
// element; `vec {}` is vec reserved) and `record { name = v; … }` (or positional fields
// `record { v; … }`). Variants need a type the text does not give and are refused, as are
// annotations other than the number types and `text`/`bool`/`null`/`principal`/`reserved`.
import { IDL } from "@dfinity/candid";
import { Principal } from "@dfinity/principal";

/** Text that is not a Candid value of the supported kinds; the message says where and why. */
export class CandidTextError extends Error {}

interface Typed {
  readonly type: IDL.Type;
  readonly value: unknown;
}

const NUMBER_TYPES: Readonly<Record<string, IDL.Type>> = {
  nat: IDL.Nat, nat8: IDL.Nat8, nat16: IDL.Nat16, nat32: IDL.Nat32, nat64: IDL.Nat64,
  int: IDL.Int, int8: IDL.Int8, int16: IDL.Int16, int32: IDL.Int32, int64: IDL.Int64,
  float32: IDL.Float32, float64: IDL.Float64,
};
const INT_BITS: Readonly<Record<string, readonly [bigint, bigint]>> = {
  nat8: [0n, 255n], nat16: [0n, 65535n], nat32: [0n, 2n ** 32n - 1n], nat64: [0n, 2n ** 64n - 1n],
  int8: [-128n, 127n], int16: [-32768n, 32767n], int32: [-(2n ** 31n), 2n ** 31n - 1n], int64: [-(2n ** 63n), 2n ** 63n - 1n],
};

/** Candid bytes of a textual argument list `(v, …)` (or one bare value). */
export function encodeCandidText(text: string): Uint8Array {
  const parser = new Parser(text);
  const args = parser.arguments();
  return new Uint8Array(IDL.encode(args.map((a) => a.type), args.map((a) => a.value)));
}

class Parser {
  private at = 0;

  constructor(private readonly text: string) {}

  arguments(): Typed[] {
    this.space();
    const args: Typed[] = [];
    if (this.peek("(")) {
      this.expect("(");
      while (!this.peek(")")) {
        args.push(this.value());
        if (!this.peek(")")) this.expect(",");
      }
      this.expect(")");
    } else {
      args.push(this.value());
    }
    if (this.at < this.text.length) this.fail("unexpected text after the arguments");
    return args;
  }

  private value(): Typed {
    const base = this.bareValue();
    if (!this.peek(":")) return base;
    this.expect(":");
    return this.annotate(base, this.word());
  }

  private bareValue(): Typed {
    if (this.peek('"')) return { type: IDL.Text, value: this.string() };
    if (/[-+0-9]/.test(this.text[this.at] ?? "")) return this.number();
    const word = this.word();
    switch (word) {
      case "true":
      case "false":
        return { type: IDL.Bool, value: word === "true" };
      case "null":
        return { type: IDL.Null, value: null };
      case "principal":
        return { type: IDL.Principal, value: this.principal() };
      case "blob":
        return { type: IDL.Vec(IDL.Nat8), value: this.blob() };
      case "opt": {
        const inner = this.value();
        return { type: IDL.Opt(inner.type), value: [inner.value] };
      }
      case "vec":
        return this.vec();
      case "record":
        return this.record();
      case "variant":
        return this.fail("variants need their type (a .did file); pass the bytes with --arg HEX instead");
      default:
        return this.fail(`unknown value ${JSON.stringify(word)}`);
    }
  }

  private number(): Typed {
    const match = /^[-+]?(?:0x[0-9a-fA-F_]+|[0-9][0-9_]*(?:\.[0-9_]+)?(?:[eE][-+]?[0-9]+)?)/.exec(this.text.slice(this.at));
    if (match === null) return this.fail("not a number");
    this.at += match[0].length;
    this.space();
    const literal = match[0].replace(/_/g, "");
    if (/[.eE]/.test(literal) && !literal.startsWith("0x")) return { type: IDL.Float64, value: Number(literal) };
    const n = literal.startsWith("-") ? -BigInt(literal.slice(1)) : BigInt(literal.replace(/^\+/, ""));
    return n < 0n ? { type: IDL.Int, value: n } : { type: IDL.Nat, value: n };
  }

  private annotate(base: Typed, type: string): Typed {
    const numeric = NUMBER_TYPES[type];
    if (numeric !== undefined) {
      const isNumber = typeof base.value === "bigint" || typeof base.value === "number";
      if (!isNumber) return this.fail(`${type} annotates a number, not ${base.type.display()}`);
      if (type.startsWith("float")) return { type: numeric, value: Number(base.value) };
      if (typeof base.value !== "bigint") return this.fail(`${type} needs an integer`);
      const bounds = INT_BITS[type];
      if (type.startsWith("nat") && base.value < 0n) return this.fail(`${base.value} is negative, not a ${type}`);
      if (bounds !== undefined && (base.value < bounds[0] || base.value > bounds[1])) return this.fail(`${base.value} is out of range for ${type}`);
      // @dfinity/candid takes number for the fixed-width types up to 32 bits.
      const small = bounds !== undefined && !type.endsWith("64");
      return { type: numeric, value: small ? Number(base.value) : base.value };
    }
    const plain: Readonly<Record<string, IDL.Type>> = { text: IDL.Text, bool: IDL.Bool, null: IDL.Null, principal: IDL.Principal, reserved: IDL.Reserved };
    const expected = plain[type];
    if (expected === undefined) return this.fail(`the annotation ${JSON.stringify(type)} is not supported (number types, text, bool, null, principal, reserved)`);
    if (type === "reserved") return { type: IDL.Reserved, value: null };
    if (expected.display() !== base.type.display()) return this.fail(`a ${base.type.display()} value cannot be a ${type}`);
    return base;
  }

  private principal(): Principal {
    const text = this.string();
    try {
      return Principal.fromText(text);
    } catch {
      return this.fail(`${JSON.stringify(text)} is not a principal`);
    }
  }

  private blob(): Uint8Array {
    const start = this.at;
    const raw = this.string(true);
    const bytes: number[] = [];
    for (let i = 0; i < raw.length; i++) {
      if (raw[i] === "\\" && /^[0-9a-fA-F]{2}$/.test(raw.slice(i + 1, i + 3))) {
        bytes.push(Number.parseInt(raw.slice(i + 1, i + 3), 16));
        i += 2;
      } else {
        const code = raw.charCodeAt(i);
        if (code > 0x7f) {
          this.at = start;
          return this.fail("a blob holds ASCII and \\hh escapes only");
        }
        bytes.push(code);
      }
    }
    return new Uint8Array(bytes);
  }

  private vec(): Typed {
    this.expect("{");
    const items: Typed[] = [];
    while (!this.peek("}")) {
      items.push(this.value());
      if (!this.peek("}")) this.expect(";");
    }
    this.expect("}");
    const first = items[0];
    if (first === undefined) return { type: IDL.Vec(IDL.Reserved), value: [] };
    for (const item of items) if (item.type.display() !== first.type.display()) this.fail(`a vec mixes ${first.type.display()} and ${item.type.display()}`);
    return { type: IDL.Vec(first.type), value: items.map((i) => i.value) };
  }

  private record(): Typed {
    this.expect("{");
    const fields: [string, Typed][] = [];
    let position = 0;
    while (!this.peek("}")) {
      const save = this.at;
      const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.text.slice(this.at))?.[0];
      let label: string;
      if (name !== undefined && /^\s*=/.test(this.text.slice(this.at + name.length))) {
        this.at += name.length;
        this.space();
        this.expect("=");
        label = name;
      } else {
        this.at = save;
        label = `_${position}_`;
      }
      position++;
      fields.push([label, this.value()]);
      if (!this.peek("}")) this.expect(";");
    }
    this.expect("}");
    if (new Set(fields.map(([l]) => l)).size !== fields.length) this.fail("a record names a field twice");
    return {
      type: IDL.Record(Object.fromEntries(fields.map(([l, v]) => [l, v.type]))),
      value: Object.fromEntries(fields.map(([l, v]) => [l, v.value])),
    };
  }

  /** A double-quoted string with Candid's escapes (\n \t \\ \" \' \u{…}); `raw` keeps \hh escapes for blobs. */
  private string(raw = false): string {
    if (this.text[this.at] !== '"') return this.fail('expected a string in double quotes');
    let out = "";
    let i = this.at + 1;
    for (;;) {
      const c = this.text[i];
      if (c === undefined) {
        this.at = i;
        return this.fail("unterminated string");
      }
      if (c === '"') break;
      if (c === "\\") {
        const next = this.text[i + 1] ?? "";
        const simple: Record<string, string> = { n: "\n", t: "\t", r: "\r", "\\": "\\", '"': '"', "'": "'" };
        const unicode = /^u\{([0-9a-fA-F_]{1,8})\}/.exec(this.text.slice(i + 1));
        if (simple[next] !== undefined) {
          out += simple[next];
          i += 2;
        } else if (unicode !== null) {
          out += String.fromCodePoint(Number.parseInt(unicode[1]!.replace(/_/g, ""), 16));
          i += 1 + unicode[0].length;
        } else if (/^[0-9a-fA-F]{2}$/.test(this.text.slice(i + 1, i + 3))) {
          out += raw ? this.text.slice(i, i + 3) : String.fromCharCode(Number.parseInt(this.text.slice(i + 1, i + 3), 16));
          i += 3;
        } else {
          this.at = i;
          return this.fail(`unknown escape \\${next}`);
        }
        continue;
      }
      out += c;
      i++;
    }
    this.at = i + 1;
    this.space();
    return out;
  }

  private word(): string {
    const match = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.text.slice(this.at));
    if (match === null) return this.fail("expected a value");
    this.at += match[0].length;
    this.space();
    return match[0];
  }

  private peek(token: string): boolean {
    return this.text.startsWith(token, this.at);
  }

  private expect(token: string): void {
    if (!this.peek(token)) this.fail(`expected ${JSON.stringify(token)}`);
    this.at += token.length;
    this.space();
  }

  private space(): void {
    for (;;) {
      const rest = this.text.slice(this.at);
      const skip = /^(?:\s+|\/\/[^\n]*)/.exec(rest);
      if (skip === null || skip[0].length === 0) return;
      this.at += skip[0].length;
    }
  }

  private fail(why: string): never {
    const shown = this.text.slice(Math.max(0, this.at - 10), this.at + 20);
    throw new CandidTextError(`--arg-candid: ${why} at character ${this.at + 1} (near ${JSON.stringify(shown)})`);
  }
}
