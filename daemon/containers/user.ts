// Resolves Config.User ("", "name", "uid", "uid:gid", "name:group") against the container's own
// /etc/passwd and /etc/group, as Docker does; numeric ids need no entry.
// The files are found inside the container's root (a symlinked /etc/passwd cannot point at the host's).
import { closeSync, constants as FS, openSync, readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { invalid } from '../errors/errors';
import type { ResolvedUser } from './spec';
import { resolveInRoot, resolveInRootSync } from './archive';

interface PasswdEntry { name: string; uid: number; gid: number; home: string }
interface GroupEntry { name: string; gid: number; members: string[] }

const FILES = ['etc/passwd', 'etc/group'] as const;

function lines(text: string): string[][] {
  return text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(':'));
}

export async function resolveUser(rootfs: string, spec: string, groupAdd: string[] = []): Promise<ResolvedUser> {
  const [passwd, group] = await Promise.all(FILES.map(async (f) => {
    try {
      const fh = await open((await resolveInRoot(rootfs, f, true)).host, FS.O_RDONLY | FS.O_NOFOLLOW);
      try {
        return await fh.readFile('utf8');
      } finally {
        await fh.close();
      }
    } catch {
      return '';
    }
  }));
  return userFrom(passwd, group, spec, groupAdd);
}

/** resolveUser with synchronous reads: for the paths where every millisecond shows (docker exec). */
export function resolveUserSync(rootfs: string, spec: string, groupAdd: string[] = []): ResolvedUser {
  const [passwd, group] = FILES.map((f) => {
    let fd = -1;
    try {
      fd = openSync(resolveInRootSync(rootfs, f, true).host, FS.O_RDONLY | FS.O_NOFOLLOW);
      return readFileSync(fd, 'utf8');
    } catch {
      return '';
    } finally {
      if (fd >= 0) closeSync(fd);
    }
  });
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
