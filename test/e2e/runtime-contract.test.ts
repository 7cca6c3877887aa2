// The runtime contract (test/fakes/contract.ts) against the real runtime: berth-shim, overlay mounts and
// cgroups on this kernel, with the container service's other neighbours faked. The same checks run
// against the fake in test/unit/runtime-contract.test.ts; a difference between the two is a bug in the fake.
import { runtimeContract } from '../fakes/contract';
import { realEngine } from '../helpers/real-engine';

runtimeContract('real runtime', realEngine);
