// Issue 6 acceptance through the shim: a container run by containerd 1.6 (`ctr run
// --runtime io.containerd.vkernel.v2 --cpus 0.5 --memory-limit 256 MiB`) sees its own
// machine in files (vkfs) and syscalls (vkagent); containerd's Tasks.Update (the shim's
// Update) to 2 CPUs and 512 MiB shows on the next reads, and so does a policy change
// (io.vkernel.* annotations of the same request); nothing of the view (FUSE mount,
// supervisor, agent, state) is left after delete, also after a SIGKILL of the init.
//
// Debian's ctr 1.6 (and 1.7) has no `tasks update`, so the update goes to containerd's own
// gRPC API (containerd.services.tasks.v1.Tasks/Update), as a CRI client or nerdctl would
// send it; containerd forwards it to the shim's Update.
import * as grpc from '@grpc/grpc-js';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildPath } from '../../runtime/paths';
import { describeIf, parseKeyValues, requireFixtures, requireRoot, requirement, type TestContainerd } from '../harness';
import { LAUNCHER, removeContainer, sleep, startShimEnv, waitFor, waitStatus, type ShimEnv } from './helpers/shim-env';
import { alive, fuseMounts, LOAD_LOOP, loadLoop, pgrep, readOr } from './helpers/vkernel';

const MiB = 1024 * 1024;
const ok =
  requireRoot() &&
  requireFixtures() &&
  requirement(fs.existsSync(LAUNCHER), `${LAUNCHER} missing (run \`make all\`)`) &&
  requirement(fs.existsSync(buildPath('vkfs')) && fs.existsSync(buildPath('vkagent')), 'build/vkfs and build/vkagent (make native)') &&
  requirement(fs.existsSync('/dev/fuse'), '/dev/fuse is missing') &&
  requirement(process.arch === 'x64', 'the notify filter is x86_64 only') &&
  requirement(os.cpus().length >= 2, 'CPU-count tests need a host with at least 2 CPUs');

jest.setTimeout(120_000);

// ---- containerd's Tasks.Update over gRPC (hand-encoded: three fields) ----

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

const field = (no: number, bytes: Buffer): Buffer => Buffer.concat([varint((no << 3) | 2), varint(bytes.length), bytes]);

/**
 * UpdateTaskRequest { container_id = 1; google.protobuf.Any resources = 2; map<string, string>
 * annotations = 3 } with OCI LinuxResources JSON; either part may be left out.
 */
function updateTaskRequest(id: string, resources?: object, annotations: Record<string, string> = {}): Buffer {
  const parts = [field(1, Buffer.from(id))];
  if (resources) {
    const any = Buffer.concat([
      field(1, Buffer.from('types.containerd.io/opencontainers/runtime-spec/1/LinuxResources')),
      field(2, Buffer.from(JSON.stringify(resources))),
    ]);
    parts.push(field(2, any));
  }
  for (const [k, v] of Object.entries(annotations)) parts.push(field(3, Buffer.concat([field(1, Buffer.from(k)), field(2, Buffer.from(v))])));
  return Buffer.concat(parts);
}

async function tasksUpdate(cd: TestContainerd, id: string, resources?: object, annotations?: Record<string, string>): Promise<void> {
  const client = new grpc.Client(`unix://${cd.address}`, grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  md.set('containerd-namespace', cd.namespace);
  try {
    await new Promise<void>((resolve, reject) =>
      client.makeUnaryRequest(
        '/containerd.services.tasks.v1.Tasks/Update',
        (b: Buffer) => b,
        (b: Buffer) => b,
        updateTaskRequest(id, resources, annotations),
        md,
        { deadline: Date.now() + 30_000 },
        (err) => (err ? reject(err) : resolve()),
      ),
    );
  } finally {
    client.close();
  }
}

// ---- reading the container's machine ----

const PROBE = [
  "echo meminfo=$(awk '/^MemTotal:/{print $2}' /proc/meminfo)",
  "echo free=$(free | awk '/^Mem:/{print $2}')",
  'echo nproc=$(nproc)',
  'echo vknproc=$(/vktest nproc)',
  'echo online=$(cat /sys/devices/system/cpu/online)',
  'echo processors=$(grep -c ^processor /proc/cpuinfo)',
  'echo uptime=$(cut -d" " -f1 /proc/uptime)',
  "/vktest sysinfo > /tmp/si; grep -E '^(totalram|procs)=' /tmp/si",
].join('; ');

let execs = 0;
async function probe(env: ShimEnv, id: string): Promise<Record<string, string>> {
  const r = await env.cd.ctrOk(['task', 'exec', '--exec-id', `probe-${++execs}`, id, 'sh', '-c', PROBE]);
  return parseKeyValues(r.stdout);
}

describeIf(ok)('vkernel view through the shim (containerd 1.6, ctr)', () => {
  let env: ShimEnv;

  beforeAll(async () => {
    env = await startShimEnv('1.6');
  }, 180_000);

  afterAll(async () => {
    if (!env) return;
    const ids = (await env.cd.ctr(['containers', 'ls', '-q'])).stdout.split('\n').filter(Boolean);
    for (const id of ids) await removeContainer(env.cd, id);
    expect(await env.stop()).toEqual([]);
  }, 120_000);

  /** The view's supervisor of a shim container (state root /run/vkernel/shim/<ns>/<id>). */
  function supervisor(id: string): number[] {
    return pgrep(`${env.stateRoot}/${id}/`);
  }

  /** The daemon's syscall agent, shared by its pod (shim/pod-agent.ts: <state root>/.vkagent-<group>). */
  function podAgent(): number[] {
    return pgrep(`vkagent serve --socket ${env.stateRoot}/.vkagent-`);
  }

  async function expectNothingLeft(id: string, pids: number[]): Promise<void> {
    await waitFor('the supervisor to exit', () => pids.every((p) => !alive(p)), 10_000).catch(() => undefined);
    expect(pids.filter(alive)).toEqual([]);
    expect(fuseMounts(`/${id}/`)).toEqual([]);
    expect(supervisor(id)).toEqual([]);
    expect(podAgent()).toEqual([]); // the daemon (and its agent) exit with the group's last container
    expect(fs.existsSync(path.join(env.stateRoot, id))).toBe(false);
  }

  it('--cpus 0.5 --memory-limit 256 MiB reads 1 CPU and 262144 kB; Tasks.Update to 2 CPUs / 512 MiB shows on the next read', async () => {
    const id = 'vk-update';
    await env.cd.ctrOk(env.runArgs(id, ['sleep', '600'], ['-d', '--cpus', '0.5', '--memory-limit', String(256 * MiB)]));
    await waitStatus(env.cd, id, 'RUNNING');
    const pids = supervisor(id);
    expect(pids.length).toBeGreaterThanOrEqual(3); // vkfs keeper, worker, standby
    const agent = podAgent();
    expect(agent).toHaveLength(3); // the pod's vkagent keeper, worker and standby
    pids.push(...agent);
    const before = await probe(env, id);
    expect(before).toMatchObject({
      meminfo: '262144',
      free: '262144',
      nproc: '1',
      vknproc: '1',
      online: '0',
      processors: '1',
      totalram: String(256 * MiB),
    });
    // sleep, the exec's sh, vktest, and a fork of sh not reaped yet: the container's tasks, not the host's
    expect(Number(before.procs)).toBeGreaterThanOrEqual(3);
    expect(Number(before.procs)).toBeLessThanOrEqual(5);
    expect(Number(before.uptime)).toBeLessThan(30);

    await tasksUpdate(env.cd, id, { cpu: { quota: 200000, period: 100000 }, memory: { limit: 512 * MiB } });
    expect(await probe(env, id)).toMatchObject({
      meminfo: '524288',
      free: '524288',
      nproc: '2',
      vknproc: '2',
      online: '0-1',
      processors: '2',
      totalram: String(512 * MiB),
    });
    // Back down to half a CPU: the next read says 1 again.
    await tasksUpdate(env.cd, id, { cpu: { quota: 50000, period: 100000 } });
    expect(await probe(env, id)).toMatchObject({ nproc: '1', online: '0', processors: '1', meminfo: '524288' });

    await removeContainer(env.cd, id);
    await expectNothingLeft(id, pids);
  });

  it('Tasks.Update with io.vkernel.view=off: the next reads show the host (files and syscalls); =on the limits again', async () => {
    const id = 'vk-policy';
    await env.cd.ctrOk(env.runArgs(id, ['sleep', '600'], ['-d', '--cpus', '0.5', '--memory-limit', String(256 * MiB)]));
    await waitStatus(env.cd, id, 'RUNNING');
    const pids = [...supervisor(id), ...podAgent()];
    const hostKiB = Number(/^MemTotal:\s+(\d+) kB$/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'))![1]);
    const virtual = { meminfo: '262144', totalram: String(256 * MiB), vknproc: '1', online: '0' };
    expect(await probe(env, id)).toMatchObject(virtual);
    // annotations alone (no resources): containerd forwards them to the shim's Update
    await tasksUpdate(env.cd, id, undefined, { 'io.vkernel.view': 'off' });
    expect(await probe(env, id)).toMatchObject({
      meminfo: String(hostKiB),
      totalram: String(os.totalmem()),
      vknproc: String(os.cpus().length),
      online: `0-${os.cpus().length - 1}`,
    });
    const stored = JSON.parse(fs.readFileSync(path.join(env.stateRoot, id, 'config.json'), 'utf8'));
    expect(stored.annotations['io.vkernel.view']).toBe('off');
    // with resources in the same request: both apply
    await tasksUpdate(env.cd, id, { memory: { limit: 512 * MiB } }, { 'io.vkernel.view': 'on' });
    expect(await probe(env, id)).toMatchObject({ ...virtual, meminfo: '524288', totalram: String(512 * MiB) });
    // per syscall: sched_getaffinity alone
    await tasksUpdate(env.cd, id, undefined, { 'io.vkernel.syscalls': 'sched_getaffinity' });
    expect(await probe(env, id)).toMatchObject({ meminfo: '524288', totalram: String(os.totalmem()), vknproc: '1' });
    // a bad value is refused (InvalidArgument through containerd) and changes nothing
    await expect(tasksUpdate(env.cd, id, undefined, { 'io.vkernel.syscalls': 'uname' })).rejects.toThrow(/io.vkernel.syscalls/);
    expect(await probe(env, id)).toMatchObject({ totalram: String(os.totalmem()), vknproc: '1' });
    await removeContainer(env.cd, id);
    await expectNothingLeft(id, pids);
  });

  it('a SIGKILLed init: after task delete nothing of the view is left', async () => {
    const id = 'vk-kill9';
    await env.cd.ctrOk(env.runArgs(id, ['sh', '-c', 'while :; do cat /proc/meminfo > /dev/null; /vktest sysinfo > /dev/null; done'], ['-d', '--cpus', '0.5', '--memory-limit', String(256 * MiB)]));
    await waitStatus(env.cd, id, 'RUNNING');
    await sleep(300);
    const pids = supervisor(id);
    expect(pids.length).toBeGreaterThanOrEqual(3);
    pids.push(...podAgent());
    expect(fuseMounts(`/${id}/`)).toHaveLength(1);
    await env.cd.ctrOk(['task', 'kill', '-s', 'SIGKILL', id]);
    await waitStatus(env.cd, id, 'STOPPED');
    await env.cd.ctrOk(['task', 'delete', id]);
    await env.cd.ctrOk(['container', 'delete', id]);
    await expectNothingLeft(id, pids);
  });

  it('the supervisors killed while the workload reads (vkfs worker, pod agent worker, pod agent keeper): no error, the view comes back', async () => {
    const id = 'vk-loadkill';
    await env.cd.ctrOk(env.runArgs(id, ['sh', '-c', LOAD_LOOP], ['-d', '--cpus', '0.5', '--memory-limit', String(256 * MiB)]));
    await waitStatus(env.cd, id, 'RUNNING');
    const loop = loadLoop(path.join(env.bundle(id), 'rootfs'));
    const advance = async (): Promise<void> => expect(await loop.advance()).toBe(true);
    /** "keeper worker standby" of a pidfile. */
    const trio = (pidfile: string): number[] => readOr(pidfile).trim().split(/\s+/).map(Number);
    const vkfsPids = path.join(env.stateRoot, id, 'view', 'vkfs.pid');
    const agentPidfile = (): string => {
      const dir = fs.readdirSync(env.stateRoot).find((d) => d.startsWith('.vkagent-'))!;
      return path.join(env.stateRoot, dir, 'vkagent.pid');
    };
    await advance();
    const pids = [...supervisor(id), ...podAgent()];
    const replaced = async (pidfile: string, index: number, old: number): Promise<void> =>
      waitFor(`a new process in place of ${old}`, () => trio(pidfile)[index] !== old && alive(trio(pidfile)[index]), 10_000);

    const vkfsWorker = trio(vkfsPids)[1];
    process.kill(vkfsWorker, 'SIGKILL');
    await replaced(vkfsPids, 1, vkfsWorker);
    await advance();
    const agentWorker = trio(agentPidfile())[1];
    process.kill(agentWorker, 'SIGKILL');
    await replaced(agentPidfile(), 1, agentWorker);
    await advance();
    const agentKeeper = trio(agentPidfile())[0];
    process.kill(agentKeeper, 'SIGKILL'); // the standby takes over
    await replaced(agentPidfile(), 0, agentKeeper);
    await advance();
    expect(loop.errors()).toEqual([]);
    pids.push(...supervisor(id), ...podAgent());
    await removeContainer(env.cd, id);
    await expectNothingLeft(id, [...new Set(pids)]);
  });

  it('one syscall agent per pod: two grouped containers share it; it dies with a SIGKILLed daemon', async () => {
    const group = ['--annotation', 'io.containerd.runc.v2.group=vk-pod'];
    const limits = ['--cpus', '0.5', '--memory-limit', String(256 * MiB)];
    await env.cd.ctrOk(env.runArgs('vk-pod-a', ['sleep', '600'], ['-d', ...group, ...limits]));
    await env.cd.ctrOk(env.runArgs('vk-pod-b', ['sleep', '600'], ['-d', ...group, '--cpus', '0.5', '--memory-limit', String(128 * MiB)]));
    await waitStatus(env.cd, 'vk-pod-b', 'RUNNING');
    const agent = podAgent();
    expect(agent).toHaveLength(3); // one keeper, worker and standby for both
    // Each container gets its own numbers from the shared agent.
    expect(await probe(env, 'vk-pod-a')).toMatchObject({ totalram: String(256 * MiB), vknproc: '1' });
    expect(await probe(env, 'vk-pod-b')).toMatchObject({ totalram: String(128 * MiB), vknproc: '1' });
    // One container of the live pod deleted: the agent lets go of its listener (no fd kept
    // for a container that is gone), and keeps serving the other.
    const notifyFds = (): number =>
      agent.filter(alive).reduce((n, p) => n + fs.readdirSync(`/proc/${p}/fd`).filter((fd) => {
        try {
          return fs.readlinkSync(`/proc/${p}/fd/${fd}`) === 'anon_inode:seccomp notify';
        } catch {
          return false;
        }
      }).length, 0);
    const withBoth = notifyFds();
    expect(withBoth).toBe(2 * agent.length); // keeper, worker and standby each hold both listeners
    await removeContainer(env.cd, 'vk-pod-b');
    await waitFor("the agent to drop the deleted container's listener", () => notifyFds() === agent.length, 10_000);
    expect(await probe(env, 'vk-pod-a')).toMatchObject({ totalram: String(256 * MiB), vknproc: '1' });
    // The agent is the daemon's child: a kill -9 of the daemon takes it along (containerd
    // then cleans up the containers, as after any shim crash).
    const daemon = env.shimPidOf('vk-pod-a')!;
    expect(daemon).toBeGreaterThan(0);
    process.kill(daemon, 'SIGKILL');
    await waitFor('the pod agent to exit', () => agent.every((p) => !alive(p)), 10_000).catch(() => undefined);
    expect(agent.filter(alive)).toEqual([]);
    await removeContainer(env.cd, 'vk-pod-a');
  });
});
