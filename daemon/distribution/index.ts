// The distribution service: pull, push and login against v2 registries, for one daemon. Built on first use
// from the daemon's config and image service (it owns no tables: images and layers are the image service's;
// its files are <dataRoot>/image/distribution/sources.json and diffids.json, where it remembers which
// repository holds which blob and which blobs are which layer). Pulls keep no blobs on disk; the
// <dataRoot>/image/blobs directory of older versions (downloads and verified blobs) is emptied at start.
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config/config';
import type { ImageService } from '../images/service';
import { RegistryError, Registries, Session } from './registry';
import { preparePull, type PreparedPull } from './pull';
import { runPush, BlobSources } from './push';
import { basicAuthorization, type AuthConfig } from './auth';
import type { Out } from './progress';
import type { NamedRef } from '../images/reference';
import { request, discard } from './http';
import { BerthError } from '../errors/errors';

/** What pulls and pushes need: the registries' settings, the image store, a logger. */
export interface DistributionDeps {
  readonly config: Pick<Config, 'dataRoot' | 'insecureRegistries' | 'registryMirrors' | 'maxConcurrentDownloads' | 'maxConcurrentUploads'>;
  readonly images: ImageService;
  readonly log: Logger;
}

export class Distribution {
  readonly registries: Registries;
  private readonly blobsDir: string;
  private readonly sources: BlobSources;

  constructor(private readonly d: DistributionDeps) {
    this.registries = new Registries(
      { insecureRegistries: d.config.insecureRegistries ?? [], registryMirrors: d.config.registryMirrors ?? [] },
      d.log.child({ svc: 'distribution' }),
    );
    this.blobsDir = path.join(d.config.dataRoot, 'image', 'blobs');
    mkdirSync(this.blobsDir, { recursive: true, mode: 0o700 });
    // Blobs and temp files older versions left (a crash, an interrupted pull): nothing uses them now.
    for (const f of readdirSync(this.blobsDir)) if (f.startsWith('tmp-') || f.startsWith('sha256-')) rmSync(path.join(this.blobsDir, f), { force: true });
    const dir = path.join(d.config.dataRoot, 'image', 'distribution');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.sources = new BlobSources(path.join(dir, 'sources.json'));
  }

  preparePull(named: NamedRef, auth: AuthConfig, platform?: string): Promise<PreparedPull> {
    return preparePull({
      images: this.d.images, registries: this.registries, blobsDir: this.blobsDir,
      maxDownloads: this.d.config.maxConcurrentDownloads ?? 3, sources: this.sources,
    }, named, auth, platform);
  }

  push(named: NamedRef, auth: AuthConfig, out: Out): Promise<void> {
    return runPush({
      images: this.d.images, registries: this.registries, blobsDir: this.blobsDir,
      maxUploads: this.d.config.maxConcurrentUploads ?? 5, sources: this.sources,
    }, named, auth, out);
  }

  /**
   * docker login: checks the credentials against the registry's /v2/ (basic: the request itself; bearer:
   * a token for no particular repository). Wrong credentials → 401 with Docker's message.
   */
  async login(auth: AuthConfig): Promise<{ IdentityToken: string; Status: string }> {
    let server = (auth.serveraddress ?? '').trim();
    if (!server || /^(https?:\/\/)?(index\.)?docker\.io(\/v1\/?)?$/.test(server) || server === 'https://index.docker.io/v1/') server = 'docker.io';
    server = server.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
    const endpoint = this.registries.endpoints(server, false)[0];
    const ping = await this.registries.ping(endpoint);
    const url = `${ping.base}/v2/`;
    const refused = () => new BerthError('unauthorized', `login attempt to ${url} failed with status: 401 Unauthorized`);
    if (ping.status === 200) return { IdentityToken: '', Status: 'Login Succeeded' };
    const bearer = ping.challenges.find((c) => c.scheme === 'bearer');
    let authorization: string;
    if (bearer) {
      const s = new Session(ping.base, endpoint.insecure, '', auth, this.d.log);
      try {
        authorization = `Bearer ${await s.fetchToken(bearer, [])}`;
      } catch (e) {
        if (e instanceof RegistryError && e.kind === 'unauthorized') throw refused();
        throw e;
      }
    } else {
      if (auth.username === undefined) throw refused();
      authorization = basicAuthorization(auth.username, auth.password ?? '');
    }
    const res = await request({ method: 'GET', url, headers: { Authorization: authorization }, insecure: endpoint.insecure });
    discard(res);
    if (res.status === 200) return { IdentityToken: '', Status: 'Login Succeeded' };
    if (res.status === 401 || res.status === 403) throw refused();
    throw new BerthError('system', `login attempt to ${url} failed with status: ${res.status}`);
  }
}

const services = new WeakMap<DistributionDeps, Distribution>();

export function distributionOf(d: DistributionDeps): Distribution {
  let s = services.get(d);
  if (!s) {
    s = new Distribution(d);
    services.set(d, s);
  }
  return s;
}
