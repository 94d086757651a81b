// A strict well-formedness check for request bodies, run before `@dfinity/cbor` decodes them.
//
// Why a separate pass: the agent's decoder is deliberately small (research/agent-compat.md §3) and
// lax in ways that matter for a replica. It ignores trailing bytes, silently shortens a byte string
// whose declared length runs past the end of the input, overwrites duplicate map keys (so what is
// hashed and what is executed could differ), turns the key "__proto__" into a prototype change, and
// recurses without a depth limit. The IC's serde_cbor refuses all of these, so this pass refuses
// them too and the decoder only ever sees input it reads faithfully.
//
// What is accepted (RFC 8949 §3, restricted to what the decoder supports): exactly one data item
// covering the whole input; unsigned and negative integers; definite-length byte and text strings
// (text must be valid UTF-8); definite and indefinite arrays and maps; map keys that are text
// strings, each at most once per map; tag 55799 (self-describing CBOR) only; the simple values
// false, true, null and undefined. Floats, other tags and chunked strings are refused, because the
// decoder would throw on them or misread them.

export type CborCheck = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/** An envelope nests about six levels deep (envelope → delegations → delegation → targets). */
export const CBOR_MAX_NESTING = 32;
const SELF_DESCRIBE_TAG = 55799;
const BREAK = 0xff;
const MAJOR_UNSIGNED = 0;
const MAJOR_NEGATIVE = 1;
const MAJOR_BYTES = 2;
const MAJOR_TEXT = 3;
const MAJOR_ARRAY = 4;
const MAJOR_MAP = 5;
const MAJOR_TAG = 6;
const MAJOR_SIMPLE = 7;
const SIMPLE_FALSE = 20;
const SIMPLE_UNDEFINED = 23;

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** Thrown inside the scanner only; `checkCborWellFormed` turns it into a typed result. */
class MalformedCbor extends Error {}

interface Head {
  readonly major: number;
  /** The low five bits of the initial byte: the value itself, or how the argument is encoded. */
  readonly info: number;
  /** The head's argument: a value, a length or a tag number; undefined for indefinite length. */
  readonly argument: number | undefined;
  readonly offset: number;
}

export function checkCborWellFormed(bytes: Uint8Array): CborCheck {
  const scanner = new Scanner(bytes);
  try {
    scanner.item(0);
    const trailing = bytes.length - scanner.position;
    if (trailing > 0) scanner.fail(`${trailing} trailing byte(s) after the data item that ends at offset ${scanner.position}`);
    return { ok: true };
  } catch (error) {
    if (error instanceof MalformedCbor) return { ok: false, reason: error.message };
    throw error;
  }
}

class Scanner {
  position = 0;

  constructor(private readonly bytes: Uint8Array) {}

  fail(reason: string): never {
    throw new MalformedCbor(reason);
  }

  item(depth: number): void {
    if (depth > CBOR_MAX_NESTING) this.fail(`the data nests deeper than ${CBOR_MAX_NESTING} levels`);
    const head = this.head();
    switch (head.major) {
      case MAJOR_UNSIGNED:
      case MAJOR_NEGATIVE:
        return;
      case MAJOR_BYTES:
        this.stringBody(head);
        return;
      case MAJOR_TEXT:
        this.text(head);
        return;
      case MAJOR_ARRAY:
        this.array(head, depth);
        return;
      case MAJOR_MAP:
        this.map(head, depth);
        return;
      case MAJOR_TAG:
        if (head.argument !== SELF_DESCRIBE_TAG) this.fail(`tag ${head.argument} at offset ${head.offset} is not supported (only 55799, self-describing CBOR)`);
        this.item(depth + 1);
        return;
      case MAJOR_SIMPLE:
        this.simple(head);
        return;
      default:
        this.fail(`unknown major type ${head.major} at offset ${head.offset}`);
    }
  }

  /** Reads one initial byte and its argument (RFC 8949 §3.1). */
  private head(): Head {
    const offset = this.position;
    const initial = this.bytes[offset];
    if (initial === undefined) this.fail(`the input ends at offset ${offset} where a data item should start`);
    this.position++;
    const major = initial >> 5;
    const info = initial & 0x1f;
    if (info < 24) return { major, info, argument: info, offset };
    if (info === 31) {
      if (major === MAJOR_UNSIGNED || major === MAJOR_NEGATIVE || major === MAJOR_TAG) this.fail(`indefinite length is not allowed for major type ${major} at offset ${offset}`);
      return { major, info, argument: undefined, offset };
    }
    if (info > 27) this.fail(`reserved additional information ${info} at offset ${offset}`);
    return { major, info, argument: this.argument(1 << (info - 24), offset), offset };
  }

  /**
   * A big-endian argument of 1, 2, 4 or 8 bytes. A JS number loses precision above 2^53, which is
   * harmless here: such a length always exceeds the input and such a tag is never 55799.
   */
  private argument(size: number, offset: number): number {
    if (this.position + size > this.bytes.length) this.fail(`the input ends inside the head at offset ${offset}`);
    let value = 0;
    for (let i = 0; i < size; i++) value = value * 256 + (this.bytes[this.position + i] as number);
    this.position += size;
    return value;
  }

  private stringBody(head: Head): Uint8Array {
    if (head.argument === undefined) this.fail(`indefinite-length (chunked) strings are not supported (offset ${head.offset})`);
    const end = this.position + head.argument;
    if (end > this.bytes.length) this.fail(`a string at offset ${head.offset} declares ${head.argument} bytes but only ${this.bytes.length - this.position} remain`);
    const body = this.bytes.subarray(this.position, end);
    this.position = end;
    return body;
  }

  private text(head: Head): string {
    const body = this.stringBody(head);
    try {
      return strictUtf8.decode(body);
    } catch {
      return this.fail(`the text string at offset ${head.offset} is not valid UTF-8`);
    }
  }

  private array(head: Head, depth: number): void {
    if (head.argument === undefined) {
      while (!this.takeBreak()) this.item(depth + 1);
      return;
    }
    // A huge declared count cannot loop for long: each item consumes at least one byte.
    for (let i = 0; i < head.argument; i++) this.item(depth + 1);
  }

  private map(head: Head, depth: number): void {
    const keys = new Set<string>();
    const entry = (): void => {
      const key = this.mapKey();
      if (keys.has(key)) this.fail(`the map at offset ${head.offset} has the key "${key}" twice`);
      keys.add(key);
      this.item(depth + 1);
    };
    if (head.argument === undefined) {
      while (!this.takeBreak()) entry();
      return;
    }
    for (let i = 0; i < head.argument; i++) entry();
  }

  private mapKey(): string {
    const head = this.head();
    if (head.major !== MAJOR_TEXT) this.fail(`the map key at offset ${head.offset} is not a text string (major type ${head.major})`);
    const key = this.text(head);
    if (key === "__proto__") this.fail(`the map key "__proto__" at offset ${head.offset} is not accepted`);
    return key;
  }

  /** Major type 7 holds simple values and floats; the decoder reads only the four short forms. */
  private simple(head: Head): void {
    if (head.info === 31) this.fail(`a "break" byte at offset ${head.offset} outside an indefinite-length array or map`);
    if (head.info < SIMPLE_FALSE || head.info > SIMPLE_UNDEFINED) {
      this.fail(`the simple value or float at offset ${head.offset} is not supported (only false, true, null, undefined)`);
    }
  }

  /** Consumes the "break" that ends an indefinite-length array or map, if it is next. */
  private takeBreak(): boolean {
    if (this.bytes[this.position] !== BREAK) return false;
    this.position++;
    return true;
  }
}
