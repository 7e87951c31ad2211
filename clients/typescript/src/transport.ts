/**
 * Conditional GETs of documents under a base URL: http(s):// through Node's fetch (undici keeps
 * connections alive across a refresh) or file://. Each request is bounded by a wall-clock
 * deadline over the whole exchange, body included (AbortSignal.timeout).
 */
import { open } from "node:fs/promises";
import { fileURLToPath } from "node:url";

/** A document larger than this is refused (a bundle of 200 flags is about 8 KiB). */
export const MAX_DOCUMENT = 32 * 1024 * 1024;
/** The snapshot of 100,000 tenants x 200 flags is about 6 MB. */
export const MAX_SNAPSHOT = 256 * 1024 * 1024;
const USER_AGENT = "flagops-client-ts/0.1";

/** The store could not be asked (refused, timed out, 5xx, unexpected status). */
export class FetchError extends Error {
  override name = "FetchError";
}

export interface Validators {
  etag?: string | null;
  lastModified?: string | null;
}

export interface Response {
  status: 200 | 304 | 404;
  body?: Uint8Array;
  etag?: string | null;
  lastModified?: string | null;
}

export interface Transport {
  get(url: string, validators: Validators, timeoutMs: number, limit?: number): Promise<Response>;
}

export function checkBaseUrl(baseUrl: string): URL {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new TypeError(`unsupported base URL ${JSON.stringify(baseUrl)}: use https://host/prefix, http://host/prefix or file:///dir`);
  }
  const ok = url.protocol === "file:" ? (url.hostname === "" || url.hostname === "localhost") && url.pathname.length > 1
    : (url.protocol === "https:" || url.protocol === "http:") && url.hostname !== "";
  if (!ok) throw new TypeError(`unsupported base URL ${JSON.stringify(baseUrl)}: use https://host/prefix, http://host/prefix or file:///dir`);
  return url;
}

/** `base` + "/" + relative name, keeping the base's query (a presigned or tokened mirror). */
export function documentUrl(base: URL, name: string): string {
  const url = new URL(base.href);
  url.pathname = `${url.pathname.replace(/\/+$/, "")}/${name.split("/").map(encodeURIComponent).join("/")}`;
  return url.href;
}

/** Where a URL is, for logs: no credentials, no query (signatures). */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return "<invalid URL>";
  }
}

export class StoreTransport implements Transport {
  constructor(private readonly headers: Readonly<Record<string, string>> = {}) {}

  get(url: string, validators: Validators, timeoutMs: number, limit = MAX_DOCUMENT): Promise<Response> {
    if (timeoutMs <= 0) return Promise.reject(new FetchError("timed out"));
    return url.startsWith("file:") ? getFile(url, validators, limit) : this.getHttp(url, validators, timeoutMs, limit);
  }

  private async getHttp(url: string, validators: Validators, timeoutMs: number, limit: number): Promise<Response> {
    const headers: Record<string, string> = { "user-agent": USER_AGENT, accept: "application/json", ...this.headers };
    if (validators.etag) headers["if-none-match"] = validators.etag;
    else if (validators.lastModified) headers["if-modified-since"] = validators.lastModified;
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      const resp = await fetch(url, { headers, signal, redirect: "follow" });
      const etag = resp.headers.get("etag");
      const lastModified = strongLastModified(resp.headers.get("last-modified"), resp.headers.get("date"));
      if (resp.status === 200) {
        const declared = Number(resp.headers.get("content-length") ?? "0");
        if (declared > limit) {
          await resp.body?.cancel();
          throw new FetchError(`${redact(url)}: larger than ${limit} bytes`);
        }
        return { status: 200, body: await readLimited(resp, limit, url), etag, lastModified };
      }
      await resp.body?.cancel().catch(() => undefined);
      if (resp.status === 304) return { status: 304, etag, lastModified };
      // S3 answers 403 for a missing key when listing is not allowed: both mean "no document".
      if (resp.status === 404 || resp.status === 403) return { status: 404 };
      throw new FetchError(`HTTP ${resp.status} ${resp.statusText}`.trim());
    } catch (err) {
      if (err instanceof FetchError) throw err;
      const e = err as Error & { cause?: Error & { code?: string } };
      if (e.name === "TimeoutError" || e.name === "AbortError") throw new FetchError(`timed out after ${timeoutMs} ms`);
      const cause = e.cause ? `: ${e.cause.code ?? e.cause.message}` : "";
      throw new FetchError(`${e.message}${cause}`);
    }
  }
}

async function readLimited(resp: globalThis.Response, limit: number, url: string): Promise<Uint8Array> {
  const reader = resp.body?.getReader();
  if (!reader) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      throw new FetchError(`${redact(url)}: larger than ${limit} bytes`);
    }
    chunks.push(value);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

/**
 * Last-Modified has one-second resolution: it validates a later If-Modified-Since only when at
 * least a second older than Date (RFC 9110, 8.8.2.2); otherwise a document replaced within that
 * second would keep answering 304.
 */
function strongLastModified(lastModified: string | null, date: string | null): string | null {
  if (!lastModified) return null;
  const modified = Date.parse(lastModified);
  const served = date ? Date.parse(date) : Date.now();
  if (Number.isNaN(modified) || Number.isNaN(served)) return null;
  return served - modified >= 1000 ? lastModified : null;
}

/** file://: the ETag is the file's identity (inode, mtime, size), so an unchanged file costs a stat. */
async function getFile(url: string, validators: Validators, limit: number): Promise<Response> {
  const path = fileURLToPath(url);
  let fh;
  try {
    fh = await open(path, "r");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return { status: 404 };
    throw new FetchError(`${path}: ${(err as Error).message}`);
  }
  try {
    const st = await fh.stat({ bigint: true });
    const etag = `"${st.ino.toString(16)}-${st.mtimeNs.toString(16)}-${st.size.toString(16)}"`;
    if (validators.etag === etag) return { status: 304, etag };
    if (st.size > BigInt(limit)) throw new FetchError(`${path} is larger than ${limit} bytes`);
    return { status: 200, body: await fh.readFile(), etag };
  } catch (err) {
    if (err instanceof FetchError) throw err;
    throw new FetchError(`${path}: ${(err as Error).message}`);
  } finally {
    await fh.close();
  }
}
