// Kept so that imports by path keep working: @dfinity/identity 3.4.3 now comes from the package
// subnetlab-dfinity-agent-3 (fixtures/agents/dfinity-agent-3, installed apart: see .npmrc).
export * from "subnetlab-dfinity-agent-3/identity";
