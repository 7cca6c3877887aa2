// `make conformance`: docker-py's own integration suite (tests/integration of docker/docker-py) against a
// berthd on a temporary socket and data root. Not part of `make test` (a few minutes, and it needs the
// suite's source).
//
// Where the suite comes from: DOCKER_PY_SRC (a checkout or an unpacked tree), else a shallow clone of
// DOCKER_PY_REPO (https://github.com/docker/docker-py) at DOCKER_PY_TAG (7.2.0, the newest tag) into
// build/conformance/docker-py-<tag>. The suite is run, never committed. pytest puts the tree's root first on
// sys.path, so the tests drive the docker package of the same tree (7.2.0's tests expect today's engine:
// 7.1.0's expect exit code 126 for an exec of a missing command, an old dockerd bug that moby fixed).
//
// Images: the suite wants alpine:3.10, alpine(:latest), busybox(:latest) and hello-world, and pulls some of
// them itself. berthd is given a local registry (Debian's docker-registry on a loopback port) as its
// docker.io mirror (daemon.json `registry-mirrors`). The project's busybox fixture is pushed there as
// library/busybox:latest, its `layered` fixture (an image of its own, which an image prune test removes)
// as library/hello-world:latest; "alpine" is that busybox plus the two things of alpine:3.10 the suite
// relies on (a `postgres` user, a /var/opt directory), built by berthd and pushed as library/alpine:3.10
// and :latest. So the suite's own pulls are real registry pulls. alpine:3.10, alpine and
// busybox are also present locally, which is what the suite's conftest checks (it pulls TEST_IMG only when
// it is absent).
//
// Excluded: swarm mode (swarm, service, secret, config, node files and the tests elsewhere that start a
// swarm) and plugins, which berth does not implement; the other exclusions say why below, and
// docs/conformance.md lists them all.
//
// Output: each file's pass/fail/skip counts, the failures, and a closing "N passed, N failed" line; the
// junit XML is kept in build/conformance/results.xml. Exit status 0 only when nothing failed.
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startBerthd, REPO, type Berthd } from '../helpers/berthd';
import { loadFixtures } from '../helpers/clients';
import { startRegistry, type Registry } from '../helpers/registry';

const TAG = process.env.DOCKER_PY_TAG ?? '7.2.0';
const REPO_URL = process.env.DOCKER_PY_REPO ?? 'https://github.com/docker/docker-py';
const OUT = path.join(REPO, 'build', 'conformance');
const PYTHON = process.env.PYTHON ?? 'python3';
// The whole run is bounded; a single test that hangs (an attach that never ends) would otherwise hold it.
const RUN_TIMEOUT_MS = Number(process.env.CONFORMANCE_TIMEOUT_S ?? 3600) * 1000;

// Files that exercise swarm mode or plugins only.
const EXCLUDED_FILES = [
  'api_swarm_test.py', 'api_service_test.py', 'api_secret_test.py', 'api_config_test.py', 'api_plugin_test.py',
  'models_swarm_test.py', 'models_services_test.py', 'models_nodes_test.py',
  // Client-side credential helpers, no daemon involved: they need a docker-credential-* program, and
  // credentials/utils_test.py rebinds os.environ to a plain dict, so every test after it loses DOCKER_HOST.
  'credentials',
];
// Tests in other files that need swarm mode (they call init_swarm) or something outside this machine;
// docs/conformance.md gives the reason for each.
const EXCLUDED_TESTS = [
  // They call init_swarm (attachable, ingress and swarm-scoped networks).
  'test_create_network_attachable', 'test_create_inspect_network_with_scope', 'test_create_network_ingress',
  // Pull by the digest of Docker Hub's own hello-world manifest: no local registry can serve that digest.
  'test_pull_with_sha',
  // websocket-client cannot open ws:// over a unix socket (docker-py's scheme http+docker); berth's
  // websocket attach is tested over its socket by test/e2e.
  'test_run_container_reading_socket_ws',
];

function suiteDir(): string {
  if (process.env.DOCKER_PY_SRC) return path.resolve(process.env.DOCKER_PY_SRC);
  const dir = path.join(OUT, `docker-py-${TAG}`);
  if (!existsSync(path.join(dir, 'tests', 'integration'))) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(OUT, { recursive: true });
    execFileSync('git', ['clone', '--quiet', '--depth', '1', '--branch', TAG, REPO_URL, dir], { stdio: 'inherit' });
  }
  return dir;
}

// The suite's tests/helpers.py imports paramiko, and its websocket attach test needs websocket-client. The
// python3 with docker 7.1.0 here (pyenv) has neither, and only npm and Debian packages can be installed:
// Debian's python3-paramiko (with its bcrypt and nacl, built for the same CPython 3.11 ABI) and
// python3-websocket, which `make conformance` installs, are put on that python's path through a directory
// of links to those packages alone, so Debian's older docker module never shadows the one under test.
function pythonPath(tmp: string): string {
  const probe = () => { try { execFileSync(PYTHON, ['-c', 'import paramiko'], { stdio: 'ignore', env: { ...process.env, PYTHONPATH: extra } }); return true; } catch { return false; } };
  let extra = process.env.PYTHONPATH ?? '';
  if (probe()) return extra;
  const dist = '/usr/lib/python3/dist-packages';
  const links = path.join(tmp, 'pylinks');
  mkdirSync(links);
  for (const m of ['paramiko', 'bcrypt', 'nacl', 'websocket']) if (existsSync(path.join(dist, m))) symlinkSync(path.join(dist, m), path.join(links, m));
  extra = [links, extra].filter(Boolean).join(':');
  if (!probe()) throw new Error(`${PYTHON} cannot import paramiko, which docker-py's tests/helpers.py needs`);
  return extra;
}

async function docker(b: Berthd, args: string[]): Promise<void> {
  const r = await b.docker(args, { timeoutMs: 180000 });
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')}: exit ${r.code}: ${r.stdout}${r.stderr}`);
}

// What alpine:3.10 has and the busybox fixture lacks, as far as the suite looks (exec as user postgres,
// exec in /var/opt).
const ALPINE_DOCKERFILE = [
  'FROM busybox:latest',
  `RUN echo 'postgres:x:70:70::/var/lib/postgresql:/bin/sh' >> /etc/passwd && echo 'postgres:x:70:' >> /etc/group && mkdir -p /var/opt /var/lib/postgresql`,
].join('\n');

/** Pushes the images the suite uses to the mirror, and leaves alpine:3.10, alpine and busybox local. */
async function seedImages(b: Berthd, reg: Registry): Promise<void> {
  await loadFixtures(b, ['busybox', 'layered']);
  const built = await b.docker(['build', '-q', '-t', 'alpine:3.10', '-t', 'alpine:latest', '-'], { input: ALPINE_DOCKERFILE, timeoutMs: 180000 });
  if (built.code !== 0) throw new Error(`building the alpine stand-in: ${built.stdout}${built.stderr}`);
  const names: [string, string][] = [['alpine:3.10', 'alpine:3.10'], ['alpine:latest', 'alpine:latest'], ['busybox:latest', 'busybox:latest'], ['layered:latest', 'hello-world:latest']];
  for (const [local, name] of names) {
    const remote = `127.0.0.1:${reg.port}/library/${name}`;
    await docker(b, ['tag', local, remote]);
    await docker(b, ['push', remote]);
    await docker(b, ['rmi', remote]);
  }
  // hello-world is pulled by the tests themselves (and pruned by one of them).
  await docker(b, ['rmi', 'layered:latest']);
}

interface Case { file: string; name: string; outcome: 'passed' | 'failed' | 'skipped'; detail: string }

function unescapeXml(s: string): string {
  return s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&#10;/g, '\n').replace(/&amp;/g, '&');
}

/** The cases of pytest's junit XML (xunit2): a testcase element with a failure/error/skipped child. */
function parseJunit(xml: string): Case[] {
  const cases: Case[] = [];
  const re = /<testcase ([^>]*?)(\/>|>([\s\S]*?)<\/testcase>)/g;
  for (let m = re.exec(xml); m; m = re.exec(xml)) {
    const attr = (k: string) => new RegExp(`(?:^|\\s)${k}="([^"]*)"`).exec(m![1])?.[1] ?? '';
    const body = m[3] ?? '';
    const file = attr('classname').replace(/^tests\.integration\./, '').split('.')[0];
    const name = `${attr('classname').split('.').pop()}::${attr('name')}`;
    let outcome: Case['outcome'] = 'passed';
    let detail = '';
    const bad = /<(failure|error)(?: message="([^"]*)")?/.exec(body);
    if (bad) { outcome = 'failed'; detail = unescapeXml(bad[2] ?? bad[1]); }
    else if (/<skipped/.test(body)) { outcome = 'skipped'; detail = unescapeXml(/<skipped(?: [^>]*?)?message="([^"]*)"/.exec(body)?.[1] ?? ''); }
    cases.push({ file, name, outcome, detail });
  }
  return cases;
}

function runPytest(src: string, env: NodeJS.ProcessEnv, junit: string, only: string[]): Promise<number> {
  const integ = path.join(src, 'tests', 'integration');
  const args = ['-m', 'pytest', '-p', 'no:cacheprovider', '-q', '-rN', '--tb=line', `--junitxml=${junit}`,
    ...EXCLUDED_FILES.map((f) => `--ignore=${path.join(integ, f)}`),
    '-k', EXCLUDED_TESTS.map((t) => `not ${t}`).join(' and '),
    ...(only.length ? only.map((f) => path.join(integ, f)) : [integ])];
  return new Promise((resolve) => {
    const child = spawn(PYTHON, args, { cwd: src, env, stdio: ['ignore', 'inherit', 'inherit'] });
    const timer = setTimeout(() => { console.error(`conformance: run over ${RUN_TIMEOUT_MS / 1000}s, stopping pytest`); child.kill('SIGTERM'); }, RUN_TIMEOUT_MS);
    child.on('exit', (code, sig) => { clearTimeout(timer); resolve(code ?? (sig ? 128 : 1)); });
  });
}

async function main(): Promise<void> {
  const src = suiteDir();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'berth-conformance-'));
  mkdirSync(OUT, { recursive: true });
  const reg = await startRegistry(tmp, 'mirror');
  let b: Berthd | undefined;
  let failed = 1;
  try {
    b = await startBerthd({ daemonJson: { 'registry-mirrors': [reg.base] } });
    await seedImages(b, reg);
    const junit = path.join(OUT, 'results.xml');
    rmSync(junit, { force: true });
    // Only the files named on the command line (`make conformance FILES="api_exec_test.py"`), else all.
    const only = (process.env.FILES ?? '').split(/\s+/).filter(Boolean);
    // A config.json of its own: docker-py keeps contexts beside it (without one, in the working directory).
    mkdirSync(path.join(tmp, 'docker-config'));
    writeFileSync(path.join(tmp, 'docker-config', 'config.json'), '{}\n');
    const env: NodeJS.ProcessEnv = {
      ...process.env, DOCKER_HOST: b.host, DOCKER_CONFIG: path.join(tmp, 'docker-config'),
      PYTHONPATH: pythonPath(tmp), PYTHONDONTWRITEBYTECODE: '1',
    };
    delete env.DOCKER_TLS_VERIFY; delete env.DOCKER_CERT_PATH; delete env.DOCKER_TEST_API_VERSION;
    const code = await runPytest(src, env, junit, only);
    if (!existsSync(junit)) throw new Error(`pytest wrote no results (exit ${code})`);
    const cases = parseJunit(readFileSync(junit, 'utf8'));
    const files = [...new Set(cases.map((c) => c.file))].sort();
    console.log('\n== docker-py', TAG, 'integration suite against berthd ==');
    for (const f of files) {
      const of = cases.filter((c) => c.file === f);
      const n = (o: Case['outcome']) => of.filter((c) => c.outcome === o).length;
      console.log(`${f.padEnd(28)} ${String(n('passed')).padStart(4)} passed ${String(n('failed')).padStart(4)} failed ${String(n('skipped')).padStart(4)} skipped`);
    }
    const bad = cases.filter((c) => c.outcome === 'failed');
    if (bad.length) {
      console.log('\nFailures:');
      for (const c of bad) console.log(`  ${c.file}::${c.name}: ${c.detail.split('\n')[0].slice(0, 200)}`);
    }
    const count = (o: Case['outcome']) => cases.filter((c) => c.outcome === o).length;
    console.log(`\nconformance: ${count('passed')} passed, ${count('failed')} failed, ${count('skipped')} skipped`);
    failed = bad.length || (cases.length === 0 ? 1 : 0);
  } finally {
    // berthd's log, for reading failures after the run.
    if (b && existsSync(path.join(b.root, 'berthd.log'))) copyFileSync(path.join(b.root, 'berthd.log'), path.join(OUT, 'berthd.log'));
    await b?.destroy().catch((e) => console.error('conformance: cleanup:', e));
    reg.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
  process.exitCode = failed ? 1 : 0;
}

// `make test` runs every file under dist/test/ as a test: the suite runs only when started by `make conformance`.
if (require.main === module && !process.env.NODE_TEST_CONTEXT) {
  main().catch((e) => {
    console.error('conformance:', e instanceof Error ? e.message : e);
    process.exitCode = 1;
  });
}
