// Which Docker engine `subnetlab up --containers` talks to, and the testcontainers settings this
// machine kind needs (research/containers-toxiproxy.md §2.3):
// - Ryuk off: its image would be pulled, and no registry is reachable;
// - the host override 127.0.0.1: testcontainers thinks it runs in a container here (/.dockerenv
//   exists) and would look for the default bridge's gateway, which a daemon started with
//   --bridge=none (scripts/docker-engine.ts) does not have; replica ports are published on
//   127.0.0.1 anyway.
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { ContainerRuntimeClient } from "testcontainers";

/** Where scripts/docker-engine.ts keeps the dockerd it starts (SUBNETLAB_DOCKER_STATE overrides it). */
export const DEFAULT_DOCKER_STATE_DIR = "/var/tmp/subnetlab-docker";
const SYSTEM_SOCKET = "/var/run/docker.sock";

/** No engine to talk to: the message says how to get one. */
export class EngineMissingError extends Error {}

export const dockerStateDir = (): string => process.env.SUBNETLAB_DOCKER_STATE ?? DEFAULT_DOCKER_STATE_DIR;
export const subnetlabDockerHost = (): string => `unix://${join(dockerStateDir(), "docker.sock")}`;

/**
 * The DOCKER_HOST to use: the caller's, else the system socket, else the daemon of
 * scripts/docker-engine.ts; undefined when none of these exists.
 */
export function locateDockerHost(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.DOCKER_HOST !== undefined && env.DOCKER_HOST !== "") return env.DOCKER_HOST;
  if (existsSync(SYSTEM_SOCKET)) return `unix://${SYSTEM_SOCKET}`;
  const ours = join(dockerStateDir(), "docker.sock");
  return existsSync(ours) ? `unix://${ours}` : undefined;
}

/** Configures testcontainers for this machine and connects to the engine; throws EngineMissingError. */
export async function containerRuntime(): Promise<ContainerRuntimeClient> {
  const dockerHost = locateDockerHost();
  if (dockerHost === undefined) throw new EngineMissingError(`no Docker engine (DOCKER_HOST unset, no ${SYSTEM_SOCKET}, no ${subnetlabDockerHost()}); start one with: npx tsx scripts/docker-engine.ts`);
  process.env.DOCKER_HOST = dockerHost;
  process.env.TESTCONTAINERS_RYUK_DISABLED = "true";
  process.env.TESTCONTAINERS_HOST_OVERRIDE ??= "127.0.0.1";
  const { getContainerRuntimeClient } = await import("testcontainers");
  try {
    return await getContainerRuntimeClient();
  } catch (e) {
    throw new EngineMissingError(`no Docker engine answers at ${dockerHost} (${(e as Error).message}); start one with: npx tsx scripts/docker-engine.ts`);
  }
}
