// A container as berth keeps it: the immutable part (config, host config, paths) and its mutable state.
/* eslint-disable @typescript-eslint/no-explicit-any */
import type { MountPoint } from '../volumes/mounts';

export type Status = 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead';

export interface ContainerState {
  status: Status;
  pid: number;
  shimPid: number;
  exitCode: number;
  error: string;
  startedAt: string;
  finishedAt: string;
  oomKilled: boolean;
  restartCount: number;
  hasBeenStarted: boolean;
}

import type { IdMaps } from '../runtime/userns';

export interface ContainerRecord {
  id: string;
  name: string;           // "/web"
  imageId: string;        // sha256:…
  imageRef: string;       // Config.Image as given
  created: string;        // RFC3339Nano
  config: any;            // Docker's Config, image defaults merged
  hostConfig: any;        // Docker's HostConfig, defaults filled
  path: string;
  args: string[];
  layerId: string;        // overlay2/<layerId> is the container's read-write layer
  /** Stopped by the user (docker stop / kill): restart policies leave it down. Kept in the row's `extra`. */
  manuallyStopped?: boolean;
  /** Volumes, binds and tmpfs mounts, fixed at create (kept in the row's `extra`). */
  mounts?: MountPoint[];
  /** The id maps its upper dir's files were last given (null: the host's ids, no remap; absent in a
   *  record made before this was kept, read as null). Kept in the row's `extra`: a container made or last
   *  started under another --userns-remap has its files shifted at its next start (runtime/userns.ts). */
  idMap?: IdMaps | null;
  state: ContainerState;
}

export const initialState = (): ContainerState => ({
  status: 'created',
  pid: 0,
  shimPid: 0,
  exitCode: 0,
  error: '',
  startedAt: '0001-01-01T00:00:00Z',
  finishedAt: '0001-01-01T00:00:00Z',
  oomKilled: false,
  restartCount: 0,
  hasBeenStarted: false,
});
