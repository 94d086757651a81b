// SHA-256 through Node's native OpenSSL binding: the same digest as @noble/hashes' sha256 for
// the same bytes (test/crypto/sha256.test.ts), about 10–25× faster for the many small inputs the
// harness hashes (ids, signatures of the sim backend, hash-tree nodes, PRNG forks).
//
// Digests come back as plain Uint8Arrays (a copy of Node's Buffer): a Buffer's `slice` shares
// memory and its deep equality differs, and callers treat digests as ordinary byte arrays.
// Strings are hashed as their UTF-8 bytes, as `utf8ToBytes` encodes them.
import { createHash, hash } from "node:crypto";

export function sha256(data: Uint8Array | string): Uint8Array {
  return new Uint8Array(hash("sha256", data, "buffer"));
}

/** Lower-case hex of SHA-256(data). */
export function sha256HexOf(data: Uint8Array | string): string {
  return hash("sha256", data, "hex");
}

/** SHA-256 of several parts one after the other, without concatenating them first. */
export function sha256Parts(...parts: readonly (Uint8Array | string)[]): Uint8Array {
  const hasher = createHash("sha256");
  for (const part of parts) hasher.update(part);
  return new Uint8Array(hasher.digest());
}
