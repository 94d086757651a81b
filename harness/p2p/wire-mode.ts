// What the simulator hands a recipient: the sender's objects, or its own copy decoded from the
// bytes the sender's objects encode to (harness/p2p/codec.ts) — what real mode does, and what
// guarantees that no two replicas share a mutable object and that every item survives its codec.
// `SUBNETLAB_WIRE=roundtrip` chooses the round trip for a process (`npm test` and the fuzz gate
// set it); a subnet's options can choose either.

export type WireMode = "objects" | "roundtrip";

export function wireModeOf(value: string | undefined): WireMode {
  if (value === undefined || value === "" || value === "objects") return "objects";
  if (value === "roundtrip") return "roundtrip";
  throw new Error(`SUBNETLAB_WIRE must be "roundtrip" or "objects", not ${JSON.stringify(value)}`);
}

/** The process's wire mode, read when a subnet is built (the fuzz command sets it for its workers). */
export const defaultWireMode = (): WireMode => wireModeOf(process.env["SUBNETLAB_WIRE"]);
