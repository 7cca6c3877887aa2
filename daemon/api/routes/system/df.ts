// docker system df (GET /system/df[?type=image&type=container&type=volume&type=build-cache]): disk used by
// images (each with how much of it it shares with other images), containers (their read-write layers:
// SizeRw, and SizeRootFs = SizeRw + the image), volumes and the build cache (berth has neither yet: empty
// lists). With `type`, only the sections asked for are filled (API 1.42).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { lstat } from 'node:fs/promises';
import path from 'node:path';
import type { Daemon } from '../../../daemon';
import { qlist, type Query } from '../../../lib/query';
import { invalid } from '../../../errors/errors';
import { listView } from '../../../containers/views';
import type { Live } from '../../../containers/service';
import { walk } from '../../../storage/layers/pack';

const TYPES = ['image', 'container', 'volume', 'build-cache'];

/** A container's SizeRw (its read-write layer) and SizeRootFs (that and its image), for ps -s, inspect -s and df. */
export async function containerSizes(d: Daemon, live: Live): Promise<{ SizeRw: number; SizeRootFs: number }> {
  const rw = await dirSize(path.join(d.containers.layerDir(live.rec), 'diff'));
  let imageSize = 0;
  try {
    imageSize = d.images.get(live.rec.imageId).size;
  } catch { /* image gone */ }
  return { SizeRw: rw, SizeRootFs: rw + imageSize };
}

/** Bytes of the non-directories under `dir` (what Docker counts as a read-write layer's size). */
export async function dirSize(dir: string): Promise<number> {
  let n = 0;
  try {
    await lstat(dir);
  } catch {
    return 0;
  }
  const seen = new Set<string>();
  for await (const e of walk(dir)) {
    if (e.st.isDirectory()) continue;
    if (e.st.nlink > 1) {
      const k = `${e.st.dev}:${e.st.ino}`;
      if (seen.has(k)) continue;
      seen.add(k);
    }
    n += e.st.size;
  }
  return n;
}

export function systemDfRoutes(app: FastifyInstance, d: Daemon): void {
  app.get('/system/df', async (req: FastifyRequest<{ Querystring: Query }>) => {
    const types = qlist(req.query, 'type');
    for (const t of types) if (!TYPES.includes(t)) throw invalid(`unknown object type: ${t}`);
    const want = (t: string) => types.length === 0 || types.includes(t);
    const out: Record<string, unknown> = {};
    const lives = d.containers.all();
    if (want('image')) {
      const images = d.images.allImages();
      const chains = new Map(images.map((img) => [img.id, d.images.layerChain(img)]));
      const users = new Map<string, number>();
      const sizes = new Map<string, number>();
      for (const ls of chains.values()) {
        for (const l of ls) {
          users.set(l.chainId, (users.get(l.chainId) ?? 0) + 1);
          sizes.set(l.chainId, l.size);
        }
      }
      let layersSize = 0;
      for (const s of sizes.values()) layersSize += s;
      out.LayersSize = layersSize;
      out.Images = images.map((img) => {
        const v = d.images.summary(img, req.apiVersion);
        v.Containers = lives.filter((l) => l.rec.imageId === img.id).length;
        v.SharedSize = (chains.get(img.id) ?? []).filter((l) => (users.get(l.chainId) ?? 0) > 1).reduce((n, l) => n + l.size, 0);
        return v;
      }).sort((a, b) => (b.Created as number) - (a.Created as number));
    }
    if (want('container')) {
      out.Containers = await Promise.all(lives.map(async (live) => {
        return { ...listView(d.containers, live), ...(await containerSizes(d, live)) };
      }));
    }
    if (want('volume')) out.Volumes = await Promise.all(d.volumes.all().map(async (v) => d.volumes.view(v, await d.volumes.usage(v))));
    if (want('build-cache')) {
      out.BuildCache = [];
      out.BuilderSize = 0;
    }
    return out;
  });
}
