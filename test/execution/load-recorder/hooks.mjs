// Module loader hooks for register.mjs: append each loaded URL to SUBNETLAB_TEST_LOAD_LOG.
import { appendFileSync } from "node:fs";

export async function load(url, context, nextLoad) {
  appendFileSync(process.env.SUBNETLAB_TEST_LOAD_LOG, `${url}\n`);
  return nextLoad(url, context);
}
