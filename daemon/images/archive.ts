// What a `docker load` archive holds, read from its index files into one list of images to load.
//
// Two layouts exist (docs/engine-api.md section 14):
//   docker-save: manifest.json = [{Config, RepoTags, Layers}] with paths into the archive (<v1id>/layer.tar in
//                the legacy form, blobs/sha256/<hex> when written next to an OCI layout);
//   OCI layout:  oci-layout + index.json → manifests (or nested indexes) → config and layer blobs, the image
//                name in the io.containerd.image.name / org.opencontainers.image.ref.name annotations.
// manifest.json wins when both are there, as in Docker; index.json is the fallback.
import { createHash } from 'node:crypto';
import { invalid } from '../errors/errors';
import { goArch } from '../lib/host';
import type { Spool } from './spool';

export interface ImageToLoad {
  /** Archive member holding the image config. */
  config: string;
  /** The config digest the archive claims (OCI); checked against the bytes. */
  configDigest?: string;
  /** Archive members of the layers, bottom first. */
  layers: string[];
  /** Names as written in the archive (`busybox:latest`, `docker.io/library/busybox:latest`). */
  repoTags: string[];
  /** Legacy manifest field: the parent image id, kept when that image exists. */
  parent?: string;
}

const MT_OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const MT_DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
const MT_OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const MT_DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

const isIndex = (mt: unknown) => mt === MT_OCI_INDEX || mt === MT_DOCKER_LIST;
const isManifest = (mt: unknown) => mt === MT_OCI_MANIFEST || mt === MT_DOCKER_MANIFEST;

interface Descriptor {
  mediaType?: string;
  digest?: string;
  size?: number;
  annotations?: Record<string, string>;
  platform?: { os?: string; architecture?: string; variant?: string };
}

function blobPath(d: Descriptor, what: string): string {
  if (typeof d.digest !== 'string' || !DIGEST_RE.test(d.digest)) throw invalid(`invalid ${what} descriptor: bad digest ${JSON.stringify(d.digest)}`);
  return `blobs/sha256/${d.digest.slice('sha256:'.length)}`;
}

const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

export async function planArchive(spool: Spool): Promise<ImageToLoad[]> {
  if (spool.has('manifest.json')) return planDockerSave(spool);
  if (spool.has('index.json')) return planOci(spool);
  if (spool.has('repositories')) {
    throw invalid('this archive has only the pre-1.10 `repositories` layout, which berth does not load; save it again with a newer docker');
  }
  throw invalid('invalid archive: it has neither manifest.json nor index.json (is it a `docker save` or OCI layout tarball?)');
}

async function planDockerSave(spool: Spool): Promise<ImageToLoad[]> {
  const { value } = await spool.readJson<unknown>('manifest.json');
  if (!Array.isArray(value)) throw invalid('invalid manifest.json: expected a list of images');
  return value.map((m, i) => {
    const e = m as { Config?: unknown; RepoTags?: unknown; Layers?: unknown; Parent?: unknown };
    if (!e || typeof e !== 'object' || typeof e.Config !== 'string') throw invalid(`invalid manifest.json: entry ${i} has no Config`);
    if (e.Layers !== undefined && e.Layers !== null && !isStringArray(e.Layers)) throw invalid(`invalid manifest.json: entry ${i} has bad Layers`);
    if (e.RepoTags !== undefined && e.RepoTags !== null && !isStringArray(e.RepoTags)) throw invalid(`invalid manifest.json: entry ${i} has bad RepoTags`);
    return {
      config: e.Config,
      layers: (e.Layers as string[] | null | undefined) ?? [],
      repoTags: (e.RepoTags as string[] | null | undefined) ?? [],
      parent: typeof e.Parent === 'string' && DIGEST_RE.test(e.Parent) ? e.Parent : undefined,
    };
  });
}

async function planOci(spool: Spool): Promise<ImageToLoad[]> {
  const index = await readBlobJson<{ manifests?: Descriptor[] }>(spool, 'index.json');
  if (!index || !Array.isArray(index.manifests)) throw invalid('invalid index.json: no manifests');
  const out: ImageToLoad[] = [];
  for (const d of index.manifests) {
    const names = nameOf(d);
    const manifest = await resolveManifest(spool, d, 0);
    if (!manifest) continue;
    out.push({ ...manifest, repoTags: names });
  }
  if (out.length === 0) throw invalid('invalid index.json: no image manifest for this platform');
  return out;
}

/** The reference an OCI index entry names: the containerd annotation (a full reference), else the OCI
 *  ref.name when it is a whole reference rather than a bare tag. */
function nameOf(d: Descriptor): string[] {
  const a = d.annotations ?? {};
  const full = a['io.containerd.image.name'];
  if (full) return [full];
  const ref = a['org.opencontainers.image.ref.name'];
  if (ref && /[:/]/.test(ref)) return [ref];
  return [];
}

async function readBlobJson<T>(spool: Spool, name: string, expectDigest?: string): Promise<T> {
  const { bytes, value } = await spool.readJson<T>(name);
  if (expectDigest) {
    const got = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    if (got !== expectDigest) throw invalid(`blob ${name} does not match its digest: expected ${expectDigest}, got ${got}`);
  }
  return value;
}

async function resolveManifest(spool: Spool, d: Descriptor, depth: number): Promise<Omit<ImageToLoad, 'repoTags'> | undefined> {
  if (depth > 4) throw invalid('invalid index.json: indexes nested too deeply');
  const name = blobPath(d, 'manifest');
  const doc = await readBlobJson<Record<string, unknown>>(spool, name, d.digest);
  const mt = d.mediaType ?? doc.mediaType;
  if (isIndex(mt) || (mt === undefined && Array.isArray(doc.manifests))) {
    const list = (doc.manifests ?? []) as Descriptor[];
    const pick = choosePlatform(list);
    return pick ? resolveManifest(spool, pick, depth + 1) : undefined;
  }
  if (!isManifest(mt) && !(mt === undefined && doc.config)) return undefined; // an artifact, not an image
  const config = doc.config as Descriptor | undefined;
  if (!config) throw invalid(`invalid manifest ${d.digest}: no config`);
  const layers = (doc.layers ?? []) as Descriptor[];
  if (!Array.isArray(layers)) throw invalid(`invalid manifest ${d.digest}: bad layers`);
  return {
    config: blobPath(config, 'config'),
    configDigest: config.digest,
    layers: layers.map((l) => blobPath(l, 'layer')),
  };
}

/** This host's platform from a list: linux and our architecture; an entry without platform (or the only
 *  image entry) when nothing names one. Attestation entries (platform unknown/unknown) never match. */
function choosePlatform(list: Descriptor[]): Descriptor | undefined {
  const images = list.filter((d) => d.platform?.os !== 'unknown');
  const exact = images.find((d) => d.platform?.os === 'linux' && d.platform?.architecture === goArch());
  if (exact) return exact;
  const unnamed = images.filter((d) => !d.platform);
  if (unnamed.length > 0) return unnamed[0];
  if (images.length === 0) return undefined;
  const have = images.map((d) => `${d.platform?.os}/${d.platform?.architecture}`).join(', ');
  throw invalid(`no matching manifest for linux/${goArch()} in the archive's index (it has ${have})`);
}
