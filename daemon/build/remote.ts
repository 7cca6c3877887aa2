// ADD <url>: the classic builder's download of a remote file. Fetched by berthd itself, through the proxy
// settings of its environment (HTTPS_PROXY/HTTP_PROXY/NO_PROXY, as dockerd), following a few redirects; the
// file is written to the build's scratch space with mode 0600 and the mtime of its Last-Modified header,
// never unpacked (Docker unpacks only local archives). The build cache key covers it as it covers a local
// source (hashSources: name, mode and content), so a changed remote file is a new layer.
import { createHash } from 'node:crypto';
import { createWriteStream, promises as fsp } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import path from 'node:path';
import { request, discard } from '../distribution/http';
import { invalid, systemError } from '../errors/errors';
import type { Source } from './copy';
import { withRoot } from '../runtime/inroot';

export const isUrl = (s: string) => /^https?:\/\//i.test(s);

/** The file name a URL gives the downloaded file when the destination is a directory. */
function fileNameOf(u: URL): string {
  const base = path.posix.basename(decodeURIComponent(u.pathname));
  if (!base || base === '/' || base === '.' || base === '..') throw invalid(`cannot determine filename from url: ${u.toString()}`);
  return base;
}

export async function download(url: string, dir: string, hops = 0): Promise<Source> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw invalid(`ADD failed: invalid URL ${JSON.stringify(url)}`);
  }
  const res = await request({ method: 'GET', url: u.toString(), headers: { Accept: '*/*' } }).catch((e: Error) => {
    throw systemError(`failed to GET ${url}: ${e.message}`);
  });
  if (res.status >= 300 && res.status < 400 && res.headers.location) {
    discard(res);
    if (hops >= 10) throw systemError(`failed to GET ${url}: stopped after 10 redirects`);
    return download(new URL(res.headers.location, u).toString(), dir, hops + 1);
  }
  if (res.status !== 200) {
    discard(res);
    throw invalid(`failed to GET ${url} with status ${res.status}`);
  }
  const name = fileNameOf(u);
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  const host = path.join(dir, `${createHash('sha256').update(url).digest('hex').slice(0, 16)}-${name}`);
  await pipeline(res.body, createWriteStream(host, { mode: 0o600 }));
  await fsp.chmod(host, 0o600);
  const modified = Date.parse(String(res.headers['last-modified'] ?? ''));
  if (Number.isFinite(modified)) await fsp.utimes(host, modified / 1000, modified / 1000);
  // A source like any other: its directory is the root it is read from (runtime/inroot.ts).
  const at = `/${path.basename(host)}`;
  const st = (await withRoot(dir, (r) => r.resolve(at, false))).stat;
  if (!st) throw systemError(`failed to GET ${url}: the downloaded file is gone`);
  return { root: dir, at, name, st };
}
