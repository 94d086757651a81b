// A small synthetic run report for the report tests: n = 4, a fork, a Byzantine collusion, a
// partition and a crash, and hostile text wherever a scenario or a message can put text.
import type { HtmlReportInput } from "../../harness/report/html.ts";

export const HOSTILE = `<script>alert("pwned")</script> & 'quotes' <img src=x onerror=alert(1)>`;

export function syntheticReport(overrides: Partial<HtmlReportInput> = {}): HtmlReportInput {
  const progress = [0, 1, 2, 3].map((r) => {
    const samples: [number, number][] = [];
    const top = r === 2 ? 30 : 20;
    for (let h = 1; h <= top; h++) samples.push([h * 400 + r * 7, h]);
    return samples;
  });
  return {
    scenario: `fork<&>"name"`,
    description: HOSTILE,
    seed: 42,
    n: 4,
    f: 1,
    durationS: 20,
    verdict: "safety",
    expected: { verdict: "safety", replicas: ["r2", "r3"] },
    asExpected: true,
    traceDigest: "ab".repeat(32),
    traceEvents: 1234,
    maliciousEvents: 7,
    replicas: [
      { replica: "r0", role: "byzantine", finalizedHeight: 20, deliveredHeight: 20, stateHash: "11".repeat(32) },
      { replica: "r1", role: "byzantine", finalizedHeight: 20, deliveredHeight: 20, stateHash: "11".repeat(32) },
      { replica: "r2", role: "honest", finalizedHeight: 30, deliveredHeight: 30, stateHash: "22".repeat(32) },
      { replica: "r3", role: "crashed", finalizedHeight: 20, deliveredHeight: 20, stateHash: "11".repeat(32) },
    ],
    violations: [
      { property: "safety", height: 8, replicas: ["r3", "r2"], message: `fork at height 8: r3 finalized 130708cf1889; r2 finalized 5bf85b6b6801 ${HOSTILE}` },
    ],
    livenessChecked: false,
    notes: [`note with ${HOSTILE}`],
    ingress: { submitted: 100, valid: 90, finalized: 80, latencyMsP50: 640, latencyMsP99: 1900 },
    network: { sent: 1000, delivered: 900, dropped: 100, duplicated: 3, bytesSent: 1_500_000 },
    eventCounts: { deliver: 900, "fault.equivocate": 4, [`weird<kind>&`]: 1 },
    faults: [
      { kind: "collude", replicas: [0, 1], sideA: [2], fromS: 2 },
      { kind: "partition", groups: [[0, 1]], fromS: 5, toS: 9 },
      { kind: "crash", replicas: [3], atS: 12, restartS: 15 },
      { kind: "network", effect: "loss", percent: 10, fromS: 1, toS: 3 },
    ],
    progress,
    blocks: Array.from({ length: 30 }, (_, i) => ({ height: i + 1, timeMs: (i + 1) * 400, rank: i % 7 === 3 ? 1 : 0, maker: `r${i % 4}`, ingress: i % 5, payloadBytes: (i % 5) * 256 })),
    latencyHistogram: [
      { upToMs: 250, count: 0 }, { upToMs: 500, count: 10 }, { upToMs: 750, count: 40 }, { upToMs: 1000, count: 20 },
      { upToMs: 2000, count: 9 }, { upToMs: -1, count: 1 },
    ],
    stateHashTable: {
      heights: [5, 8, 20],
      rows: [
        { replica: "r0", hashes: ["aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb", "cccccccccccccccc"] },
        { replica: "r1", hashes: ["aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb", "cccccccccccccccc"] },
        { replica: "r2", hashes: ["aaaaaaaaaaaaaaaa", "dddddddddddddddd", null] },
        { replica: "r3", hashes: ["aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb", "cccccccccccccccc"] },
      ],
    },
    scenarioPath: "scenarios/<fork>.ts",
    scenarioContentHash: "cd".repeat(32),
    replayCommand: `npx subnetlab replay "reports/<odd> & dir/repro.json"`,
    ...overrides,
  };
}
