// Child-process twin of instance-reuse.test.ts: prints sequenceDigest(seed, length) computed in a
// fresh process (no module cache, no live instance, no page store shared with the test's process).
import { ensureInstrumenter } from "../../harness/execution/instrumenter.ts";
import { sequenceDigest } from "./reuse-helpers.ts";

// A child process loads binaryen itself (harness code loads it on demand only).
await ensureInstrumenter();

const [seed = "7", length = "40"] = process.argv.slice(2);
console.log(sequenceDigest(Number(seed), Number(length)));
