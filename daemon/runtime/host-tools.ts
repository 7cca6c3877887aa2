// The host as the container service reads it: the kernel's mount table and /proc (HostTools).
import { isMounted, mountsUnder } from '../lib/mounts';
import { identify, stillSame } from './process';
import type { HostTools } from './types';

export const hostTools: HostTools = { isMounted, mountsUnder, identify, stillSame };
