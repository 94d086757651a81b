// Issue 12 item 6: what one replica's HTTP handler answers before its subnet certified anything
// (the IC's ReplicaHealthStatus: calls, queries and read_state get 503 until the replica holds a
// certified state; /api/v2/status says why), without an agent: the replica is not running yet.
import test from "ava";
import { decode } from "@dfinity/cbor";
import { SimHttpGateway } from "../../harness/http/sim-gateway.ts";
import { simulatedAgentSubnet } from "../../harness/http/sim-subnet.ts";
import { healthOf } from "../../harness/http/handler.ts";
import { height } from "../../harness/types.ts";

test("item 6: before the first certification the status says waiting_for_certified_state and the other endpoints answer 503", async (t) => {
  const subnet = simulatedAgentSubnet({ seed: 3, startTimeUs: 1_800_000_000_000_000 });
  subnet.subnet.start();
  const gateway = new SimHttpGateway(subnet);
  const status = await gateway.handle({ method: "GET", path: "/api/v2/status", body: new Uint8Array() });
  t.is(status.status, 200);
  const body = decode(new Uint8Array(status.body)) as Record<string, unknown>;
  t.is(body.replica_health_status, "waiting_for_certified_state");
  t.deepEqual(new Uint8Array(body.root_key as Uint8Array), subnet.facts.rootKeyDer);
  t.deepEqual([...status.body.subarray(0, 3)], [0xd9, 0xd9, 0xf7], "tagged 55799 (self-describing CBOR)");
  for (const path of ["/api/v3/canister/rwlgt-iiaaa-aaaaa-aaaaa-cai/call", "/api/v2/canister/rwlgt-iiaaa-aaaaa-aaaaa-cai/query", "/api/v3/canister/rwlgt-iiaaa-aaaaa-aaaaa-cai/read_state"]) {
    const response = await gateway.handle({ method: "POST", path, body: new Uint8Array([0xa0]) });
    t.is(response.status, 503, path);
    t.regex(new TextDecoder().decode(response.body), /Replica is unhealthy: waiting_for_certified_state/);
  }
  // ic_consensus_utils ACCEPTABLE_FINALIZATION_CERTIFICATION_GAP = 3: more and it is behind.
  const at = (finalized: number, certified: number) => healthOf({ finalizedHeight: height(finalized), notarizedHeight: height(finalized), executedHeight: height(finalized), cupHeight: height(0), certifiedHeight: height(certified) });
  t.is(at(10, 7), "healthy");
  t.is(at(10, 6), "certified_state_behind");
});
