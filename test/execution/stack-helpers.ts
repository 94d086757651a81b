// Helpers for the stack tests: host stack depth control and large-frame recursion fixtures.

let framesCounted = 0;
function descend<T>(k: number, fn: () => T): T {
  framesCounted++;
  return k === 0 ? fn() : descend(k - 1, fn);
}

/** How many frames of `atHostStackDepth`'s own recursion fit on this thread's JS stack. */
export function hostStackCapacityFrames(): number {
  framesCounted = 0;
  try {
    descend(Number.MAX_SAFE_INTEGER, () => 0);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
  }
  return framesCounted;
}

/** Runs `fn` below `frames` extra host frames (a deeper host stack, as a deep caller would have). */
export function atHostStackDepth<T>(frames: number, fn: () => T): T {
  return descend(frames, fn);
}

/**
 * WAT of a canister whose `rec` method recurses to the depth given as its argument through a
 * function with `locals` locals of `type`, each loaded from memory and all read after the
 * recursive call (so that no tier of V8 can fold them away: the frame really holds them).
 */
export function bigFrameRecursion(locals: number, type: "i32" | "i64" | "f64"): string {
  // Loaded from memory: a value the call may change, so TurboFan cannot recompute it afterwards.
  const width = type === "i32" ? 4 : 8;
  const add = `${type}.add`;
  const sets = Array.from({ length: locals }, (_, i) => `(local.set ${i + 1} (${type}.load offset=${8 + i * width} (local.get $n)))`).join("\n");
  const sum = Array.from({ length: locals }, (_, i) => `(local.set $acc (${add} (local.get $acc) (local.get ${i + 1})))`).join("\n");
  return `(module
    (import "ic0" "msg_arg_data_copy" (func $arg (param i32 i32 i32)))
    (import "ic0" "msg_reply" (func $reply))
    (memory 1)
    (global $sink (mut ${type}) (${type}.const 0))
    (func $r (param $n i32) (local ${Array.from({ length: locals }, () => type).join(" ")}) (local $acc ${type})
      ${sets}
      (if (i32.eqz (local.get $n)) (then (return)))
      (call $r (i32.sub (local.get $n) (i32.const 1)))
      ${sum}
      (global.set $sink (local.get $acc)))
    (func (export "canister_update rec")
      (call $arg (i32.const 0) (i32.const 0) (i32.const 4))
      (call $r (i32.load (i32.const 0)))
      (call $reply)))`;
}
