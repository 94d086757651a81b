// The canonical order of canister ids: principal bytes, as the IC's BTreeMap<CanisterId, _>
// iterates (research/ic-protocol.md "Modelling notes": canister id order breaks scheduling ties).
// Text order differs from byte order, so everything that feeds a hash or a schedule uses this.
import { principalBytes } from "../execution/interfaces.ts";
import { BoundedMap } from "../memo.ts";

/**
 * id text → lowercase hex of its principal bytes; hex strings compare like the bytes do. Sized for
 * a subnet at the IC's scale (issue 14: 100,000 canisters and more): the scheduler walks every
 * canister in id order each round, and a FIFO memo smaller than that walk misses on every entry
 * (at 65,536 entries a 100,000-canister round spent 2.2 s decoding principals).
 */
const sortKeys = new BoundedMap<string, string>("canisterSortKeys", 262_144);

function sortKey(id: string): string {
  let key = sortKeys.get(id);
  if (key === undefined) {
    key = Buffer.from(principalBytes(id)).toString("hex");
    sortKeys.set(id, key);
  }
  return key;
}

/**
 * Principal byte order of two canister ids (lexicographic, a proper prefix first — the order of
 * interfaces.ts `comparePrincipals`), via memoised hex keys.
 */
export function compareCanisterIds(a: string, b: string): number {
  if (a === b) return 0;
  const x = sortKey(a);
  const y = sortKey(b);
  return x < y ? -1 : x > y ? 1 : 0;
}
