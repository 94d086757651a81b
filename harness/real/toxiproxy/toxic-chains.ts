// A proxy's toxics: one chain per direction, in creation order, applied to every live link of that
// direction. Changes reach live links at once: an added toxic joins the end of each chain, an update
// restarts the toxic's runs, a removal hands its data on (timeout's removal closes the link).
import { readAttributes, TOXIC_KINDS } from "./toxics/index.ts";
import type { ToxicKind } from "./toxics/io.ts";
import type { Link } from "./link.ts";
import {
  badRequestBody, DIRECTIONS, FAILURES, failed, isToxicType, parseDirection, success,
  type Attributes, type Direction, type Outcome, type ToxicInput, type ToxicJson, type ToxicPatch, type ToxicType,
} from "./types.ts";

/** A toxic as the proxy holds it; links read `attributes` and `toxicity` whenever a run starts. */
export interface ToxicEntry {
  readonly name: string;
  readonly type: ToxicType;
  readonly kind: ToxicKind;
  readonly stream: string;
  readonly direction: Direction;
  toxicity: number;
  attributes: Attributes;
}

export function toxicJson(entry: ToxicEntry): ToxicJson {
  return { attributes: { ...entry.attributes }, name: entry.name, type: entry.type, stream: entry.stream, toxicity: entry.toxicity };
}

export class ToxicChains {
  private readonly chains: Record<Direction, ToxicEntry[]> = { upstream: [], downstream: [] };
  private readonly links = new Set<Link>();

  chain(direction: Direction): readonly ToxicEntry[] {
    return this.chains[direction];
  }

  /** Upstream chain first, then downstream, each in creation order (Toxiproxy's listing order). */
  list(): ToxicJson[] {
    return DIRECTIONS.flatMap((direction) => this.chains[direction].map(toxicJson));
  }

  find(name: string): ToxicEntry | undefined {
    return DIRECTIONS.map((direction) => this.chains[direction].find((entry) => entry.name === name)).find((entry) => entry !== undefined);
  }

  attach(link: Link): void {
    this.links.add(link);
  }

  detach(link: Link): void {
    this.links.delete(link);
  }

  /** Checks in Toxiproxy's order: body types, stream, type, name clash, attributes. */
  async add(input: ToxicInput): Promise<Outcome<ToxicJson>> {
    const toxicity = readToxicity(input.toxicity, 1);
    if (!toxicity.ok) return toxicity;
    const stream = input.stream ?? "downstream";
    const direction = parseDirection(stream);
    if (direction === undefined) return failed(FAILURES.invalidStream);
    if (!isToxicType(input.type)) return failed(FAILURES.invalidToxicType);
    const name = input.name === undefined || input.name === "" ? `${input.type}_${stream}` : input.name;
    if (this.find(name) !== undefined) return failed(FAILURES.toxicAlreadyExists);
    const kind = TOXIC_KINDS[input.type];
    const attributes = readAttributes(kind, input.attributes);
    if (!attributes.ok) return attributes;
    const entry: ToxicEntry = { name, type: input.type, kind, stream, direction, toxicity: toxicity.value, attributes: attributes.value };
    this.chains[direction].push(entry);
    await Promise.all(this.linksOf(direction).map((link) => link.addToxic(entry)));
    return success(toxicJson(entry));
  }

  /** Only attributes (merged field by field) and toxicity change, as in Toxiproxy. */
  async update(name: string, patch: ToxicPatch): Promise<Outcome<ToxicJson>> {
    const entry = this.find(name);
    if (entry === undefined) return failed(FAILURES.toxicNotFound);
    const toxicity = readToxicity(patch.toxicity, entry.toxicity);
    if (!toxicity.ok) return toxicity;
    const attributes = readAttributes(entry.kind, patch.attributes, entry.attributes);
    if (!attributes.ok) return attributes;
    entry.toxicity = toxicity.value;
    entry.attributes = attributes.value;
    await Promise.all(this.linksOf(entry.direction).map((link) => link.updateToxic(entry)));
    return success(toxicJson(entry));
  }

  async remove(name: string): Promise<Outcome<void>> {
    const entry = this.find(name);
    if (entry === undefined) return failed(FAILURES.toxicNotFound);
    await this.removeEntry(entry);
    return success(undefined);
  }

  /** Removes every toxic, first to last in each direction (`POST /reset`). */
  async removeAll(): Promise<void> {
    for (const direction of DIRECTIONS) {
      for (let first = this.chains[direction][0]; first !== undefined; first = this.chains[direction][0]) await this.removeEntry(first);
    }
  }

  private async removeEntry(entry: ToxicEntry): Promise<void> {
    const chain = this.chains[entry.direction];
    chain.splice(chain.indexOf(entry), 1);
    await Promise.all(this.linksOf(entry.direction).map((link) => link.removeToxic(entry)));
  }

  private linksOf(direction: Direction): Link[] {
    return [...this.links].filter((link) => link.direction === direction);
  }
}

/** Toxiproxy reads toxicity as a float32; any number is taken (≤ 0 never applies, ≥ 1 always). */
function readToxicity(given: unknown, fallback: number): Outcome<number> {
  if (given === undefined || given === null) return success(fallback);
  if (typeof given !== "number" || !Number.isFinite(given)) return failed(badRequestBody(`toxicity must be a number, got ${JSON.stringify(given)}`));
  return success(given);
}
