// Per-height state certification end to end on a 4-replica subnet with the real BLS12-381 backend
// (signatures in G1, keys in G2, the IC's DST and the ic-state-root domain): read_state responses
// and ic0.data_certificate_copy certificates verify with the subnet's DER key under the
// agent-style verification of harness/crypto/certificate.ts (itself checked against agent-js
// mainnet vectors in test/crypto/certificate.test.ts) and under the official agent itself
// (@icp-sdk/core, the successor of @dfinity/agent: Certificate.create verifies the BLS signature
// with its own code), and lookups follow the spec's lookup_path.
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import { Principal } from "@dfinity/principal";
import { hexToBytes, utf8ToBytes } from "@noble/hashes/utils.js";
import { verifyCertificate } from "../../harness/crypto/certificate.ts";
import { lookupPath } from "../../harness/crypto/hash-tree.ts";
import { encodeEnvelope } from "../../harness/ingress/envelope.ts";
import { userIdentity } from "../../harness/ingress/identity.ts";
import { ingressFromEnvelope } from "../../harness/consensus/ingress.ts";
import { ExecutionStateMachine } from "../../harness/replica/execution-state-machine.ts";
import { replicaId, secondsToUs } from "../../harness/types.ts";
import { wat } from "../execution/helpers.ts";
import { Certificate as AgentCertificate, lookupResultToBuffer } from "@icp-sdk/core/agent";
import { Principal as AgentPrincipal } from "@icp-sdk/core/principal";
import { buildIC } from "./xnet-helpers.ts";

// `set` stores its argument as certified data; the query `cert` returns its data certificate.
const CERTIFIER = wat(`(module
  (import "ic0" "msg_arg_data_size" (func $arg_size (result i32)))
  (import "ic0" "msg_arg_data_copy" (func $arg_copy (param i32 i32 i32)))
  (import "ic0" "certified_data_set" (func $cd_set (param i32 i32)))
  (import "ic0" "data_certificate_present" (func $present (result i32)))
  (import "ic0" "data_certificate_size" (func $size (result i32)))
  (import "ic0" "data_certificate_copy" (func $copy (param i32 i32 i32)))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (memory 1)
  (func (export "canister_update set")
    (call $arg_copy (i32.const 0) (i32.const 0) (call $arg_size))
    (call $cd_set (i32.const 0) (call $arg_size))
    (call $append (i32.const 0) (call $arg_size))
    (call $reply))
  (func (export "canister_query cert")
    (if (call $present) (then
      (call $copy (i32.const 0) (i32.const 0) (call $size))
      (call $append (i32.const 0) (call $size))))
    (call $reply)))`);

test("BLS subnet: read_state of a reply and a query's data certificate verify against the subnet key", async (t) => {
  const ic = buildIC(31, [{ name: "a", n: 4, wasm: [CERTIFIER] }], undefined, "bls");
  ic.start();
  ic.run(secondsToUs(2));
  const canister = ic.registry.canisterId(ic.record("a"), 0);
  const data = utf8ToBytes("certified by four replicas!!!!!!"); // 32 bytes, the certified_data limit
  const user = userIdentity("ed25519", utf8ToBytes("reader"));
  const envelope = user.sign({ request_type: "call", canister_id: Principal.fromText(canister).toUint8Array(), method_name: "set", arg: data, ingress_expiry: BigInt(ic.loop.now() + 200_000_000) * 1000n });
  const message = ingressFromEnvelope(encodeEnvelope(envelope), BigInt(ic.loop.now()) * 1000n);
  if (!message.ok) return t.fail(message.message);
  t.true(ic.subnet("a").submitIngress(replicaId(0), message.message).accepted);
  ic.run(secondsToUs(6));

  const subnetKey = ic.subnet("a").certificationScheme.subnetPublicKeyDer;
  t.is(subnetKey.length, 133, "a DER BLS12-381 G2 public key");
  for (let r = 0; r < 4; r++) {
    const machine = ic.subnet("a").replica(replicaId(r))!.stateMachine as ExecutionStateMachine;
    const id = hexToBytes(message.message.id);
    const bytes = machine.readState([["request_status", id]]);
    if (bytes === undefined) return t.fail(`r${r} has no certification`);
    const verified = verifyCertificate(bytes, subnetKey);
    if (!verified.ok) return t.fail(`${verified.failure}: ${verified.detail}`);
    const tree = verified.certificate.tree;
    const status = lookupPath(["request_status", id, "status"], tree);
    t.deepEqual(status, { status: "found", value: utf8ToBytes("replied") });
    t.deepEqual(lookupPath(["request_status", id, "reply"], tree), { status: "found", value: data });
    t.is(lookupPath(["request_status", new Uint8Array(32), "status"], tree).status, "absent", "an unknown request is proven absent");
    t.is(lookupPath(["canister", Principal.fromText(canister).toUint8Array(), "certified_data"], tree).status, "unknown", "everything else is pruned");

    const reply = machine.query(canister, "cert", new Uint8Array());
    if (reply.kind !== "reply" || reply.data.length === 0) return t.fail("no data certificate in the query");
    const dataCert = verifyCertificate(reply.data, subnetKey);
    if (!dataCert.ok) return t.fail(`${dataCert.failure}: ${dataCert.detail}`);
    t.deepEqual(lookupPath(["canister", Principal.fromText(canister).toUint8Array(), "certified_data"], dataCert.certificate.tree), { status: "found", value: data });
    // One flipped byte of the certificate's tree and it no longer verifies.
    const forged = reply.data.slice();
    const at = forged.indexOf(data[0]!, 20);
    forged[at] = (forged[at] ?? 0) ^ 1;
    t.false(verifyCertificate(forged, subnetKey).ok);

    // The official agent: the sim clock starts at the epoch, so its freshness check is off.
    const principal = { canisterId: AgentPrincipal.fromText(canister) };
    const agentCert = await AgentCertificate.create({ certificate: bytes, rootKey: subnetKey, principal, disableTimeVerification: true });
    t.deepEqual(lookupResultToBuffer(agentCert.lookup_path(["request_status", id, "reply"])), data);
    t.deepEqual(lookupResultToBuffer(agentCert.lookup_path(["request_status", id, "status"])), utf8ToBytes("replied"));
    const agentData = await AgentCertificate.create({ certificate: reply.data, rootKey: subnetKey, principal, disableTimeVerification: true });
    t.deepEqual(lookupResultToBuffer(agentData.lookup_path(["canister", Principal.fromText(canister).toUint8Array(), "certified_data"])), data);
    await t.throwsAsync(AgentCertificate.create({ certificate: forged, rootKey: subnetKey, principal, disableTimeVerification: true }));
  }
});
