// `vkernel agent --socket PATH`: the vkernel syscall supervisor for other runtimes (runc,
// crun): point linux.seccomp.listenerPath at PATH and notify sysinfo / sched_getaffinity.
// Thin: runs build/vkagent in the foreground and passes signals and the exit code on.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { InvalidArgumentError } from '../../runtime/errors';
import { vkagentPath } from '../../runtime/vkernel/syscalls';
import { action, type GlobalArgs } from '../context';

type AgentArgs = GlobalArgs & { socket: string; pidfile?: string };
export const agentCommand: CommandModule<GlobalArgs, AgentArgs> = {
  command: 'agent',
  describe: 'serve the vkernel syscall view as an OCI seccomp agent (linux.seccomp.listenerPath; syscalls only: under runc/crun the /proc and /sys files stay the host\'s)',
  builder: (y) =>
    y
      .option('socket', { type: 'string', demandOption: true, describe: 'AF_UNIX socket path to listen on' })
      .option('pidfile', { type: 'string', describe: 'write "<keeper pid> <worker pid> <standby pid>" here' }) as Argv<AgentArgs>,
  handler: action(async (argv: AgentArgs) => {
    const socket = path.resolve(argv.socket);
    if (Buffer.byteLength(socket) > 107) throw new InvalidArgumentError(`--socket: path too long (${socket})`, 'socket');
    const args = ['serve', '--socket', socket, ...(argv.pidfile ? ['--pidfile', path.resolve(argv.pidfile)] : [])];
    const child = spawn(vkagentPath(), args, { stdio: 'inherit' });
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => child.kill('SIGTERM'));
    const code = await new Promise<number>((resolve, reject) => {
      child.on('error', reject);
      child.on('exit', (c, s) => resolve(c ?? (s ? 128 : 1)));
    });
    process.exitCode = code;
  }),
};
