// binaryen.js, loaded once. It is one 15 MB ES module; under a TypeScript loader hook (tsx, which
// runs the tests, scripts and CLI) it would be re-scanned for dynamic imports and given a source
// map on every process start, which costs ~4 s of CPU. A file URL carrying a `tsx-namespace` query
// parameter is left to Node's own loader by tsx; without tsx the parameter is simply ignored. The
// module is the same either way (only how it is loaded differs), so this is a pure optimisation.
import type Binaryen from "binaryen";

async function load(): Promise<typeof Binaryen> {
  try {
    const url = new URL(import.meta.resolve("binaryen"));
    url.searchParams.set("tsx-namespace", "subnetlab-native");
    return ((await import(url.href)) as { default: typeof Binaryen }).default;
  } catch {
    return (await import("binaryen")).default;
  }
}

const binaryen: typeof Binaryen = await load();
export default binaryen;
