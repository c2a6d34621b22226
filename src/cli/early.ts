/**
 * Runs first, before the command tree and its modules are loaded: a command that streams image bytes
 * re-executes itself with its memory settings here, while that is still cheap (see memory_profile.ts), and
 * V8 is told to finish Maglev's compilations on the main thread.
 */
import v8 from "node:v8";
import { useStreamingMallocEarly } from "../platform/memory_profile.ts";

useStreamingMallocEarly();

// A Maglev job that builds its code (or deopt data) on a background thread allocates there; if that needs a
// garbage collection just as the main thread calls process.exit, the job waits for the collection and the
// exit waits for the job, forever (seen once in a test run: Node 24.21, `images import` of a missing file
// hung in NodePlatform::Shutdown). Built on the main thread, nothing is left waiting.
try {
  v8.setFlagsFromString("--no-maglev-build-code-on-background");
  v8.setFlagsFromString("--no-maglev-deopt-data-on-background");
} catch {
  // a runtime without V8 flags (Deno): its own compilers
}
