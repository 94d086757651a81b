// Scheduler properties. Expected values come from the paper (USENIX ATC'23, Appendix A: a canister
// with compute allocation a gets at least a % of the rounds, s(|a|) = a) and from
// research/ic-protocol.md §4.3 (invariant Σ(AP − credit) = 0, ordering, long-execution cores).
//
// The tests drive planRound/finishRound with a small model of an execution round: every core has
// `budget` instruction units; a canister runs its queued messages (cost `cost` each) while the
// core has budget; "fully executed" = first on its core, or ran out of work (incl. idle).
import test from "ava";
import fc from "fast-check";
import { canisterIdFromU64, type CanisterId } from "../../harness/execution/interfaces.ts";
import {
  APP_SUBNET_SCHEDULER_CONFIG,
  allocatableComputePercent,
  compareCanisterIds,
  coreRoundBudget,
  finishRound,
  planRound,
  priorityImbalance,
  reconcileSchedulingStates,
  SchedulingStates,
  type CanisterSchedulingState,
  type RoundSchedule,
  type SchedulerConfig,
} from "../../harness/execution/scheduler.ts";

const ids = Array.from({ length: 40 }, (_, i) => canisterIdFromU64(BigInt(i)));
const cfg = (cores: number): SchedulerConfig => ({ ...APP_SUBNET_SCHEDULER_CONFIG, cores });

/** Messages queued per canister this round; Infinity = always has work. */
type Workload = (round: number, index: number) => number;

interface SimResult {
  readonly fullRounds: number[]; // per canister: rounds it was fully executed
  readonly firstOnCore: number[]; // per canister: rounds it was first on a core
  readonly schedules: RoundSchedule[];
  readonly states: CanisterSchedulingState[];
  readonly imbalances: bigint[];
  /** fullRounds after each round (prefix counts). */
  readonly history: number[][];
}

function simulate(config: SchedulerConfig, allocations: readonly number[], workload: Workload, rounds: number, messagesPerCore = 4): SimResult {
  let states = reconcileSchedulingStates(
    SchedulingStates.EMPTY,
    allocations.map((a, i) => ({ id: ids[i]!, computeAllocationPercent: a })),
  );
  const index = new Map(allocations.map((_, i) => [ids[i]!, i]));
  const fullRounds = allocations.map(() => 0);
  const firstOnCore = allocations.map(() => 0);
  const schedules: RoundSchedule[] = [];
  const imbalances: bigint[] = [];
  const history: number[][] = [];
  for (let r = 1; r <= rounds; r++) {
    const queued = allocations.map((_, i) => workload(r, i));
    const work = allocations.map((_, i) => ({ id: ids[i]!, hasWork: queued[i]! > 0, hasLongExecution: false }));
    const schedule = planRound(config, r, states, work);
    schedules.push(schedule);
    const full = new Set<CanisterId>();
    for (const core of schedule.cores) {
      let budget = messagesPerCore;
      core.forEach((id, position) => {
        const i = index.get(id)!;
        if (position === 0) {
          full.add(id);
          firstOnCore[i]!++;
        }
        const run = Math.min(budget, queued[i]!);
        budget -= run;
        queued[i] = queued[i]! - run;
        if (queued[i] === 0) full.add(id);
      });
    }
    allocations.forEach((_, i) => {
      if (queued[i] === 0) full.add(ids[i]!); // idle or drained: ran out of work
    });
    const notFully = new Set(allocations.map((_, i) => ids[i]!).filter((id) => !full.has(id)));
    states = finishRound(config, schedule, { notFullyExecuted: notFully, longExecutionAfter: new Set() });
    for (const id of full) fullRounds[index.get(id)!]!++;
    imbalances.push(priorityImbalance(states));
    history.push([...fullRounds]);
  }
  return { fullRounds, firstOnCore, schedules, states: states.list(), imbalances, history };
}

test("config: app-subnet budget per core is 7B − 5B + 1 (§4.2) and allocatable compute is 150 % on 4 cores (§4.3)", (t) => {
  t.is(coreRoundBudget(APP_SUBNET_SCHEDULER_CONFIG), 2_000_000_001n);
  t.is(allocatableComputePercent(APP_SUBNET_SCHEDULER_CONFIG), 150);
});

test("ordering: higher accumulated priority first, canister id breaks ties (§4.3)", (t) => {
  const states = reconcileSchedulingStates(SchedulingStates.EMPTY, [0, 1, 2, 3, 4].map((i) => ({ id: ids[i]!, computeAllocationPercent: 0 }))).list();
  const boosted = SchedulingStates.fromList(states.map((s, i) => (i === 3 ? { ...s, accumulatedPriority: 10n } : i === 0 ? { ...s, accumulatedPriority: -10n } : s)));
  const schedule = planRound(cfg(2), 1, boosted, states.map((s) => ({ id: s.id, hasWork: true, hasLongExecution: false })));
  t.deepEqual(schedule.order, [ids[3], ids[1], ids[2], ids[4], ids[0]]);
  // round-robin over cores in that order
  t.deepEqual(schedule.cores, [
    [ids[3], ids[2], ids[0]],
    [ids[1], ids[4]],
  ]);
});

test("canister ids compare in principal byte order, not text order", (t) => {
  const sorted = [...ids.slice(0, 12)].sort(compareCanisterIds);
  t.deepEqual(sorted, ids.slice(0, 12)); // ids[i] encodes u64 i big-endian
  t.notDeepEqual([...ids.slice(0, 12)].sort(), ids.slice(0, 12)); // text order differs: the test can tell
});

test("long executions: prioritized on dedicated first cores, ahead of higher-priority new work (§4.3)", (t) => {
  const states = reconcileSchedulingStates(SchedulingStates.EMPTY, [0, 1, 2, 3, 4, 5].map((i) => ({ id: ids[i]!, computeAllocationPercent: 0 }))).list();
  const rich = SchedulingStates.fromList(states.map((s, i) => (i === 5 ? { ...s, accumulatedPriority: 1000n } : i === 0 ? { ...s, accumulatedPriority: -1000n } : s)));
  const work = states.map((s, i) => ({ id: s.id, hasWork: true, hasLongExecution: i === 1 || i === 2 }));
  const schedule = planRound(cfg(4), 1, rich, work);
  // fair share of one canister = 100·4/6 % ⇒ two long ones need ceil(133/100) = 2 cores
  t.is(schedule.longExecutionCores, 2);
  t.deepEqual(schedule.prioritized, [ids[1], ids[2]]);
  // new work (by priority: 5, 3, 4, 0) round-robins over the two remaining cores
  t.deepEqual(schedule.cores, [[ids[1]], [ids[2]], [ids[5], ids[4]], [ids[3], ids[0]]]);
  t.is(schedule.states.get(ids[1]!)?.longExecutionMode, "prioritized");
  // the long execution keeps its credit (not yet charged) while it stays paused
  const after = finishRound(cfg(4), schedule, { notFullyExecuted: new Set([0, 2, 3, 4].map((i) => ids[i]!)), longExecutionAfter: new Set([ids[1]!]) });
  const long = after.get(ids[1]!)!;
  t.is(long.priorityCredit, 100n * schedule.multiplier);
  t.is(priorityImbalance(after), 0n);
  // next round: the prioritized long execution stays first, even with lower priority
  const next = planRound(cfg(4), 2, after, after.list().map((s) => ({ id: s.id, hasWork: true, hasLongExecution: s.id === ids[1] })));
  t.is(next.order[0], ids[1]);
});

test("reset every accumulatedPriorityResetInterval rounds: priorities = alloc·mult − cores·Σalloc, credits 0", (t) => {
  const config = { ...cfg(2), accumulatedPriorityResetInterval: 10 };
  const states = reconcileSchedulingStates(SchedulingStates.EMPTY, [10, 30, 0].map((a, i) => ({ id: ids[i]!, computeAllocationPercent: a }))).list();
  const skewed = SchedulingStates.fromList(states.map((s, i) => ({ ...s, accumulatedPriority: BigInt(i * 100 - 100), priorityCredit: 0n })));
  const s = planRound(config, 10, skewed, []);
  // mult = 2 cores × 3 canisters = 6; centre = 2 × 40 = 80
  t.deepEqual(s.states.list().map((x) => x.accumulatedPriority), [60n - 80n, 180n - 80n, -80n]);
  t.is(priorityImbalance(s.states), 0n);
});

// ---------------------------------------------------------------------------------------------
// Appendix A theorem, in the form checked here (the paper's s(|a|) = a, in whole rounds):
//   For every canister c with allocation a_c that always has work, on a subnet with n ≥ cores
//   canisters, Σ alloc ≤ allocatable (½ of (cores − 1)·100 %) and any workload of the others,
//   EVERY window of W consecutive rounds contains ≥ ⌊a_c·W/100⌋ − 1 rounds in which c is fully
//   executed.
// Why: with n ≥ cores at least `cores` canisters are charged per round (k ≥ cores), so c's gain per
// round is g_c = a_c + (100k − Σa)/n ≥ a_c. Summing gains and charges over a window,
//   S_c(window) = (Σ gains + AP_c(start) − AP_c(end)) / (100·mult) ≥ W·a_c/100 − (AP_c(end) − AP_c(start))/(100·mult),
// and an always-busy canister's AP never climbs more than one charge above its level at the start
// of a window without it being among the `cores` highest (then it is first on a core and charged).
// The "− 1" is needed: fresh canisters start at priority 0, so a 100 % canister with the largest id
// can lose round 1 to id tie-breaking (fast-check found exactly that case without the slack).
// The test also fails if allocations are ignored in finishRound (checked by mutation).
test("property (Appendix A): in every window of W rounds an always-busy canister with allocation a gets ≥ ⌊a·W/100⌋ − 1 full rounds", (t) => {
  const scenario = fc
    .record({
      cores: fc.integer({ min: 1, max: 4 }),
      extra: fc.integer({ min: 0, max: 8 }),
      rounds: fc.integer({ min: 20, max: 160 }),
      seedWork: fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 64, maxLength: 64 }),
      allocSeeds: fc.array(fc.integer({ min: 0, max: 100 }), { minLength: 12, maxLength: 12 }),
      busy: fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }),
    })
    .map((s) => {
      const n = s.cores + s.extra;
      const cap = Math.floor(((s.cores - 1) * 100) / 2);
      let left = cap;
      const allocations = Array.from({ length: n }, (_, i) => {
        const a = Math.min(left, s.allocSeeds[i % 12]!);
        left -= a;
        return a;
      });
      return { ...s, n, allocations };
    });
  fc.assert(
    fc.property(scenario, (s) => {
      const busy = (i: number): boolean => s.busy[i % 12] === true || i === 0;
      const workload: Workload = (r, i) => (busy(i) ? Infinity : s.seedWork[(r * 7 + i * 13) % 64]!);
      const res = simulate(cfg(s.cores), s.allocations, workload, s.rounds);
      const countAt = (round: number, i: number): number => (round === 0 ? 0 : res.history[round - 1]![i]!);
      for (let i = 0; i < s.n; i++) {
        if (!busy(i) || s.allocations[i] === 0) continue;
        for (let from = 0; from < s.rounds; from++) {
          for (let to = from + 1; to <= s.rounds; to++) {
            const owed = Math.floor((s.allocations[i]! * (to - from)) / 100) - 1;
            if (countAt(to, i) - countAt(from, i) < owed) return false;
          }
        }
      }
      return true;
    }),
    {
      numRuns: 150,
      seed: 2023,
      // found by fast-check when the bound had no "− 1": a 100 % canister with the largest id loses
      // round 1 to id tie-breaking among fresh canisters
      examples: [[{ cores: 4, extra: 1, rounds: 20, seedWork: Array.from({ length: 64 }, (_, k) => (k === 20 ? 1 : 0)), allocSeeds: [0, 0, 0, 0, 100, 0, 0, 0, 0, 0, 0, 0], busy: [false, false, true, true, true, false, false, false, false, false, false, false], n: 5, allocations: [0, 0, 0, 0, 100] }]],
    },
  );
  t.pass();
});

test("theorem, concrete: 4 cores, 30 always-busy canisters, one with 50 % gets ≥ 49 of 100 rounds; without allocation ≈ 4/30", (t) => {
  const allocations = ids.slice(0, 30).map((_, i) => (i === 7 ? 50 : 0));
  const res = simulate(cfg(4), allocations, () => Infinity, 100);
  t.true(res.fullRounds[7]! >= 49, `allocated canister ran ${res.fullRounds[7]} rounds`);
  // the rest share the remaining 400 − ~50 core-rounds: ⌊350/29⌋ = 12 each, ±1
  for (let i = 0; i < 30; i++) if (i !== 7) t.true(Math.abs(res.fullRounds[i]! - 350 / 29) <= 1.5, `canister ${i}: ${res.fullRounds[i]}`);
});

test("property (fairness): equal allocations, constant work ⇒ full-round counts differ by at most 1 over any prefix", (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 40 }), fc.integer({ min: 10, max: 200 }), (cores, extra, alloc, rounds) => {
      const n = cores + extra;
      const a = Math.min(alloc, Math.floor(((cores - 1) * 100) / 2 / n));
      const allocations = Array.from({ length: n }, () => a);
      const res = simulate(cfg(cores), allocations, () => Infinity, rounds);
      // every prefix W = 1..rounds is a window starting at the (fresh) start
      const balanced = res.history.every((counts) => Math.max(...counts) - Math.min(...counts) <= 1);
      // total is exactly min(cores, n) per round (only the first on each core runs under constant work)
      const total = res.fullRounds.reduce((x, y) => x + y, 0);
      return balanced && total === Math.min(cores, n) * rounds;
    }),
    { numRuns: 150, seed: 5 },
  );
  t.pass();
});

test("property (invariant): Σ(accumulated priority − priority credit) = 0 after every round, any workload", (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 4 }),
      fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 15 }),
      fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 32, maxLength: 32 }),
      (cores, allocs, work) => {
        let left = 100 * cores;
        const allocations = allocs.map((a) => {
          const x = Math.min(a, left);
          left -= x;
          return x;
        });
        const res = simulate(cfg(cores), allocations, (r, i) => work[(r + i * 3) % 32]!, 60);
        return res.imbalances.every((x) => x === 0n);
      },
    ),
    { numRuns: 150, seed: 9 },
  );
  t.pass();
});

test("property (determinism): the plan does not depend on the order of the work list, and replays identically", (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 4 }), fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 2, maxLength: 12 }), fc.integer(), (cores, work, shuffleSeed) => {
      const states = reconcileSchedulingStates(SchedulingStates.EMPTY, work.map((_, i) => ({ id: ids[i]!, computeAllocationPercent: i % 3 === 0 ? 10 : 0 })));
      const workList = work.map((w, i) => ({ id: ids[i]!, hasWork: w > 0, hasLongExecution: w === 3 }));
      // deterministic permutation from the seed
      const permuted = [...workList].sort((a, b) => ((a.id.length * 31 + shuffleSeed) ^ a.id.charCodeAt(3)) - ((b.id.length * 31 + shuffleSeed) ^ b.id.charCodeAt(3)) || (shuffleSeed & 1 ? 1 : -1));
      const p1 = planRound(cfg(cores), 3, states, workList);
      const p2 = planRound(cfg(cores), 3, states, permuted);
      const r1 = simulate(cfg(cores), work.map((_, i) => (i % 3 === 0 ? 10 : 0)), (r, i) => (work[i]! * r) % 4, 30);
      const r2 = simulate(cfg(cores), work.map((_, i) => (i % 3 === 0 ? 10 : 0)), (r, i) => (work[i]! * r) % 4, 30);
      return JSON.stringify(p1, (_, v) => (typeof v === "bigint" ? `${v}n` : v)) === JSON.stringify(p2, (_, v) => (typeof v === "bigint" ? `${v}n` : v)) &&
        JSON.stringify(r1.fullRounds) === JSON.stringify(r2.fullRounds) &&
        JSON.stringify(r1.states, (_, v) => (typeof v === "bigint" ? `${v}n` : v)) === JSON.stringify(r2.states, (_, v) => (typeof v === "bigint" ? `${v}n` : v));
    }),
    { numRuns: 100, seed: 3 },
  );
  t.pass();
});

test("reconcile: creating and deleting canisters keeps Σ(AP − credit) = 0", (t) => {
  const a = reconcileSchedulingStates(SchedulingStates.EMPTY, [0, 1, 2].map((i) => ({ id: ids[i]!, computeAllocationPercent: 5 })));
  const skew = SchedulingStates.fromList(a.list().map((s, i) => ({ ...s, accumulatedPriority: [7n, -3n, -4n][i]! })));
  const b = reconcileSchedulingStates(skew, [1, 2, 3].map((i) => ({ id: ids[i]!, computeAllocationPercent: 5 })));
  t.deepEqual(b.ids, [ids[1], ids[2], ids[3]]);
  t.is(priorityImbalance(b), 0n);
  // 7 orphaned over 3 ⇒ 2 each plus the remainder 1 to the smallest id
  t.deepEqual(b.list().map((s) => s.accumulatedPriority), [-3n + 3n, -4n + 2n, 2n]);
});
