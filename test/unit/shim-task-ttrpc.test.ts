// The task service behind a real ttrpc server on a temp socket: the same handlers answer as
// containerd.task.v2.Task and containerd.task.v3.Task, and typed errors arrive as the
// status codes containerd's errdefs understand.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { registerTaskService, TASK_SERVICE_V2, TASK_SERVICE_V3 } from '../../shim/task';
import { Code, TtrpcClient, TtrpcServer } from '../../shim/ttrpc';
import { createReq, makeService } from './shim-fakes';

let dir: string;
let server: TtrpcServer;
let client: TtrpcClient;
const h = makeService();

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vkt-task-'));
  server = new TtrpcServer();
  registerTaskService(server, h.svc);
  await server.listen(path.join(dir, 's.sock'));
  client = await TtrpcClient.connect(path.join(dir, 's.sock'), { metadata: { 'containerd-namespace-ttrpc': 'unit' } });
});

afterAll(async () => {
  await client.close();
  await server.destroy();
  fs.rmSync(dir, { recursive: true, force: true });
});

it('serves v2 and v3 with the same handlers', async () => {
  const created = await client.call(TASK_SERVICE_V2, 'Create', 'containerd.task.v2.CreateTaskRequest', createReq('c1'), 'containerd.task.v2.CreateTaskResponse');
  await client.call(TASK_SERVICE_V3, 'Start', 'containerd.task.v3.StartRequest', { id: 'c1' }, 'containerd.task.v3.StartResponse');
  const v3 = await client.call(TASK_SERVICE_V3, 'Connect', 'containerd.task.v3.ConnectRequest', { id: 'c1' }, 'containerd.task.v3.ConnectResponse');
  expect(v3).toEqual({ shim_pid: process.pid, task_pid: created.pid, version: '' });
});

it.each([
  ['State', 'containerd.task.v2.StateRequest', { id: 'nope' }, 'containerd.task.v2.StateResponse', Code.NotFound],
  ['Create', 'containerd.task.v2.CreateTaskRequest', createReq('c1'), 'containerd.task.v2.CreateTaskResponse', Code.AlreadyExists],
  ['Delete', 'containerd.task.v2.DeleteRequest', { id: 'c1' }, 'containerd.task.v2.DeleteResponse', Code.FailedPrecondition],
  ['Resume', 'containerd.task.v2.ResumeRequest', { id: 'c1' }, 'google.protobuf.Empty', Code.FailedPrecondition],
  ['Checkpoint', 'containerd.task.v2.CheckpointTaskRequest', { id: 'c1' }, 'google.protobuf.Empty', Code.Unimplemented],
  ['Exec', 'containerd.task.v2.ExecProcessRequest', { id: 'c1', exec_id: 'e', spec: { type_url: 'x', value: Buffer.from('{}') } }, 'google.protobuf.Empty', Code.InvalidArgument],
] as const)('%s answers status %#', async (method, reqType, req, resType, code) => {
  await expect(client.call(TASK_SERVICE_V2, method, reqType, req as never, resType)).rejects.toMatchObject({ grpcCode: code });
});
