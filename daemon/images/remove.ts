// docker rmi and docker image prune, with Docker's rules (observed in traces/history-tag.txt and
// docs/engine-api.md section 8):
//
// * By reference: the reference goes. Without force, a container using the image is a conflict only when
//   this is the image's last reference (one tag plus its digests); with other tags left it just untags. When the
//   last tag of a repository goes, that repository's digest references go too. The image itself is deleted
//   only when no reference is left, and then quietly: a conflict at that point just keeps the image.
// * By id (or id prefix): when the references are one repository's (one tag plus its digests), they go
//   with the image; otherwise the image must be forced.
// * Conflicts: hard ones (child images, a running container) cannot be forced; soft ones (other
//   references, a stopped container) can. With force and a stopped container, the image is removed for
//   users but its row stays hidden while the container exists (the container keeps its layers).
// * Every layer no image needs any more is deleted and listed as `Deleted: <chain id>`.
import { conflict, invalid } from '../errors/errors';
import { shortId } from '../lib/ids';
import { parseNormalizedNamed, parseStored, tagNameOnly, fullString, fullName, familiarString } from './reference';
import type { RefRow } from './store';
import type { DeleteItem, ImageInternals, ImageRecord } from './model';
import { unixSeconds } from './views';
import { matchLabels, parseUntil, danglingFilter } from './filters';
import { crashPoint } from '../lib/crash';

const CONFLICT = {
  dependentChild: 1,
  runningContainer: 2,
  activeReference: 4,
  stoppedContainer: 8,
  hard: 1 | 2,
  soft: 4 | 8,
} as const;

interface Conflict {
  hard: boolean;
  /** A container uses the image (as opposed to references or children). */
  used: boolean;
  error: Error;
}

/** DELETE /images/{name}?force=&noprune= */
export function removeImage(x: ImageInternals, refOrId: string, force: boolean, prune: boolean): DeleteItem[] {
  x.sweepHidden();
  const img = x.find(refOrId);
  const records: DeleteItem[] = [];
  let refs = x.refs(img.id);
  let quiet = false;
  if (!isImageIdPrefix(img.id, refOrId)) {
    // Only the last reference is protected: with other tags (or repositories) left, the image stays and
    // the container keeps using it, so Docker just untags.
    if (!force && isSingleReference(refs)) {
      const users = x.hooks.imageInUse(img.id);
      if (users.length) {
        throw conflict(`conflict: unable to remove repository reference "${refOrId}" (must force) - container ${shortId(users[0])} is using its referenced image ${shortId(img.id)}`);
      }
    }
    const parsed = tagNameOnly(parseNormalizedNamed(refOrId));
    const key = parsed.digest ? fullString({ domain: parsed.domain, path: parsed.path, digest: parsed.digest }) : fullString(parsed);
    untag(x, img, key, records);
    refs = x.refs(img.id);
    if (!parsed.digest) {
      const repo = fullName(parsed);
      if (!refs.some((r) => r.kind === 'tag' && fullName(parseStored(r.ref)) === repo)) {
        for (const r of refs) if (r.kind === 'digest' && fullName(parseStored(r.ref)) === repo) untag(x, img, r.ref, records);
        refs = x.refs(img.id);
      }
    }
    if (refs.length > 0) return records;
    quiet = true;
  } else if (isSingleReference(refs)) {
    const c = conflictOf(x, img, CONFLICT.hard | (force ? 0 : CONFLICT.soft & ~CONFLICT.activeReference));
    if (c) throw c.error;
    for (const r of refs) untag(x, img, r.ref, records);
  }
  deleteImage(x, img, records, force, prune, quiet);
  return records;
}

function untag(x: ImageInternals, img: ImageRecord, storedRef: string, records: DeleteItem[]): void {
  if (!x.store.deleteRef(storedRef)) return;
  records.push({ Untagged: familiarString(parseStored(storedRef)) });
  x.emit(img, 'untag', img.id);
}

function isDangling(x: ImageInternals, id: string): boolean {
  return x.refs(id).length === 0 && x.store.children(id).length === 0;
}

function conflictOf(x: ImageInternals, img: ImageRecord, mask: number): Conflict | undefined {
  const users = mask & (CONFLICT.runningContainer | CONFLICT.stoppedContainer) ? x.hooks.imageInUse(img.id) : [];
  const running = (c: string) => (x.hooks.containerRunning ? x.hooks.containerRunning(c) : true);
  let found: { hard: boolean; used: boolean; message: string } | undefined;
  if (mask & CONFLICT.dependentChild && x.store.children(img.id).length > 0) {
    found = { hard: true, used: false, message: 'image has dependent child images' };
  }
  if (!found && mask & CONFLICT.runningContainer) {
    const c = users.find(running);
    if (c) found = { hard: true, used: true, message: `image is being used by running container ${shortId(c)}` };
  }
  if (!found && mask & CONFLICT.activeReference && x.refs(img.id).length > 0) {
    found = { hard: false, used: false, message: 'image is referenced in multiple repositories' };
  }
  if (!found && mask & CONFLICT.stoppedContainer) {
    const c = users.find((u) => !running(u));
    if (c) found = { hard: false, used: true, message: `image is being used by stopped container ${shortId(c)}` };
  }
  if (!found) return undefined;
  const how = found.hard ? 'cannot be forced' : 'must be forced';
  return { hard: found.hard, used: found.used, error: conflict(`conflict: unable to delete ${shortId(img.id)} (${how}) - ${found.message}`) };
}

/** Checks conflicts (giving up silently when `quiet` and the image is still wanted), drops every reference,
 *  the image and the layers nobody needs, then with `prune` the parent when nothing else needs it. */
function deleteImage(x: ImageInternals, img: ImageRecord, records: DeleteItem[], force: boolean, prune: boolean, quiet: boolean): void {
  const c = conflictOf(x, img, force ? CONFLICT.hard : CONFLICT.hard | CONFLICT.soft);
  if (c) {
    if (quiet && (!isDangling(x, img.id) || c.used)) return;
    throw c.error;
  }
  for (const r of x.refs(img.id)) untag(x, img, r.ref, records);
  if (x.store.delete(img.id)) x.forget(img.id);
  else x.log.info({ image: img.id }, 'image removed while a container uses it; kept hidden until the container goes');
  crashPoint('image-rm.after-row');
  records.push({ Deleted: img.id });
  x.emit(img, 'delete', img.id);
  for (const l of x.collectLayers()) records.push({ Deleted: l.chainId });
  if (!prune || !img.parent) return;
  const parent = x.store.get(img.parent);
  if (!parent || parent.removed) return;
  deleteImage(x, x.record(parent), records, false, true, true);
}

/** POST /images/prune: dangling images, or with dangling=false every image no container uses. Conflicts
 *  skip an image, as in Docker. */
export function pruneImages(x: ImageInternals, filters: Map<string, string[]>): { ImagesDeleted: DeleteItem[] | null; SpaceReclaimed: number } {
  for (const k of filters.keys()) if (!['dangling', 'label', 'label!', 'until'].includes(k)) throw invalid(`invalid filter '${k}'`);
  const danglingOnly = danglingFilter(filters.get('dangling'), true) ?? true;
  const until = filters.get('until')?.map((v) => parseUntil(v));
  const labels = filters.get('label') ?? [];
  const notLabels = filters.get('label!') ?? [];
  x.sweepHidden();
  const sizes = new Map(x.layers.all().map((l) => [l.chainId, l.size]));
  const deleted: DeleteItem[] = [];
  let reclaimed = 0;
  const rows = x.store.all();
  const hasChildren = new Set(rows.map((r) => r.parent).filter(Boolean));
  for (const row of rows) {
    if (danglingOnly && hasChildren.has(row.id)) continue;
    const img = x.record(row);
    const refs = x.refs(img.id);
    if (refs.length === 0 && hasChildren.has(img.id)) continue;
    if (until && !until.every((u) => unixSeconds(img.config?.created) <= u)) continue;
    if (labels.length && !matchLabels(x.labels(img), labels)) continue;
    if (notLabels.length && matchLabels(x.labels(img), notLabels)) continue;
    // An image a container uses (running or not) is never pruned, not even untagged.
    if (x.hooks.imageInUse(img.id).length) continue;
    const items: DeleteItem[] = [];
    try {
      if (refs.length === 0) items.push(...removeImage(x, img.id, false, true));
      else if (!danglingOnly) for (const r of refs) items.push(...removeImage(x, familiarString(parseStored(r.ref)), false, true));
    } catch (e) {
      const status = (e as { status?: number }).status;
      if (status !== 409 && status !== 404) throw e;
    }
    for (const d of items) if ('Deleted' in d) reclaimed += sizes.get(d.Deleted) ?? 0;
    deleted.push(...items);
  }
  crashPoint('image-prune.after-images');
  // Layers no image uses (a pull or load that died before its image was recorded) go too.
  for (const l of x.collectLayers()) {
    deleted.push({ Deleted: l.chainId });
    reclaimed += sizes.get(l.chainId) ?? 0;
  }
  x.hooks.emit('image', 'prune', '', { reclaimed: String(reclaimed) });
  return { ImagesDeleted: deleted.length ? deleted : null, SpaceReclaimed: reclaimed };
}

function isImageIdPrefix(imageId: string, s: string): boolean {
  if (imageId.startsWith(s)) return true;
  const i = imageId.indexOf(':');
  return i >= 0 && imageId.slice(i + 1).startsWith(s);
}

/** One tag plus digest references of that same repository (or only digests of one repository). */
function isSingleReference(refs: RefRow[]): boolean {
  if (refs.length <= 1) return refs.length === 1;
  let single: RefRow | undefined;
  const canonical = new Set<string>();
  for (const r of refs) {
    if (r.kind === 'digest') canonical.add(fullName(parseStored(r.ref)));
    else if (!single) single = r;
    else return false;
  }
  const s = single ?? refs[0];
  return canonical.size === 1 && canonical.has(fullName(parseStored(s.ref)));
}
