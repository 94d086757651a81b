// The toxic types by name, and how a toxic's attributes are read from what a caller sent.
import { badRequestBody, failed, success, type Attributes, type Outcome, type ToxicType } from "../types.ts";
import { bandwidth } from "./bandwidth.ts";
import type { ToxicKind } from "./io.ts";
import { latency } from "./latency.ts";
import { limitData } from "./limit-data.ts";
import { noop } from "./noop.ts";
import { resetPeer } from "./reset-peer.ts";
import { slicer } from "./slicer.ts";
import { slowClose } from "./slow-close.ts";
import { timeout } from "./timeout.ts";

export const TOXIC_KINDS: Readonly<Record<ToxicType, ToxicKind>> = {
  latency,
  bandwidth,
  slow_close: slowClose,
  timeout,
  reset_peer: resetPeer,
  slicer,
  limit_data: limitData,
  noop,
};

/**
 * The attributes of a toxic of `kind`: `current` (zeros for a new toxic) overlaid field by field
 * with the known fields of `given`, as Go's JSON decoder fills the toxic's struct. Unknown fields
 * and nulls are ignored; a known field must be an integer.
 */
export function readAttributes(kind: ToxicKind, given: Readonly<Record<string, unknown>> | null | undefined, current?: Attributes): Outcome<Attributes> {
  if (given !== null && given !== undefined && (typeof given !== "object" || Array.isArray(given))) {
    return failed(badRequestBody(`attributes must be an object, got ${JSON.stringify(given)}`));
  }
  const attributes: Record<string, number> = {};
  for (const field of kind.fields) {
    const value = given?.[field] ?? current?.[field] ?? 0;
    if (typeof value !== "number" || !Number.isSafeInteger(value)) {
      return failed(badRequestBody(`attribute ${field} of a ${kind.type} toxic must be an integer, got ${JSON.stringify(value)}`));
    }
    attributes[field] = value;
  }
  return success(attributes);
}
