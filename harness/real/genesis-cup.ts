// The genesis catch-up package as a file (real mode): signed once by the dealer at genesis, read by
// every replica process at start — the canonical artifact encoding (harness/p2p/codec.ts), so a
// replica reads exactly the bytes its peers would send it.
import type { CatchUpPackage } from "../consensus/artifacts.ts";
import { decodeArtifact, encodeArtifact } from "../p2p/codec.ts";

export type GenesisCupResult = { readonly ok: true; readonly value: CatchUpPackage } | { readonly ok: false; readonly error: string };

export const encodeGenesisCup = (cup: CatchUpPackage): Uint8Array => encodeArtifact(cup);

export function decodeGenesisCup(bytes: Uint8Array): GenesisCupResult {
  const decoded = decodeArtifact(bytes);
  if (!decoded.ok) return { ok: false, error: `not a catch-up package: ${decoded.reason}` };
  if (decoded.value.type !== "cup" || decoded.value.content.height !== 0) return { ok: false, error: `holds a ${decoded.value.type} artifact, not the genesis catch-up package` };
  return { ok: true, value: decoded.value };
}
