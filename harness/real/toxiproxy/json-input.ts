// Request bodies to typed inputs, failing as Toxiproxy's Go JSON decoding does: "bad request
// body: …" (400) for text that is not JSON or a field of the wrong type; a null field, like an
// absent one, keeps the default; unknown fields are ignored.
import {
  badRequestBody, failed, success,
  type Outcome, type ProxyInput, type ProxyPatch, type ToxicInput, type ToxicPatch,
} from "./types.ts";

type JsonObject = Readonly<Record<string, unknown>>;

/** Go decodes the first JSON value of the body; an empty body is "EOF". */
export function parseBody(text: string): Outcome<unknown> {
  if (text.trim() === "") return failed(badRequestBody("EOF"));
  try {
    return success(JSON.parse(text) as unknown);
  } catch (error) {
    return failed(badRequestBody((error as Error).message));
  }
}

function kindOf(value: unknown): string {
  if (Array.isArray(value)) return "array";
  if (typeof value === "boolean") return "bool";
  return typeof value;
}

/** The body as an object; null decodes to nothing set (Go leaves the struct as it was). */
function asObject(value: unknown, goType: string): Outcome<JsonObject> {
  if (value === null) return success({});
  if (typeof value !== "object" || Array.isArray(value)) return failed(badRequestBody(`json: cannot unmarshal ${kindOf(value)} into Go value of type ${goType}`));
  return success(value as JsonObject);
}

class FieldReader {
  failure: Outcome<never> | undefined;
  constructor(private readonly source: JsonObject, private readonly goStruct: string) {}

  string(field: string): string | undefined {
    return this.typed(field, "string", "string") as string | undefined;
  }

  boolean(field: string): boolean | undefined {
    return this.typed(field, "boolean", "bool") as boolean | undefined;
  }

  number(field: string): number | undefined {
    return this.typed(field, "number", "float32") as number | undefined;
  }

  object(field: string): JsonObject | undefined {
    const value = this.source[field];
    if (value === undefined || value === null) return undefined;
    if (typeof value === "object" && !Array.isArray(value)) return value as JsonObject;
    this.fail(field, value, "object");
    return undefined;
  }

  private typed(field: string, jsType: string, goType: string): unknown {
    const value = this.source[field];
    if (value === undefined || value === null) return undefined;
    if (typeof value === jsType) return value;
    this.fail(field, value, goType);
    return undefined;
  }

  private fail(field: string, value: unknown, goType: string): void {
    this.failure ??= failed(badRequestBody(`json: cannot unmarshal ${kindOf(value)} into Go struct field ${this.goStruct}.${field} of type ${goType}`));
  }
}

export function decodeProxyInput(value: unknown): Outcome<ProxyInput> {
  const object = asObject(value, "toxiproxy.Proxy");
  if (!object.ok) return object;
  const fields = new FieldReader(object.value, "Proxy");
  const input: ProxyInput = {
    name: fields.string("name") ?? "",
    listen: fields.string("listen") ?? "",
    upstream: fields.string("upstream") ?? "",
    enabled: fields.boolean("enabled") ?? true,
  };
  return fields.failure ?? success(input);
}

export function decodeProxyList(value: unknown): Outcome<ProxyInput[]> {
  if (value === null) return success([]);
  if (!Array.isArray(value)) return failed(badRequestBody(`json: cannot unmarshal ${kindOf(value)} into Go value of type []toxiproxy.Proxy`));
  const inputs: ProxyInput[] = [];
  for (const item of value) {
    const input = decodeProxyInput(item);
    if (!input.ok) return input;
    inputs.push(input.value);
  }
  return success(inputs);
}

export function decodeProxyPatch(value: unknown): Outcome<ProxyPatch> {
  const object = asObject(value, "toxiproxy.Proxy");
  if (!object.ok) return object;
  const fields = new FieldReader(object.value, "Proxy");
  const patch: ProxyPatch = { listen: fields.string("listen"), upstream: fields.string("upstream"), enabled: fields.boolean("enabled") };
  return fields.failure ?? success(patch);
}

export function decodeToxicInput(value: unknown): Outcome<ToxicInput> {
  const object = asObject(value, "toxics.ToxicWrapper");
  if (!object.ok) return object;
  const fields = new FieldReader(object.value, "ToxicWrapper");
  const input: ToxicInput = {
    name: fields.string("name"),
    type: fields.string("type") ?? "",
    stream: fields.string("stream"),
    toxicity: fields.number("toxicity"),
    attributes: fields.object("attributes"),
  };
  return fields.failure ?? success(input);
}

export function decodeToxicPatch(value: unknown): Outcome<ToxicPatch> {
  const object = asObject(value, "toxics.ToxicWrapper");
  if (!object.ok) return object;
  const fields = new FieldReader(object.value, "ToxicWrapper");
  const patch: ToxicPatch = { toxicity: fields.number("toxicity"), attributes: fields.object("attributes") };
  return fields.failure ?? success(patch);
}
