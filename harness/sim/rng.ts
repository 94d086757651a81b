// Seeded PRNG with named, independent sub-streams (DESIGN.md rule 2).
//
// xoshiro128** over four 32-bit words: integer-only, fast in JS (Math.imul), and its state is
// derived from SHA-256(parent seed material ‖ name) so that `fork("net")` and `fork("r3")` are
// independent: one extra draw in the network never shifts a replica's draws.
import { sha256 } from "../crypto/sha256.ts";
import { utf8ToBytes } from "@noble/hashes/utils.js";
import { assert } from "../assert.ts";

/** A probability as an integer ratio, so that no float decides a replicated outcome. */
export interface Ratio {
  readonly num: number;
  readonly den: number;
}
export const ratio = (num: number, den: number): Ratio => {
  assert(Number.isInteger(num) && Number.isInteger(den), `ratio must be integral: ${num}/${den}`);
  assert(den > 0 && num >= 0 && num <= den, `ratio out of range: ${num}/${den}`);
  return { num, den };
};
/** Converts a percentage with up to 2 decimals (e.g. 0.5 %) into an integer ratio. */
export const percent = (p: number): Ratio => ratio(Math.round(p * 100), 10_000);

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  private constructor(private readonly material: Uint8Array) {
    const view = new DataView(material.buffer, material.byteOffset, material.byteLength);
    this.s0 = view.getUint32(0) | 0;
    this.s1 = view.getUint32(4) | 0;
    this.s2 = view.getUint32(8) | 0;
    this.s3 = view.getUint32(12) | 0;
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1; // all-zero state is a fixed point
  }

  /** The root stream of a run. */
  static fromSeed(seed: number | bigint | string): Rng {
    return new Rng(sha256(utf8ToBytes(`subnetlab-seed:${String(seed)}`)));
  }

  /** An independent stream named `name`; forking twice with one name gives equal streams. */
  fork(name: string): Rng {
    const bytes = new Uint8Array(this.material.length + name.length * 3 + 1);
    bytes.set(this.material, 0);
    bytes[this.material.length] = 0x2f; // '/'
    const encoded = utf8ToBytes(name);
    bytes.set(encoded, this.material.length + 1);
    return new Rng(sha256(bytes.subarray(0, this.material.length + 1 + encoded.length)));
  }

  /** Next uniformly distributed unsigned 32-bit integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform integer in [0, bound) without modulo bias; bound ≤ 2^32. */
  below(bound: number): number {
    assert(Number.isInteger(bound) && bound > 0 && bound <= 2 ** 32, `bad bound ${bound}`);
    const limit = 2 ** 32 - (2 ** 32 % bound);
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % bound;
    }
  }

  /** Uniform integer in [lo, hi] (inclusive). */
  between(lo: number, hi: number): number {
    assert(hi >= lo, `empty range [${lo}, ${hi}]`);
    return lo + this.below(hi - lo + 1);
  }

  chance(p: Ratio): boolean {
    if (p.num === 0) return false;
    if (p.num === p.den) return true;
    return this.below(p.den) < p.num;
  }

  pick<T>(items: readonly T[]): T {
    assert(items.length > 0, "pick from an empty list");
    return items[this.below(items.length)] as T;
  }

  /** Fisher–Yates shuffle returning a new array. */
  shuffle<T>(items: readonly T[]): T[] {
    const out = items.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.below(i + 1);
      const tmp = out[i] as T;
      out[i] = out[j] as T;
      out[j] = tmp;
    }
    return out;
  }

  /** k distinct elements chosen uniformly, in a random order. */
  sample<T>(items: readonly T[], k: number): T[] {
    assert(k >= 0 && k <= items.length, `cannot sample ${k} of ${items.length}`);
    return this.shuffle(items).slice(0, k);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
