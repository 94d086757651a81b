// A small deterministic CanisterExecutor for round/DTS tests: a "counter" canister whose state is
// a u64 in the first 8 bytes of its Wasm memory page map (so hashes, heap delta and checkpoints
// are real). It honours the executor contract of harness/execution/interfaces.ts: instruction
// limit ⇒ trap with the limit charged and the state rolled back; queries change nothing.
//
// Methods (arg = 8-byte big-endian cost in instructions, then method-specific bytes):
//   add      counter += arg[8] (1 byte), reply with the new counter (8 bytes BE)
//   get      (query) reply with the counter
//   ping     send request `add` (cost 10, +1) to the canister named in arg[8..] (utf-8 id text)
import {
  RejectCode,
  type CanisterExecutor,
  type CanisterMessage,
  type CanisterState,
  type CallbackId,
  type CanisterId,
  type CallOrigin,
  type ExecutionParams,
  type ExecutionResult,
  type InstallCodeArgs,
  type LifecycleResult,
} from "../../harness/execution/interfaces.ts";
import { PAGE_SIZE_BYTES } from "../../harness/state/page-map.ts";

export function costArg(cost: bigint, extra: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(8 + extra.length);
  new DataView(out.buffer).setBigUint64(0, cost);
  out.set(extra, 8);
  return out;
}

export function counterOf(c: CanisterState): bigint {
  const page = c.execution?.wasmMemory.readPage(0) ?? new Uint8Array(8);
  return new DataView(page.buffer, page.byteOffset, 8).getBigUint64(0);
}

const u64 = (v: bigint): Uint8Array => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v);
  return b;
};

export class ModelExecutor implements CanisterExecutor {
  /** Every executeMessage call, for tests that count (re-)executions. */
  readonly calls: { canister: CanisterId; kind: CanisterMessage["kind"]; method: string }[] = [];

  executeMessage(canister: CanisterState, message: CanisterMessage, params: ExecutionParams): ExecutionResult {
    const method = "method" in message ? message.method : message.kind;
    this.calls.push({ canister: canister.id, kind: message.kind, method });
    const base = { responses: [], outgoingCalls: [], heapDeltaPages: 0, debugLog: [], readTime: false } as const;
    if (message.kind === "response" || message.kind === "heartbeat" || message.kind === "global-timer" || message.kind === "on-low-wasm-memory") {
      // like the real executor, a firing global timer is deactivated
      const after = message.kind === "global-timer" ? { ...canister, globalTimerNs: 0n } : canister;
      return { ...base, canister: after, outcome: { kind: "completed" }, instructionsUsed: 1_000n };
    }
    const origin: CallOrigin =
      message.kind === "ingress"
        ? { kind: "ingress", messageId: message.messageId, caller: message.caller }
        : message.kind === "request"
          ? { kind: "canister", caller: message.caller, callbackId: message.callerCallbackId }
          : { kind: "query", caller: message.caller };
    const cost = new DataView(message.arg.buffer, message.arg.byteOffset, 8).getBigUint64(0);
    if (cost > params.instructionLimit) {
      const text = `instruction limit ${params.instructionLimit} exceeded`;
      return {
        ...base,
        canister,
        outcome: { kind: "trapped", message: text },
        instructionsUsed: params.instructionLimit,
        responses: [{ origin, response: { kind: "reject", code: RejectCode.CanisterError, message: text }, refundedCycles: 0n }],
      };
    }
    const counter = counterOf(canister);
    if (message.kind === "query" || method === "get") {
      return { ...base, canister, outcome: { kind: "completed" }, instructionsUsed: cost, responses: [{ origin, response: { kind: "reply", data: u64(counter) }, refundedCycles: 0n }] };
    }
    const exec = canister.execution!;
    if (method === "ping") {
      const callee = new TextDecoder().decode(message.arg.subarray(8)) as CanisterId;
      const callbackId = canister.nextCallbackId as CallbackId;
      return {
        ...base,
        canister: { ...canister, nextCallbackId: canister.nextCallbackId + 1n, version: canister.version + 1n },
        outcome: { kind: "completed" },
        instructionsUsed: cost,
        outgoingCalls: [{ callee, method: "add", arg: costArg(10n, new Uint8Array([1])), cycles: 0n, callbackId }],
        responses: [{ origin, response: { kind: "reply", data: new Uint8Array() }, refundedCycles: 0n }],
      };
    }
    const next = counter + BigInt(message.arg[8] ?? 0);
    const page = new Uint8Array(PAGE_SIZE_BYTES);
    page.set(exec.wasmMemory.readPage(0));
    page.set(u64(next), 0);
    return {
      ...base,
      canister: { ...canister, version: canister.version + 1n, execution: { ...exec, wasmMemory: exec.wasmMemory.withPages(new Map([[0, page]])) } },
      outcome: { kind: "completed" },
      instructionsUsed: cost,
      responses: [{ origin, response: { kind: "reply", data: u64(next) }, refundedCycles: 0n }],
      heapDeltaPages: 1,
    };
  }

  installCode(canister: CanisterState, _args: InstallCodeArgs, _params: ExecutionParams): LifecycleResult {
    return { ok: false, canister, code: RejectCode.CanisterError, message: "model executor does not install code", instructionsUsed: 0n, debugLog: [] };
  }
}
