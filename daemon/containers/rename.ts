// docker rename.
import { conflict, invalid } from '../errors/errors';
import type { ContainerService } from './service';

export async function rename(svc: ContainerService, ref: string, newName: string): Promise<void> {
  const live = svc.lookup(ref);
  const { NAME_RE } = await import('./names');
  if (!newName || !NAME_RE.test(newName)) throw invalid(`Invalid container name (${newName}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  const name = newName.startsWith('/') ? newName : `/${newName}`;
  if (name === live.rec.name) throw invalid(`Renaming a container with the same name as its current name`);
  const other = svc.byName.get(name);
  if (other) throw conflict(`Error when allocating new name: Conflict. The container name "${name}" is already in use by container "${other}". You have to remove (or rename) that container to be able to reuse that name.`);
  const old = live.rec.name;
  svc.store.rename(live.rec.id, name);
  svc.byName.delete(old);
  svc.byName.set(name, live.rec.id);
  live.rec.name = name;
  svc.emit(live, 'rename', { oldName: old });
}
