// @dfinity/agent 3.4.3 for the interop tests. It lives in a package of its own (package.json here,
// linked as the devDependency `subnetlab-dfinity-agent-3`) because it requires @noble/hashes and
// @noble/curves 1.x as peers while subnetlab itself uses 2.x: npm can only nest those peers under a
// package other than the root. Import the agent through this file so it resolves to that copy.
export * from "@dfinity/agent";
