// @dfinity/identity 3.4.3 for the interop tests (see agent.ts for why it lives here).
export * from "@dfinity/identity";
