// Resolves Config.User ("", "name", "uid", "uid:gid", "name:group") against the container's own
// /etc/passwd and /etc/group, as Docker does; numeric ids need no entry.
// The files are read by the addon beneath an fd of the container's root (runtime/inroot.ts): a symlinked
// /etc/passwd, or one swapped for a symlink meanwhile, cannot lead to the host's.
import { invalid } from '../errors/errors';
import type { ResolvedUser } from './spec';
import { readFileInRootSync } from '../runtime/inroot';

interface PasswdEntry { name: string; uid: number; gid: number; home: string }
interface GroupEntry { name: string; gid: number; members: string[] }

const FILES = ['etc/passwd', 'etc/group'] as const;

function lines(text: string): string[][] {
  return text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(':'));
}

/** The two files, '' when missing or unreadable. Synchronous: small files on paths where every
 *  millisecond shows (docker exec), read in one call each. */
function readFiles(rootfs: string): string[] {
  return FILES.map((f) => {
    try {
      return readFileInRootSync(rootfs, f) ?? '';
    } catch {
      return '';
    }
  });
}

export async function resolveUser(rootfs: string, spec: string, groupAdd: string[] = []): Promise<ResolvedUser> {
  return resolveUserSync(rootfs, spec, groupAdd);
}

/** resolveUser with synchronous reads: for the paths where every millisecond shows (docker exec). */
export function resolveUserSync(rootfs: string, spec: string, groupAdd: string[] = []): ResolvedUser {
  const [passwd, group] = readFiles(rootfs);
  return userFrom(passwd, group, spec, groupAdd);
}

function userFrom(passwdText: string, groupText: string, spec: string, groupAdd: string[]): ResolvedUser {
  const passwd: PasswdEntry[] = lines(passwdText)
    .filter((f) => f.length >= 6).map((f) => ({ name: f[0], uid: Number(f[2]), gid: Number(f[3]), home: f[5] }));
  const groups: GroupEntry[] = lines(groupText)
    .filter((f) => f.length >= 3).map((f) => ({ name: f[0], gid: Number(f[2]), members: (f[3] ?? '').split(',').filter(Boolean) }));
  const [userPart, groupPart] = (spec || '').split(':', 2);
  let uid = 0;
  let gid = 0;
  let home = '/';
  let name = 'root';
  const numeric = (s: string) => /^\d+$/.test(s);
  if (userPart) {
    const byName = passwd.find((p) => p.name === userPart);
    const byId = numeric(userPart) ? passwd.find((p) => p.uid === Number(userPart)) : undefined;
    const entry = byName ?? byId;
    if (entry) {
      uid = entry.uid; gid = entry.gid; home = entry.home; name = entry.name;
    } else if (numeric(userPart)) {
      uid = Number(userPart); gid = uid === 0 ? 0 : uid; name = '';
      if (!groupPart) gid = 0;
    } else {
      throw invalid(`unable to find user ${userPart}: no matching entries in passwd file`);
    }
  } else {
    const root = passwd.find((p) => p.uid === 0);
    if (root) home = root.home;
  }
  if (groupPart) {
    const g = groups.find((x) => x.name === groupPart) ?? (numeric(groupPart) ? { gid: Number(groupPart) } : undefined);
    if (!g) throw invalid(`unable to find group ${groupPart}: no matching entries in group file`);
    gid = g.gid;
  }
  const additional = new Set<number>();
  if (name) for (const g of groups) if (g.members.includes(name) && g.gid !== gid) additional.add(g.gid);
  for (const ga of groupAdd) {
    const g = groups.find((x) => x.name === ga);
    if (g) additional.add(g.gid);
    else if (numeric(ga)) additional.add(Number(ga));
    else throw invalid(`unable to find group ${ga}: no matching entries in group file`);
  }
  return { uid, gid, additionalGids: [...additional], home };
}
