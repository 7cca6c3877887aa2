// Manifest media types and the checks a pulled manifest must pass before anything is downloaded.
/* eslint-disable @typescript-eslint/no-explicit-any */
import { invalid } from '../errors/errors';
import type { IndexEntry } from './platform';

export const MT = {
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerV2: 'application/vnd.docker.distribution.manifest.v2+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerV1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerV1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerForeignGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
} as const;

/** What pull asks for, in Docker's order of preference. */
export const MANIFEST_ACCEPT = [MT.dockerList, MT.ociIndex, MT.ociManifest, MT.dockerV2, MT.dockerV1Signed, 'application/json'];

const LAYER_TYPES = new Set<string>([
  MT.dockerLayerGzip, MT.dockerForeignGzip, MT.ociLayer, MT.ociLayerGzip, MT.ociLayerZstd,
  'application/vnd.oci.image.layer.nondistributable.v1.tar', 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd', 'application/vnd.docker.image.rootfs.diff.tar',
]);

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
}

export type ParsedManifest =
  | { kind: 'index'; entries: IndexEntry[] }
  | { kind: 'image'; config: Descriptor; layers: Descriptor[] };

const DIGEST = /^sha256:[a-f0-9]{64}$/;

function descriptor(d: any, what: string): Descriptor {
  if (!d || typeof d !== 'object' || typeof d.digest !== 'string' || !DIGEST.test(d.digest)) throw invalid(`invalid manifest: bad ${what} descriptor`);
  const size = typeof d.size === 'number' && d.size >= 0 ? d.size : -1;
  return { mediaType: typeof d.mediaType === 'string' ? d.mediaType : '', digest: d.digest, size, urls: Array.isArray(d.urls) ? d.urls : undefined };
}

/** Reads a manifest by its Content-Type, or by its own mediaType field when the registry says only JSON. */
export function parseManifest(bytes: Buffer, contentType: string | undefined): ParsedManifest {
  let v: any;
  try {
    v = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw invalid('invalid manifest: not JSON');
  }
  if (!v || typeof v !== 'object') throw invalid('invalid manifest: not an object');
  let mt = (contentType ?? '').split(';')[0].trim();
  if (!mt || mt === 'application/json' || mt === 'text/plain' || mt === 'application/octet-stream') {
    mt = typeof v.mediaType === 'string' ? v.mediaType : Array.isArray(v.manifests) ? MT.ociIndex : v.schemaVersion === 1 ? MT.dockerV1 : MT.ociManifest;
  }
  if (mt === MT.dockerV1 || mt === MT.dockerV1Signed || v.schemaVersion === 1) {
    throw invalid('Docker Image Format v1 and Docker Image manifest version 2, schema 1 support has been removed. Suggest the author of the image to push it again in a newer format');
  }
  if (mt === MT.dockerList || mt === MT.ociIndex) {
    if (!Array.isArray(v.manifests)) throw invalid('invalid manifest list: no manifests');
    return { kind: 'index', entries: v.manifests.map((m: any) => ({ ...descriptor(m, 'manifest'), platform: m.platform, annotations: m.annotations })) };
  }
  if (mt === MT.dockerV2 || mt === MT.ociManifest) {
    if (!Array.isArray(v.layers)) throw invalid('invalid manifest: no layers');
    const config = descriptor(v.config, 'config');
    const layers = v.layers.map((l: any, i: number) => descriptor(l, `layer ${i}`));
    for (const l of layers) {
      if (l.mediaType && !LAYER_TYPES.has(l.mediaType)) throw invalid(`unsupported media type ${l.mediaType} for layer ${l.digest}`);
    }
    return { kind: 'image', config, layers };
  }
  throw invalid(`unsupported manifest media type ${JSON.stringify(mt)}`);
}
