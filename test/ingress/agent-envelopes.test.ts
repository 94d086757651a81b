// Call envelopes made and signed by the official agent (@icp-sdk/core 6.1, the successor of
// @dfinity/agent): its identities sign exactly as it does for a real replica, its CBOR encoder
// writes the body, and our admission validates them with the same request id the agent computed
// (agent-compat.md §3–§5). The expiry comes from the agent's wall clock, so "now" does too here.
import test from "ava";
import { AnonymousIdentity, Cbor, Endpoint, Expiry, requestIdOf, SubmitRequestType, type HttpAgentRequest, type Identity } from "@icp-sdk/core/agent";
import { ECDSAKeyIdentity, Ed25519KeyIdentity } from "@icp-sdk/core/identity";
import { Secp256k1KeyIdentity } from "@icp-sdk/core/identity/secp256k1";
import { Principal } from "@icp-sdk/core/principal";
import { bytesToHex } from "@noble/hashes/utils.js";
import { validateCallEnvelope } from "../../harness/ingress/envelope.ts";

const CANISTER = Principal.fromText("rrkah-fqaaa-aaaaa-aaaaq-cai");

async function agentEnvelope(identity: Identity, arg: Uint8Array): Promise<{ bytes: Uint8Array; requestId: string }> {
  const body = {
    request_type: SubmitRequestType.Call,
    canister_id: CANISTER,
    method_name: "greet",
    arg,
    sender: identity.getPrincipal(),
    ingress_expiry: Expiry.fromDeltaInMilliseconds(4 * 60_000),
  };
  const request = { endpoint: Endpoint.Call, request: { method: "POST", headers: {} }, body } as unknown as HttpAgentRequest;
  const signed = (await identity.transformRequest(request)) as { body: Record<string, unknown> };
  return { bytes: Cbor.encode(signed.body), requestId: bytesToHex(requestIdOf(body)) };
}

const nowNs = (): bigint => BigInt(Date.now()) * 1_000_000n;

test("envelopes signed by the agent's Ed25519, secp256k1, P-256 and anonymous identities are admitted with the agent's request id", async (t) => {
  const seed = new Uint8Array(32).fill(7);
  const identities: [string, Identity][] = [
    ["ed25519", Ed25519KeyIdentity.generate(seed)],
    ["secp256k1", Secp256k1KeyIdentity.generate(seed)],
    ["p256", await ECDSAKeyIdentity.generate()],
    ["anonymous", new AnonymousIdentity()],
  ];
  for (const [name, identity] of identities) {
    const { bytes, requestId } = await agentEnvelope(identity, new Uint8Array([0x44, 0x49, 0x44, 0x4c, 0, 0]));
    const checked = validateCallEnvelope(bytes, { nowNs: nowNs() });
    if (!checked.ok) {
      t.fail(`${name}: ${checked.rejection.kind}: ${checked.rejection.message}`);
      continue;
    }
    t.is(checked.call.requestIdHex, requestId, `${name}: same request id as the agent's requestIdOf`);
    t.is(checked.call.sender as string, identity.getPrincipal().toText(), name);
    t.is(checked.call.canisterId as string, CANISTER.toText(), name);
  }
});

test("an agent-signed envelope altered after signing is refused (invalid signature)", async (t) => {
  const { bytes } = await agentEnvelope(Ed25519KeyIdentity.generate(new Uint8Array(32).fill(9)), new Uint8Array([1, 2, 3]));
  // Decode the agent's envelope, change one byte of the argument, encode it again.
  const envelope = Cbor.decode<{ content: { arg: Uint8Array } }>(bytes);
  envelope.content.arg = new Uint8Array([1, 2, 4]);
  const checked = validateCallEnvelope(Cbor.encode(envelope), { nowNs: nowNs() });
  t.deepEqual(checked.ok ? "ok" : checked.rejection.kind, "invalid-signature");
});
