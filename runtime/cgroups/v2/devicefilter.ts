// OCI device rules → an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE, as runc's
// libcontainer/cgroups/ebpf/devicefilter does it. Pure: no kernel calls here (the loader is
// in devices.ts).
//
// The rules first go through the devices emulator (device-rules.ts), so the program means
// exactly what the same rules mean to a v1 devices cgroup: evaluated in order, later rules
// win, an "a" rule resets to allow-all or deny-all, and punching a hole into a wildcard
// exception is refused (InvalidArgumentError naming linux.resources.devices). What is left
// is a default (deny for a deny-all list) plus exceptions that all have the other action;
// the program tests each exception and returns its action on the first match, else the
// default:
//
//   r2 = ctx->access_type & 0xffff   (BPF_DEVCG_DEV_BLOCK 1 / BPF_DEVCG_DEV_CHAR 2)
//   r3 = ctx->access_type >> 16      (BPF_DEVCG_ACC_MKNOD 1 | READ 2 | WRITE 4)
//   r4 = ctx->major, r5 = ctx->minor
//   per exception:  if r2 != type goto next
//                   if (r3 & access) != r3 goto next      (left out for rwm)
//                   if r4 != major goto next             (left out for a wildcard)
//                   if r5 != minor goto next             (left out for a wildcard)
//                   return allow ? 1 : 0
//   return default
//
// A requested access is granted by an exception only when the exception holds all of it
// (as the v1 controller's match_exception does).

import { DeviceEmulator, WILDCARD, type DeviceRule } from '../device-rules';

export const BPF_PROG_TYPE_CGROUP_DEVICE = 15;
export const BPF_CGROUP_DEVICE = 6;
export const BPF_F_ALLOW_MULTI = 2;
/** The license string of the program (runc's). */
export const DEVICE_PROGRAM_LICENSE = 'Apache';

export const BPF_DEVCG_ACC_MKNOD = 1;
export const BPF_DEVCG_ACC_READ = 2;
export const BPF_DEVCG_ACC_WRITE = 4;
export const BPF_DEVCG_DEV_BLOCK = 1;
export const BPF_DEVCG_DEV_CHAR = 2;

/** Opcodes used (class | op | source). */
export const OP = {
  LDXW: 0x61, // BPF_LDX | BPF_MEM | BPF_W
  AND32_IMM: 0x54, // BPF_ALU | BPF_AND | BPF_K
  RSH32_IMM: 0x74, // BPF_ALU | BPF_RSH | BPF_K
  MOV32_IMM: 0xb4, // BPF_ALU | BPF_MOV | BPF_K
  MOV32_REG: 0xbc, // BPF_ALU | BPF_MOV | BPF_X
  JNE_IMM: 0x55, // BPF_JMP | BPF_JNE | BPF_K (64-bit compare, imm sign-extended)
  JNE_REG: 0x5d, // BPF_JMP | BPF_JNE | BPF_X
  JNE32_IMM: 0x56, // BPF_JMP32 | BPF_JNE | BPF_K (32-bit compare)
  EXIT: 0x95, // BPF_JMP | BPF_EXIT
} as const;

export interface BpfInsn {
  code: number;
  dst: number;
  src: number;
  /** Signed 16-bit offset (memory offset, or jump distance in instructions). */
  off: number;
  /** Signed 32-bit immediate. */
  imm: number;
}

export interface DeviceProgram {
  insns: BpfInsn[];
  license: string;
  /** The emulator's default: true for an allow-all list with deny exceptions. */
  defaultAllow: boolean;
  /** The exceptions the program tests, in program order. */
  exceptions: DeviceRule[];
}

const R0 = 0;
const R1 = 1;
const R2 = 2;
const R3 = 3;
const R4 = 4;
const R5 = 5;

function insn(code: number, dst = 0, src = 0, off = 0, imm = 0): BpfInsn {
  return { code, dst, src, off, imm: imm | 0 };
}

export function accessBits(access: string): number {
  let bits = 0;
  for (const c of access) {
    if (c === 'r') bits |= BPF_DEVCG_ACC_READ;
    else if (c === 'w') bits |= BPF_DEVCG_ACC_WRITE;
    else if (c === 'm') bits |= BPF_DEVCG_ACC_MKNOD;
    else throw new Error(`devicefilter: unknown device access ${JSON.stringify(c)}`);
  }
  return bits;
}

const ALL_ACCESS = BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE | BPF_DEVCG_ACC_MKNOD;

/** if reg != value goto (off patched by the caller): a 32-bit compare for values above INT32_MAX. */
function jneImm(reg: number, value: number): BpfInsn {
  return insn(value > 0x7fffffff ? OP.JNE32_IMM : OP.JNE_IMM, reg, 0, 0, value);
}

/** One exception's block: every conditional jump goes to the instruction after it. */
function exceptionBlock(rule: DeviceRule): BpfInsn[] {
  const type = rule.type === 'c' ? BPF_DEVCG_DEV_CHAR : rule.type === 'b' ? BPF_DEVCG_DEV_BLOCK : undefined;
  if (type === undefined) throw new Error(`devicefilter: invalid device type ${JSON.stringify(rule.type)} in an exception`);
  const access = accessBits(rule.access);
  const block: BpfInsn[] = [];
  const jumps: number[] = [];
  const jump = (i: BpfInsn): void => {
    jumps.push(block.length);
    block.push(i);
  };
  jump(jneImm(R2, type));
  if (access !== ALL_ACCESS) {
    block.push(insn(OP.MOV32_REG, R1, R3), insn(OP.AND32_IMM, R1, 0, 0, access));
    jump(insn(OP.JNE_REG, R1, R3));
  }
  if (rule.major !== WILDCARD) jump(jneImm(R4, rule.major));
  if (rule.minor !== WILDCARD) jump(jneImm(R5, rule.minor));
  block.push(insn(OP.MOV32_IMM, R0, 0, 0, rule.allow ? 1 : 0), insn(OP.EXIT));
  for (const j of jumps) block[j].off = block.length - (j + 1);
  return block;
}

/**
 * The device program for `rules` (OCI order, e.g. effectiveDeviceRules()). Throws
 * InvalidArgumentError for rule sets the v1 controller would refuse (see DeviceEmulator).
 */
export function compileDeviceFilter(rules: DeviceRule[]): DeviceProgram {
  const emu = DeviceEmulator.fromRules(rules);
  const exceptions = emu.exceptions();
  const insns: BpfInsn[] = [
    insn(OP.LDXW, R2, R1, 0),
    insn(OP.AND32_IMM, R2, 0, 0, 0xffff),
    insn(OP.LDXW, R3, R1, 0),
    insn(OP.RSH32_IMM, R3, 0, 0, 16),
    insn(OP.LDXW, R4, R1, 4),
    insn(OP.LDXW, R5, R1, 8),
  ];
  for (const rule of exceptions) insns.push(...exceptionBlock(rule));
  insns.push(insn(OP.MOV32_IMM, R0, 0, 0, emu.defaultAllow ? 1 : 0), insn(OP.EXIT));
  return { insns, license: DEVICE_PROGRAM_LICENSE, defaultAllow: emu.defaultAllow, exceptions };
}

/** struct bpf_insn[] as the kernel reads it (little-endian; dst in the low nibble). */
export function encodeInsns(insns: BpfInsn[]): Buffer {
  const buf = Buffer.alloc(insns.length * 8);
  insns.forEach((i, n) => {
    buf.writeUInt8(i.code, n * 8);
    buf.writeUInt8((i.dst & 0xf) | ((i.src & 0xf) << 4), n * 8 + 1);
    buf.writeInt16LE(i.off, n * 8 + 2);
    buf.writeInt32LE(i.imm, n * 8 + 4);
  });
  return buf;
}

/** The inverse of encodeInsns (for tests and diagnostics). */
export function decodeInsns(buf: Buffer): BpfInsn[] {
  const out: BpfInsn[] = [];
  for (let o = 0; o + 8 <= buf.length; o += 8) {
    const regs = buf.readUInt8(o + 1);
    out.push({ code: buf.readUInt8(o), dst: regs & 0xf, src: regs >> 4, off: buf.readInt16LE(o + 2), imm: buf.readInt32LE(o + 4) });
  }
  return out;
}
