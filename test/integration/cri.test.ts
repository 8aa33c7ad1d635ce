// The Kubernetes path (issue 7, item 5): containerd 1.6 (then 1.7, where the shim speaks
// gRPC) with its CRI plugin and the `vkernel` runtime handler (the one docs/cri.md ships and
// `vkernel containerd-config` prints: runtime_type io.containerd.vkernel.v2, ConfigPath,
// pod_annotations and container_annotations = ["io.vkernel.*"]), driven through the CRI API
// (runtime.v1 over grpc-js) the way the kubelet drives it:
//
//   Version/Status → RunPodSandbox (runtime_handler "vkernel", cgroup_parent, io.vkernel.*
//   pod annotation) → CreateContainer + StartContainer × 2 → ExecSync → ContainerStats →
//   UpdateContainerResources → StopContainer + RemoveContainer (one of them) →
//   StopPodSandbox → RemovePodSandbox
//
// Network: Debian's CNI plugins (/usr/lib/cni), a bridge of our own on a private /24; the
// sandbox image: a pause-like image built offline (test/fixtures/pause-image.ts). One shim
// daemon must serve the whole pod, the view annotations must reach the shim (and only the
// allow-listed ones), and afterwards nothing may remain: shim processes, mounts, cgroups,
// network namespaces, veths, IP leases, the bridge.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describeIf, requireBinary, requireFixtures, requirement, requireRoot } from '../harness';
import { TestContainerd, type ContainerdVersion } from '../harness/containerd';
import {
  CniBridge,
  cniNetns,
  CriClient,
  criContainerdOptions,
  CRI_NAMESPACE,
  DEFAULT_CNI_BIN_DIR,
  linkExists,
  PodCgroups,
  type CriMessage,
} from '../harness/cri';
import { writePauseImage } from '../fixtures/pause-image';
import { LAUNCHER, processesWith, sleep, startShimEnv, tasks, waitFor, type ShimEnv } from './helpers/shim-env';

const CNI_PLUGINS = ['bridge', 'host-local', 'loopback'];

const ok =
  requireRoot() &&
  requireFixtures() &&
  requireBinary('ip') &&
  requirement(fs.existsSync(LAUNCHER), `${LAUNCHER} missing (run \`make all\`)`) &&
  requirement(
    CNI_PLUGINS.every((p) => fs.existsSync(path.join(DEFAULT_CNI_BIN_DIR, p))),
    `CNI plugins ${CNI_PLUGINS.join(', ')} missing in ${DEFAULT_CNI_BIN_DIR} (apt-get install containernetworking-plugins)`,
  );

jest.setTimeout(60_000);

const VERSIONS: ContainerdVersion[] = ['1.6', '1.7'];

const MiB = 1024 * 1024;
const CGROUP_V2 = fs.existsSync('/sys/fs/cgroup/cgroup.controllers');

/** A cgroup file of a container (cgroupsPath as in its spec): v1 per controller, v2 unified. */
function cgroupFile(cgroupsPath: string, v1: [controller: string, file: string], v2: string): string {
  const p = CGROUP_V2 ? path.join('/sys/fs/cgroup', cgroupsPath, v2) : path.join('/sys/fs/cgroup', v1[0], cgroupsPath, v1[1]);
  return fs.readFileSync(p, 'utf8').trim();
}

function memTotalKiB(meminfo: string): number {
  const m = /^MemTotal:\s+(\d+) kB$/m.exec(meminfo);
  if (!m) throw new Error(`no MemTotal in:\n${meminfo}`);
  return Number(m[1]);
}

interface Spec {
  annotations?: Record<string, string>;
  linux?: { cgroupsPath?: string; namespaces?: { type: string; path?: string }[] };
}

describeIf(ok).each(VERSIONS)('CRI (containerd %s CRI plugin) with the vkernel runtime handler', (version) => {
  let dir: string;
  let env: ShimEnv;
  let cri: CriClient;
  let net: CniBridge;
  let shimConfigPath: string;
  const podUid = crypto.randomUUID();
  const cgroups = new PodCgroups(podUid);
  const netnsBefore = new Set(cniNetns());

  let podId = '';
  let podNetns = '';
  const ctr: Record<'a' | 'b', string> = { a: '', b: '' };

  const podName = 'vk-pod';
  const sandboxConfig = (): CriMessage => ({
    metadata: { name: podName, uid: podUid, namespace: 'default', attempt: 0 },
    hostname: podName,
    log_directory: path.join(dir, 'pods', `default_${podName}_${podUid}`),
    labels: { 'io.kubernetes.pod.name': podName, 'io.kubernetes.pod.namespace': 'default', 'io.kubernetes.pod.uid': podUid },
    // io.vkernel.* is on the handler's pod_annotations allow-list; the other key is not.
    annotations: { 'io.vkernel.view': 'on', 'example.com/not-allowed': 'dropped' },
    linux: {
      cgroup_parent: cgroups.parent,
      security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } },
    },
  });

  const containerConfig = (name: string, opts: { annotations?: Record<string, string>; resources: CriMessage; args: string[] }): CriMessage => ({
    metadata: { name, attempt: 0 },
    image: { image: env.image },
    command: ['sh', '-c'],
    args: opts.args,
    labels: { 'io.kubernetes.container.name': name, 'io.kubernetes.pod.uid': podUid },
    annotations: { 'io.kubernetes.container.restartCount': '0', ...(opts.annotations ?? {}) },
    log_path: `${name}/0.log`,
    linux: {
      resources: opts.resources,
      security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } },
    },
  });

  const bundleSpec = (id: string): Spec => JSON.parse(fs.readFileSync(path.join(env.bundle(id), 'config.json'), 'utf8')) as Spec;

  const execSync = async (id: string, cmd: string[]): Promise<{ stdout: string; stderr: string; code: number }> => {
    const r = await cri.runtime('ExecSync', { container_id: id, cmd, timeout: 20 });
    return { stdout: Buffer.from(r.stdout).toString(), stderr: Buffer.from(r.stderr).toString(), code: r.exit_code };
  };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vkt-cri-'));
    net = CniBridge.create(dir);
    const pauseTar = path.join(dir, 'pause-oci.tar');
    const sandboxImage = await writePauseImage(pauseTar);
    shimConfigPath = path.join(dir, 'vkernel.toml');
    fs.writeFileSync(shimConfigPath, '# the vkernel handler ConfigPath (docs/cri.md)\n[shim]\noom_poll_interval_ms = 250\n');
    // debug: the shim then logs where each container's config came from ("create: config from …").
    env = await startShimEnv(version, {
      debug: true,
      containerd: criContainerdOptions({ sandboxImage, cni: net, shimConfigPath }),
    });
    expect(env.namespace).toBe(CRI_NAMESPACE);
    await env.cd.importImage(pauseTar);
    cri = new CriClient(env.cd.address);
  }, 180_000);

  afterAll(async () => {
    // A failed test may leave the pod: tear it down the kubelet's way first.
    if (cri && podId) {
      await cri.runtime('StopPodSandbox', { pod_sandbox_id: podId }).catch(() => undefined);
      await cri.runtime('RemovePodSandbox', { pod_sandbox_id: podId }).catch(() => undefined);
    }
    cri?.close();
    const left = env ? await env.stop() : [];
    const netLeft = net ? net.leftovers() : [];
    net?.remove();
    const cgLeft = cgroups.leftovers();
    cgroups.remove();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    expect({ left, netLeft, cgLeft }).toEqual({ left: [], netLeft: [], cgLeft: [] });
    if (net) expect(linkExists(net.bridge)).toBe(false);
  }, 120_000);

  it('Version, Status and ImageStatus: CRI answers, runtime and network ready, both images imported', async () => {
    const v = await cri.runtime('Version', { version: 'v1' });
    expect(v).toMatchObject({ runtime_name: 'containerd', runtime_api_version: 'v1' });
    expect(v.runtime_version.replace(/^v/, '').startsWith(`${version}.`)).toBe(true);

    // CRI loads the CNI config asynchronously: NetworkReady may take a moment.
    let conditions: Record<string, boolean> = {};
    await waitFor('RuntimeReady and NetworkReady', async () => {
      const s = await cri.runtime('Status', {});
      conditions = Object.fromEntries((s.status.conditions as CriMessage[]).map((c) => [c.type, c.status]));
      return conditions.RuntimeReady === true && conditions.NetworkReady === true;
    }, 20_000, 200).catch(() => undefined);
    expect(conditions).toMatchObject({ RuntimeReady: true, NetworkReady: true });

    // `ctr -n k8s.io images import` reaches CRI's image store through image events.
    for (const ref of [env.image, 'docker.io/library/vkernel-pause:test']) {
      let image: CriMessage | null = null;
      await waitFor(`ImageStatus ${ref}`, async () => (image = (await cri.image('ImageStatus', { image: { image: ref } })).image) !== null, 10_000, 100).catch(
        () => undefined,
      );
      expect(image).not.toBeNull();
      expect(image!.repo_tags).toContain(ref);
    }
  });

  it('RunPodSandbox with runtime_handler "vkernel": ready, on the bridge network, in its cgroup parent', async () => {
    const r = await cri.runtime('RunPodSandbox', { config: sandboxConfig(), runtime_handler: 'vkernel' }, 120_000);
    podId = r.pod_sandbox_id;
    expect(podId).toMatch(/^[0-9a-f]{64}$/);

    const st = (await cri.runtime('PodSandboxStatus', { pod_sandbox_id: podId })).status;
    expect(st).toMatchObject({ state: 'SANDBOX_READY', runtime_handler: 'vkernel', metadata: { name: podName, uid: podUid } });
    const [a, b, c] = net.subnet.split('.');
    expect(st.network.ip.startsWith(`${a}.${b}.${c}.`)).toBe(true);
    expect(net.leases()).toEqual([st.network.ip]);
    expect(net.ports()).toHaveLength(1);

    // The sandbox task is ours: the pause container runs under io.containerd.vkernel.v2.
    const info = await env.cd.ctrOk(['containers', 'info', podId]);
    expect(JSON.parse(info.stdout).Runtime.Name).toBe('io.containerd.vkernel.v2');
    const spec = bundleSpec(podId);
    expect(spec.linux?.cgroupsPath).toBe(`${cgroups.parent}/${podId}`);
    podNetns = spec.linux?.namespaces?.find((n) => n.type === 'network')?.path ?? '';
    expect(podNetns).toMatch(/^\/var\/run\/netns\/cni-/);
    expect(fs.existsSync(podNetns)).toBe(true);
  }, 150_000);

  it('CreateContainer + StartContainer of two containers: one shim daemon serves the sandbox and both', async () => {
    expect(podId).not.toBe('');
    const defs = {
      // a: 2 CPUs of quota and 256 MiB, as the kubelet sends a Guaranteed-ish container's limits.
      a: containerConfig('a', {
        args: ['echo a-started; exec sleep 100000'],
        resources: { cpu_period: 100_000, cpu_quota: 200_000, cpu_shares: 2048, memory_limit_in_bytes: 256 * MiB, oom_score_adj: -997 },
      }),
      // b: 64 MiB, and a container annotation that leaves /proc/meminfo out of its view.
      b: containerConfig('b', {
        args: ['exec sleep 100000'],
        annotations: { 'io.vkernel.files': 'cpuinfo' },
        resources: { cpu_period: 100_000, cpu_quota: 100_000, cpu_shares: 1024, memory_limit_in_bytes: 64 * MiB },
      }),
    };
    for (const name of ['a', 'b'] as const) {
      const r = await cri.runtime('CreateContainer', { pod_sandbox_id: podId, config: defs[name], sandbox_config: sandboxConfig() }, 120_000);
      ctr[name] = r.container_id;
      await cri.runtime('StartContainer', { container_id: ctr[name] }, 120_000);
      const st = (await cri.runtime('ContainerStatus', { container_id: ctr[name] })).status;
      expect(st).toMatchObject({ state: 'CONTAINER_RUNNING', metadata: { name } });
    }
    const listed = (await cri.runtime('ListContainers', { filter: { pod_sandbox_id: podId } })).containers as CriMessage[];
    expect(listed.map((c) => c.id).sort()).toEqual([ctr.a, ctr.b].sort());

    // Every task of the pod got the same group socket, named after the sandbox id...
    const ids = [podId, ctr.a, ctr.b];
    const addresses = new Set(ids.map((id) => env.address(id)));
    expect([...addresses]).toEqual([`unix://${TestContainerd.shimSocketPath(env.cd.address, CRI_NAMESPACE, podId)}`]);
    // ...served by exactly one live daemon, the one holding that socket.
    const daemons = env.daemons();
    expect(daemons).toHaveLength(1);
    expect(env.daemonOf([...addresses][0])).toBe(daemons[0]);
    const live = await tasks(env.cd);
    for (const id of ids) expect(live.get(id)?.status).toBe('RUNNING');

    // The container's stdout went through the shim's IO into the kubelet-style log file.
    const log = path.join(dir, 'pods', `default_${podName}_${podUid}`, 'a', '0.log');
    await waitFor('a-started in the container log', () => fs.existsSync(log) && fs.readFileSync(log, 'utf8').includes(' stdout F a-started'));
  }, 150_000);

  it('ExecSync: stdout, stderr and the exit code; the pod network and hostname are shared', async () => {
    expect(await execSync(ctr.a, ['sh', '-c', 'echo out; echo err >&2; exit 3'])).toEqual({ stdout: 'out\n', stderr: 'err\n', code: 3 });
    expect(await execSync(ctr.b, ['true'])).toEqual({ stdout: '', stderr: '', code: 0 });
    expect((await execSync(ctr.a, ['hostname'])).stdout.trim()).toBe(podName);
    const ip = (await cri.runtime('PodSandboxStatus', { pod_sandbox_id: podId })).status.network.ip as string;
    for (const id of [ctr.a, ctr.b]) {
      const addr = await execSync(id, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']);
      expect(addr.stdout).toContain(` ${ip}/24 `);
    }
    // pid: CONTAINER: each container is pid 1 of its own namespace.
    expect((await execSync(ctr.a, ['sh', '-c', 'cat /proc/1/cmdline | tr "\\0" " "'])).stdout).toBe('sleep 100000 ');
  });

  it('ContainerStats: cpu and memory usage from the shim', async () => {
    await execSync(ctr.a, ['sh', '-c', 'i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done']);
    const s = (await cri.runtime('ContainerStats', { container_id: ctr.a })).stats;
    expect(s.attributes).toMatchObject({ id: ctr.a, metadata: { name: 'a' } });
    expect(s.cpu.timestamp).toBeGreaterThan(0);
    expect(s.cpu.usage_core_nano_seconds?.value).toBeGreaterThan(0);
    expect(s.memory.timestamp).toBeGreaterThan(0);
    expect(s.memory.working_set_bytes?.value).toBeGreaterThan(0);
    expect(s.memory.usage_bytes?.value).toBeGreaterThan(0);
    expect(s.memory.usage_bytes.value).toBeLessThan(256 * MiB);
  });

  it('the view annotations reach the shim: pod and container io.vkernel.* pass the allow-lists, others do not', async () => {
    const sandbox = bundleSpec(podId).annotations ?? {};
    const a = bundleSpec(ctr.a).annotations ?? {};
    const b = bundleSpec(ctr.b).annotations ?? {};
    for (const ann of [sandbox, a, b]) {
      expect(ann['io.vkernel.view']).toBe('on');
      expect(ann['example.com/not-allowed']).toBeUndefined();
      expect(ann['io.kubernetes.cri.sandbox-id']).toBe(podId);
    }
    expect(b['io.vkernel.files']).toBe('cpuinfo');
    expect(a['io.vkernel.files']).toBeUndefined();
    // The kubelet's own container annotations are not on the list either.
    expect(a['io.kubernetes.container.restartCount']).toBeUndefined();

    // And the shim acted on them: a sees its limit in /proc/meminfo; b (meminfo not in its
    // view) sees the host's, although its own limit is 64 MiB.
    const hostKiB = memTotalKiB(fs.readFileSync('/proc/meminfo', 'utf8'));
    expect(memTotalKiB((await execSync(ctr.a, ['cat', '/proc/meminfo'])).stdout)).toBe(256 * 1024);
    expect(memTotalKiB((await execSync(ctr.b, ['cat', '/proc/meminfo'])).stdout)).toBe(hostKiB);
    const cpusB = Number((await execSync(ctr.b, ['sh', '-c', 'grep -c ^processor /proc/cpuinfo'])).stdout.trim());
    expect(cpusB).toBe(1); // 1 CPU of quota: cpuinfo is in b's view

    // The handler's ConfigPath option arrived with Create (runtimeoptions.v1.Options).
    expect(env.cd.log()).toContain(`create: config from ${shimConfigPath}`);
  });

  it('UpdateContainerResources: new cpu quota and memory limit in the cgroup and in the view', async () => {
    const cg = bundleSpec(ctr.a).linux?.cgroupsPath ?? '';
    expect(cg).toBe(`${cgroups.parent}/${ctr.a}`);
    const hostCpus = os.cpus().length;
    const cpuCount = async (): Promise<number> => Number((await execSync(ctr.a, ['sh', '-c', 'grep -c ^processor /proc/cpuinfo'])).stdout.trim());
    expect(await cpuCount()).toBe(Math.min(2, hostCpus));

    await cri.runtime('UpdateContainerResources', {
      container_id: ctr.a,
      linux: { cpu_period: 100_000, cpu_quota: 50_000, cpu_shares: 512, memory_limit_in_bytes: 128 * MiB },
    });
    if (CGROUP_V2) {
      expect(cgroupFile(cg, ['cpu', ''], 'cpu.max')).toBe('50000 100000');
    } else {
      expect(cgroupFile(cg, ['cpu', 'cpu.cfs_quota_us'], '')).toBe('50000');
      expect(cgroupFile(cg, ['cpu', 'cpu.shares'], '')).toBe('512');
    }
    expect(Number(cgroupFile(cg, ['memory', 'memory.limit_in_bytes'], 'memory.max'))).toBe(128 * MiB);
    // Through the vkernel view, live: no restart.
    expect(memTotalKiB((await execSync(ctr.a, ['cat', '/proc/meminfo'])).stdout)).toBe(128 * 1024);
    expect(await cpuCount()).toBe(1);
    // CRI keeps the new resources in the container's spec too.
    const st = (await cri.runtime('ContainerStatus', { container_id: ctr.a })).status;
    expect(st.state).toBe('CONTAINER_RUNNING');
  });

  it('StopContainer + RemoveContainer of one container: exit status 137, the pod shim keeps serving the others', async () => {
    const daemon = env.daemons()[0];
    expect(daemon).toBeDefined();
    // b's init is pid 1 with no SIGTERM handler: the grace period runs out and CRI sends SIGKILL.
    await cri.runtime('StopContainer', { container_id: ctr.b, timeout: 1 }, 60_000);
    const st = (await cri.runtime('ContainerStatus', { container_id: ctr.b })).status;
    expect(st).toMatchObject({ state: 'CONTAINER_EXITED', exit_code: 137 });
    expect(st.finished_at).toBeGreaterThan(st.started_at);
    await cri.runtime('RemoveContainer', { container_id: ctr.b });
    expect(fs.existsSync(env.bundle(ctr.b))).toBe(false);
    // containerd sent Delete and Shutdown for b: the daemon stays for the sandbox and a.
    await sleep(500);
    expect(env.daemons()).toEqual([daemon]);
    expect(await execSync(ctr.a, ['echo', 'still-served'])).toEqual({ stdout: 'still-served\n', stderr: '', code: 0 });
    expect((await cri.runtime('PodSandboxStatus', { pod_sandbox_id: podId })).status.state).toBe('SANDBOX_READY');
  });

  it('StopPodSandbox and RemovePodSandbox: no shim, mount, cgroup, netns, veth or lease left', async () => {
    expect(env.daemons()).toHaveLength(1);
    await cri.runtime('StopPodSandbox', { pod_sandbox_id: podId }, 120_000);
    const st = (await cri.runtime('PodSandboxStatus', { pod_sandbox_id: podId })).status;
    expect(st.state).toBe('SANDBOX_NOTREADY');
    expect((await cri.runtime('ContainerStatus', { container_id: ctr.a })).status).toMatchObject({ state: 'CONTAINER_EXITED', exit_code: 137 });
    expect(fs.existsSync(podNetns)).toBe(false);

    await cri.runtime('RemovePodSandbox', { pod_sandbox_id: podId }, 120_000);
    expect((await cri.runtime('ListPodSandbox', {})).items).toEqual([]);
    expect((await cri.runtime('ListContainers', {})).containers).toEqual([]);
    const removed = podId;
    podId = '';

    await waitFor('the pod shim daemon to exit', () => env.daemons().length === 0, 15_000, 100);
    let left: string[] = [];
    await waitFor('no containerd/shim leftovers', async () => (left = await env.leftovers()).length === 0, 15_000, 100).catch(() => undefined);
    expect(left).toEqual([]);
    expect(processesWith(env.stateRoot + '/')).toEqual([]);
    const mountinfo = fs.readFileSync('/proc/self/mountinfo', 'utf8');
    for (const id of [removed, ctr.a, ctr.b]) expect(mountinfo.includes(id)).toBe(false);
    expect(cgroups.leftovers()).toEqual([]);
    expect(cniNetns().filter((n) => !netnsBefore.has(n))).toEqual([]);
    expect(net.leftovers()).toEqual([]);
  }, 150_000);
});
