// The launcher ⇄ manager wire format (shim/manager/protocol.ts; launcher.c speaks it too).
import { decodeReply, decodeRequest, encodeReply, encodeRequest, MessageReader, REPLY_MAGIC, REQUEST_MAGIC } from '../../shim/manager/protocol';

describe('launcher protocol', () => {
  const req = {
    argv: ['/usr/local/bin/containerd-shim-vkernel-v2', '-namespace', 'default', '-id', 'c1', 'start'],
    cwd: '/run/containerd/io.containerd.runtime.v2.task/default/c1',
    env: { TTRPC_ADDRESS: '/run/containerd/containerd.sock.ttrpc', NAMESPACE: 'default' },
    stdin: Buffer.from([0x0a, 0x01, 0x78, 0x00, 0xff]),
    ppid: 1234,
  };

  test('request round trip, with the exact framing', () => {
    const bytes = encodeRequest(req);
    expect(bytes.subarray(0, 4).toString()).toBe('VKS1');
    expect(bytes.readUInt32BE(4)).toBe(bytes.length - 8);
    expect(bytes.subarray(8, 13)).toEqual(Buffer.from([0x41, 0, 0, 0, req.argv[0].length])); // 'A' + u32 length
    expect(decodeRequest(bytes)).toEqual(req);
  });

  test('the package root (R) round-trips; a manager of another package declines', () => {
    expect(decodeRequest(encodeRequest({ ...req, pkgroot: '/usr/local/lib/vkernel' })).pkgroot).toBe('/usr/local/lib/vkernel');
    expect(decodeRequest(encodeRequest(req)).pkgroot).toBeUndefined(); // an older launcher
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { samePackage } = require('../../shim/manager/manager') as typeof import('../../shim/manager/manager');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { PACKAGE_ROOT } = require('../../runtime/paths') as typeof import('../../runtime/paths');
    expect(samePackage(PACKAGE_ROOT)).toBe(true);
    expect(samePackage(`${PACKAGE_ROOT}/.`)).toBe(true);
    expect(samePackage('/usr/local/lib/vkernel-elsewhere')).toBe(false);
  });

  test('empty stdin is no I record and decodes as empty', () => {
    const bytes = encodeRequest({ ...req, stdin: Buffer.alloc(0) });
    expect(bytes.includes(Buffer.from([0x49, 0, 0, 0, 0]))).toBe(false);
    expect(decodeRequest(bytes).stdin).toEqual(Buffer.alloc(0));
  });

  test('reply round trip; stderr only when there is some', () => {
    const r = { stdout: Buffer.from('unix:///run/containerd/s/ab'), stderr: Buffer.alloc(0), exitCode: 0 };
    const bytes = encodeReply(r);
    expect(bytes.includes(Buffer.from('E'))).toBe(false);
    expect(decodeReply(bytes)).toEqual(r);
    const withErr = { stdout: Buffer.alloc(0), stderr: Buffer.from('boom\n'), exitCode: 2 };
    expect(decodeReply(encodeReply(withErr))).toEqual(withErr);
  });

  test('a reply without an exit code is incomplete', () => {
    const bytes = encodeReply({ stdout: Buffer.from('x'), stderr: Buffer.alloc(0), exitCode: 0 });
    const cut = Buffer.concat([Buffer.from('VKR1'), Buffer.alloc(4), bytes.subarray(8, 8 + 6)]);
    cut.writeUInt32BE(cut.length - 8, 4);
    expect(() => decodeReply(cut)).toThrow('without an exit code');
  });

  test('unknown tags are skipped; bad magic, bad lengths and truncation are refused', () => {
    const bytes = encodeRequest(req);
    const extra = Buffer.concat([bytes, Buffer.from([0x5a, 0, 0, 0, 1, 0x21])]);
    extra.writeUInt32BE(extra.length - 8, 4);
    expect(decodeRequest(extra)).toEqual(req);
    expect(() => decodeRequest(Buffer.concat([Buffer.from('XXXX'), bytes.subarray(4)]))).toThrow('expected magic VKS1');
    expect(() => decodeRequest(bytes.subarray(0, bytes.length - 1))).toThrow('length does not match');
    const bad = Buffer.from(bytes);
    bad.writeUInt32BE(0xffff, 9); // first record's length
    expect(() => decodeRequest(bad)).toThrow('runs past the end');
  });

  test('MessageReader assembles a message from any chunking and refuses trailing data', () => {
    const bytes = encodeRequest(req);
    for (const size of [1, 3, 8, 100]) {
      const r = new MessageReader(REQUEST_MAGIC);
      let got: Buffer | undefined;
      for (let i = 0; i < bytes.length; i += size) {
        expect(got).toBeUndefined();
        got = r.push(bytes.subarray(i, i + size));
      }
      expect(got).toEqual(bytes);
    }
    expect(() => new MessageReader(REPLY_MAGIC).push(bytes)).toThrow('expected magic VKR1');
    expect(() => new MessageReader(REQUEST_MAGIC).push(Buffer.concat([bytes, Buffer.from('x')]))).toThrow('data after the message');
    const huge = Buffer.from('VKS1\xff\xff\xff\xff', 'latin1');
    expect(() => new MessageReader(REQUEST_MAGIC).push(huge)).toThrow('too large');
  });
});
