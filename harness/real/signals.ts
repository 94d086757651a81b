// Long-running real-mode commands (`up`, `toxiproxy`) run until the user or a supervisor stops them.

/** Resolves with the first SIGINT or SIGTERM, and stops listening for them. */
export function untilStopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      resolve(signal);
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
}
