// Restore time after a kill -9 of berthd with N running containers: from the restart to the first answer
// of /_ping, to berthd's "ready", and to a /containers/json that lists all N running with the pids they had
// before the crash. N grows through BENCH_COUNTS (default 10,100,500). Each container runs busybox sleep;
// the first BENCH_BRIDGED (default 200) are on the default bridge (the test daemon's bridge is a /24), the
// others have no network.
//   node dist/bench/restore.js
import http from 'node:http';
import Docker from 'dockerode';
import { benchBerthd } from './lib';

function ping(sock: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.request({ socketPath: sock, path: '/_ping', method: 'GET', timeout: 200 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => { req.destroy(); resolve(false); });
    req.end();
  });
}

async function main(): Promise<void> {
  const counts = (process.env.BENCH_COUNTS ?? '10,100,500').split(',').map(Number).filter((n) => n > 0);
  const bridged = Number(process.env.BENCH_BRIDGED ?? 200);
  const b = await benchBerthd();
  const d = new Docker({ socketPath: b.sock });
  let made = 0;
  try {
    console.log('restore after kill -9: N running containers → time to /_ping, to ready, to a full /containers/json');
    for (const n of counts) {
      const t0 = Date.now();
      let next = made;
      await Promise.all(Array.from({ length: 8 }, async () => {
        while (next < n) {
          const i = next++;
          const c = await d.createContainer({ Image: 'busybox', Cmd: ['sleep', '100000'], HostConfig: { NetworkMode: i < bridged ? 'bridge' : 'none' } });
          await c.start();
        }
      }));
      made = n;
      const before = new Map((await d.listContainers()).map((c) => [c.Id, 0]));
      for (const id of before.keys()) before.set(id, (await d.getContainer(id).inspect()).State.Pid);
      const startSecs = ((Date.now() - t0) / 1000).toFixed(1);
      await b.kill9();
      const t1 = process.hrtime.bigint();
      const ms = () => Number(process.hrtime.bigint() - t1) / 1e6;
      let pingMs = -1;
      let stopPoll = false;
      const poll = (async () => {
        for (let i = 0; i < 6000 && !stopPoll; i++) {
          if (await ping(b.sock)) { pingMs = ms(); return; }
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      await b.restart();
      const readyMs = ms();
      await poll;
      stopPoll = true;
      const list = await d.listContainers();
      const listMs = ms();
      const running = list.filter((c) => c.State === 'running');
      let samePid = 0;
      for (const c of running) if ((await d.getContainer(c.Id).inspect()).State.Pid === before.get(c.Id)) samePid++;
      console.log(`  N=${String(n).padStart(4)} (${Math.min(n, bridged)} bridged; started in ${startSecs} s): /_ping ${pingMs.toFixed(0)} ms, ready ${readyMs.toFixed(0)} ms, `
        + `containers/json ${listMs.toFixed(0)} ms (${(listMs - pingMs).toFixed(0)} ms after /_ping); ${running.length}/${n} running, ${samePid} with the same pid`);
    }
  } finally {
    await b.destroy();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
