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

/** Strips a leading /vX.Y from the URL and checks the version is one berth serves. */
export function splitVersion(rawUrl: string): VersionedUrl {
  const m = /^\/v(\d+\.\d+)(\/[^?]*)?(\?.*)?$/.exec(rawUrl);
  if (!m) return { url: rawUrl, version: API_VERSION };
  const version = m[1];
  const url = (m[2] ?? '/') + (m[3] ?? '');
  if (compareVersions(version, MIN_API_VERSION) < 0) {
    return { url, version, error: `client version ${version} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version` };
  }
  if (compareVersions(version, API_VERSION) > 0) {
    return { url, version, error: `client version ${version} is too new. Maximum supported API version is ${API_VERSION}` };
  }
  return { url, version };
}
