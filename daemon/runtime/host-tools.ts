// The host as the container service reads it: the kernel's mount table and /proc (HostTools).
import { isMounted, hasOwnMount, mountsUnder, mountPoints } from '../lib/mounts';
import { identify, stillSame } from './process';
import type { HostTools } from './types';

export const hostTools: HostTools = { isMounted, isOwnMount: hasOwnMount, mountsUnder, mountPoints, identify, stillSame };
