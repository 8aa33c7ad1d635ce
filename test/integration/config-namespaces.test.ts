// config.json linux.namespaces (new ones, user namespace id mappings, joining by path),
// hostname, domainname, linux.sysctl and annotations: each mutated on the base spec and
// observed from inside the container with /vktest (ns links, /proc files, uname, sysctl)
// or, for annotations, through `state`. Passes on vkernel and on runc (RUNTIME=runc);
// differences are per-runtime assertions recorded in docs/runc-differences.md.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { NamespaceType } from '../../runtime/spec/types';
import {
  cleanupRuntimeRoot,
  describeIf,
  parseKeyValues,
  parseLines,
  requireBinary,
  requireFixtures,
  requireRoot,
  requireRuntime,
  runRuntime,
  runRuntimeOk,
  runtimeName,
  uniqueId,
  vktest,
  withLeakCheck,
} from '../harness';
import {
  bundleFor,
  execFileP,
  FieldCase,
  hostNamespaces,
  isRunc,
  nsInode,
  runCase,
  runDetached,
  stateOf,
} from './helpers/oci';

const ok = requireRoot() && requireFixtures() && requireRuntime() && requireBinary('ip');

const PROC_NAME: Record<NamespaceType, string> = {
  pid: 'pid',
  network: 'net',
  mount: 'mnt',
  ipc: 'ipc',
  uts: 'uts',
  user: 'user',
  cgroup: 'cgroup',
  time: 'time',
};

/** Interface names in /proc/net/dev output. */
function interfaces(text: string): string[] {
  return parseLines(text)
    .map((l) => /^\s*([\w.-]+):\s+\d/.exec(l)?.[1])
    .filter((x): x is string => !!x)
    .sort();
}

/** "0 100000 65536" lines of a uid_map/gid_map, whitespace normalised. */
function idMap(text: string): string[] {
  return parseLines(text).map((l) => l.trim().split(/\s+/).join(' '));
}

function withoutNs(types: NamespaceType[]) {
  return (s: import('../../runtime/spec/types').Spec) => {
    s.linux!.namespaces = s.linux!.namespaces!.filter((n) => !types.includes(n.type));
  };
}

const USERNS_MAPS = {
  uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
  gidMappings: [{ containerID: 0, hostID: 200000, size: 65536 }],
};

const cases: FieldCase[] = [
  // ---- new namespaces: the container's ns differs from the host's (and absent = shared)
  ...(['pid', 'network', 'mount', 'ipc', 'uts'] as NamespaceType[]).map(
    (t): FieldCase => ({
      name: `linux.namespaces ${t}: a new namespace`,
      args: vktest('ns'),
      check: (r) => {
        const host = hostNamespaces()[PROC_NAME[t]];
        const inside = parseKeyValues(r.stdout)[PROC_NAME[t]];
        expect(inside).toMatch(/^\w+:\[\d+\]$/);
        expect(inside).not.toBe(host);
      },
    }),
  ),
  ...(['pid', 'network', 'ipc', 'uts', 'cgroup', 'user'] as NamespaceType[]).map(
    (t): FieldCase => ({
      name: `linux.namespaces without ${t}: the host's namespace is shared`,
      args: vktest('ns'),
      mutate: (s) => {
        withoutNs([t])(s);
        if (t === 'uts') delete s.hostname; // a hostname needs its own uts namespace
      },
      check: (r) => expect(parseKeyValues(r.stdout)[PROC_NAME[t]]).toBe(hostNamespaces()[PROC_NAME[t]]),
    }),
  ),
  {
    name: 'linux.namespaces pid: the workload is pid 1 and sees only its own processes',
    args: ['/bin/sh', '-c', '/vktest pid; /vktest ls /proc'],
    check: (r) => {
      // sh is pid 1; /vktest is its child.
      const pids = parseLines(r.stdout).filter((l) => /^\d+$/.test(l));
      expect(pids).toContain('1');
      expect(pids.length).toBeLessThanOrEqual(3);
      expect(Number(parseKeyValues(r.stdout).ppid)).toBe(1);
    },
  },
  {
    name: 'linux.namespaces without pid: the workload has a host pid',
    args: vktest('pid'),
    mutate: withoutNs(['pid']),
    check: (r) => expect(Number(parseKeyValues(r.stdout).pid)).toBeGreaterThan(1),
  },
  {
    name: 'linux.namespaces network: only lo, brought up by the runtime (as runc\'s loopback setup)',
    args: ['/bin/sh', '-c', '/vktest cat /proc/net/dev; /vktest cat /sys/class/net/lo/flags'],
    check: (r) => {
      expect(interfaces(r.stdout)).toEqual(['lo']);
      expect(r.stdout).toMatch(/^0x9$/m); // IFF_UP | IFF_LOOPBACK
    },
  },
  {
    name: 'linux.namespaces ipc: System V IPC ids of the host are not visible',
    args: vktest('cat', '/proc/sysvipc/shm'),
    check: (r) => expect(parseLines(r.stdout)).toHaveLength(1), // the header only
  },
  {
    name: 'linux.namespaces cgroup: a new cgroup namespace rooted at the container\'s cgroup',
    args: ['/bin/sh', '-c', '/vktest ns; /vktest cgroup'],
    mutate: (s) => s.linux!.namespaces!.push({ type: 'cgroup' }),
    check: (r) => {
      expect(parseKeyValues(r.stdout).cgroup).not.toBe(hostNamespaces().cgroup);
      const lines = parseLines(r.stdout).filter((l) => /^\d+:/.test(l));
      expect(lines.length).toBeGreaterThan(0);
      for (const l of lines.filter((x) => /:(memory|pids|cpu,cpuacct|cpu|devices|freezer|blkio):/.test(x))) expect(l).toMatch(/:\/$/);
    },
  },
  {
    name: 'linux.namespaces without cgroup: /proc/self/cgroup shows the container\'s host cgroup path',
    args: vktest('cgroup'),
    check: (r, b) => expect(r.stdout).toMatch(new RegExp(`^\\d+:memory:/.*${b.id}$`, 'm')),
  },
  // ---- user namespace with mappings
  {
    name: 'linux.namespaces user + uidMappings/gidMappings: /proc/self/uid_map and gid_map',
    args: ['/bin/sh', '-c', '/vktest cat /proc/self/uid_map; /vktest echo ---; /vktest cat /proc/self/gid_map; /vktest echo ---; /vktest ids'],
    mutate: (s) => {
      s.linux!.namespaces!.push({ type: 'user' });
      Object.assign(s.linux!, structuredClone(USERNS_MAPS));
    },
    check: (r) => {
      const [uidMap, gidMap] = r.stdout.split('---\n');
      expect(idMap(uidMap)).toEqual(['0 100000 65536']);
      expect(idMap(gidMap)).toEqual(['0 200000 65536']);
      expect(parseKeyValues(r.stdout)).toMatchObject({ uid: '0', gid: '0' });
    },
  },
  {
    name: 'linux.namespaces user: container root is host uid 100000 / gid 200000 for new files; host root files show as overflow ids',
    args: ['/bin/sh', '-c', '/vktest write /tmp/made-inside x && /vktest stat /vktest'],
    mutate: (s) => {
      s.linux!.namespaces!.push({ type: 'user' });
      Object.assign(s.linux!, structuredClone(USERNS_MAPS));
    },
    check: (r, b) => {
      const st = fs.statSync(path.join(b.rootfs, 'tmp/made-inside'));
      expect([st.uid, st.gid]).toEqual([100000, 200000]);
      // /vktest is owned by host root, which has no mapping: the overflow ids.
      expect(parseKeyValues(r.stdout)).toMatchObject({ uid: '65534', gid: '65534' });
    },
  },
  {
    name: 'linux.namespaces user: a rootfs chowned to the mapped range looks root-owned inside; the user ns is a new one',
    args: ['/bin/sh', '-c', '/vktest stat /vktest; /vktest ns'],
    mutate: (s) => {
      s.linux!.namespaces!.push({ type: 'user' });
      Object.assign(s.linux!, structuredClone(USERNS_MAPS));
    },
    setup: async (b) => {
      await execFileP('chown', ['-R', '--no-dereference', '100000:200000', b.rootfs]);
    },
    check: (r) => {
      const kvs = parseKeyValues(r.stdout);
      expect(kvs).toMatchObject({ uid: '0', gid: '0' });
      expect(kvs.user).not.toBe(hostNamespaces().user);
    },
  },
  {
    name: 'linux.namespaces user: process.user 1000 maps to host 101000',
    args: ['/bin/sh', '-c', '/vktest write /tmp/by-1000 x && /vktest ids'],
    mutate: (s) => {
      s.linux!.namespaces!.push({ type: 'user' });
      Object.assign(s.linux!, structuredClone(USERNS_MAPS));
      s.process!.user = { uid: 1000, gid: 1000 };
    },
    check: (r, b) => {
      expect(parseKeyValues(r.stdout)).toMatchObject({ uid: '1000', gid: '1000' });
      const st = fs.statSync(path.join(b.rootfs, 'tmp/by-1000'));
      expect([st.uid, st.gid]).toEqual([101000, 201000]);
    },
  },
  // ---- hostname / domainname (uts)
  {
    name: 'hostname',
    args: vktest('hostname'),
    mutate: (s) => (s.hostname = 'vk-host-1'),
    check: (r) => expect(r.stdout).toBe('vk-host-1\n'),
  },
  {
    name: 'domainname',
    args: vktest('domainname'),
    mutate: (s) => (s.domainname = 'example.org'),
    // runc 1.1.5 ignores domainname (support came with runc 1.2): the uts namespace keeps
    // the kernel's default "(none)". See docs/runc-differences.md.
    check: (r) => expect(r.stdout).toBe(isRunc() ? '(none)\n' : 'example.org\n'),
  },
  {
    name: 'hostname absent with a new uts namespace: the host\'s name is inherited',
    args: vktest('hostname'),
    mutate: (s) => delete s.hostname,
    check: (r) => expect(r.stdout).toBe(`${fs.readFileSync('/proc/sys/kernel/hostname', 'utf8').trim()}\n`),
  },
  // ---- sysctl
  {
    name: 'linux.sysctl: kernel.shm* in the new ipc namespace',
    args: ['/bin/sh', '-c', '/vktest sysctl kernel.shmmax; /vktest sysctl kernel.shmmni; /vktest sysctl kernel.msgmax'],
    mutate: (s) => (s.linux!.sysctl = { 'kernel.shmmax': '123456789', 'kernel.shmmni': '1234', 'kernel/msgmax': '4321' }),
    check: (r) => {
      expect(parseLines(r.stdout)).toEqual(['123456789', '1234', '4321']);
      expect(fs.readFileSync('/proc/sys/kernel/shmmni', 'utf8').trim()).not.toBe('1234');
    },
  },
  {
    name: 'linux.sysctl: net.* in the new network namespace',
    args: ['/bin/sh', '-c', '/vktest sysctl net.ipv4.ip_forward; /vktest sysctl net.core.somaxconn; /vktest sysctl net.ipv4.ping_group_range'],
    mutate: (s) =>
      (s.linux!.sysctl = { 'net.ipv4.ip_forward': '1', 'net.core.somaxconn': '1234', 'net.ipv4.ping_group_range': '0 2147483647' }),
    check: (r) => {
      expect(parseLines(r.stdout).map((l) => l.replace(/\s+/g, ' '))).toEqual(['1', '1234', '0 2147483647']);
      expect(fs.readFileSync('/proc/sys/net/core/somaxconn', 'utf8').trim()).not.toBe('1234');
    },
  },
  {
    name: 'linux.sysctl: /proc/sys stays read-only for the workload afterwards',
    args: vktest('tryopen', '/proc/sys/kernel/shmmni', 'w'),
    mutate: (s) => (s.linux!.sysctl = { 'kernel.shmmni': '1234' }),
    check: (r) => expect(parseKeyValues(r.stdout).errname).toBe('EROFS'),
  },
];

describeIf(ok)(`config.json namespaces, uts, sysctl, annotations (${runtimeName()})`, () => {
  afterAll(() => cleanupRuntimeRoot());

  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => withLeakCheck(() => runCase(c).then(() => undefined)));

  it('linux.namespaces time: a new time namespace (runc 1.1 does not know "time")', () =>
    withLeakCheck(async () => {
      const b = await bundleFor({ args: vktest('ns'), mutate: (s) => s.linux!.namespaces!.push({ type: 'time' }) });
      const r = await runRuntime(['run', '--bundle', b.dir, b.id]);
      if (isRunc()) {
        // runc 1.1.5 rejects the namespace type (support came with runc 1.2).
        expect(r.code).not.toBe(0);
        expect(r.stderr).toMatch(/time/);
        return;
      }
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const inside = parseKeyValues(r.stdout).time;
      expect(inside).toMatch(/^time:\[\d+\]$/);
      expect(inside).not.toBe(hostNamespaces().time);
    }));

  it('linux.namespaces network with a path: joins a netns made by `ip netns add` as it is (lo left down, its sysctls)', () =>
    withLeakCheck(async () => {
      const name = uniqueId('vkt-ns');
      await execFileP('ip', ['netns', 'add', name]);
      try {
        await execFileP('ip', ['netns', 'exec', name, 'sh', '-c', 'echo 777 > /proc/sys/net/core/somaxconn']);
        const nsPath = `/var/run/netns/${name}`;
        const b = await bundleFor({
          args: ['/bin/sh', '-c', '/vktest ns; /vktest cat /proc/net/dev; /vktest cat /sys/class/net/lo/flags; /vktest sysctl net.core.somaxconn'],
          mutate: (s) => {
            s.linux!.namespaces = s.linux!.namespaces!.map((n) => (n.type === 'network' ? { type: 'network', path: nsPath } : n));
          },
        });
        const r = await runRuntimeOk(['run', '--bundle', b.dir, b.id]);
        expect(nsInode(parseKeyValues(r.stdout).net)).toBe(fs.statSync(nsPath).ino);
        expect(interfaces(r.stdout)).toEqual(['lo']);
        // A joined netns is not set up: lo stays down (IFF_LOOPBACK only).
        expect(r.stdout).toMatch(/^0x8$/m);
        expect(r.stdout).toMatch(/^777$/m);
      } finally {
        await execFileP('ip', ['netns', 'del', name]);
      }
    }));

  it('linux.namespaces with paths: a second container joins the first one\'s ipc, uts, net and pid namespaces', () =>
    withLeakCheck(async () => {
      const a = await bundleFor({ args: vktest('sleep', '60'), mutate: (s) => (s.hostname = 'container-a') });
      const pidA = await runDetached(a);
      const join: NamespaceType[] = ['ipc', 'uts', 'network', 'pid'];
      const b = await bundleFor({
        args: ['/bin/sh', '-c', '/vktest hostname; /vktest ns; /vktest echo ---; /vktest pid; /vktest ls /proc'],
        mutate: (s) => {
          delete s.hostname; // the joined uts namespace keeps its name
          s.linux!.namespaces = s.linux!.namespaces!.map((n) => (join.includes(n.type) ? { type: n.type, path: `/proc/${pidA}/ns/${PROC_NAME[n.type]}` } : n));
        },
      });
      const r = await runRuntimeOk(['run', '--bundle', b.dir, b.id]);
      const [nsPart, pidPart] = r.stdout.split('---\n');
      const kvs = parseKeyValues(nsPart);
      expect(parseLines(r.stdout)[0]).toBe('container-a');
      for (const t of join) expect(`${t}=${kvs[PROC_NAME[t]]}`).toBe(`${t}=${fs.readlinkSync(`/proc/${pidA}/ns/${PROC_NAME[t]}`)}`);
      // Not pid 1 in a joined pid namespace; the first container's init is visible.
      expect(Number(parseKeyValues(pidPart).pid)).toBeGreaterThan(1);
      expect(parseLines(r.stdout)).toContain('1');
      // The mount namespace is still a new one.
      expect(kvs.mnt).not.toBe(fs.readlinkSync(`/proc/${pidA}/ns/mnt`));
      await runRuntimeOk(['delete', '--force', a.id]);
    }));

  it('linux.namespaces user with a path: joins another container\'s user namespace (its mappings apply)', () =>
    withLeakCheck(async () => {
      const a = await bundleFor({
        args: vktest('sleep', '60'),
        mutate: (s) => {
          s.linux!.namespaces!.push({ type: 'user' });
          Object.assign(s.linux!, structuredClone(USERNS_MAPS));
        },
      });
      const pidA = await runDetached(a);
      const b = await bundleFor({
        args: ['/bin/sh', '-c', '/vktest ns; /vktest cat /proc/self/uid_map'],
        mutate: (s) => {
          s.linux!.namespaces!.push({ type: 'user', path: `/proc/${pidA}/ns/user` });
          // runc 1.1 wants the mappings even when joining (they must match the joined ns).
          Object.assign(s.linux!, structuredClone(USERNS_MAPS));
        },
      });
      const r = await runRuntimeOk(['run', '--bundle', b.dir, b.id]);
      expect(parseKeyValues(r.stdout).user).toBe(fs.readlinkSync(`/proc/${pidA}/ns/user`));
      expect(idMap(r.stdout.split('\n').filter((l) => !l.includes('=')).join('\n'))).toEqual(['0 100000 65536']);
      await runRuntimeOk(['delete', '--force', a.id]);
    }));

  it('annotations: visible in `state`', () =>
    withLeakCheck(async () => {
      const annotations = { 'org.example.key': 'value', 'com.example/with.slash': 'a b "quoted"', empty: '' };
      const b = await bundleFor({ args: vktest('sleep', '30'), mutate: (s) => (s.annotations = { ...annotations }) });
      await runRuntimeOk(['create', '--bundle', b.dir, b.id]);
      const st = await stateOf(b.id);
      expect(st.annotations).toEqual(annotations);
      expect(st.status).toBe('created');
      await runRuntimeOk(['delete', '--force', b.id]);
    }));

  it('annotations absent: `state` has no (or empty) annotations', () =>
    withLeakCheck(async () => {
      const b = await bundleFor({ args: vktest('sleep', '30'), mutate: (s) => delete s.annotations });
      await runRuntimeOk(['create', '--bundle', b.dir, b.id]);
      const st = await stateOf(b.id);
      expect(st.annotations ?? {}).toEqual({});
      await runRuntimeOk(['delete', '--force', b.id]);
    }));
});
