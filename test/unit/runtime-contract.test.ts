// The runtime contract (test/fakes/contract.ts) against the fake runtime. test/e2e/runtime-contract.test.ts
// runs the same checks against the real runtime, berth-shim and kernel.
import { runtimeContract, type Program } from '../fakes/contract';
import { fakeEngine } from '../fakes/containers';

function program(p: Program): string[] {
  switch (p.kind) {
    case 'sleeper': return ['sleep', '1000'];
    case 'handlesTerm': return ['exits-on-signal'];
    case 'exit': return ['exit', String(p.code)];
    case 'exitAfter': return ['exit-after', String(p.ms), String(p.code)];
    case 'missing': return ['/missing/cmd'];
  }
}

runtimeContract('fake runtime', async () => {
  const f = fakeEngine();
  return {
    get svc() { return f.svc; },
    program,
    mounted: (p) => f.rt.host.isMounted(p),
    cgroupExists: (id) => f.rt.cgroupMap.has(`berth/${id}`),
    detach: () => f.detach(),
    restart: (o) => f.restart(o),
    close: () => f.close(),
  };
});
