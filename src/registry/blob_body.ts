/**
 * The body of a blob GET, from byte `offset` on: a 206 answer to `Range: bytes=N-` must start at N (its
 * Content-Range is checked); a 200 answer (a server that ignores Range) has its first N bytes skipped.
 * Content-Length is not trusted: the stream ends after exactly `size - offset` bytes, a body that ends early
 * is Unavailable (another attempt may get the rest), one that carries more than the blob is DataLoss.
 */
import { errorOf } from "../errdefs/mod.ts";
import type { Descriptor } from "../images/types.ts";
import { unreachable } from "./errors.ts";
import { discard, header, type HttpResponse } from "./transport.ts";

/** `bytes A-B/T` → {start, end, total}; total is undefined for "*". */
function parseContentRange(value: string | undefined): { start: number; end: number; total?: number } | undefined {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec((value ?? "").trim());
  if (!m) return undefined;
  return { start: Number(m[1]), end: Number(m[2]), total: m[3] === "*" ? undefined : Number(m[3]) };
}

/**
 * Streams bytes [offset, desc.size) of the blob from a 200 or 206 response `res`. Throws DataLoss when a
 * 206 covers other bytes than asked or names another total size. Cancelling the stream closes the
 * connection.
 */
export function blobBody(res: HttpResponse, desc: Descriptor, offset: number, what: string, host: string): ReadableStream<Uint8Array> {
  let skip = 0;
  if (res.status === 206) {
    const range = parseContentRange(header(res, "content-range"));
    if (!range || range.start !== offset || (range.total !== undefined && range.total !== desc.size) || range.end >= desc.size) {
      discard(res.body);
      throw errorOf("DataLoss", `${what}: registry ${host} answered range "${header(res, "content-range") ?? ""}" for bytes ${offset}- of ${desc.size}`);
    }
  } else {
    skip = offset;
  }
  const it = (res.body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  let seen = 0;
  const want = desc.size - offset;
  return new ReadableStream<Uint8Array>({
    async pull(ctrl) {
      for (;;) {
        if (seen === want) {
          discard(res.body);
          ctrl.close();
          return;
        }
        let r: IteratorResult<Uint8Array>;
        try {
          r = await it.next();
        } catch (e) {
          ctrl.error(unreachable(host, e));
          return;
        }
        if (r.done) {
          ctrl.error(errorOf("Unavailable", `${what}: registry ${host} ended the transfer at byte ${offset + seen} of ${desc.size}`));
          return;
        }
        let chunk = new Uint8Array(r.value.buffer, r.value.byteOffset, r.value.byteLength);
        if (skip > 0) {
          const drop = Math.min(skip, chunk.byteLength);
          skip -= drop;
          chunk = chunk.subarray(drop);
          if (chunk.byteLength === 0) continue;
        }
        if (seen + chunk.byteLength > want) {
          discard(res.body);
          ctrl.error(errorOf("DataLoss", `${what}: registry ${host} sent more than the expected ${desc.size} bytes`));
          return;
        }
        seen += chunk.byteLength;
        ctrl.enqueue(chunk);
        return;
      }
    },
    cancel() {
      discard(res.body);
    },
  });
}
