// What the replays of orchestrators' calls (cri.test.ts for cri-dockerd, nomad.test.ts for Nomad's docker
// driver) share: the API at the version the client pins, Go's filters.Args as the client encodes them, and
// where a container's process sits in the cgroup tree.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Berthd } from './berthd';
import { api, type HttpResult } from './clients';

export interface PinnedApi {
  /** One request at /v<version><url>. */
  call(method: string, url: string, body?: object | Buffer, headers?: Record<string, string>): Promise<HttpResult>;
  /** One request that must answer one of `want`; its JSON body (undefined when empty). */
  json<T = any>(method: string, url: string, body?: object | Buffer, want?: number[]): Promise<T>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** The API as a client that pins `version` (cri-dockerd 1.43, Nomad 1.44) sees it. */
export function pinnedApi(b: Pick<Berthd, 'sock'>, version: string): PinnedApi {
  const call = (method: string, url: string, body?: object | Buffer, headers?: Record<string, string>) =>
    api(b, method, `/v${version}${url}`, { body, headers, timeoutMs: 60000 });
  return {
    call,
    async json(method, url, body, want = [200, 201, 204]) {
      const r = await call(method, url, body);
      assert.ok(want.includes(r.status), `${method} ${url}: ${r.status} ${r.body}`);
      return (r.body ? r.json() : undefined) as never;
    },
  };
}

/** Go's filters.Args as the client sends them: {"key": {"value": true}}, URL-encoded. */
export function filters(f: Record<string, string[]>): string {
  const o: Record<string, Record<string, boolean>> = {};
  for (const [k, vs] of Object.entries(f)) o[k] = Object.fromEntries(vs.map((v) => [v, true]));
  return encodeURIComponent(JSON.stringify(o));
}

/** The cgroup directory of pid in a v1 hierarchy (or the v2 one), from /proc/<pid>/cgroup. */
export function cgroupDir(pid: number, controller: string): string {
  for (const l of readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n')) {
    const [, ctrls, p] = l.split(':');
    if (ctrls.split(',').includes(controller)) return path.join('/sys/fs/cgroup', controller, p);
    if (ctrls === '' && existsSync('/sys/fs/cgroup/cgroup.controllers')) return path.join('/sys/fs/cgroup', p);
  }
  throw new Error(`no ${controller} cgroup for ${pid}`);
}
