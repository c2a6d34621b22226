/**
 * The extraction worker's entry point: it receives one job at a time (a target and a transferred stream of
 * the compressed layer), extracts it with the engines the parent chose, and answers with the diffID and
 * counts, or with the error's kind and message.
 */
import { parentPort } from "node:worker_threads";
import { setDecompressEngine, type DecompressEngine } from "../archive/decompress.ts";
import { setDigestEngine, type DigestEngine } from "../digest/mod.ts";
import { TsctrError, isDiskFull } from "../errdefs/mod.ts";
import { extractInto, type ExtractTarget } from "./extract.ts";

export interface ExtractJob {
  target: ExtractTarget;
  source: ReadableStream<Uint8Array>;
  digestEngine: DigestEngine;
  decompressEngine: DecompressEngine;
}

parentPort?.on("message", (job: ExtractJob) => {
  setDigestEngine(job.digestEngine);
  setDecompressEngine(job.decompressEngine);
  extractInto(job.source, job.target).then(
    (result) => parentPort!.postMessage({ ok: true, result }),
    (err: unknown) => {
      const kind = err instanceof TsctrError ? err.kind : "Internal";
      const message = err instanceof Error ? err.message : String(err);
      // The errno code (ENOSPC…) crosses the thread boundary, so the caller can tell a full disk.
      parentPort!.postMessage({ ok: false, kind, message, code: isDiskFull(err) ? "ENOSPC" : undefined });
    },
  );
});
