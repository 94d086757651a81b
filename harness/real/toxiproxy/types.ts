// Shapes and failures of the Toxiproxy-compatible server (issue 12 item 8). The JSON shapes keep the
// field order of Toxiproxy's Go structs (api.go, proxy.go, toxics/toxic.go), because clients and
// people diffing output compare them textually; the failure messages are Toxiproxy's own.

/** The Toxiproxy release whose HTTP API this server speaks (`GET /version`). */
export const TOXIPROXY_API_VERSION = "2.12.0";

export const TOXIC_TYPES = ["latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data", "noop"] as const;
export type ToxicType = (typeof TOXIC_TYPES)[number];

/** upstream = client → server bytes; downstream = server → client bytes. */
export type Direction = "upstream" | "downstream";
export const DIRECTIONS: readonly Direction[] = ["upstream", "downstream"];

/** A toxic's attributes: every toxic's fields are integers (Go int64/int), in declaration order. */
export type Attributes = Readonly<Record<string, number>>;

export interface ToxicJson {
  readonly attributes: Attributes;
  readonly name: string;
  readonly type: ToxicType;
  /** As the creator spelled it (Toxiproxy parses it case-insensitively but stores it verbatim). */
  readonly stream: string;
  readonly toxicity: number;
}

export interface ProxyJson {
  readonly name: string;
  /** The bound address once listening (port 0 resolved), else the address as given. */
  readonly listen: string;
  readonly upstream: string;
  readonly enabled: boolean;
  readonly toxics: readonly ToxicJson[];
}

/** What a caller gives to create a proxy (`POST /proxies`, `/populate`). */
export interface ProxyInput {
  readonly name: string;
  readonly listen: string;
  readonly upstream: string;
  /** Defaults to true. */
  readonly enabled?: boolean;
}

/** What a caller gives to change a proxy; a missing field keeps its current value. */
export interface ProxyPatch {
  readonly listen?: string;
  readonly upstream?: string;
  readonly enabled?: boolean;
}

/** What a caller gives to create a toxic; defaults as Toxiproxy: downstream, toxicity 1, name `<type>_<stream>`. */
export interface ToxicInput {
  readonly name?: string;
  readonly type: string;
  readonly stream?: string;
  readonly toxicity?: number;
  /** Missing fields are 0; unknown fields are ignored; present fields must be integers. */
  readonly attributes?: Readonly<Record<string, unknown>> | null;
}

/** A toxic update reads only these two; name, type and stream never change. */
export interface ToxicPatch {
  readonly toxicity?: number;
  readonly attributes?: Readonly<Record<string, unknown>> | null;
}

/** An expected failure of an API operation, with the HTTP status Toxiproxy answers it with. */
export interface ApiFailure {
  readonly status: number;
  readonly message: string;
}

export type Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly failure: ApiFailure };

export const success = <T>(value: T): Outcome<T> => ({ ok: true, value });
export const failed = <T = never>(failure: ApiFailure): Outcome<T> => ({ ok: false, failure });

/** Toxiproxy's error values (api.go), so that status and text match what its clients expect. */
export const FAILURES = {
  proxyNotFound: { status: 404, message: "proxy not found" },
  proxyAlreadyExists: { status: 409, message: "proxy already exists" },
  invalidStream: { status: 400, message: "stream was invalid, can be either upstream or downstream" },
  invalidToxicType: { status: 400, message: "invalid toxic type" },
  toxicAlreadyExists: { status: 409, message: "toxic already exists" },
  toxicNotFound: { status: 404, message: "toxic not found" },
} as const satisfies Record<string, ApiFailure>;

export const badRequestBody = (reason: string): ApiFailure => ({ status: 400, message: `bad request body: ${reason}` });
export const missingField = (what: string): ApiFailure => ({ status: 400, message: `missing required field: ${what}` });
/** A socket-level failure (listen, resolve) that Toxiproxy reports as a 500 with the error's text. */
export const internalFailure = (message: string): ApiFailure => ({ status: 500, message });

/** Parses a direction the way Toxiproxy does: case-insensitively. */
export function parseDirection(stream: string): Direction | undefined {
  const lower = stream.toLowerCase();
  return lower === "upstream" || lower === "downstream" ? lower : undefined;
}

export function isToxicType(type: string): type is ToxicType {
  return (TOXIC_TYPES as readonly string[]).includes(type);
}
