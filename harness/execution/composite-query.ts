// Composite query trees (ic-protocol.md §4.12; the IC's query_handler/query_context.rs and
// query_call_graph.rs): composite queries may call query and composite query methods of canisters
// on the same subnet, one instruction budget for the tree.
import { assert } from "../assert.ts";
import {
  MANAGEMENT_CANISTER,
  type CallOrigin,
  type CanisterId,
  type CanisterMessage,
  type CanisterState,
  type ExecutionParams,
  type ExecutionState,
  type PrincipalText,
  type Response,
} from "./interfaces.ts";
import { managementQuery } from "./management.ts";
import { finishCall, openContext } from "./call-contexts.ts";
import { commit, invokeOn, NOTHING_RECEIVED, type ExecutionContext } from "./invocation.ts";
import { executeQuery, executeResponse } from "./messages.ts";
import {
  canisterNotFound,
  canisterNotRunning,
  compositeCalleeReject,
  compositeQueryInstructionLimit,
  compositeQueryTooDeep,
  hypervisorUserError,
  queryDidNotRespond,
  userReject,
  type UserError,
} from "./reject-codes.ts";

/** Composite query call depth limit (ic-protocol.md §4.12). */
export const MAX_COMPOSITE_QUERY_DEPTH = 6;

/** What a query tree's root answers, and what the whole tree used. */
export interface QueryTreeResult {
  readonly response: Response;
  readonly instructionsUsed: bigint;
  readonly debugLog: readonly string[];
  readonly readTime: boolean;
}

type Lookup = (id: CanisterId) => CanisterState | undefined;
type Query = Extract<CanisterMessage, { kind: "query" }>;
type QueryOrigin = Extract<CallOrigin, { kind: "query" }>;

/** A composite query's call graph broke one of its limits: the whole query fails with `error`. */
class QueryGraphFailure extends Error {
  constructor(readonly error: UserError) {
    super(error.description);
  }
}

/** What a composite query's caller sees of its callee's answer: a canister sees no error code. */
function calleeAnswer(r: Response): Response {
  return r.kind === "reject" ? { kind: "reject", code: r.code, message: r.message } : r;
}

/** How a call context that failed answers: the user's reject at the root, a callee's reject below it. */
function failedAnswer(caller: CanisterId | undefined, e: UserError): Response {
  return caller === undefined ? userReject(e) : compositeCalleeReject(e);
}

/** How a call context's answer reaches its caller: as it is at the root, as a canister sees it below. */
function answerTo(caller: CanisterId | undefined, r: Response): Response {
  return caller === undefined ? r : calleeAnswer(r);
}

/**
 * A query with its whole call tree. Every call runs on the callee's state in `lookup` (the state
 * the query runs against), never on a caller's state in progress: a composite query that calls
 * its own canister sees the committed state. Nothing is kept: a call context's changes live in its
 * own throw-away copy. A node at depth MAX_COMPOSITE_QUERY_DEPTH that makes calls, or a tree past
 * its budget, fails the whole query (IC0525, IC0526). A callee's error reaches its caller as the
 * description alone; the root's answer is the user's (reject-codes.ts).
 */
export function executeQueryTree(ctx: ExecutionContext, lookup: Lookup, target: CanisterId, message: Query, params: ExecutionParams): QueryTreeResult {
  return new QueryTree(ctx, lookup, message, params).run(target);
}

/** One query tree in progress: its budget, its log, and the calls still to answer. */
class QueryTree {
  private used = 0n;
  private readonly log: string[] = [];
  private readTime = false;

  constructor(
    private readonly ctx: ExecutionContext,
    private readonly lookup: Lookup,
    private readonly message: Query,
    private readonly params: ExecutionParams,
  ) {}

  run(target: CanisterId): QueryTreeResult {
    let response: Response;
    try {
      response = this.call(target, this.message.method, this.message.arg, undefined, 0);
    } catch (e) {
      if (!(e instanceof QueryGraphFailure)) throw e;
      response = userReject(e.error);
    }
    return { response, instructionsUsed: this.used, debugLog: this.log, readTime: this.readTime };
  }

  /** The tree's parameters with what is left of its budget. */
  private remaining(): ExecutionParams {
    return { ...this.params, instructionLimit: this.params.instructionLimit - this.used };
  }

  private account(r: { readonly instructionsUsed: bigint; readonly debugLog: readonly string[]; readonly readTime: boolean }): void {
    this.used += r.instructionsUsed;
    this.log.push(...r.debugLog);
    this.readTime ||= r.readTime;
  }

  private checkBudget(): void {
    if (this.used >= this.params.instructionLimit) throw new QueryGraphFailure(compositeQueryInstructionLimit);
  }

  /**
   * A composite query's call to the management canister: its query methods run against the
   * query's state on behalf of the calling canister (query_context.rs `handle_ic00_request`,
   * dfinity/ic PR #10987); any other method is "not found" (subnet_query.rs).
   */
  private managementQueryAnswer(caller: CanisterId, method: string, arg: Uint8Array): Response {
    const r = managementQuery(this.lookup, caller as string as PrincipalText, method, arg);
    return r.ok ? { kind: "reply", data: r.data } : compositeCalleeReject(r.error);
  }

  /** Runs one call context to its answer; `caller` undefined for the user's call at the root. */
  private call(id: CanisterId, method: string, arg: Uint8Array, caller: CanisterId | undefined, depth: number): Response {
    const origin: QueryOrigin = { kind: "query", caller: caller === undefined ? this.message.caller : (caller as string as PrincipalText) };
    if (caller !== undefined && (id as string) === MANAGEMENT_CANISTER) return this.managementQueryAnswer(caller, method, arg);
    const committed = this.lookup(id);
    if (committed === undefined) return failedAnswer(caller, canisterNotFound(id));
    const exec = committed.execution;
    const composite = `canister_composite_query ${method}`;
    if (exec === undefined || !exec.exports.includes(composite)) {
      const r = executeQuery(this.ctx, committed, { kind: "query", caller: origin.caller, method, arg }, this.remaining());
      this.account(r);
      const answer = r.responses[0]?.response;
      assert(answer !== undefined, "a query produced no answer");
      return answerTo(caller, answer);
    }
    if (committed.status !== "running") return failedAnswer(caller, canisterNotRunning(committed.id, committed.status));
    return this.callComposite(committed, exec, composite, origin, arg, caller, depth);
  }

  /**
   * A composite query method in its own call context, then the callbacks of the calls it makes
   * (each callee's call tree first), until one of them answers.
   */
  private callComposite(
    committed: CanisterState,
    exec: ExecutionState,
    entry: string,
    origin: QueryOrigin,
    arg: Uint8Array,
    caller: CanisterId | undefined,
    depth: number,
  ): Response {
    const { li, out } = invokeOn(this.ctx, committed, exec, {
      ...NOTHING_RECEIVED,
      context: "CQ",
      caller: origin.caller,
      arg,
      responsePending: true,
      compositeCalls: true,
      ...(this.message.dataCertificate === undefined || depth > 0 ? {} : { dataCertificate: this.message.dataCertificate }),
      run: (x) => x.callExport(entry),
    }, this.remaining());
    this.account({ instructionsUsed: out.instructionsUsed, debugLog: out.session.debugLog, readTime: out.session.usedTime });
    if (out.trap !== undefined) {
      this.ctx.instances.discard(committed.id, li, exec);
      return failedAnswer(caller, hypervisorUserError(committed.id, out.trap.error));
    }
    const opened = openContext(committed, origin, 0n);
    const first = finishCall(commit(opened.canister, exec, li, out.session), opened.contextId, out, 0, this.params.timeNs);
    // This context's own copy of the canister, advanced by its callbacks only.
    let current = first.canister;
    let response = first.responses.find((r) => r.origin.kind === "query")?.response;
    const queue = [...first.outgoingCalls];
    if (response === undefined && queue.length > 0 && depth >= MAX_COMPOSITE_QUERY_DEPTH) throw new QueryGraphFailure(compositeQueryTooDeep);
    for (let next = queue.shift(); response === undefined && next !== undefined; next = queue.shift()) {
      this.checkBudget();
      const answer = this.call(next.callee, next.method, next.arg, committed.id, depth + 1);
      this.checkBudget();
      const r = executeResponse(this.ctx, current, { kind: "response", callbackId: next.callbackId, response: answer, refundedCycles: 0n }, this.remaining(), true);
      this.account(r);
      current = r.canister;
      queue.push(...r.outgoingCalls);
      response = r.responses.find((x) => x.origin.kind === "query")?.response;
    }
    if (response === undefined) return failedAnswer(caller, queryDidNotRespond(committed.id));
    return answerTo(caller, response);
  }
}
