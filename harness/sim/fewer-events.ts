// Issue 13 item 3 ("fewer events") has a switch so that its gain is measured side by side in one
// process (`npm run bench:sim`) and so that tests can compare a run with and without it:
// `SUBNETLAB_FEWER_EVENTS=off` makes every ingress-only bundle an event again and lets every
// bundle run a full consensus step. `probe` queues ingress but runs every step, and fails a run
// in which a step that "on" skips would have found work no timer covers (replica/idle-steps.ts).

export type FewerEvents = "on" | "off" | "probe";

export function fewerEventsOf(value: string | undefined): FewerEvents {
  if (value === undefined || value === "" || value === "on") return "on";
  if (value === "off" || value === "probe") return value;
  throw new Error(`SUBNETLAB_FEWER_EVENTS must be "on", "off" or "probe", not ${JSON.stringify(value)}`);
}

/** The process's setting, read when a subnet is built. */
export const defaultFewerEvents = (): FewerEvents => fewerEventsOf(process.env["SUBNETLAB_FEWER_EVENTS"]);
