/**
 * Loads the WebAssembly engine (wasm/*.c, embedded by build/wasm.ts): the SIMD build where the runtime
 * validates it, the plain build otherwise. Each variant is compiled and instantiated at most once per
 * isolate (per process, or per worker), on first use, synchronously: the module is about 24 KiB.
 */
import { Buffer } from "node:buffer";
import { errorOf } from "../errdefs/mod.ts";
import { WASM_PLAIN_BASE64, WASM_SIMD_BASE64 } from "./_wasm_modules.generated.ts";

/** Which build of the engine runs. */
export type EngineVariant = "simd" | "plain";

/** The functions the engine module exports (pointers and sizes are byte offsets into `memory`). */
export interface EngineExports {
  readonly memory: WebAssembly.Memory;
  eng_alloc(size: number): number;
  eng_free(ptr: number): void;
  inf_new(): number;
  inf_free(st: number): void;
  inf_in_ptr(st: number): number;
  inf_in_space(st: number): number;
  inf_in_commit(st: number, n: number): void;
  inf_in_left(st: number): number;
  inf_finish(st: number): void;
  inf_step(st: number): number;
  inf_out_ptr(st: number): number;
  inf_out_len(st: number): number;
  inf_member(st: number): number;
  inf_set_ext_crc(st: number, on: number): void;
  inf_trailer_crc(st: number): number;
  eng_crc32(crc: number, ptr: number, len: number): number;
  sha_new(): number;
  sha_free(st: number): void;
  sha_update(st: number, ptr: number, len: number): void;
  sha_final(st: number): number;
}

/** Size of the staging buffer through which JS bytes enter the engine when they are not already inside. */
const STAGING = 256 * 1024;

/**
 * One instantiated engine. `heap()` is a view of its whole memory; it changes when memory grows, which only
 * an allocation can cause (creating an inflater or a hasher). Growing detaches every earlier view, which is
 * why views of engine memory handed to callers are valid only until the next call into the engine.
 */
export class Engine {
  readonly variant: EngineVariant;
  readonly exports: EngineExports;
  #heap: Uint8Array;
  #staging = 0;

  constructor(variant: EngineVariant, exports: EngineExports) {
    this.variant = variant;
    this.exports = exports;
    // Allocated now rather than on first use, so that hashing JS bytes never grows memory (which would
    // detach views of inflater output that a caller may be holding at that moment).
    this.#staging = this.alloc(STAGING, "engine staging buffer");
    this.#heap = new Uint8Array(exports.memory.buffer);
  }

  /** A Uint8Array over the engine's memory, current as of now. */
  heap(): Uint8Array {
    const buf = this.exports.memory.buffer;
    if (this.#heap.buffer !== buf) this.#heap = new Uint8Array(buf);
    return this.#heap;
  }

  /** True when `bytes` is a view into this engine's memory (so it can be used in place). */
  owns(bytes: Uint8Array): boolean {
    return bytes.buffer === this.exports.memory.buffer;
  }

  /** Allocates `size` bytes of engine memory; throws ResourceExhausted when memory cannot grow. */
  alloc(size: number, what: string): number {
    const ptr = this.exports.eng_alloc(size);
    if (ptr === 0) throw errorOf("ResourceExhausted", `${what}: the WebAssembly engine is out of memory`);
    return ptr;
  }

  /** A shared buffer of STAGING bytes for copying JS bytes in; its contents last for one synchronous call. */
  staging(): { ptr: number; size: number } {
    return { ptr: this.#staging, size: STAGING };
  }
}

const engines = new Map<EngineVariant, Engine>();
const modules = new Map<EngineVariant, WebAssembly.Module>();
let preferred: EngineVariant | undefined;

function moduleBytes(variant: EngineVariant): Uint8Array<ArrayBuffer> {
  const b64 = variant === "simd" ? WASM_SIMD_BASE64 : WASM_PLAIN_BASE64;
  return new Uint8Array(Buffer.from(b64, "base64"));
}

/** The variant this runtime should use: "simd" when it validates the SIMD build, else "plain". */
export function preferredVariant(): EngineVariant {
  preferred ??= WebAssembly.validate(moduleBytes("simd")) ? "simd" : "plain";
  return preferred;
}

/**
 * The engine of the given variant (default: preferredVariant()), instantiated on first use and shared
 * afterwards. Throws NotImplemented if the runtime cannot run the requested variant.
 */
export function loadEngine(variant: EngineVariant = preferredVariant()): Engine {
  let engine = engines.get(variant);
  if (engine === undefined) {
    engine = privateEngine(variant);
    engines.set(variant, engine);
  }
  return engine;
}

/**
 * A new engine instance with a memory of its own (about 1 MiB to start), for a decoder whose output views must
 * stay valid while other decoders in the same thread start and grow their memory. Throws NotImplemented if
 * the runtime cannot run the requested variant.
 */
export function privateEngine(variant: EngineVariant = preferredVariant()): Engine {
  let module = modules.get(variant);
  if (module === undefined) {
    const bytes = moduleBytes(variant);
    if (!WebAssembly.validate(bytes)) throw errorOf("NotImplemented", `load the ${variant} WebAssembly engine: this runtime does not support it`);
    module = new WebAssembly.Module(bytes);
    modules.set(variant, module);
  }
  return new Engine(variant, new WebAssembly.Instance(module, {}).exports as unknown as EngineExports);
}
