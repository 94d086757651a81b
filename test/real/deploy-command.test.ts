// Issue 12 item 7, `subnetlab deploy` without a cluster: its refusals (one line, exit 2) and the
// Candid text it encodes for --arg-candid. The deploy against a running cluster is in
// test/real/up-xnet.test.ts. Expected Candid bytes come from @dfinity/candid encoding the same
// values under explicitly written types (the Candid spec's encoding, not this parser's guesses).
import test from "ava";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { IDL } from "@dfinity/candid";
import { Principal } from "@dfinity/principal";
import { CandidTextError, encodeCandidText } from "../../harness/real/candid-text.ts";
import { runDeploy } from "../../harness/real/deploy-command.ts";

const CLI = new URL("../../harness/cli.ts", import.meta.url).pathname;

/** The CLI as a user runs it (one process: the dispatch and --help reach the command). */
function cli(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ["--import", "tsx", CLI, ...args], { timeout: 120_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : -1, stdout, stderr });
    });
  });
}

/** The command in this process (spawning one per case is slow on a loaded machine). */
async function deployIn(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await runDeploy(args, { out: (text) => (stdout += text), err: (text) => (stderr += text) });
  return { code, stdout, stderr };
}

const bytes = (b: ArrayBuffer | Uint8Array): string => Buffer.from(b instanceof Uint8Array ? b : new Uint8Array(b)).toString("hex");

test("item 7: --arg-candid encodes Candid text as @dfinity/candid encodes the same typed values", (t) => {
  t.is(bytes(encodeCandidText('("alice", 1_000 : nat)')), bytes(IDL.encode([IDL.Text, IDL.Nat], ["alice", 1000n])));
  t.is(bytes(encodeCandidText("(42, -7)")), bytes(IDL.encode([IDL.Nat, IDL.Int], [42n, -7n])), "numbers are nat, negative ones int");
  t.is(bytes(encodeCandidText("(5 : nat8, 70000 : nat32, 1 : int64, 1.5 : float64)")), bytes(IDL.encode([IDL.Nat8, IDL.Nat32, IDL.Int64, IDL.Float64], [5, 70000, 1n, 1.5])));
  t.is(
    bytes(encodeCandidText('(record { owner = principal "aaaaa-aa"; tags = vec { "a"; "b" }; memo = opt blob "\\01\\ffz" }, true, null)')),
    bytes(
      IDL.encode(
        [IDL.Record({ owner: IDL.Principal, tags: IDL.Vec(IDL.Text), memo: IDL.Opt(IDL.Vec(IDL.Nat8)) }), IDL.Bool, IDL.Null],
        [{ owner: Principal.fromText("aaaaa-aa"), tags: ["a", "b"], memo: [new Uint8Array([1, 255, 0x7a])] }, true, null],
      ),
    ),
  );
  t.is(bytes(encodeCandidText("()")), bytes(IDL.encode([], [])));
  t.is(bytes(encodeCandidText('"bare"')), bytes(IDL.encode([IDL.Text], ["bare"])), "one value without parentheses");
});

test("item 7: --arg-candid refuses what it cannot type, saying where", (t) => {
  for (const [text, why] of [
    ["(300 : nat8)", /out of range for nat8/],
    ["(-1 : nat)", /negative/],
    ["(variant { a })", /variants need their type/],
    ['("a" : nat)', /annotates a number/],
    ["(1, 2", /expected/],
    ["(vec { 1; \"x\" })", /mixes/],
    ["(1) junk", /unexpected text/],
  ] as const) {
    const error = t.throws(() => encodeCandidText(text), { instanceOf: CandidTextError }, text);
    t.regex(error?.message ?? "", why, text);
    t.regex(error?.message ?? "", /at character \d+/);
  }
});

test("item 7: subnetlab deploy refuses a missing file, a non-Wasm file, a bad option and an unreachable cluster in one line (exit 2)", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "subnetlab-deploy-"));
  try {
    const notWasm = join(dir, "notes.wasm");
    writeFileSync(notWasm, "hello");
    const gzNotWasm = join(dir, "notes.wasm.gz");
    writeFileSync(gzNotWasm, gzipSync(Buffer.from("hello")));
    const wasm = join(dir, "empty.wasm");
    writeFileSync(wasm, new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]));
    const cases: [readonly string[], RegExp][] = [
      [[join(dir, "missing.wasm"), "--url", "http://127.0.0.1:9"], /wasm file .*missing\.wasm not found/],
      [[notWasm, "--url", "http://127.0.0.1:9"], /is not a Wasm module/],
      [[gzNotWasm, "--url", "http://127.0.0.1:9"], /gzip-compressed but not a Wasm module/],
      [[wasm, "--mode", "upgrade", "--url", "http://127.0.0.1:9"], /--mode upgrade needs --canister-id/],
      [[wasm, "--arg", "xyz", "--url", "http://127.0.0.1:9"], /--arg takes hex bytes/],
      [[wasm, "--dir", dir], /no cluster in .*cluster\.json/],
      [[wasm, "--url", "http://127.0.0.1:9"], /not reachable at http:\/\/127\.0\.0\.1:9/],
    ];
    for (const [args, message] of cases) {
      const run = await deployIn(args);
      t.is(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
      t.regex(run.stderr, message);
      t.is(run.stderr.trim().split("\n").length, 1, "one line");
      t.is(run.stdout, "");
    }
    const help = await cli(["deploy", "--help"]);
    t.is(help.stderr, "");
    t.is(help.code, 0);
    t.regex(help.stdout, /--arg-candid TEXT/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
