// The management canister's and install_code's refusals in the replica's words (issue 15 item 1),
// each naming the dfinity/ic source it comes from.
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import { IDL } from "@dfinity/candid";
import { Principal } from "@dfinity/principal";
import { ExecutionLab, LabError, MANAGEMENT_CANISTER, MANAGEMENT_TYPES, type CanisterId, type PrincipalText } from "../../harness/execution/index.ts";
import { settingsRecord, wat } from "./helpers.ts";

const T = MANAGEMENT_TYPES;
const ic = MANAGEMENT_CANISTER as string as CanisterId;
const me = "fo76k-ecero-uccwk-zx7jh-w5c7w-4uo7t-y5j4z-m7fiq-z6sgk-vobym-cae" as PrincipalText;
const call = (lab: ExecutionLab, method: keyof typeof T, arg: unknown): unknown[] => {
  const types = T[method];
  return lab.update(ic, method, types.arg === undefined ? [] : [types.arg], types.arg === undefined ? [] : [arg], [...types.ret], { caller: me });
};
const settings = settingsRecord;
const principals = (n: number): Principal[] => Array.from({ length: n }, (_, i) => Principal.fromUint8Array(Uint8Array.from([i + 1])));
const refusal = (f: () => unknown): LabError => {
  const e = (() => {
    try {
      f();
    } catch (x) {
      return x;
    }
    return undefined;
  })();
  if (!(e instanceof LabError)) throw new Error(`expected a LabError, got ${String(e)}`);
  return e;
};

test("more than 10 controllers: refused while decoding the settings (BoundedVec of 10, management_canister_types bounded_vec.rs), IC0408", (t) => {
  const lab = new ExecutionLab();
  const create = refusal(() => call(lab, "provisional_create_canister_with_cycles", { amount: [], settings: [settings({ controllers: [principals(11)] })], specified_id: [], sender_canister_version: [] }));
  t.is(create.errorCode, "IC0408");
  t.regex(create.message, /Error decoding candid: Deserialize error: The number of elements exceeds maximum allowed 10$/);
  const [{ canister_id }] = call(lab, "provisional_create_canister_with_cycles", { amount: [], settings: [settings({ controllers: [principals(10)] })], specified_id: [], sender_canister_version: [] }) as [
    { canister_id: Principal },
  ];
  t.is(lab.canister(canister_id.toText() as CanisterId).controllers.length, 10, "ten are allowed");
  // The list counts as given: eleven entries with a duplicate are still eleven.
  const update = refusal(() => call(lab, "update_settings", { canister_id, settings: settings({ controllers: [[...principals(10), principals(1)[0]]] }), sender_canister_version: [] }));
  t.is(update.errorCode, "IC0408");
  t.regex(update.message, /The number of elements exceeds maximum allowed 10$/);
});

test("upgrade of an empty canister: HypervisorError::WasmModuleNotFound (upgrade.rs), IC0537 with its hint", (t) => {
  const lab = new ExecutionLab();
  const [{ canister_id }] = call(lab, "provisional_create_canister_with_cycles", { amount: [], settings: [settings({ controllers: [[Principal.fromText(me)]] })], specified_id: [], sender_canister_version: [] }) as [
    { canister_id: Principal },
  ];
  const e = refusal(() =>
    call(lab, "install_code", { mode: { upgrade: [] }, canister_id, wasm_module: wat("(module (memory 1))"), arg: new Uint8Array(), sender_canister_version: [] }),
  );
  t.is(e.errorCode, "IC0537");
  t.regex(
    e.message,
    new RegExp(
      `Error from Canister ${canister_id.toText()}: Attempted to execute a message, but the canister contains no Wasm module\\.\\.\\nPlease install code to this canister before calling it\\. See documentation: \\S+#wasm-module-not-found$`,
    ),
  );
});

test("raw_rand answers 32 bytes wherever the management canister runs (no lab-only refusal left)", (t) => {
  const lab = new ExecutionLab();
  const [bytes] = call(lab, "raw_rand", undefined) as [Uint8Array];
  t.is(bytes.length, 32);
  t.is(IDL.Vec(IDL.Nat8).name.length > 0, true);
});
