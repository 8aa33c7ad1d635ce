// Typed errors with stable codes. The CLI prints `message`; the shim maps `code` to a
// ttrpc/gRPC status in exactly one place (shim/ttrpc/status.ts). Messages are lower-case, no
// trailing period, and name the field and value that were wrong.

export type ErrorCode =
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'FAILED_PRECONDITION'
  | 'NOT_IMPLEMENTED'
  | 'UNAVAILABLE'
  | 'INTERNAL';

export class VkernelError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Bad input: config.json, CLI flags, API requests. `field` is the JSON path or flag name. */
export class InvalidArgumentError extends VkernelError {
  readonly field?: string;
  constructor(message: string, field?: string, options?: { cause?: unknown }) {
    super('INVALID_ARGUMENT', message, options);
    this.field = field;
  }
}

/** Shorthand for the common "field X: value Y is not allowed because Z" shape. */
export function invalidField(field: string, value: unknown, why: string): InvalidArgumentError {
  return new InvalidArgumentError(`${field}: ${why} (got ${JSON.stringify(value)})`, field);
}

export class NotFoundError extends VkernelError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NOT_FOUND', message, options);
  }
}

export class AlreadyExistsError extends VkernelError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ALREADY_EXISTS', message, options);
  }
}

export class FailedPreconditionError extends VkernelError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FAILED_PRECONDITION', message, options);
  }
}

export class NotImplementedError extends VkernelError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NOT_IMPLEMENTED', message, options);
  }
}

export class UnavailableError extends VkernelError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('UNAVAILABLE', message, options);
  }
}

export class InternalError extends VkernelError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('INTERNAL', message, options);
  }
}

/** A failure inside the C init helper: which setup step, and the errno it saw. */
export class InitStepError extends VkernelError {
  readonly step: string;
  readonly errno: number;
  constructor(step: string, errno: number, detail: string) {
    super('INTERNAL', `container init: ${step}: ${detail}`);
    this.step = step;
    this.errno = errno;
  }
}
