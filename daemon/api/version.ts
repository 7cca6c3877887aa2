// API versions: berth serves 1.52 and accepts every version from 1.24 up, with or without the /vX.Y prefix.
export const API_VERSION = '1.52';
export const MIN_API_VERSION = '1.24';

import { compareVersions } from '../lib/versions';

export { compareVersions };

export interface VersionedUrl {
  url: string;
  version: string;
  error?: string;
}

/** Why a version is refused ('' when berth serves it), by version, worked out once per version seen
 *  (every request names one). Bounded: a client could send any number of made-up versions. */
const refusals = new Map<string, string>();

function refusal(version: string): string {
  let r = refusals.get(version);
  if (r === undefined) {
    r = compareVersions(version, MIN_API_VERSION) < 0
      ? `client version ${version} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`
      : compareVersions(version, API_VERSION) > 0 ? `client version ${version} is too new. Maximum supported API version is ${API_VERSION}` : '';
    if (refusals.size < 256) refusals.set(version, r);
  }
  return r;
}

/** Strips a leading /vX.Y from the URL and checks the version is one berth serves. */
export function splitVersion(rawUrl: string): VersionedUrl {
  if (rawUrl.charCodeAt(1) !== 118 /* v */) return { url: rawUrl, version: API_VERSION };
  const m = /^\/v(\d+\.\d+)(\/[^?]*)?(\?.*)?$/.exec(rawUrl);
  if (!m) return { url: rawUrl, version: API_VERSION };
  const version = m[1];
  const url = (m[2] ?? '/') + (m[3] ?? '');
  const error = refusal(version);
  return error ? { url, version, error } : { url, version };
}
