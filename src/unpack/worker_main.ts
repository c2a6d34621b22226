/**
 * The extraction worker's entry point: it takes jobs (a target and a byte channel carrying the layer's
 * uncompressed tar bytes), several at a time, hashes and writes each with the digest engine the parent
 * chose, and answers each with the diffID and counts, or with the error's kind and message.
 */
import { parentPort, type MessagePort } from "node:worker_threads";
import { receiveStream } from "./byte_channel.ts";
import { createHasher, setDigestEngine, type DigestEngine } from "../digest/mod.ts";
import { TsctrError, isDiskFull } from "../errdefs/mod.ts";
import { applyTar, type ExtractResult, type ExtractTarget } from "./extract.ts";

export interface ExtractJob {
  id: number;
  target: ExtractTarget;
  /** The receiving end of a byte channel carrying the layer's tar bytes. */
  port: MessagePort;
  digestEngine: DigestEngine;
}

export type JobReply = { id: number; ok: true; result: ExtractResult } | { id: number; ok: false; kind: string; message: string; code?: string };

parentPort?.on("message", (job: ExtractJob) => {
  setDigestEngine(job.digestEngine);
  const extract = async () => {
    const hasher = await createHasher();
    return await applyTar(receiveStream(job.port, (c) => hasher.update(c)), job.target, hasher);
  };
  extract().then(
    (result) => parentPort!.postMessage({ id: job.id, ok: true, result } satisfies JobReply),
    (err: unknown) => {
      const kind = err instanceof TsctrError ? err.kind : "Internal";
      const message = err instanceof Error ? err.message : String(err);
      // The errno code (ENOSPC…) crosses the thread boundary, so the caller can tell a full disk.
      parentPort!.postMessage({ id: job.id, ok: false, kind, message, code: isDiskFull(err) ? "ENOSPC" : undefined } satisfies JobReply);
    },
  );
});
