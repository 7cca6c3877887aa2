// docker build with the classic builder (POST /build, version=1): the Dockerfile's stages run step by
// step, and every step leaves an image whose parent is the previous step's, as Docker's legacy builder does:
//
//   FROM            the base: a local image, one pulled from its registry, an earlier stage, or scratch;
//   RUN             a real container (create, start, wait) whose read-write layer becomes the step's layer;
//   COPY, ADD,      a container that is never started: the files are written into its mounted root
//   WORKDIR         filesystem, and its read-write layer becomes the layer;
//   the others      config-only images (history `empty_layer`), made through a container that is created
//                   and removed as Docker's are (" ---> Running in …").
//
// The build cache: before a step runs, the images whose parent is the current image are searched for one
// made by the same instruction from the same config (for COPY/ADD the hash of the copied files is part of
// the instruction's history text); a match is used instead (" ---> Using cache"). nocache=1 turns this off;
// cachefrom limits the candidates to the named images and their parents, and a named image without a
// parent chain here (pulled, loaded) is matched against its history step by step (fromSourceHistory).
//
// The output is Docker's: "Step N/M : <line>", " ---> <id>", the RUN output as it comes, "Removing
// intermediate container <id>", and at the end an aux {"ID"} message, "Successfully built <id>" and one
// "Successfully tagged <name>" per tag. A failing step ends the stream with an errorDetail (a RUN's exit
// code as `code`); nothing is tagged then, and the step's container is removed.
/* eslint-disable @typescript-eslint/no-explicit-any */
import { nowNs, rfc3339Nano } from '../lib/time';
import { promises as fsp } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import type { Daemon } from '../daemon';
import { BerthError, invalid } from '../errors/errors';
import { goArch } from '../lib/host';
import { shortId } from '../lib/ids';
import type { ImageRecord } from '../images/model';
import { parseNormalizedNamed, tagNameOnly, familiarString, type NamedRef } from '../images/reference';
import { packUpper } from '../containers/commit';
import { withRoot, readFileChunks } from '../runtime/inroot';
import { resolveUser } from '../containers/user';
import { packDir } from '../storage/layers/pack';
import { chainIds } from '../storage/layers/store';
import { distributionOf } from '../distribution';
import type { AuthConfig } from '../distribution/auth';
import { download, isUrl } from './remote';
import { flagsOf, parseDockerfile, parseInstruction, type Instruction } from './dockerfile';
import { processWord, processWords, type Lookup } from './shell';
import { applyMetadata, commandOf, shellOf, splitRaw, type MetaContext } from './metadata';
import { copySources, ensureDir, findSources, hashSources, type Owner } from './copy';
import { isExcluded, parseDockerignore } from './dockerignore';

export interface BuildOptions {
  /** Path of the Dockerfile inside the context. */
  dockerfile: string;
  tags: NamedRef[];
  /** --build-arg: a null value means "take it from the environment", which the CLI has already done. */
  buildArgs: Record<string, string | null>;
  labels: Record<string, string>;
  quiet: boolean;
  noCache: boolean;
  /** --cache-from: when given, only these images and their parents are cache sources (the local build
   *  cache is not used), as in Docker; names that match no image are skipped. */
  cacheFrom?: string[];
  /** Remove intermediate containers after a successful step (rm, default on) / always (forcerm). */
  rm: boolean;
  forceRm: boolean;
  pull: boolean;
  target?: string;
  networkMode?: string;
  /** HostConfig fields for RUN containers: resource limits, extra hosts, ulimits. */
  hostConfig: Record<string, unknown>;
  platform?: string;
  /** X-Registry-Config: credentials by registry host. */
  auth: Record<string, AuthConfig>;
  /** Whether the client went away (the build stops at the next step). */
  aborted: () => boolean;
}

export type Out = (m: Record<string, unknown>) => void;

/** A failed RUN: Docker's message, and the command's exit code for the errorDetail. */
export class StepFailed extends BerthError {
  constructor(message: string, readonly code: number) {
    super('invalid', message);
  }
}

const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Config fields that decide whether a cached step matches (Docker compares the container config). */
const CACHE_FIELDS = ['Cmd', 'Entrypoint', 'Env', 'Labels', 'WorkingDir', 'User', 'ExposedPorts', 'Volumes', 'OnBuild', 'Shell', 'Healthcheck', 'StopSignal'];

function cacheKey(cfg: any): string {
  const norm = (v: any): any => {
    if (v === undefined || v === null || v === '' || (Array.isArray(v) && v.length === 0)) return null;
    if (Array.isArray(v)) return v.map(norm);
    if (typeof v === 'object') {
      const keys = Object.keys(v).sort();
      return keys.length ? Object.fromEntries(keys.map((k) => [k, norm(v[k])])) : null;
    }
    return v;
  };
  return JSON.stringify(CACHE_FIELDS.map((f) => norm(cfg?.[f])));
}

interface Stage {
  index: number;
  /** The `AS` name, lower-cased ('' when none). */
  name: string;
  /** The current image: undefined while a `FROM scratch` stage has made none. */
  image?: ImageRecord;
  config: any;
  /** ARGs declared in this stage, with their values (undefined: declared without one). */
  args: Map<string, string | undefined>;
  cmdSet: boolean;
  author?: string;
}

/** A step's container and what was made of it. */
interface StepResult {
  tar?: AsyncIterable<Buffer>;
  containerId: string;
  /** Whether " ---> Running in" was printed for the container (its removal is printed too). */
  announced: boolean;
}

export class Builder {
  private readonly out: Out;
  private readonly metaArgs = new Map<string, string | undefined>();
  /** --build-arg names some ARG declared (the others are reported as not consumed). */
  private readonly usedArgs = new Set<string>();
  private readonly stages: Stage[] = [];
  private step = 0;
  private total = 0;
  private escape = '\\';
  /** Containers of this build not yet removed. */
  private readonly pending = new Set<string>();
  /** Step containers the output named (" ---> Running in"): with rm=0 a failed one is kept, as in Docker. */
  private readonly shown = new Set<string>();

  constructor(private readonly d: Daemon, private readonly contextDir: string, private readonly tmpDir: string, private readonly o: BuildOptions, out: Out) {
    this.out = out;
  }

  private say(text: string): void {
    this.out({ stream: text });
  }

  private announce(containerId: string): void {
    this.shown.add(containerId);
    this.say(` ---> Running in ${shortId(containerId)}\n`);
  }

  /** Runs the whole build; returns the final image id. */
  async run(): Promise<string> {
    try {
      return await this.runStages();
    } finally {
      // A failed step's container goes too (Docker keeps it unless --force-rm; berth keeps it only with
      // --rm=false), and so do the helper containers of COPY/ADD.
      const keep = !this.o.rm && !this.o.forceRm;
      for (const id of this.pending) if (!(keep && this.shown.has(id))) await this.removeContainer(id, false).catch(() => undefined);
    }
  }

  private async runStages(): Promise<string> {
    const df = parseDockerfile(await this.readDockerfile());
    this.escape = df.escape;
    // ARGs before the first FROM are meta args: usable in FROM lines, and by stages that declare them again.
    let i = 0;
    for (; i < df.instructions.length && df.instructions[i].keyword !== 'FROM'; i++) {
      const ins = df.instructions[i];
      if (ins.keyword !== 'ARG') throw invalid(`dockerfile parse error line ${ins.line}: no build stage in current context`);
      for (const a of this.argPairs(ins, () => undefined)) this.metaArgs.set(a.name, a.value);
    }
    const body = df.instructions.slice(i);
    if (body.length === 0) throw invalid(`the Dockerfile (${this.o.dockerfile}) cannot be empty`);
    // Stages: split at FROM; with a target, the stages after it are not run (nor counted).
    const groups: Instruction[][] = [];
    for (const ins of body) {
      if (ins.keyword === 'FROM') groups.push([]);
      groups[groups.length - 1].push(ins);
    }
    let last = groups.length - 1;
    if (this.o.target) {
      const t = this.o.target.toLowerCase();
      last = groups.findIndex((g) => stageName(g[0]) === t);
      if (last < 0) throw invalid(`failed to reach build target ${this.o.target} in Dockerfile`);
    }
    const run = groups.slice(0, last + 1);
    const labels = Object.keys(this.o.labels).sort();
    this.total = run.reduce((n, g) => n + g.length, 0) + labels.length;
    for (const g of run) {
      await this.from(g[0]);
      for (const ins of g.slice(1)) await this.dispatch(ins);
    }
    const stage = this.stages[this.stages.length - 1];
    // Each --label is one more LABEL step of the last stage, in key order, its value not expanded.
    for (const k of labels) {
      const text = `LABEL ${k}=${this.o.labels[k]}`;
      await this.stepHeader({ keyword: 'LABEL', original: text, flags: [], args: '', line: 0 });
      await this.metadata(stage, () => {
        stage.config.Labels = { ...(stage.config.Labels ?? {}), [k]: this.o.labels[k] };
        return text;
      });
      this.say(` ---> ${shortId(stage.image?.id ?? '')}\n`);
    }
    if (!stage.image) throw invalid('No image was generated. Is your Dockerfile empty?');
    const unused = Object.keys(this.o.buildArgs).filter((k) => !this.usedArgs.has(k)).sort();
    if (unused.length) this.say(`[Warning] One or more build-args [${unused.join(' ')}] were not consumed\n`);
    return stage.image.id;
  }

  private async readDockerfile(): Promise<string> {
    // Resolved inside the context: a symlink in it must not make the builder read (and echo in a parse
    // error) a file of the host.
    const tryRead = (name: string) => withRoot(this.contextDir, async (root) => {
      const r = await root.resolve(name, true).catch(() => undefined);
      if (!r || r.inner === '/' || r.stat?.type !== 'file') return undefined;
      const chunks: Buffer[] = [];
      for await (const c of readFileChunks(root, r.inner)) chunks.push(c);
      return Buffer.concat(chunks).toString('utf8');
    });
    let name = this.o.dockerfile || 'Dockerfile';
    let text = await tryRead(name);
    if (text === undefined && name === 'Dockerfile') {
      // Docker takes a lower-case dockerfile when there is no Dockerfile, and names the default when
      // there is neither.
      text = await tryRead('dockerfile');
      if (text !== undefined) name = 'dockerfile';
    }
    if (text === undefined) throw invalid(`Cannot locate specified Dockerfile: ${name}`);
    await this.removeIgnored(name, tryRead);
    return text;
  }

  /** Takes .dockerignore and the Dockerfile out of the context when .dockerignore excludes them
   *  (daemon/build/dockerignore.ts says why). Both paths are resolved inside the context, the last
   *  component unfollowed, so a symlink among them removes only the link. */
  private async removeIgnored(dockerfile: string, read: (name: string) => Promise<string | undefined>): Promise<void> {
    const text = await read('.dockerignore');
    if (text === undefined) return;
    const patterns = parseDockerignore(text);
    for (const name of ['.dockerignore', dockerfile]) {
      if (!isExcluded(name, patterns)) continue;
      const inner = await withRoot(this.contextDir, async (root) => (await root.resolve(name, false).catch(() => undefined))?.inner);
      if (inner && inner !== '/') await fsp.rm(path.join(this.contextDir, inner), { recursive: true, force: true });
    }
  }

  private async stepHeader(ins: Instruction): Promise<void> {
    if (this.o.aborted()) throw invalid('the build was cancelled: the client went away');
    this.step++;
    this.say(`Step ${this.step}/${this.total} : ${ins.original}`);
    this.say('\n');
  }

  // ---- variables ---------------------------------------------------------------------------------

  /** `ARG a=1 b`: each name with its default as written (expanded) and its value: a --build-arg, else the
   *  default, else (`inherited`) the meta arg of that name. */
  private argPairs(ins: Instruction, inherited: Lookup, env: Lookup = () => undefined): { name: string; def?: string; value?: string }[] {
    const words = splitRaw(ins.args, this.escape);
    if (words.length === 0) throw invalid('ARG requires at least one argument');
    return words.map((w) => {
      const i = w.indexOf('=');
      const name = i < 0 ? w : w.slice(0, i);
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw invalid(`ARG names can not be blank or contain invalid characters: ${name}`);
      const def = i < 0 ? undefined : processWord(w.slice(i + 1), env, this.escape);
      let value = def ?? inherited(name);
      const given = Object.prototype.hasOwnProperty.call(this.o.buildArgs, name);
      if (given) this.usedArgs.add(name);
      if (given && this.o.buildArgs[name] !== null) value = this.o.buildArgs[name]!;
      return { name, def, value };
    });
  }

  /** What `$NAME` means in a stage: its ENV first, then its ARGs. */
  private lookup(stage: Stage): Lookup {
    return (name) => {
      const env = envValue(stage.config.Env, name);
      return env !== undefined ? env : stage.args.get(name);
    };
  }

  /** The ARGs in effect with a value that no ENV hides: RUN gets them in its environment. */
  private argEnv(stage: Stage): string[] {
    const out: string[] = [];
    for (const [k, v] of stage.args) if (v !== undefined && envValue(stage.config.Env, k) === undefined) out.push(`${k}=${v}`);
    return out.sort();
  }

  // ---- FROM ----------------------------------------------------------------------------------------

  private async from(ins: Instruction): Promise<void> {
    await this.stepHeader(ins);
    const metaLookup: Lookup = (n) => this.metaArgs.get(n);
    const platformFlag = flagsOf(ins, ['platform']).get('platform');
    const platform = platformFlag ? processWord(platformFlag, metaLookup, this.escape) : this.o.platform;
    const words = processWords(ins.args, metaLookup, this.escape);
    if (words.length !== 1 && !(words.length === 3 && words[1].toLowerCase() === 'as')) {
      throw invalid('FROM requires either one or three arguments');
    }
    const ref = words[0];
    const name = words.length === 3 ? words[2].toLowerCase() : '';
    if (name && this.stages.some((s) => s.name === name)) throw invalid(`duplicate name ${name}`);
    let image: ImageRecord | undefined;
    const earlier = this.stages.find((s) => s.name === ref.toLowerCase());
    if (earlier) image = earlier.image;
    else if (ref !== 'scratch') image = await this.baseImage(ref, this.o.pull, platform);
    const config: any = JSON.parse(JSON.stringify(image?.config?.config ?? {}));
    if (!envValue(config.Env, 'PATH')) config.Env = [...(config.Env ?? []), DEFAULT_PATH];
    const stage: Stage = { index: this.stages.length, name, image, config, args: new Map(), cmdSet: false };
    this.stages.push(stage);
    // The base image's ONBUILD triggers run now, and are not inherited.
    const triggers: string[] = Array.isArray(config.OnBuild) ? config.OnBuild : [];
    config.OnBuild = null;
    if (triggers.length) {
      this.say(`# Executing ${triggers.length} build trigger${triggers.length > 1 ? 's' : ''}\n`);
      for (const t of triggers) await this.dispatchStep(stage, parseInstruction(t, ins.line));
    }
    this.say(` ---> ${shortId(stage.image?.id ?? '')}\n`);
  }

  /** An image for FROM or COPY --from: local, or pulled when absent (or always with pull=1). */
  private async baseImage(ref: string, pull: boolean, platform: string | undefined): Promise<ImageRecord> {
    let named: NamedRef;
    try {
      named = tagNameOnly(parseNormalizedNamed(ref));
    } catch (e) {
      throw invalid(`invalid reference format: ${(e as Error).message} (${ref})`);
    }
    if (!pull) {
      try {
        return this.d.images.find(ref);
      } catch (e) {
        if (!(e instanceof BerthError && e.kind === 'notFound')) throw e;
      }
    }
    const auth = this.o.auth[named.domain] ?? (named.domain === 'docker.io' ? this.o.auth['https://index.docker.io/v1/'] : undefined) ?? {};
    const job = await distributionOf(this.d).preparePull(named, auth, platform);
    await job.run((m) => {
      if (!this.o.quiet) this.out(m);
    });
    return this.d.images.find(familiarString(named));
  }

  // ---- the other instructions ----------------------------------------------------------------------

  private async dispatch(ins: Instruction): Promise<void> {
    await this.stepHeader(ins);
    const stage = this.stages[this.stages.length - 1];
    await this.dispatchStep(stage, ins);
    this.say(` ---> ${shortId(stage.image?.id ?? '')}\n`);
  }

  private async dispatchStep(stage: Stage, ins: Instruction): Promise<void> {
    switch (ins.keyword) {
      case 'RUN':
        return this.runStep(stage, ins);
      case 'COPY':
      case 'ADD':
        return this.copyStep(stage, ins);
      case 'WORKDIR':
        return this.workdirStep(stage, ins);
      case 'ARG':
        return this.metadata(stage, () => {
          const pairs = this.argPairs(ins, (n) => this.metaArgs.get(n), this.lookup(stage));
          for (const a of pairs) stage.args.set(a.name, a.value);
          return `ARG ${pairs.map((a) => (a.def === undefined ? a.name : `${a.name}=${a.def}`)).join(' ')}`;
        });
      case 'FROM':
        throw invalid('FROM is not allowed here');
      default:
        return this.metadata(stage, () => {
          const c: MetaContext = { config: stage.config, env: this.lookup(stage), escape: this.escape, cmdSet: stage.cmdSet, author: stage.author };
          const comment = applyMetadata(ins, c);
          stage.cmdSet = c.cmdSet;
          stage.author = c.author;
          return comment;
        });
    }
  }

  /** A config-only step: `apply` changes the stage's config and returns the history comment. */
  private async metadata(stage: Stage, apply: () => string): Promise<void> {
    const comment = apply();
    const containerConfig = { ...stage.config, Cmd: [...shellOf(stage.config), '#(nop) ', comment] };
    if (await this.useCache(stage, containerConfig)) return;
    let containerId = '';
    if (stage.image) {
      // Docker's classic builder makes (and removes) a container for these steps too.
      containerId = await this.createContainer(stage, containerConfig.Cmd, stage.config);
      this.announce(containerId);
    }
    await this.commit(stage, containerConfig, { containerId, announced: true }, containerConfig.Cmd.join(' '));
  }

  private async workdirStep(stage: Stage, ins: Instruction): Promise<void> {
    const dir = processWord(ins.args, this.lookup(stage), this.escape);
    if (!dir) throw invalid('WORKDIR requires exactly one argument');
    stage.config.WorkingDir = path.posix.normalize(dir.startsWith('/') ? dir : path.posix.join(stage.config.WorkingDir || '/', dir));
    const comment = `WORKDIR ${stage.config.WorkingDir}`;
    const containerConfig = { ...stage.config, Cmd: [...shellOf(stage.config), `#(nop) ${comment}`] };
    if (await this.useCache(stage, containerConfig)) return;
    const res = await this.withRoot(stage, containerConfig.Cmd, true, async (root) => {
      await ensureDir(root, stage.config.WorkingDir, { uid: 0, gid: 0 });
    });
    await this.commit(stage, containerConfig, res, containerConfig.Cmd.join(' '));
  }

  private async copyStep(stage: Stage, ins: Instruction): Promise<void> {
    const what = ins.keyword;
    const flags = flagsOf(ins, what === 'COPY' ? ['from', 'chown', 'chmod'] : ['chown', 'chmod']);
    const env = this.lookup(stage);
    const words = ins.json ? ins.json.map((w) => processWord(w, env, this.escape)) : processWords(ins.args, env, this.escape);
    if (words.length < 2) throw invalid(`${what} requires at least two arguments, but only one was provided. Destination could not be determined.`);
    const dest = words[words.length - 1];
    const srcs = words.slice(0, -1);
    const urls = srcs.filter(isUrl);
    if (urls.length && what === 'COPY') throw invalid('COPY failed: source can\'t be a URL for COPY');
    if (urls.length && flags.get('from')) throw invalid('ADD failed: --from cannot be used with a URL source');
    const locals = srcs.filter((s) => !isUrl(s));
    const chownSpec = flags.get('chown') ? processWord(flags.get('chown')!, env, this.escape) : '';
    const chmodText = flags.get('chmod');
    let chmod: number | undefined;
    if (chmodText) {
      if (!/^[0-7]{3,4}$/.test(chmodText)) throw invalid(`invalid chmod parameter ${chmodText}`);
      chmod = parseInt(chmodText, 8);
    }
    // Remote files are fetched before the cache is consulted: the key follows their content.
    const downloads = await Promise.all(urls.map((u) => download(u, path.join(this.tmpDir, 'add-url'))));
    return this.withSourceRoot(stage, flags.get('from'), async (srcRoot) => {
      const localSources = locals.length ? await findSources(srcRoot, locals, what) : [];
      const sources = [...localSources, ...downloads];
      const hash = await hashSources(sources);
      const comment = `${what} ${chownSpec ? `--chown=${chownSpec} ` : ''}${hash} in ${dest} `;
      const containerConfig = { ...stage.config, Cmd: [...shellOf(stage.config), `#(nop) ${comment}`] };
      if (await this.useCache(stage, containerConfig)) return;
      const res = await this.withRoot(stage, containerConfig.Cmd, false, async (root) => {
        const owner = chownSpec ? await parseChown(root, chownSpec) : undefined;
        // Several sources (a remote one included) go into a directory; local archives of ADD are unpacked,
        // downloads never are.
        if (sources.length > 1 && !dest.endsWith('/')) throw invalid(`When using ${what} with more than one source file, the destination must be a directory and end with a /`);
        const into = dest;
        if (localSources.length) await copySources(root, localSources, { dest: into, workdir: stage.config.WorkingDir || '/', owner, chmod, unpack: what === 'ADD', what });
        if (downloads.length) await copySources(root, downloads, { dest: into, workdir: stage.config.WorkingDir || '/', owner, chmod, unpack: false, what });
      });
      await this.commit(stage, containerConfig, res, containerConfig.Cmd.join(' '));
    });
  }

  /** Runs fn with the root COPY reads from: the context, or an earlier stage's / an image's filesystem. */
  private async withSourceRoot(stage: Stage, from: string | undefined, fn: (root: string) => Promise<void>): Promise<void> {
    if (!from) return fn(this.contextDir);
    const key = from.toLowerCase();
    const earlier = this.stages.find((s) => s.name === key || String(s.index) === key);
    if (earlier === stage) throw invalid(`invalid from flag value ${from}: refers to current build stage`);
    const image = earlier ? earlier.image : await this.baseImage(from, false, this.o.platform);
    if (!image) {
      // An earlier FROM scratch stage that made nothing: an empty root.
      const empty = await this.tempDir('from');
      try {
        return await fn(empty);
      } finally {
        await fsp.rm(empty, { recursive: true, force: true });
      }
    }
    const id = await this.createRaw(image.id, ['#(nop) '], {});
    try {
      await this.d.containers.withRootfs(this.d.containers.lookup(id), fn);
    } finally {
      await this.removeContainer(id, false);
    }
  }

  private async runStep(stage: Stage, ins: Instruction): Promise<void> {
    if (!stage.image) throw invalid('RUN needs a base image with a shell: this stage starts FROM scratch and has no files yet');
    const cmd = commandOf(ins, stage.config);
    const argEnv = this.argEnv(stage);
    // Build args in effect are part of the cache key and of history: `|1 GREET=hi /bin/sh -c …`.
    const saved = argEnv.length ? [`|${argEnv.length}`, ...argEnv, ...cmd] : cmd;
    const containerConfig = { ...stage.config, Cmd: saved };
    if (await this.useCache(stage, containerConfig)) return;
    const id = await this.createContainer(stage, cmd, { ...stage.config, Env: [...(stage.config.Env ?? []), ...argEnv] });
    this.announce(id);
    const svc = this.d.containers;
    const live = svc.lookup(id);
    // stderr is framed in red as Docker's classic builder sends it: ESC[91m before and ESC[0m after each
    // piece (clients print it as is; docker-py's users look for it).
    const decoders = { out: new StringDecoder('utf8'), err: new StringDecoder('utf8') };
    const emit = (stream: number, text: string) => {
      if (text) this.say(stream === 2 ? `\x1b[91m${text}\x1b[0m` : text);
    };
    const detach = svc.addAttacher(live, {
      stdout: true,
      stderr: true,
      write: (stream, data) => emit(stream, (stream === 2 ? decoders.err : decoders.out).write(data)),
      end: () => undefined,
    });
    // A client that goes away (Ctrl-C on docker build) stops the build: the command is killed.
    const watch = setInterval(() => {
      if (this.o.aborted()) void svc.kill(id).catch(() => undefined);
    }, 500);
    try {
      await svc.start(id);
      await svc.waitExit(live, -1);
      await live.settling;
    } finally {
      clearInterval(watch);
      detach();
    }
    if (this.o.aborted()) throw invalid('the build was cancelled: the client went away');
    emit(1, decoders.out.end());
    emit(2, decoders.err.end());
    const code = live.rec.state.exitCode;
    if (code !== 0) throw new StepFailed(`The command '${cmd.join(' ')}' returned a non-zero code: ${code}`, code);
    await this.commit(stage, containerConfig, await this.layerOf(id, true), saved.join(' '));
  }

  // ---- containers, layers, images ------------------------------------------------------------------

  /** A step container from the stage's image, with `cmd` and the stage's config (`config` overrides). */
  private async createContainer(stage: Stage, cmd: string[], config: any): Promise<string> {
    return this.createRaw(stage.image!.id, cmd, config);
  }

  private async createRaw(imageId: string, cmd: string[], config: any): Promise<string> {
    const body: any = {
      Image: imageId,
      Cmd: cmd,
      Entrypoint: [''],
      Env: config.Env ?? [],
      WorkingDir: config.WorkingDir ?? '',
      User: config.User ?? '',
      AttachStdout: true,
      AttachStderr: true,
      // A step's command is not health-checked (the image's HEALTHCHECK is for the containers users run).
      Healthcheck: { Test: ['NONE'] },
      HostConfig: { ...this.o.hostConfig, NetworkMode: this.o.networkMode || 'default' },
    };
    const { Id } = await this.d.containers.create(undefined, body);
    this.pending.add(Id);
    return Id;
  }

  /** The container's read-write layer as a tar, or none when the step changed no file. */
  private async layerOf(containerId: string, announced: boolean): Promise<StepResult> {
    const rec = this.d.containers.lookup(containerId).rec;
    const upper = path.join(this.d.containers.layerDir(rec), 'diff');
    const changed = (await fsp.readdir(upper).catch(() => [])).length > 0;
    return { containerId, announced, tar: changed ? packUpper(this.d, rec) : undefined };
  }

  /** Runs `fn` on the step's root filesystem: a created (never started) container's, or, while a stage
   *  from scratch has no image yet, an empty directory that becomes the first layer. */
  private async withRoot(stage: Stage, cmd: string[], announce: boolean, fn: (root: string) => Promise<void>): Promise<StepResult> {
    if (!stage.image) {
      const dir = await this.tempDir('scratch');
      await fn(dir);
      const changed = (await fsp.readdir(dir)).length > 0;
      const tar = changed ? (packDir(dir) as unknown as AsyncIterable<Buffer>) : undefined;
      if (!tar) await fsp.rm(dir, { recursive: true, force: true });
      return { containerId: '', announced: false, tar: tar && removeAfter(tar, dir) };
    }
    const id = await this.createContainer(stage, cmd, stage.config);
    if (announce) this.announce(id);
    await this.d.containers.withRootfs(this.d.containers.lookup(id), fn);
    return this.layerOf(id, announce);
  }

  /** Writes the step's image and makes it the stage's; removes the step's container. */
  private async commit(stage: Stage, containerConfig: any, res: StepResult, createdBy: string): Promise<void> {
    const parent = stage.image;
    const img = await this.d.images.writeBuildStep(parent, res.tar, (diffId) => {
      const base = parent?.config ?? {};
      const now = rfc3339Nano(nowNs());
      const history = [...(Array.isArray(base.history) ? base.history : [])];
      history.push({ created: now, created_by: createdBy, ...(diffId ? {} : { empty_layer: true }) });
      const cfg: any = {
        architecture: base.architecture ?? goArch(),
        ...(stage.author ? { author: stage.author } : {}),
        config: { ...stage.config, Image: parent?.id ?? '' },
        container: res.containerId,
        container_config: { ...containerConfig, Hostname: shortId(res.containerId), Image: parent?.id ?? '' },
        created: now,
        history,
        os: base.os ?? 'linux',
        rootfs: { type: 'layers', diff_ids: [...(base.rootfs?.diff_ids ?? []), ...(diffId ? [diffId] : [])] },
      };
      if (base.variant) cfg.variant = base.variant;
      return cfg;
    });
    stage.image = img;
    if (res.containerId) await this.removeContainer(res.containerId, res.announced);
  }

  /** Looks for a cached step; on a hit the stage moves to it and " ---> Using cache" is printed. */
  private async useCache(stage: Stage, containerConfig: any): Promise<boolean> {
    if (this.o.noCache) return false;
    const parent = stage.image?.id ?? '';
    const key = cacheKey(containerConfig);
    // One more history entry than the parent: without this, `FROM scratch` + `CMD ["sh"]` would match any
    // loaded image whose last step was that CMD (their parent is '' too).
    const depth = (stage.image?.config?.history?.length ?? 0) + 1;
    const sources = this.cacheSources();
    const hits = this.d.images.allImages()
      .filter((img) => (!sources || sources.has(img.id)) && img.parent === parent && img.config?.container_config && (img.config.history?.length ?? 0) === depth
        && cacheKey(img.config.container_config) === key)
      .sort((a, b) => (a.created < b.created ? 1 : -1));
    const hit = hits[0] ?? (sources ? await this.fromSourceHistory(stage, containerConfig) : undefined);
    if (!hit) return false;
    this.say(' ---> Using cache\n');
    stage.image = hit;
    stage.config = JSON.parse(JSON.stringify(hit.config.config ?? {}));
    delete stage.config.Image;
    if (hit.config.author) stage.author = hit.config.author;
    return true;
  }

  /**
   * A cache_from image that was not built here (pulled or loaded: no parent chain) still serves as a
   * cache, as in Docker's classic builder: its history is read step by step. It fits the current step
   * when the current image's history and layers are the start of its own and its next history entry was
   * made by the same command. On its last entry the step is that image itself; before that, the step's
   * image is made from its parts (the source's next layer, if that entry made one, on the current image).
   */
  private async fromSourceHistory(stage: Stage, containerConfig: any): Promise<ImageRecord | undefined> {
    const createdBy = (containerConfig.Cmd ?? []).join(' ');
    const parent = stage.image;
    const ph: any[] = parent?.config?.history ?? [];
    const pd: string[] = parent?.config?.rootfs?.diff_ids ?? [];
    for (const name of this.o.cacheFrom ?? []) {
      let src: ImageRecord;
      try {
        src = this.d.images.find(name);
      } catch {
        continue;
      }
      const sh: any[] = src.config?.history ?? [];
      const sd: string[] = src.config?.rootfs?.diff_ids ?? [];
      if (sh.length <= ph.length || pd.length > sd.length) continue;
      if (!ph.every((h, i) => h?.created_by === sh[i]?.created_by && !!h?.empty_layer === !!sh[i]?.empty_layer)) continue;
      if (!pd.every((d, i) => d === sd[i])) continue;
      const next = sh[ph.length];
      if (next?.created_by !== createdBy) continue;
      if (sh.length - 1 === ph.length) return src;
      const layer = next.empty_layer ? undefined : (() => {
        if (pd.length >= sd.length) return undefined;
        const chain = chainIds(sd.slice(0, pd.length + 1));
        return { chainId: chain[chain.length - 1], diffId: sd[pd.length] };
      })();
      if (!next.empty_layer && !layer) continue;
      const base = parent?.config ?? {};
      return this.d.images.writeBuildStep(parent, layer, (diffId) => {
        const cfg: any = {
          architecture: base.architecture ?? src.config.architecture ?? goArch(),
          ...(stage.author ? { author: stage.author } : {}),
          config: { ...stage.config, Image: parent?.id ?? '' },
          container_config: { ...containerConfig, Image: parent?.id ?? '' },
          created: next.created ?? rfc3339Nano(nowNs()),
          history: sh.slice(0, ph.length + 1),
          os: base.os ?? src.config.os ?? 'linux',
          rootfs: { type: 'layers', diff_ids: [...pd, ...(diffId ? [diffId] : [])] },
        };
        if (base.variant) cfg.variant = base.variant;
        return cfg;
      });
    }
    return undefined;
  }

  private sources?: Set<string>;

  /** With cacheFrom: the ids of the named images and of all their parents (read once per build). */
  private cacheSources(): Set<string> | undefined {
    if (!this.o.cacheFrom) return undefined;
    if (this.sources) return this.sources;
    const ids = new Set<string>();
    for (const name of this.o.cacheFrom) {
      let img: ImageRecord | undefined;
      try {
        img = this.d.images.find(name);
      } catch {
        continue;
      }
      // Bounded by the number of images: a parent chain cannot be longer.
      for (let n = 0; img && !ids.has(img.id) && n < 10000; n++) {
        ids.add(img.id);
        img = img.parent ? this.d.images.byId(img.parent) : undefined;
      }
    }
    this.sources = ids;
    return ids;
  }

  /** Removes a step container; `announce` prints Docker's line (when rm is on). */
  private async removeContainer(id: string, announce: boolean): Promise<void> {
    if (!this.pending.has(id)) return;
    if (announce && !this.o.rm && !this.o.forceRm) {
      this.pending.delete(id); // kept, as Docker keeps them with --rm=false
      return;
    }
    if (announce) this.say(`Removing intermediate container ${shortId(id)}\n`);
    this.pending.delete(id);
    await this.d.containers.remove(id, { force: true, volumes: true }).catch((e) => {
      if (!(e instanceof BerthError && e.kind === 'notFound')) throw e;
    });
  }

  private async tempDir(kind: string): Promise<string> {
    const dir = path.join(this.tmpDir, `${kind}-${randomBytes(6).toString('hex')}`);
    await fsp.mkdir(dir, { mode: 0o755 });
    return dir;
  }
}

/** A build stage's name (`FROM x AS name`), lower-cased. */
function stageName(from: Instruction): string {
  const w = from.args.trim().split(/\s+/);
  return w.length === 3 && w[1].toLowerCase() === 'as' ? w[2].toLowerCase() : '';
}

function envValue(env: string[] | null | undefined, name: string): string | undefined {
  let v: string | undefined;
  for (const e of env ?? []) {
    const i = e.indexOf('=');
    if ((i < 0 ? e : e.slice(0, i)) === name) v = i < 0 ? '' : e.slice(i + 1);
  }
  return v;
}

/** --chown=user[:group]: names are looked up in the destination's /etc/passwd and /etc/group; a user without a
 *  group gets the gid equal to its uid, as Docker's classic builder does. */
async function parseChown(root: string, spec: string): Promise<Owner> {
  const [u, g] = spec.split(':', 2);
  const numeric = (s: string) => /^\d+$/.test(s);
  let uid: number;
  try {
    uid = numeric(u) ? Number(u) : (await resolveUser(root, u)).uid;
  } catch {
    throw invalid(`unable to convert uid/gid chown string to host mapping: can't find uid for user ${u}: no such user: ${u}`);
  }
  let gid = uid;
  if (g !== undefined && g !== '') {
    try {
      gid = numeric(g) ? Number(g) : (await resolveUser(root, `0:${g}`)).gid;
    } catch {
      throw invalid(`unable to convert uid/gid chown string to host mapping: can't find gid for group ${g}: no such group: ${g}`);
    }
  }
  return { uid, gid };
}

/** A tar stream that removes its source directory once read to the end (or dropped). */
async function* removeAfter(tar: AsyncIterable<Buffer>, dir: string): AsyncGenerator<Buffer> {
  try {
    for await (const c of tar) yield c;
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}
