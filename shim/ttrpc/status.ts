// RPC status codes and the one mapping between them and vkernel's typed errors. Servers turn
// any thrown error into a google.rpc.Status with `toStatus`; clients turn a non-OK status back
// into a TtrpcError with `fromStatus`. containerd reads the codes through errdefs: NotFound,
// AlreadyExists, FailedPrecondition, InvalidArgument, Unimplemented, Unavailable keep their class.
import { VkernelError, type ErrorCode } from '../../runtime/errors';

/** gRPC status codes, which ttrpc uses unchanged. */
export const Code = {
  OK: 0,
  Canceled: 1,
  Unknown: 2,
  InvalidArgument: 3,
  DeadlineExceeded: 4,
  NotFound: 5,
  AlreadyExists: 6,
  PermissionDenied: 7,
  ResourceExhausted: 8,
  FailedPrecondition: 9,
  Aborted: 10,
  OutOfRange: 11,
  Unimplemented: 12,
  Internal: 13,
  Unavailable: 14,
  DataLoss: 15,
  Unauthenticated: 16,
} as const;

export type StatusCode = (typeof Code)[keyof typeof Code];

/** The code and message of a google.rpc.Status (details are never sent by the shim). */
export interface RpcStatus {
  code: number;
  message: string;
}

const BY_ERROR_CODE: Record<ErrorCode, StatusCode> = {
  INVALID_ARGUMENT: Code.InvalidArgument,
  NOT_FOUND: Code.NotFound,
  ALREADY_EXISTS: Code.AlreadyExists,
  FAILED_PRECONDITION: Code.FailedPrecondition,
  NOT_IMPLEMENTED: Code.Unimplemented,
  UNAVAILABLE: Code.Unavailable,
  INTERNAL: Code.Internal,
};

const BY_STATUS_CODE = new Map<number, ErrorCode>(
  (Object.entries(BY_ERROR_CODE) as Array<[ErrorCode, StatusCode]>).map(([k, v]) => [v, k]),
);

const NAMES = new Map<number, string>(Object.entries(Code).map(([k, v]) => [v, k]));

/** "NotFound" for 5; "Code(99)" for codes gRPC does not define. */
export function codeName(code: number): string {
  return NAMES.get(code) ?? `Code(${code})`;
}

/**
 * An RPC that ended with a non-OK status, or a local failure of a call (closed connection,
 * deadline). `grpcCode` is the exact status code; `code` the closest vkernel ErrorCode
 * (INTERNAL when there is none, e.g. DeadlineExceeded or Unknown).
 */
export class TtrpcError extends VkernelError {
  readonly grpcCode: number;
  constructor(grpcCode: number, message: string, options?: { cause?: unknown }) {
    super(BY_STATUS_CODE.get(grpcCode) ?? 'INTERNAL', message, options);
    this.grpcCode = grpcCode;
  }
}

/** The connection went away (or was closed) before the call completed: Unavailable, "ttrpc: closed". */
export class TtrpcClosedError extends TtrpcError {
  constructor(message = 'ttrpc: closed', options?: { cause?: unknown }) {
    super(Code.Unavailable, message, options);
  }
}

/** The single error -> status mapping used at the RPC edge. Unknown errors become Unknown (2). */
export function toStatus(err: unknown): RpcStatus {
  if (err instanceof TtrpcError) return { code: err.grpcCode, message: err.message };
  if (err instanceof VkernelError) return { code: BY_ERROR_CODE[err.code] ?? Code.Unknown, message: err.message };
  if (err instanceof Error) return { code: Code.Unknown, message: err.message || err.name };
  return { code: Code.Unknown, message: String(err) };
}

/** A status as a TtrpcError; OK (or an absent status) is not an error and returns undefined. */
export function fromStatus(status: { code?: number | null; message?: string | null } | null | undefined): TtrpcError | undefined {
  const code = status?.code ?? Code.OK;
  if (code === Code.OK) return undefined;
  return new TtrpcError(code, status?.message ?? '');
}
