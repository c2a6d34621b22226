/**
 * A layer's compressed bytes as the extractor reads them during a pull: the bytes an earlier pull kept (read
 * back from the content store) and then the network's, each network chunk handed to a sink (the blob's
 * digest, size and file) before the extractor sees it. One web stream where there were four (a transform for
 * the sink, a concatenation, and a pipe through an identity transform for the abort signal): each stream
 * costs the main thread per chunk, and every byte of a pull passes here.
 */

export interface LayerInputParts {
  /** The kept bytes of an earlier pull, if any: they are in the store already and skip the sink. */
  kept?: ReadableStream<Uint8Array>;
  /** The rest of the blob, from the registry. */
  network: ReadableStream<Uint8Array>;
}

export interface LayerInputHooks {
  /** Takes each network chunk before the extractor sees it; a rejection fails the stream. */
  write(chunk: Uint8Array): Promise<void>;
  /** Aborting it errors the stream with the signal's reason and cancels the sources. */
  signal: AbortSignal;
  /** Hears the first failure of a source or of `write`, with its own error (before the stream errors). */
  onError(e: unknown): void;
}

/**
 * The chunks of `parts.kept`, then of `parts.network`, each network chunk through `hooks.write` first.
 * Guarantees: chunks come out in order, each once; a failure of a source, of `write` or the signal's abort
 * errors the stream and cancels every source not yet finished (closing the connection); cancelling the
 * stream cancels them too.
 */
export function layerInput(parts: LayerInputParts, hooks: LayerInputHooks): ReadableStream<Uint8Array> {
  const sources = parts.kept ? [parts.kept, parts.network] : [parts.network];
  let index = 0;
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined = sources[0]!.getReader();
  let finished = false;
  let controller!: ReadableStreamDefaultController<Uint8Array>;

  const cancelSources = (reason: unknown) => {
    reader?.cancel(reason).catch(() => {});
    for (const s of sources.slice(index + 1)) s.cancel(reason).catch(() => {});
    reader = undefined;
  };
  const finish = () => {
    finished = true;
    hooks.signal.removeEventListener("abort", onAbort);
  };
  const onAbort = () => {
    if (finished) return;
    finish();
    controller.error(hooks.signal.reason);
    cancelSources(hooks.signal.reason);
  };

  return new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
      if (hooks.signal.aborted) onAbort();
      else hooks.signal.addEventListener("abort", onAbort, { once: true });
    },
    async pull(c) {
      while (reader !== undefined && !finished) {
        let chunk: Uint8Array;
        try {
          const r = await reader.read();
          if (finished) return;
          if (r.done) {
            reader = sources[++index]?.getReader();
            continue;
          }
          chunk = r.value;
          if (sources[index] === parts.network) await hooks.write(chunk);
        } catch (e) {
          if (finished) return;
          hooks.onError(e);
          finish();
          cancelSources(e);
          throw e;
        }
        if (!finished) c.enqueue(chunk);
        return;
      }
      if (!finished) {
        finish();
        c.close();
      }
    },
    cancel(reason) {
      if (finished) return;
      finish();
      cancelSources(reason);
    },
  });
}
