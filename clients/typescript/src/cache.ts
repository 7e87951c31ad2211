/**
 * cacheDir: the last good documents, so that a process restarted during an outage starts with
 * its last flags. One record per document, in the same format as the Python client's
 * (`{"cachedAt", "etag", "lastModified", "document"}`), written atomically: a temporary file in
 * the same directory, fsync, rename. A reader (or a restart) sees the old file or the new one.
 */
import { mkdirSync, readFileSync, readdirSync } from "node:fs";
import { mkdir, open, rename, unlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import { randomBytes } from "node:crypto";

export interface CacheRecord {
  cachedAt: number | null; // epoch seconds
  etag: string | null;
  lastModified: string | null;
  digest?: string | null;
  document: unknown;
}

export interface Validated {
  etag?: string | null;
  lastModified?: string | null;
  confirmed?: number | null; // epoch ms
}

export class CacheDir {
  private queue: Promise<void> = Promise.resolve();

  constructor(readonly root: string, private readonly onError: (path: string, err: Error) => void,
              private readonly onWritten: () => void) {}

  /** Queue an atomic write of `document` (already-serialised JSON text); writes happen in order. */
  write(name: string, documentText: string, meta: Validated, digest?: string | null): void {
    const path = join(this.root, name);
    const head = JSON.stringify({
      cachedAt: meta.confirmed != null ? meta.confirmed / 1000 : null,
      ...(digest !== undefined ? { digest } : {}),
      etag: meta.etag ?? null,
      lastModified: meta.lastModified ?? null,
    });
    // The document's own bytes, spliced in: a 6 MB snapshot is not serialised a second time.
    const text = `${head.slice(0, -1)},"document":${documentText.trim()}}`;
    this.queue = this.queue.then(() => atomicWrite(path, text)).then(this.onWritten, (err: Error) => this.onError(path, err));
  }

  /** Every queued write done. */
  flush(): Promise<void> {
    return this.queue;
  }

  read(name: string): CacheRecord | null {
    try {
      const record = JSON.parse(readFileSync(join(this.root, name), "utf8")) as unknown;
      return typeof record === "object" && record !== null && !Array.isArray(record) ? (record as CacheRecord) : null;
    } catch {
      return null;
    }
  }

  list(dir: string): string[] {
    try {
      return readdirSync(join(this.root, dir));
    } catch {
      return [];
    }
  }

  ensure(): void {
    try {
      mkdirSync(this.root, { recursive: true });
    } catch {
      // reported by the first write that fails
    }
  }
}

async function atomicWrite(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.tmp-${process.pid}-${randomBytes(6).toString("hex")}`);
  const fh = await open(tmp, "w", 0o644);
  try {
    await fh.writeFile(text, "utf8");
    await fh.sync();
  } catch (err) {
    await fh.close();
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

export function validatorsOf(record: CacheRecord): Validated {
  return {
    etag: typeof record.etag === "string" ? record.etag : null,
    lastModified: typeof record.lastModified === "string" ? record.lastModified : null,
    confirmed: typeof record.cachedAt === "number" ? record.cachedAt * 1000 : null,
  };
}
