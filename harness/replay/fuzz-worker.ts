// A fuzz worker process: runs the seeds the parent sends (fuzz.ts) and reports each result.
// Worker processes only add parallelism; each case is deterministic on its own.
import { fuzzCase, type FuzzCaseOptions } from "./fuzz.ts";

type Request = { readonly type: "run"; readonly seed: number; readonly options: FuzzCaseOptions } | { readonly type: "exit" };

const send = (message: unknown): void => {
  process.send?.(message);
};

process.on("message", (request: Request) => {
  if (request.type === "exit") {
    process.disconnect?.();
    process.exit(0);
  }
  try {
    // Timing is the parent's job (it holds the only clock); this process only computes.
    send({ type: "result", result: fuzzCase(request.seed, request.options, () => 0) });
  } catch (error) {
    send({ type: "error", error: (error as Error).stack ?? String(error) });
  }
});
send({ type: "ready" });
