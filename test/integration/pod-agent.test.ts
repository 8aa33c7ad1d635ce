// The shim's pod agent (shim/pod-agent.ts) on the real kernel: its close leaves no vkagent
// process behind, even right after its keeper was killed and the standby is taking over
// (forking a new worker and standby of its own). Run in a child Node process that is a
// child subreaper, as a shim daemon is, so the re-parented processes land where they would.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildPath } from '../../runtime/paths';
import { describeIf, requireRoot, requirement } from '../harness';
import { pgrep } from './helpers/vkernel';
import { alive } from './helpers/vkernel-syscalls';

const VKAGENT = buildPath('vkagent');
const ok = requireRoot() && requirement(fs.existsSync(VKAGENT), `${VKAGENT} is missing (make native)`);

const DIST = path.resolve(__dirname, '../..');

/** The child: starts a PodAgent, optionally SIGKILLs its keeper, closes it; prints JSON. */
const CHILD = `
const fs = require('node:fs');
const { native } = require(${JSON.stringify(path.join(DIST, 'runtime/native'))});
const { PodAgent } = require(${JSON.stringify(path.join(DIST, 'shim/pod-agent'))});
const { agentPids } = require(${JSON.stringify(path.join(DIST, 'runtime/vkernel/syscalls'))});
(async () => {
  native().setChildSubreaper();
  const [root, killKeeper] = process.argv.slice(1);
  const log = { info() {}, warn() {} };
  const agent = new PodAgent(root, 'group-1', log);
  const { socket } = await agent.socket();
  for (let i = 0; i < 1000 && agentPids(agent.dir).length < 3; i++) await new Promise((r) => setTimeout(r, 10)); // a busy machine: up to 10 s
  const before = agentPids(agent.dir);
  if (killKeeper === '1') process.kill(before[0], 'SIGKILL');
  await agent.close();
  // Checked here, while we live: once we exit, --die-with-parent would hide a leftover.
  const left = [];
  for (const wait of [0, 300]) {
    await new Promise((r) => setTimeout(r, wait));
    for (const name of fs.readdirSync('/proc')) {
      let cmd = '';
      try { cmd = fs.readFileSync('/proc/' + name + '/cmdline', 'utf8'); } catch {}
      if (/^\d+$/.test(name) && cmd.includes(socket)) left.push(wait + 'ms: ' + name + ' ' + cmd.split(String.fromCharCode(0)).join(' '));
    }
  }
  const late = await agent.socket().then(() => 'started', (e) => e.message);
  process.stdout.write(JSON.stringify({ socket, before, late, left }));
})().catch((e) => { process.stderr.write(String(e && e.stack)); process.exit(1); });
`;

function runChild(root: string, killKeeper: boolean): Promise<{ socket: string; before: number[]; late: string; left: string[] }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['-e', CHILD, root, killKeeper ? '1' : '0'], { timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout));
    });
  });
}

describeIf(ok)('shim pod agent', () => {
  const roots: string[] = [];
  afterAll(() => {
    for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
  });

  it.each([
    ['a running agent', false],
    ['an agent whose keeper was just SIGKILLed (the standby taking over)', true],
  ])('close stops %s: no vkagent process or file is left, and no agent starts after close', async (_what, killKeeper) => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vkt-podagent-'));
    roots.push(root);
    const r = await runChild(root, killKeeper);
    expect(r.before).toHaveLength(3); // keeper, worker, standby
    expect(r.left).toEqual([]);
    expect(r.late).toMatch(/closing/);
    // The child has exited; anything of its agent would now be re-parented to init, alive.
    expect(pgrep(r.socket).filter(alive)).toEqual([]);
    expect(r.before.filter(alive)).toEqual([]);
    expect(fs.readdirSync(root)).toEqual([]);
    expect(fs.existsSync(r.socket)).toBe(false);
  });
});
