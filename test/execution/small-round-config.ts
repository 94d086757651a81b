// A round configuration small enough for the model executor's instruction costs: 1,000-instruction
// slices, 3,000 per round, 5,000 per message, 2 cores (shared by round.test.ts and dts.test.ts).
import type { RoundConfig } from "../../harness/execution/round.ts";
import { APP_SUBNET_SCHEDULER_CONFIG } from "../../harness/execution/scheduler.ts";

export const smallConfig: RoundConfig = {
  scheduler: {
    ...APP_SUBNET_SCHEDULER_CONFIG,
    cores: 2,
    maxInstructionsPerRound: 3_000n,
    maxInstructionsPerSlice: 1_000n,
    maxInstructionsPerMessage: 5_000n,
    maxInstructionsPerMessageWithoutDts: 1_000n,
    instructionOverheadPerExecution: 10n,
    instructionOverheadPerCanister: 20n,
  },
  dtsEnabled: true,
  heapDeltaCapacityBytes: 1 << 30,
  heapDeltaInitialReserveBytes: 1 << 28,
  checkpointIntervalRounds: 10,
  maxIterations: 50,
};
