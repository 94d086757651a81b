// Typed access to the engine's WebAssembly API. The project's tsconfig has no DOM lib and
// @types/node does not declare the `WebAssembly` namespace, so the few parts used are typed here.

export interface WasmModule {
  readonly __wasmModule: unique symbol;
}
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(deltaPages: number): number;
}
export interface WasmGlobal {
  value: number | bigint;
}
export interface WasmTable {
  readonly length: number;
  get(index: number): ((...args: unknown[]) => unknown) | null;
}
export type WasmExportValue = ((...args: unknown[]) => unknown) | WasmMemory | WasmGlobal | WasmTable;
export interface WasmInstance {
  readonly exports: Readonly<Record<string, WasmExportValue>>;
}
export type ImportObject = Record<string, Record<string, (...args: never[]) => unknown>>;

interface WebAssemblyApi {
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: ImportObject) => WasmInstance;
  Memory: new (descriptor: { initial: number; maximum?: number }) => WasmMemory;
  RuntimeError: new (message?: string) => Error;
  CompileError: new (message?: string) => Error;
  validate(bytes: Uint8Array): boolean;
}

export const Wasm = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;

export function isRuntimeError(e: unknown): e is Error {
  return e instanceof Wasm.RuntimeError;
}
