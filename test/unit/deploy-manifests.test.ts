// deploy/: every YAML manifest parses and has what Kubernetes requires and what the other
// pieces rely on (RuntimeClass handler = the containerd handler, the nodeSelector = the
// installer's label, DaemonSet selector = template labels, privileged + hostPID for nsenter,
// hostPath mounts for the paths install.sh writes). Then deploy/installer/install.sh itself,
// against a fake host root: install, a second install, uninstall, with the real
// `vkernel containerd-config` (dist/) as the payload's vkernel. The installer image: one name
// (daemonset.yaml = build-image.sh's default = docs/kubernetes.md, tagged with the package
// version), and a Containerfile that puts build-image.sh's staged files where install.sh and
// the DaemonSet look for them (the image itself cannot be built here: no base image).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { repoRoot } from '../fixtures/image';

// js-yaml 3 has no bundled types; this is the one function used.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const yaml = require('js-yaml') as { safeLoadAll(text: string): unknown[] };

const REPO = repoRoot();
const DEPLOY = path.join(REPO, 'deploy');
const INSTALLER = path.join(DEPLOY, 'installer', 'install.sh');
const CONTAINERFILE = path.join(DEPLOY, 'installer', 'Containerfile');
const BUILD_IMAGE = path.join(DEPLOY, 'installer', 'build-image.sh');
const KUBERNETES_DOC = path.join(REPO, 'docs', 'kubernetes.md');

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function manifestFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...manifestFiles(p));
    else if (/\.ya?ml$/.test(e.name)) out.push(p);
  }
  return out.sort();
}

const docs: { file: string; doc: Obj }[] = manifestFiles(DEPLOY).flatMap((file) =>
  yaml
    .safeLoadAll(fs.readFileSync(file, 'utf8'))
    .filter((d): d is Obj => d !== null && d !== undefined)
    .map((doc) => ({ file: path.relative(REPO, file), doc })),
);
const ofKind = (kind: string): Obj[] => docs.filter((d) => d.doc.kind === kind).map((d) => d.doc);

/** A default of install.sh: `NAME=${NAME:-value}` or `NAME=${NAME-value}`. */
function installerDefault(name: string): string {
  const m = new RegExp(`^${name}=\\$\\{${name}:?-([^}]*)\\}$`, 'm').exec(fs.readFileSync(INSTALLER, 'utf8'));
  if (!m) throw new Error(`install.sh has no default for ${name}`);
  return m[1];
}

/** The Containerfile's instructions: keyword and arguments, comments and blank lines dropped. */
function containerfile(): { op: string; args: string }[] {
  return fs
    .readFileSync(CONTAINERFILE, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const [op, ...rest] = l.split(/\s+/);
      return { op: op.toUpperCase(), args: rest.join(' ') };
    });
}

/** Installer image names without a registry or repository prefix, e.g. `vkernel-installer:0.1.0`. */
const bareImageNames = (text: string): string[] => [...text.matchAll(/(?<![\w./-])vkernel-installer:[\w.-]+/g)].map((m) => m[0]);

describe('deploy/ manifests', () => {
  it('there are manifests, and every document has apiVersion, kind and metadata.name', () => {
    expect(docs.length).toBeGreaterThanOrEqual(6);
    for (const { file, doc } of docs) {
      expect({ file, apiVersion: typeof doc.apiVersion, kind: typeof doc.kind, name: typeof doc.metadata?.name }).toEqual({
        file,
        apiVersion: 'string',
        kind: 'string',
        name: 'string',
      });
      expect(doc.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
    }
  });

  it('RuntimeClass vkernel: handler vkernel, a fixed pod overhead, scheduled on the nodes the installer labels', () => {
    const [rc, ...more] = ofKind('RuntimeClass');
    expect(more).toEqual([]);
    expect(rc.apiVersion).toBe('node.k8s.io/v1');
    expect(rc.metadata.name).toBe('vkernel');
    expect(rc.handler).toBe('vkernel');
    expect(rc.overhead.podFixed).toEqual({ memory: expect.stringMatching(/^\d+(Mi|Gi)$/), cpu: expect.stringMatching(/^\d+m?$/) });
    const [key, value] = installerDefault('NODE_LABEL').split('=');
    expect(rc.scheduling.nodeSelector).toEqual({ [key]: value });
  });

  it('the installer DaemonSet: selector matches the template, privileged, hostPID, host paths mounted, install and preStop uninstall', () => {
    const [ds, ...more] = ofKind('DaemonSet');
    expect(more).toEqual([]);
    expect(ds.apiVersion).toBe('apps/v1');
    const spec = ds.spec.template.spec as Obj;
    const labels = ds.spec.template.metadata.labels as Record<string, string>;
    expect(Object.keys(ds.spec.selector.matchLabels).length).toBeGreaterThan(0);
    for (const [k, v] of Object.entries(ds.spec.selector.matchLabels as Record<string, string>)) expect({ [k]: labels[k] }).toEqual({ [k]: v });
    expect(spec.hostPID).toBe(true);

    // Namespace and ServiceAccount exist; the ClusterRoleBinding names that account.
    expect(ofKind('Namespace').map((n) => n.metadata.name)).toContain(ds.metadata.namespace);
    const sa = ofKind('ServiceAccount').find((s) => s.metadata.name === spec.serviceAccountName);
    expect(sa?.metadata.namespace).toBe(ds.metadata.namespace);
    const binding = ofKind('ClusterRoleBinding').find((b) => b.subjects.some((s: Obj) => s.name === sa?.metadata.name));
    expect(binding?.subjects).toContainEqual({ kind: 'ServiceAccount', name: sa?.metadata.name, namespace: ds.metadata.namespace });
    const role = ofKind('ClusterRole').find((r) => r.metadata.name === binding?.roleRef.name);
    expect(role?.rules).toContainEqual(expect.objectContaining({ resources: ['nodes'], verbs: expect.arrayContaining(['patch']) }));

    const [c, ...moreContainers] = spec.containers as Obj[];
    expect(moreContainers).toEqual([]);
    expect(c.securityContext.privileged).toBe(true);
    expect(c.command).toEqual([expect.stringMatching(/\/install\.sh$/), 'install']);
    expect(c.lifecycle.preStop.exec.command).toEqual([c.command[0], 'uninstall']);
    const env = Object.fromEntries((c.env as Obj[]).map((e) => [e.name, e.value ?? e.valueFrom]));
    expect(env.NODE_NAME).toEqual({ fieldRef: { fieldPath: 'spec.nodeName' } });

    // Every path install.sh writes on the host is under a hostPath mount at $HOST_ROOT<path>.
    const volumes = new Map((spec.volumes as Obj[]).map((v) => [v.name, v]));
    const mounts = (c.volumeMounts as Obj[]).map((m) => ({ at: m.mountPath as string, host: volumes.get(m.name)?.hostPath?.path as string }));
    expect(mounts.filter((m) => !m.host)).toEqual([]);
    const hostRoot = env.HOST_ROOT ?? installerDefault('HOST_ROOT');
    const hostPaths = [
      env.INSTALL_DIR ?? installerDefault('INSTALL_DIR'),
      path.dirname(env.CONTAINERD_CONFIG ?? installerDefault('CONTAINERD_CONFIG')),
      installerDefault('SHIM_LINK_DIR'),
    ];
    for (const p of hostPaths) {
      const m = mounts.find((x) => p === x.host || p.startsWith(x.host + '/'));
      expect({ p, mountedAt: m && m.at }).toEqual({ p, mountedAt: hostRoot + m?.host });
    }
  });

  it('the installer image: one name, vkernel-installer:<package version>, in the DaemonSet, build-image.sh and the docs', () => {
    const [ds] = ofKind('DaemonSet');
    const image = (ds.spec.template.spec.containers as Obj[])[0].image as string;
    const version = (JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
    expect(image).toBe(`vkernel-installer:${version}`);
    expect(/^IMAGE=\$\{IMAGE:-([^}]+)\}$/m.exec(fs.readFileSync(BUILD_IMAGE, 'utf8'))?.[1]).toBe(image);
    const doc = fs.readFileSync(KUBERNETES_DOC, 'utf8');
    expect(doc).toContain(`The image is **\`${image}\`**`);
    // Every installer image named anywhere: the same tag; without a registry prefix, the same name.
    const texts = [doc, ...manifestFiles(DEPLOY).map((f) => fs.readFileSync(f, 'utf8')), fs.readFileSync(BUILD_IMAGE, 'utf8')];
    for (const t of texts) for (const m of t.matchAll(/vkernel-installer:([\w.-]+)/g)) expect(m[1]).toBe(version);
    expect([...new Set(texts.flatMap(bareImageNames))]).toEqual([image]);
  });

  it('the Containerfile: a Debian base; copies the staged payload, install.sh and kubectl where install.sh and the DaemonSet expect them', () => {
    const ops = containerfile();
    expect(ops[0]).toEqual({ op: 'FROM', args: expect.stringMatching(/^(docker\.io\/library\/)?debian:bookworm(-slim)?$/) });
    // COPY <context path> <image path>: nothing else (no RUN: no network, no package manager).
    expect([...new Set(ops.map((o) => o.op))].sort()).toEqual(['CMD', 'COPY', 'ENTRYPOINT', 'FROM']);
    const copies = new Map(ops.filter((o) => o.op === 'COPY').map((o) => o.args.split(' ') as [string, string]));

    // What build-image.sh stages in the context: payload/ (a make install DESTDIR tree for
    // PREFIX = install.sh's INSTALL_DIR, node inside), install.sh, kubectl.
    const script = fs.readFileSync(BUILD_IMAGE, 'utf8');
    const installDir = installerDefault('INSTALL_DIR');
    expect(script).toMatch(new RegExp(`^INSTALL_DIR=${installDir}\\s`, 'm'));
    expect(script).toContain('make install DESTDIR="$STAGE/payload" PREFIX="$INSTALL_DIR" INSTALL_NODE="$INSTALL_DIR/bin/node"');
    expect(script).toContain('"$STAGE/payload$INSTALL_DIR/bin/node"');
    const staged = [...script.matchAll(/"\$STAGE\/([\w.-]+)"/g)].map((m) => m[1]);
    for (const src of copies.keys()) expect(staged).toContain(src.replace(/\/$/, ''));

    // install.sh reads the payload at $PAYLOAD$INSTALL_DIR: the payload tree goes to PAYLOAD.
    const payload = installerDefault('PAYLOAD');
    expect(copies.get('payload/')).toBe(`${payload}/`);
    // The DaemonSet runs install.sh (install, and uninstall as its preStop hook) from the image.
    const c = (ofKind('DaemonSet')[0].spec.template.spec.containers as Obj[])[0];
    const env = Object.fromEntries((c.env as Obj[]).map((e) => [e.name, e.value]));
    expect(env.PAYLOAD ?? payload).toBe(payload);
    expect(env.INSTALL_DIR ?? installDir).toBe(installDir);
    expect(copies.get('install.sh')).toBe(c.command[0]);
    expect(c.command[0]).toBe(`${payload}/install.sh`);
    // install.sh labels the node with kubectl, found on PATH.
    expect(path.dirname(copies.get('kubectl') ?? '')).toBe('/usr/local/bin');
    expect(ops.find((o) => o.op === 'ENTRYPOINT')?.args).toBe(JSON.stringify([c.command[0]]));
    expect(ops.find((o) => o.op === 'CMD')?.args).toBe('["install"]');
  });

  it('deploy/installer/build-image.sh is executable and passes bash -n', () => {
    fs.accessSync(BUILD_IMAGE, fs.constants.X_OK);
    expect(spawnSync('bash', ['-n', BUILD_IMAGE], { encoding: 'utf8' })).toMatchObject({ status: 0, stderr: '' });
  });

  it('deploy/installer/install.sh exists, is executable and passes sh -n', () => {
    fs.accessSync(INSTALLER, fs.constants.X_OK);
    expect(spawnSync('sh', ['-n', INSTALLER], { encoding: 'utf8' })).toMatchObject({ status: 0, stderr: '' });
  });
});

describe('deploy/installer/install.sh against a fake host root', () => {
  let tmp = '';
  let host = '';
  let payload = '';
  const config = (): string => path.join(host, 'etc', 'containerd', 'config.toml');

  function installer(action: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync(INSTALLER, action, {
      encoding: 'utf8',
      timeout: 60_000,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOST_ROOT: host,
        PAYLOAD: payload,
        CONTAINERD_VERSION: '1.6',
        CONTAINERD_ADDRESS: path.join(tmp, 'no-containerd.sock'),
        RESTART: 'none',
        CHECK: 'none',
        NODE_NAME: '',
        ...env,
      },
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vkt-deploy-'));
    host = path.join(tmp, 'host');
    payload = path.join(tmp, 'payload');
    // The payload: a make-install tree whose vkernel is this repo's CLI (dist/).
    const bin = path.join(payload, 'opt', 'vkernel', 'bin');
    fs.mkdirSync(bin, { recursive: true });
    fs.writeFileSync(path.join(bin, 'vkernel'), `#!/bin/sh\nexec ${process.execPath} ${path.join(REPO, 'dist', 'cmd', 'vkernel.js')} "$@"\n`, { mode: 0o755 });
    fs.writeFileSync(path.join(bin, 'containerd-shim-vkernel-v2'), '#!/bin/sh\n', { mode: 0o755 });
    fs.mkdirSync(path.dirname(config()), { recursive: true });
  });

  afterEach(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('installs, registers the handler once (a second install replaces it), and uninstall restores the config', () => {
    const original = 'version = 2\n\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]\n  runtime_type = "io.containerd.runc.v2"\n';
    fs.writeFileSync(config(), original);
    for (let i = 0; i < 2; i++) {
      const r = installer(['install', '--once']);
      expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: expect.stringContaining('registered the vkernel handler') });
    }
    expect(fs.existsSync(path.join(host, 'opt', 'vkernel', 'bin', 'vkernel'))).toBe(true);
    expect(fs.readlinkSync(path.join(host, 'usr', 'local', 'bin', 'containerd-shim-vkernel-v2'))).toBe('/opt/vkernel/bin/containerd-shim-vkernel-v2');
    const text = fs.readFileSync(config(), 'utf8');
    expect(text.startsWith(original)).toBe(true);
    expect(text.split('# >>> vkernel').length).toBe(2);
    const runtimes = (parseToml(text) as Obj).plugins['io.containerd.grpc.v1.cri'].containerd.runtimes;
    expect(runtimes.vkernel.runtime_type).toBe('io.containerd.vkernel.v2');
    expect(runtimes.runc).toEqual({ runtime_type: 'io.containerd.runc.v2' });

    const u = installer(['uninstall']);
    expect(u.status).toBe(0);
    expect(fs.readFileSync(config(), 'utf8')).toBe(original);
    expect(fs.readdirSync(path.join(host, 'opt'))).toEqual([]);
    expect(fs.readdirSync(path.join(host, 'usr', 'local', 'bin'))).toEqual([]);
  });

  it('with no containerd config: writes one with version = 2 and a runc entry', () => {
    const r = installer(['install', '--once']);
    expect(r.status).toBe(0);
    const text = fs.readFileSync(config(), 'utf8');
    expect(text.startsWith('version = 2\n')).toBe(true);
    const runtimes = (parseToml(text) as Obj).plugins['io.containerd.grpc.v1.cri'].containerd.runtimes;
    expect(Object.keys(runtimes).sort()).toEqual(['runc', 'vkernel']);
  });

  it('refuses a version 1 config and leaves it alone', () => {
    const v1 = '[plugins.cri]\n  sandbox_image = "pause:3.9"\n';
    fs.writeFileSync(config(), v1);
    const r = installer(['install', '--once']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/no 'version = 2'.*migrate/);
    expect(fs.readFileSync(config(), 'utf8')).toBe(v1);
    expect(fs.existsSync(path.join(host, 'opt', 'vkernel'))).toBe(false);
  });

  it('without a payload it says what is missing', () => {
    fs.rmSync(payload, { recursive: true });
    const r = installer(['install', '--once']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`no payload at ${payload}/opt/vkernel`);
  });

  it('a bad action prints the usage', () => {
    expect(installer(['frobnicate'])).toMatchObject({ status: 2, stderr: expect.stringContaining('usage:') });
  });
});
