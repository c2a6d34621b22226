/**
 * The memory profile of the commands that stream an image's bytes through this process (pull, push, import,
 * export): glibc malloc settings, and V8 told to favour size over speed.
 *
 * Every 64 KiB a socket or file read allocates a buffer, which lives until the JavaScript garbage collector
 * finds it dead; glibc's defaults serve such buffers from heaps that only grow (an mmap threshold that rises
 * after the first free, an arena per thread), so a pull's resident memory settled ~30 MB above what it
 * actually holds. With a fixed 64 KiB mmap threshold a freed buffer goes back to the kernel at once, and one
 * arena keeps the threads' small allocations together (peak RSS of a devbench pull 122 → 102 MB in one
 * thread, 157 → 130 MB with a worker, no slower). glibc reads its settings only at start-up, so the process
 * re-executes itself once with them (process.execve: same pid, same arguments). V8's --optimize-for-size then
 * grows the JavaScript heap less eagerly and collects it sooner (97–115 → 96–98 MB over five pulls); it is set
 * for these commands only, at run time: given at start-up it costs every command ~20 ms.
 */
import process from "node:process";
import v8 from "node:v8";

const TUNABLES = "glibc.malloc.mmap_threshold=65536:glibc.malloc.arena_max=1";

/** Whether this process already runs with the streaming malloc settings. */
function hasStreamingMalloc(): boolean {
  return (process.env.GLIBC_TUNABLES ?? "").includes("glibc.malloc.mmap_threshold=");
}

/**
 * Makes the rest of this command run with the streaming memory profile. Where the malloc settings are
 * missing and the runtime can replace its own process image (Node's process.execve), re-executes the same
 * command line with them and does not return. Elsewhere (Deno; TSCTR_MALLOC=default; a failed exec) the
 * command goes on with glibc's defaults. Call it before the command has done anything (taken a lock, written
 * a file).
 */
export function useStreamingMemoryProfile(): void {
  useStreamingMalloc();
  try {
    v8.setFlagsFromString("--optimize-for-size");
  } catch {
    // a runtime without V8 flags: its defaults
  }
}

/** Global options that take a value as the next argument (a misreading only moves the re-exec later or adds one). */
const GLOBAL_OPTIONS_WITH_VALUE = new Set(["--root", "--state", "-n", "--namespace", "--hosts-dir", "--digest-engine", "--decompress-engine", "--sync"]);
const IMAGE_GROUPS = new Set(["images", "image", "i"]);

/**
 * Whether the arguments (without the executable and script) name a command that streams an image's bytes:
 * pull, push, images import, images export. Read from the raw arguments, before the command line parser
 * exists, so that the re-execution happens before the rest of the program is loaded.
 */
export function namesStreamingCommand(args: readonly string[]): boolean {
  const words: string[] = [];
  for (let i = 0; i < args.length && words.length < 2; i++) {
    const a = args[i]!;
    if (a === "--") break;
    if (a.startsWith("-")) {
      if (words.length === 0 && GLOBAL_OPTIONS_WITH_VALUE.has(a)) i++;
      continue;
    }
    words.push(a);
  }
  const [command, sub] = words;
  if (command === "pull" || command === "push") return true;
  return command !== undefined && IMAGE_GROUPS.has(command) && (sub === "import" || sub === "export");
}

/**
 * At start-up, before the program is loaded: re-executes with the streaming malloc settings when the
 * command line names a command that uses them (the command's own call then finds them set). Costs the
 * first process little more than the runtime's start.
 */
export function useStreamingMallocEarly(): void {
  if (namesStreamingCommand(process.argv.slice(2))) useStreamingMalloc();
}

function useStreamingMalloc(): void {
  if (hasStreamingMalloc() || process.env.TSCTR_MALLOC === "default" || process.platform !== "linux") return;
  if (typeof process.execve !== "function") return;
  const prior = process.env.GLIBC_TUNABLES;
  const env = { ...process.env, GLIBC_TUNABLES: prior ? `${prior}:${TUNABLES}` : TUNABLES };
  try {
    process.execve(process.execPath, commandLine(), env);
  } catch {
    // Could not exec (a deleted executable, a seccomp filter): the defaults work, with more memory.
  }
}

/** This process's command line as exec needs it: the single executable takes its arguments directly. */
function commandLine(): string[] {
  const sea = process.getBuiltinModule?.("node:sea") as { isSea?: () => boolean } | undefined;
  if (sea?.isSea?.()) return [process.execPath, ...process.argv.slice(2)];
  return [process.execPath, ...process.execArgv, process.argv[1]!, ...process.argv.slice(2)];
}
