/**
 * Maps transport failures and HTTP answers of a registry onto tsctr's error kinds, with one-line messages
 * that name the registry host and the object. Credentials and raw response bodies never appear in them.
 */
import { errorOf, TsctrError } from "../errdefs/mod.ts";

const TLS_FAILED = "TLS handshake failed (does it speak plain HTTP? try --plain-http)";

const REASONS: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset",
  ENOTFOUND: "host not found (DNS)",
  EAI_AGAIN: "DNS lookup failed (temporary)",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  ETIMEDOUT: "connection timed out",
  EPIPE: "connection closed",
  UND_ERR_CONNECT_TIMEOUT: "connection timed out",
  UND_ERR_HEADERS_TIMEOUT: "timed out waiting for an answer",
  UND_ERR_BODY_TIMEOUT: "timed out while receiving data",
  UND_ERR_SOCKET: "connection closed by the other side",
  UND_ERR_CLOSED: "connection closed",
  ERR_SSL_WRONG_VERSION_NUMBER: TLS_FAILED,
  EPROTO: TLS_FAILED,
  CERT_HAS_EXPIRED: "TLS certificate has expired",
  DEPTH_ZERO_SELF_SIGNED_CERT: "TLS certificate is self-signed",
  SELF_SIGNED_CERT_IN_CHAIN: "TLS certificate chain is self-signed",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "TLS certificate cannot be verified",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "TLS certificate issuer is unknown",
  ERR_TLS_CERT_ALTNAME_INVALID: "TLS certificate does not match the host name",
};

/** The system or library error code of `err` or of its cause ("ECONNREFUSED", "CERT_HAS_EXPIRED"…). */
export function errorCode(err: unknown): string | undefined {
  const e = err as { code?: unknown; cause?: { code?: unknown }; errors?: { code?: unknown }[] } | undefined;
  for (const c of [e?.code, e?.cause?.code, e?.errors?.[0]?.code]) if (typeof c === "string") return c;
  return undefined;
}

/**
 * An Unavailable error "cannot reach registry HOST: <reason>" for a failed connection or transfer.
 * A TsctrError passes through unchanged. `tls` says the connection was https (Deno reports a failed
 * handshake only as "UNKNOWN").
 */
export function unreachable(host: string, err: unknown, tls = false): TsctrError {
  if (err instanceof TsctrError) return err;
  const code = errorCode(err);
  if (tls && code === "UNKNOWN") return errorOf("Unavailable", `cannot reach registry ${host}: ${TLS_FAILED}`, err);
  const reason = (code && REASONS[code]) ?? code ?? ((err as Error)?.message || String(err)).split("\n")[0];
  return errorOf("Unavailable", `cannot reach registry ${host}: ${reason}`, err);
}

/** The first `{code, message}` of a distribution-spec error body, as "CODE: message", if there is one. */
export function registryDetail(body: string): string | undefined {
  try {
    const j = JSON.parse(body) as { errors?: { code?: unknown; message?: unknown }[] };
    const e = j.errors?.[0];
    if (!e) return undefined;
    const parts = [e.code, e.message].filter((x): x is string => typeof x === "string" && x !== "");
    return parts.length ? parts.join(": ").replace(/\s+/g, " ").slice(0, 200) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The error for a non-success answer `status` from `host` while fetching `what` (e.g. "manifest
 * docker.io/library/x:1"). 404 becomes NotFound with `notFound` as its message; 401/403 Unauthorized;
 * 429 and 5xx Unavailable; other codes InvalidArgument. `body` is the (short) response body, from which only
 * a distribution error code and message are quoted.
 */
export function httpError(host: string, status: number, what: string, notFound: string, body = ""): TsctrError {
  const detail = registryDetail(body);
  const suffix = detail ? ` (${detail})` : "";
  if (status === 404) return errorOf("NotFound", notFound);
  if (status === 401) return errorOf("Unauthorized", `registry ${host} refused access to ${what}: authentication required${suffix}`);
  if (status === 403) return errorOf("Unauthorized", `registry ${host} denied access to ${what}${suffix}`);
  if (status === 429) return errorOf("Unavailable", `registry ${host} is rate limiting requests for ${what} (429)${suffix}`);
  if (status >= 500) return errorOf("Unavailable", `registry ${host} answered ${status} for ${what}${suffix}`);
  return errorOf("InvalidArgument", `registry ${host} answered ${status} for ${what}${suffix}`);
}
