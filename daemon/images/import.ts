// docker import: a plain (or gzip) tar of a root filesystem becomes a one-layer image. The tar goes through
// the same unpacker as every layer (apply.ts: no absolute paths, no `..`, nothing through symlinks, nothing
// outside the layer directory), so a hostile archive fails and leaves nothing. The body is the request
// (fromSrc=-) or, with fromSrc=<url>, what berthd downloads from there.
//
// Also here: writing a new image row from a config the daemon made (import, commit).
/* eslint-disable @typescript-eslint/no-explicit-any */
import { nowNs, rfc3339Nano } from '../lib/time';
import { createHash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { invalid, systemError } from '../errors/errors';
import { decompressed } from '../storage/layers/decompress';
import { goArch } from '../lib/host';
import { parseNormalizedNamed, tagNameOnly, withTag, familiarName, type NamedRef } from './reference';
import { applyChanges } from './changes';
import type { ImageInternals, ImageRecord } from './model';

/** `repo` as import and commit take it: a name with an optional tag, or a name plus a separate `tag`. */
export function parseRepoTag(repo: string | undefined, tag: string | undefined): NamedRef | undefined {
  if (!repo) return undefined;
  let named: NamedRef;
  try {
    named = parseNormalizedNamed(repo);
  } catch (e) {
    throw invalid((e as Error).message);
  }
  if (named.digest) throw invalid('cannot import or commit to a digest reference');
  named = tag ? withTag(named, tag) : tagNameOnly(named);
  if (familiarName(named) === 'sha256') throw invalid('refusing to create an ambiguous tag using digest algorithm as name');
  return named;
}

/** Writes the image of `config` (whose top layer is `topChain`, held by the caller) and tags it. */
export function writeImage(x: ImageInternals, config: any, topChain: string | null, parent: string, tag: NamedRef | undefined, action: string): ImageRecord {
  const bytes = Buffer.from(JSON.stringify(config), 'utf8');
  const id = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  const size = x.layers.stack(topChain).reduce((n, l) => n + l.size, 0);
  x.store.insert({ id, config: bytes.toString('utf8'), topChain, size, created: config.created ?? '', parent });
  x.forget(id);
  const img = x.find(id);
  x.emit(img, action, id);
  if (tag) x.setTag(img, tag, true);
  return img;
}

export interface ImportOptions {
  /** `-` or the URL the body came from, for the history comment. */
  source: string;
  repo?: string;
  tag?: string;
  message?: string;
  changes: string[];
  platform?: string;
}

/** POST /images/create?fromSrc=…: returns the new image id. */
export async function importImage(x: ImageInternals, body: AsyncIterable<Buffer>, o: ImportOptions): Promise<string> {
  const named = parseRepoTag(o.repo, o.tag);
  const containerConfig = applyChanges({}, o.changes);
  const layer = await x.layers.create(null, decompressed(nonEmpty(body)));
  const release = x.layers.hold([layer.chainId]);
  try {
    const created = rfc3339Nano(nowNs());
    const comment = o.message || `Imported from ${o.source}`;
    const config: any = {
      architecture: goArch(),
      config: containerConfig,
      created,
      history: [{ created, comment, created_by: '' }],
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: [layer.diffId] },
    };
    if (o.message) config.comment = o.message;
    const img = writeImage(x, config, layer.chainId, '', named, 'import');
    return img.id;
  } finally {
    release();
    x.collectLayers();
  }
}

/** `src`, refusing one that ends without a single byte (an import of nothing is a mistake, not an empty
 *  image). */
async function* nonEmpty(src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let n = 0;
  for await (const c of src) {
    n += c.length;
    yield c;
  }
  if (n === 0) throw invalid('unexpected EOF: the archive to import is empty');
}

/** The body of an import from a URL. Any scheme but http(s) is refused; redirects are followed a few
 *  times. The error text is Go's, as the CLI prints it (`Get "<url>": …`). */
export async function* fetchUrl(url: string, hops = 0): AsyncGenerator<Buffer> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw invalid(`invalid URL ${JSON.stringify(url)}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw invalid(`unsupported URL scheme in ${JSON.stringify(url)}`);
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const req = (u.protocol === 'https:' ? https : http).get(u, (r) => resolve(r));
    req.on('error', (e) => reject(systemError(`Get ${JSON.stringify(url)}: ${goNetError(e as NodeJS.ErrnoException, u)}`)));
  });
  if (res.statusCode && res.statusCode >= 300 && res.statusCode < 400 && res.headers.location) {
    res.resume();
    if (hops >= 10) throw systemError(`Get ${JSON.stringify(url)}: stopped after 10 redirects`);
    yield* fetchUrl(new URL(res.headers.location, u).toString(), hops + 1);
    return;
  }
  if (res.statusCode !== 200) {
    res.resume();
    throw systemError(`Get ${JSON.stringify(url)}: status code ${res.statusCode}`);
  }
  for await (const c of res as AsyncIterable<Buffer>) yield c;
}

function goNetError(e: NodeJS.ErrnoException, u: URL): string {
  const hostPort = `${u.hostname}:${u.port || (u.protocol === 'https:' ? 443 : 80)}`;
  if (e.code === 'ECONNREFUSED') return `dial tcp ${hostPort}: connect: connection refused`;
  if (e.code === 'ENOTFOUND') return `dial tcp: lookup ${u.hostname}: no such host`;
  return e.message;
}
