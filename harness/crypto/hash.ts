// Hashing helpers. SHA-256 from @noble/hashes; every hashed value is a canonical string or byte
// string built by the caller with a fixed field order (DESIGN.md rule 4).
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import type { HashHex } from "../types.ts";

export function sha256Hex(data: Uint8Array | string): HashHex {
  return bytesToHex(sha256(typeof data === "string" ? utf8ToBytes(data) : data)) as HashHex;
}

/** Hash with a domain separator, so that equal bytes in two roles never share a digest. */
export function domainHash(domain: string, content: string): HashHex {
  return sha256Hex(`${domain.length}:${domain}|${content}`);
}
