// Hashing helpers. SHA-256 through Node's native binding (`sha256.ts`); every hashed value is a
// canonical string or byte string built by the caller with a fixed field order (DESIGN.md rule 4).
import type { HashHex } from "../types.ts";
import { sha256HexOf } from "./sha256.ts";

export function sha256Hex(data: Uint8Array | string): HashHex {
  return sha256HexOf(data) as HashHex;
}

/** Hash with a domain separator, so that equal bytes in two roles never share a digest. */
export function domainHash(domain: string, content: string): HashHex {
  return sha256Hex(`${domain.length}:${domain}|${content}`);
}
