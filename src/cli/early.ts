/**
 * Runs first, before the command tree and its modules are loaded: a command that streams image bytes
 * re-executes itself with its memory settings here, while that is still cheap (see memory_profile.ts).
 */
import { useStreamingMallocEarly } from "../platform/memory_profile.ts";

useStreamingMallocEarly();
