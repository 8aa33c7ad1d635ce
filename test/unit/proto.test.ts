// The proto bundle: committed outputs match the .proto sources, field numbers match containerd's
// (docs/reference facts), and the codec helpers (encode/decode/Any/Timestamp) behave.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as protobuf from 'protobufjs';
import { bundleJson, loadProtoSources, protoDir, typesTs } from '../../proto/generate';
import { InvalidArgumentError } from '../../runtime/errors';
import {
  TaskStatus,
  anyDecode,
  anyOf,
  anyPack,
  anyTypeName,
  anyUnpack,
  decode,
  encode,
  hasType,
  lookupType,
  methodTypes,
  serviceMethods,
  timestamp,
  timestampFromNanos,
  toDate,
} from '../../shim/proto';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('generated files', () => {
  const dir = protoDir();
  const sources = loadProtoSources(dir);

  test('proto/bundle.json is up to date with proto/**/*.proto (run make proto)', () => {
    expect(fs.readFileSync(path.join(dir, 'bundle.json'), 'utf8')).toBe(bundleJson(sources));
  });

  test('proto/types.ts is up to date with proto/**/*.proto (run make proto)', () => {
    expect(fs.readFileSync(path.join(dir, 'types.ts'), 'utf8')).toBe(typesTs(sources));
  });

  test('the lazily resolved bundle encodes exactly like the parsed sources', () => {
    const samples: Array<[string, Record<string, unknown>]> = [
      ['io.containerd.cgroups.v1.Metrics', { cpu: { usage: { total: 5, per_cpu: [1, 2, 300, 2 ** 40] } }, memory: { usage: { usage: 7 } } }],
      ['containerd.task.v2.CreateTaskRequest', { id: 'c', rootfs: [{ type: 'overlay', source: 'o', options: ['a', 'b'] }], options: { type_url: 't', value: Buffer.from([1]) } }],
      ['containerd.task.v2.UpdateTaskRequest', { id: 'c', annotations: { a: '1', b: '2' } }],
      ['containerd.runtime.bootstrap.v1.BootstrapParams', { instance_id: 'i', log_level: -4, socket_dir: '/run/x' }],
    ];
    for (const [name, obj] of samples) {
      const t = sources.lookupType(name);
      expect(hex(encode(name as never, obj as never))).toBe(hex(t.encode(t.fromObject(obj)).finish()));
    }
  });

  test('containerd.task.v2 and containerd.task.v3 are the same API', () => {
    const v2 = sources.lookupService('containerd.task.v2.Task');
    const v3 = sources.lookupService('containerd.task.v3.Task');
    const shape = (svc: typeof v2, pkg: string): unknown =>
      svc.methodsArray.map((m) => {
        m.resolve();
        const fields = (t: protobuf.Type): unknown => t.fieldsArray.map((f) => [f.name, f.id, f.type.replace(pkg, ''), f.repeated, f instanceof protobuf.MapField]);
        return [m.name, fields(m.resolvedRequestType!), fields(m.resolvedResponseType!)];
      });
    expect(shape(v3, 'containerd.task.v3.')).toEqual(shape(v2, 'containerd.task.v2.'));
    expect(serviceMethods('containerd.task.v3.Task')).toEqual(serviceMethods('containerd.task.v2.Task'));
  });
});

// Field numbers are wire facts; a typo here would silently break interop with containerd.
const FIELDS: Record<string, Array<[string, number]>> = {
  'ttrpc.Request': [['service', 1], ['method', 2], ['payload', 3], ['timeout_nano', 4], ['metadata', 5]],
  'ttrpc.Response': [['status', 1], ['payload', 2]],
  'ttrpc.KeyValue': [['key', 1], ['value', 2]],
  'google.rpc.Status': [['code', 1], ['message', 2], ['details', 3]],
  'google.protobuf.Any': [['type_url', 1], ['value', 2]],
  'google.protobuf.Timestamp': [['seconds', 1], ['nanos', 2]],
  'containerd.types.Mount': [['type', 1], ['source', 2], ['target', 3], ['options', 4]],
  'containerd.types.Platform': [['os', 1], ['architecture', 2], ['variant', 3]],
  'containerd.types.RuntimeInfo': [['name', 1], ['version', 2], ['options', 3], ['features', 4], ['annotations', 5]],
  'containerd.types.RuntimeVersion': [['version', 1], ['revision', 2]],
  'containerd.types.Envelope': [['timestamp', 1], ['namespace', 2], ['topic', 3], ['event', 4]],
  'containerd.v1.types.ProcessInfo': [['pid', 1], ['info', 2]],
  'containerd.v1.types.Process': [['container_id', 1], ['id', 2], ['pid', 3], ['status', 4], ['stdin', 5], ['stdout', 6], ['stderr', 7], ['terminal', 8], ['exit_status', 9], ['exited_at', 10]],
  'containerd.task.v2.CreateTaskRequest': [['id', 1], ['bundle', 2], ['rootfs', 3], ['terminal', 4], ['stdin', 5], ['stdout', 6], ['stderr', 7], ['checkpoint', 8], ['parent_checkpoint', 9], ['options', 10]],
  'containerd.task.v2.CreateTaskResponse': [['pid', 1]],
  'containerd.task.v2.DeleteRequest': [['id', 1], ['exec_id', 2]],
  'containerd.task.v2.DeleteResponse': [['pid', 1], ['exit_status', 2], ['exited_at', 3]],
  'containerd.task.v2.ExecProcessRequest': [['id', 1], ['exec_id', 2], ['terminal', 3], ['stdin', 4], ['stdout', 5], ['stderr', 6], ['spec', 7]],
  'containerd.task.v2.ResizePtyRequest': [['id', 1], ['exec_id', 2], ['width', 3], ['height', 4]],
  'containerd.task.v2.StateResponse': [['id', 1], ['bundle', 2], ['pid', 3], ['status', 4], ['stdin', 5], ['stdout', 6], ['stderr', 7], ['terminal', 8], ['exit_status', 9], ['exited_at', 10], ['exec_id', 11]],
  'containerd.task.v2.KillRequest': [['id', 1], ['exec_id', 2], ['signal', 3], ['all', 4]],
  'containerd.task.v2.CloseIORequest': [['id', 1], ['exec_id', 2], ['stdin', 3]],
  'containerd.task.v2.PidsResponse': [['processes', 1]],
  'containerd.task.v2.CheckpointTaskRequest': [['id', 1], ['path', 2], ['options', 3]],
  'containerd.task.v2.UpdateTaskRequest': [['id', 1], ['resources', 2], ['annotations', 3]],
  'containerd.task.v2.StartResponse': [['pid', 1]],
  'containerd.task.v2.WaitResponse': [['exit_status', 1], ['exited_at', 2]],
  'containerd.task.v2.StatsResponse': [['stats', 1]],
  'containerd.task.v2.ConnectResponse': [['shim_pid', 1], ['task_pid', 2], ['version', 3]],
  'containerd.task.v2.ShutdownRequest': [['id', 1], ['now', 2]],
  'containerd.events.TaskCreate': [['container_id', 1], ['bundle', 2], ['rootfs', 3], ['io', 4], ['checkpoint', 5], ['pid', 6]],
  'containerd.events.TaskIO': [['stdin', 1], ['stdout', 2], ['stderr', 3], ['terminal', 4]],
  'containerd.events.TaskStart': [['container_id', 1], ['pid', 2]],
  'containerd.events.TaskExit': [['container_id', 1], ['id', 2], ['pid', 3], ['exit_status', 4], ['exited_at', 5]],
  'containerd.events.TaskDelete': [['container_id', 1], ['pid', 2], ['exit_status', 3], ['exited_at', 4], ['id', 5]],
  'containerd.events.TaskOOM': [['container_id', 1]],
  'containerd.events.TaskExecAdded': [['container_id', 1], ['exec_id', 2]],
  'containerd.events.TaskExecStarted': [['container_id', 1], ['exec_id', 2], ['pid', 3]],
  'containerd.events.TaskPaused': [['container_id', 1]],
  'containerd.events.TaskResumed': [['container_id', 1]],
  'containerd.events.TaskCheckpointed': [['container_id', 1], ['checkpoint', 2]],
  'containerd.services.events.ttrpc.v1.ForwardRequest': [['envelope', 1]],
  'containerd.services.events.ttrpc.v1.Envelope': [['timestamp', 1], ['namespace', 2], ['topic', 3], ['event', 4]],
  'containerd.services.events.v1.PublishRequest': [['topic', 1], ['event', 2]],
  'containerd.services.events.v1.SubscribeRequest': [['filters', 1]],
  'containerd.services.version.v1.VersionResponse': [['version', 1], ['revision', 2]],
  'containerd.services.tasks.v1.GetRequest': [['container_id', 1], ['exec_id', 2]],
  'containerd.services.tasks.v1.GetResponse': [['process', 1]],
  'containerd.runtime.bootstrap.v1.BootstrapParams': [['instance_id', 1], ['namespace', 2], ['log_level', 3], ['containerd_version', 4], ['containerd_ttrpc_address', 5], ['containerd_grpc_address', 6], ['containerd_binary', 7], ['extensions', 8], ['socket_dir', 9]],
  'containerd.runtime.bootstrap.v1.BootstrapResult': [['version', 1], ['address', 2], ['protocol', 3], ['capabilities', 4], ['metadata', 5]],
  'runtimeoptions.v1.Options': [['type_url', 1], ['config_path', 2], ['config_body', 3]],
  'containerd.runc.v1.Options': [['no_pivot_root', 1], ['shim_cgroup', 3], ['binary_name', 6], ['root', 7], ['systemd_cgroup', 9], ['task_api_address', 12], ['task_api_version', 13]],
  'containerd.runc.v1.ProcessDetails': [['exec_id', 1]],
  'io.containerd.cgroups.v1.Metrics': [['hugetlb', 1], ['pids', 2], ['cpu', 3], ['memory', 4], ['blkio', 5]],
  'io.containerd.cgroups.v1.CPUStat': [['usage', 1], ['throttling', 2]],
  'io.containerd.cgroups.v1.CPUUsage': [['total', 1], ['kernel', 2], ['user', 3], ['per_cpu', 4]],
  'io.containerd.cgroups.v1.MemoryStat': [['cache', 1], ['rss', 2], ['total_rss', 19], ['total_inactive_file', 30], ['usage', 33], ['swap', 34]],
  'io.containerd.cgroups.v1.MemoryEntry': [['limit', 1], ['usage', 2], ['max', 3], ['failcnt', 4]],
  'io.containerd.cgroups.v2.Metrics': [['pids', 1], ['cpu', 2], ['memory', 4], ['rdma', 5], ['io', 6], ['hugetlb', 7], ['memory_events', 8]],
  'io.containerd.cgroups.v2.CPUStat': [['usage_usec', 1], ['user_usec', 2], ['system_usec', 3]],
  'io.containerd.cgroups.v2.MemoryStat': [['anon', 1], ['inactive_file', 13], ['pgfault', 18], ['pgmajfault', 19], ['usage', 32], ['usage_limit', 33]],
  'io.containerd.cgroups.v2.PidsStat': [['current', 1], ['limit', 2]],
};

describe('field numbers match containerd', () => {
  test.each(Object.entries(FIELDS))('%s', (name, fields) => {
    const t = lookupType(name);
    for (const [field, id] of fields) expect([field, t.fields[field]?.id]).toEqual([field, id]);
  });

  test('task status enum values', () => {
    expect(TaskStatus).toEqual({ UNKNOWN: 0, CREATED: 1, RUNNING: 2, STOPPED: 3, PAUSED: 4, PAUSING: 5 });
    const e = lookupType('containerd.task.v2.StateResponse').fields.status!.resolve().resolvedType as protobuf.Enum;
    expect(e.values).toEqual(TaskStatus);
  });

  test('the services hold the methods the shim serves and calls', () => {
    expect(serviceMethods('containerd.task.v2.Task').sort()).toEqual(
      ['Checkpoint', 'CloseIO', 'Connect', 'Create', 'Delete', 'Exec', 'Kill', 'Pause', 'Pids', 'ResizePty', 'Resume', 'Shutdown', 'Start', 'State', 'Stats', 'Update', 'Wait'],
    );
    expect(methodTypes('containerd.task.v2.Task', 'Kill')).toEqual({ requestType: 'containerd.task.v2.KillRequest', responseType: 'google.protobuf.Empty' });
    expect(methodTypes('containerd.services.events.ttrpc.v1.Events', 'Forward')).toEqual({
      requestType: 'containerd.services.events.ttrpc.v1.ForwardRequest',
      responseType: 'google.protobuf.Empty',
    });
    expect(methodTypes('containerd.services.version.v1.Version', 'Version').responseType).toBe('containerd.services.version.v1.VersionResponse');
    expect(methodTypes('containerd.services.tasks.v1.Tasks', 'Get').requestType).toBe('containerd.services.tasks.v1.GetRequest');
    expect(() => methodTypes('containerd.task.v2.Task', 'Nope')).toThrow(InvalidArgumentError);
  });
});

describe('encode / decode', () => {
  test('bytes as containerd (Go) writes them decode field by field', () => {
    // TaskExit{container_id:"c1", id:"c1", pid:1234, exit_status:137, exited_at:{seconds:1700000000, nanos:5}}
    const goBytes = Buffer.from('0a02633112026331' + '18d209' + '208901' + '2a08' + '0880e2cfaa06' + '1005', 'hex');
    expect(decode('containerd.events.TaskExit', goBytes)).toEqual({
      container_id: 'c1',
      id: 'c1',
      pid: 1234,
      exit_status: 137,
      exited_at: { seconds: 1700000000, nanos: 5 },
      exit_reason: 0,
    });
    expect(hex(encode('containerd.events.TaskExit', { container_id: 'c1', id: 'c1', pid: 1234, exit_status: 137, exited_at: { seconds: 1700000000, nanos: 5 } }))).toBe(
      goBytes.toString('hex'),
    );
  });

  test('decode fills proto3 defaults and leaves absent messages null', () => {
    expect(decode('containerd.task.v2.StateResponse', Buffer.alloc(0))).toEqual({
      id: '', bundle: '', pid: 0, status: 0, stdin: '', stdout: '', stderr: '', terminal: false, exit_status: 0, exited_at: null, exec_id: '',
    });
    expect(decode('containerd.task.v2.UpdateTaskRequest', Buffer.alloc(0))).toEqual({ id: '', resources: null, annotations: {} });
    expect(decode('google.protobuf.Empty', Buffer.alloc(0))).toEqual({});
  });

  test('unknown fields are skipped', () => {
    const known = encode('containerd.task.v2.KillRequest', { id: 'c', signal: 15 });
    const extra = Buffer.concat([known, Buffer.from([0xf8, 0x06, 0x01]) /* field 111 varint */, Buffer.from([0x92, 0x07, 0x01, 0x41]) /* field 114 bytes */]);
    expect(decode('containerd.task.v2.KillRequest', extra)).toMatchObject({ id: 'c', signal: 15 });
  });

  test('malformed input throws InvalidArgumentError', () => {
    for (const bad of ['0a7f41', '08', '08ffffffffffffffffffff01', '0f', '0a0541']) {
      expect(() => decode('containerd.task.v2.KillRequest', Buffer.from(bad, 'hex'))).toThrow(InvalidArgumentError);
    }
  });

  test('encode accepts enum names, rejects wrong shapes, and keeps 64-bit numbers', () => {
    expect(decode('containerd.task.v2.StateResponse', encode('containerd.task.v2.StateResponse', { status: 'RUNNING' as never })).status).toBe(TaskStatus.RUNNING);
    expect(() => encode('containerd.task.v2.WaitResponse', { exited_at: 5 as never })).toThrow(InvalidArgumentError);
    const big = 2 ** 40 + 3;
    const m = decode('io.containerd.cgroups.v2.Metrics', encode('io.containerd.cgroups.v2.Metrics', { memory: { usage: big, usage_limit: big * 2 } }));
    expect(m.memory).toMatchObject({ usage: big, usage_limit: big * 2 });
  });

  test('unknown type names are refused, partial names are not matched', () => {
    expect(() => encode('no.Such' as never, {} as never)).toThrow(InvalidArgumentError);
    expect(hasType('containerd.events.TaskExit')).toBe(true);
    expect(hasType('TaskExit')).toBe(false);
    expect(hasType('events.TaskExit')).toBe(false);
    expect(hasType('containerd.events')).toBe(false);
    expect(hasType('__proto__')).toBe(false);
  });
});

describe('Any', () => {
  test('events are packed with bare type URLs', () => {
    const any = anyOf('containerd.events.TaskOOM', { container_id: 'c1' });
    expect(any.type_url).toBe('containerd.events.TaskOOM');
    expect(hex(any.value)).toBe('0a026331');
    expect(anyPack('io.containerd.cgroups.v1.Metrics', 'io.containerd.cgroups.v1.Metrics', {}).type_url).toBe('io.containerd.cgroups.v1.Metrics');
  });

  test('anyUnpack accepts bare and prefixed URLs of the expected type only', () => {
    const any = anyOf('runtimeoptions.v1.Options', { config_path: '/etc/vk.toml' });
    expect(anyUnpack(any, 'runtimeoptions.v1.Options').config_path).toBe('/etc/vk.toml');
    expect(anyUnpack({ ...any, type_url: 'type.googleapis.com/runtimeoptions.v1.Options' }, 'runtimeoptions.v1.Options').config_path).toBe('/etc/vk.toml');
    expect(() => anyUnpack(any, 'containerd.runc.v1.Options')).toThrow(InvalidArgumentError);
  });

  test('anyDecode resolves the type from the URL', () => {
    const any = anyOf('containerd.runc.v1.Options', { binary_name: 'runc', systemd_cgroup: true });
    expect(anyDecode(any)).toEqual({ typeName: 'containerd.runc.v1.Options', value: expect.objectContaining({ binary_name: 'runc', systemd_cgroup: true }) });
    expect(() => anyDecode({ type_url: 'types.containerd.io/opencontainers/runtime-spec/1/Process', value: Buffer.from('{}') })).toThrow(InvalidArgumentError);
    expect(anyTypeName('types.containerd.io/opencontainers/runtime-spec/1/Process')).toBe('Process');
  });

  test('an Any nested in a message survives a round trip', () => {
    const env = {
      timestamp: timestamp(new Date('2024-01-02T03:04:05.678Z')),
      namespace: 'default',
      topic: '/tasks/exit',
      event: anyOf('containerd.events.TaskExit', { container_id: 'c', id: 'c', pid: 9, exit_status: 1, exited_at: timestamp(0) }),
    };
    const back = decode('containerd.services.events.ttrpc.v1.ForwardRequest', encode('containerd.services.events.ttrpc.v1.ForwardRequest', { envelope: env }));
    expect(back.envelope!.topic).toBe('/tasks/exit');
    expect(anyUnpack(back.envelope!.event!, 'containerd.events.TaskExit')).toMatchObject({ container_id: 'c', pid: 9, exit_status: 1 });
    expect(toDate(back.envelope!.timestamp)!.toISOString()).toBe('2024-01-02T03:04:05.678Z');
  });
});

describe('Timestamp', () => {
  test('from a Date or epoch milliseconds', () => {
    expect(timestamp(new Date(1700000000123))).toEqual({ seconds: 1700000000, nanos: 123000000 });
    expect(timestamp(-1)).toEqual({ seconds: -1, nanos: 999000000 });
    const now = timestamp();
    expect(Math.abs(now.seconds * 1000 - Date.now())).toBeLessThan(2000);
  });

  test('from nanoseconds without losing precision', () => {
    expect(timestampFromNanos(1700000000123456789n)).toEqual({ seconds: 1700000000, nanos: 123456789 });
    expect(timestampFromNanos(-1n)).toEqual({ seconds: -1, nanos: 999999999 });
  });

  test('to a Date; absent or zero is null', () => {
    expect(toDate({ seconds: 1700000000, nanos: 123999999 })!.getTime()).toBe(1700000000123);
    expect(toDate(null)).toBeNull();
    expect(toDate({ seconds: 0, nanos: 0 })).toBeNull();
  });
});
