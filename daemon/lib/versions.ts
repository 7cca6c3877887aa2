// Version facts every layer needs: berth's own version, and the order of API versions ("1.24" < "1.52").
// Here rather than in daemon/api/, so that services which shape answers by the client's API version
// (inspect views) do not import the API layer.

/** berthd's (and berth-shim's) version, as `docker version` and the metrics show it. */
export const BERTH_VERSION = '0.1.0';

/** Orders two "major.minor" API versions: < 0, 0 or > 0 as a is older, the same or newer than b. */
export function compareVersions(a: string, b: string): number {
  const [am, an] = a.split('.').map(Number);
  const [bm, bn] = b.split('.').map(Number);
  return am !== bm ? am - bm : an - bn;
}
