// Public entry point of the subnetlab package.
export { defineScenario, type Scenario, type Expectation } from "./scenario/scenario.ts";
export { runScenario, type RunReport, type RunOptions } from "./scenario/runner.ts";
export { loadScenario } from "./scenario/load.ts";
// Scenarios with canisters, an ExecutionLab or a WasmExecutor need the Wasm instrumenter, loaded on
// demand: `await prepareScenario(scenario)` or `await ensureInstrumenter()` first (loadScenario does).
export { prepareScenario } from "./scenario/prepare.ts";
export { ensureInstrumenter } from "./execution/instrumenter.ts";
export type { FaultSpec, FaultKind } from "./faults/spec.ts";
export type { Violation, VerdictText } from "./checks/checks.ts";
export { EXIT, exitCodeOf } from "./report/exit-codes.ts";
export { SimSubnet } from "./replica/subnet.ts";
export { Rng } from "./sim/rng.ts";
// The execution environment on its own, PocketIC-style (see README "Canisters without a subnet").
export { ExecutionLab, LabError, WasmExecutor } from "./execution/index.ts";
export { APP_SUBNET_ROUND_CONFIG } from "./execution/round.ts";
// The IC HTTP interface, and a simulated subnet the official agent talks to in-process (README
// "Use the official agent against a simulated subnet").
export { httpHandler } from "./http/handler.ts";
export type { HttpHandler, HttpNodeDeps, HttpRequest, HttpResponse, QueryResponseSigner } from "./http/interfaces.ts";
export { subnetFacts, type SubnetFacts } from "./http/facts.ts";
export { AGENT_CLOCK_LEAD_MS, simulatedAgentSubnet, type AgentSubnet, type AgentSubnetOptions } from "./http/sim-subnet.ts";
export { SimHttpGateway, type SimGatewayOptions } from "./http/sim-gateway.ts";
export { replicaId, timeUs } from "./types.ts";
