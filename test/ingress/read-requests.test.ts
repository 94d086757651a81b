// Issue 12 item 6: query and read_state envelopes as the official agent (@icp-sdk/core 6.1) signs
// them are admitted with the agent's request id, and refused with the IC's HTTP statuses the way
// rs/validator refuses them (interface spec "Request: Query call", "Request: Read state";
// agent-compat §6: the anonymous sender's query and read_state are served whatever their expiry).
import test from "ava";
import { AnonymousIdentity, Cbor, Endpoint, Expiry, requestIdOf, type HttpAgentRequest, type Identity } from "@icp-sdk/core/agent";
import { Ed25519KeyIdentity } from "@icp-sdk/core/identity";
import { Principal } from "@icp-sdk/core/principal";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import { MAX_LABELS_PER_PATH, MAX_READ_STATE_PATHS, validateQueryEnvelope, validateReadStateEnvelope } from "../../harness/ingress/read-requests.ts";

const CANISTER = Principal.fromText("rrkah-fqaaa-aaaaa-aaaaq-cai");
const nowNs = (): bigint => BigInt(Date.now()) * 1_000_000n;
const ed = Ed25519KeyIdentity.generate(new Uint8Array(32).fill(5));

/** What the agent sends: its identity's transform over the content, CBOR-encoded by the agent. */
async function signed(identity: Identity, endpoint: Endpoint, content: Record<string, unknown>): Promise<{ bytes: Uint8Array; requestId: string }> {
  const request = { endpoint, request: { method: "POST", headers: {} }, body: content } as unknown as HttpAgentRequest;
  const transformed = (await identity.transformRequest(request)) as { body: Record<string, unknown> };
  return { bytes: Cbor.encode(transformed.body), requestId: bytesToHex(requestIdOf(content as never)) };
}

const queryContent = (identity: Identity, expiry: Expiry | bigint = Expiry.fromDeltaInMilliseconds(4 * 60_000)) => ({
  request_type: "query",
  canister_id: CANISTER,
  method_name: "get",
  arg: new Uint8Array([0x44, 0x49, 0x44, 0x4c, 0, 0]),
  sender: identity.getPrincipal(),
  ingress_expiry: expiry,
});
const readStateContent = (identity: Identity, paths: Uint8Array[][], expiry: Expiry | bigint = Expiry.fromDeltaInMilliseconds(4 * 60_000)) => ({
  request_type: "read_state",
  paths,
  sender: identity.getPrincipal(),
  ingress_expiry: expiry,
});

test("item 6: agent-signed and anonymous queries and read_state requests are admitted with the agent's request id", async (t) => {
  for (const identity of [ed, new AnonymousIdentity()]) {
    const q = await signed(identity, Endpoint.Query, queryContent(identity));
    const checked = validateQueryEnvelope(q.bytes, CANISTER.toText(), { nowNs: nowNs() });
    if (!checked.ok) return t.fail(checked.rejection.message);
    t.is(checked.request.requestIdHex, q.requestId);
    t.is(checked.request.sender as string, identity.getPrincipal().toText());
    t.is(checked.request.method, "get");

    const paths = [[utf8ToBytes("time")], [utf8ToBytes("request_status"), new Uint8Array(32).fill(1)]];
    const r = await signed(identity, Endpoint.ReadState, readStateContent(identity, paths));
    const read = validateReadStateEnvelope(r.bytes, { nowNs: nowNs() });
    if (!read.ok) return t.fail(read.rejection.message);
    t.is(bytesToHex(read.request.requestId), r.requestId);
    t.deepEqual(read.request.paths, paths);
  }
});

test("item 6: an expired signed query or read_state gets 400 'Invalid request expiry'; the anonymous sender's are served anyway", async (t) => {
  const expired = BigInt(Date.now() - 60_000) * 1_000_000n;
  const q = await signed(ed, Endpoint.Query, queryContent(ed, expired));
  const refused = validateQueryEnvelope(q.bytes, CANISTER.toText(), { nowNs: nowNs() });
  t.deepEqual(refused.ok ? "ok" : [refused.rejection.httpStatus, refused.rejection.message.slice(0, 24)], [400, "Invalid request expiry: "]);
  const r = await signed(ed, Endpoint.ReadState, readStateContent(ed, [[utf8ToBytes("time")]], expired));
  const refusedRead = validateReadStateEnvelope(r.bytes, { nowNs: nowNs() });
  t.is(refusedRead.ok ? "ok" : refusedRead.rejection.kind, "ingress-expired");

  const anonymous = new AnonymousIdentity();
  const aq = await signed(anonymous, Endpoint.Query, queryContent(anonymous, expired));
  t.true(validateQueryEnvelope(aq.bytes, CANISTER.toText(), { nowNs: nowNs() }).ok);
  const ar = await signed(anonymous, Endpoint.ReadState, readStateContent(anonymous, [[utf8ToBytes("time")]], 0n));
  t.true(validateReadStateEnvelope(ar.bytes, { nowNs: nowNs() }).ok, "the agent's time sync reads /time anonymously from any clock");
});

test("item 6: refusals: another canister than the URL's, the wrong request type, a bad signature, too many paths, too long a path", async (t) => {
  const kind = (v: { ok: boolean; rejection?: { kind: string; httpStatus: number } }) => (v.ok ? "ok" : `${v.rejection?.kind} ${v.rejection?.httpStatus}`);
  const q = await signed(ed, Endpoint.Query, queryContent(ed));
  t.is(kind(validateQueryEnvelope(q.bytes, "aaaaa-aa", { nowNs: nowNs() })), "effective-canister-id-mismatch 400");
  t.is(kind(validateReadStateEnvelope(q.bytes, { nowNs: nowNs() })), "wrong-request-type 400");
  const tampered = Cbor.decode<{ content: { method_name: string } }>(q.bytes);
  tampered.content.method_name = "inc";
  t.is(kind(validateQueryEnvelope(Cbor.encode(tampered), CANISTER.toText(), { nowNs: nowNs() })), "invalid-signature 400");

  // rs/validator: at most 1,000 paths of at most 127 labels (the spec's numbers).
  const many = Array.from({ length: MAX_READ_STATE_PATHS + 1 }, () => [utf8ToBytes("time")]);
  const tooMany = await signed(ed, Endpoint.ReadState, readStateContent(ed, many));
  t.is(kind(validateReadStateEnvelope(tooMany.bytes, { nowNs: nowNs() })), "too-many-paths 400");
  const exactly = await signed(ed, Endpoint.ReadState, readStateContent(ed, many.slice(1)));
  t.is(kind(validateReadStateEnvelope(exactly.bytes, { nowNs: nowNs() })), "ok");
  const long = await signed(ed, Endpoint.ReadState, readStateContent(ed, [Array.from({ length: MAX_LABELS_PER_PATH + 1 }, () => utf8ToBytes("a"))]));
  t.is(kind(validateReadStateEnvelope(long.bytes, { nowNs: nowNs() })), "path-too-long 400");
  const notBytes = Cbor.encode({ content: { request_type: "read_state", paths: [["time"]], sender: new Uint8Array([4]), ingress_expiry: nowNs() } });
  const malformed = validateReadStateEnvelope(notBytes, { nowNs: nowNs() });
  t.is(kind(malformed), "malformed-envelope 400");
  t.regex(malformed.ok ? "" : malformed.rejection.message, /content\.paths\[0\]\[0\] must be a byte string/);
});
