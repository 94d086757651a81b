// noop: Toxiproxy registers it as a toxic type too (toxics/noop.go), so it is accepted here.
import { passThrough, type ToxicKind } from "./io.ts";

export const noop: ToxicKind = {
  type: "noop",
  fields: [],
  run: (io) => passThrough(io),
};
