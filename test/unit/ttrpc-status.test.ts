// The one error <-> status mapping, and request metadata.
import {
  AlreadyExistsError,
  FailedPreconditionError,
  InitStepError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  NotImplementedError,
  UnavailableError,
  VkernelError,
} from '../../runtime/errors';
import { Metadata, NAMESPACE_KEY } from '../../shim/ttrpc/metadata';
import { Code, TtrpcClosedError, TtrpcError, codeName, fromStatus, toStatus } from '../../shim/ttrpc/status';

describe('toStatus', () => {
  test.each([
    [new NotFoundError('container c1: not found'), 5],
    [new AlreadyExistsError('exists'), 6],
    [new FailedPreconditionError('running'), 9],
    [new InvalidArgumentError('bad', 'f'), 3],
    [new NotImplementedError('nope'), 12],
    [new UnavailableError('later'), 14],
    [new InternalError('broken'), 13],
    [new InitStepError('pivot_root', 1, 'EPERM'), 13],
  ])('%p -> %d', (err, code) => {
    expect(toStatus(err)).toEqual({ code, message: err.message });
  });

  test('errors without a vkernel code become Unknown (2)', () => {
    expect(toStatus(new Error('boom'))).toEqual({ code: Code.Unknown, message: 'boom' });
    expect(toStatus(new TypeError(''))).toEqual({ code: Code.Unknown, message: 'TypeError' });
    expect(toStatus('text')).toEqual({ code: Code.Unknown, message: 'text' });
    expect(toStatus(undefined)).toEqual({ code: Code.Unknown, message: 'undefined' });
    expect(toStatus(new VkernelError('WHATEVER' as never, 'odd'))).toEqual({ code: Code.Unknown, message: 'odd' });
  });

  test('a TtrpcError keeps its exact code (proxied errors)', () => {
    expect(toStatus(new TtrpcError(Code.DeadlineExceeded, 'context deadline exceeded'))).toEqual({ code: 4, message: 'context deadline exceeded' });
    expect(toStatus(new TtrpcClosedError())).toEqual({ code: 14, message: 'ttrpc: closed' });
  });
});

describe('fromStatus', () => {
  test('OK and absent statuses are not errors', () => {
    expect(fromStatus(undefined)).toBeUndefined();
    expect(fromStatus(null)).toBeUndefined();
    expect(fromStatus({ code: 0, message: 'ignored' })).toBeUndefined();
  });

  test.each([
    [5, 'NOT_FOUND'],
    [6, 'ALREADY_EXISTS'],
    [9, 'FAILED_PRECONDITION'],
    [3, 'INVALID_ARGUMENT'],
    [12, 'NOT_IMPLEMENTED'],
    [14, 'UNAVAILABLE'],
    [13, 'INTERNAL'],
    [2, 'INTERNAL'],
    [4, 'INTERNAL'],
    [99, 'INTERNAL'],
  ])('code %d is a TtrpcError with code %s', (grpcCode, code) => {
    const err = fromStatus({ code: grpcCode, message: 'm' })!;
    expect(err).toBeInstanceOf(TtrpcError);
    expect(err).toBeInstanceOf(VkernelError);
    expect(err).toMatchObject({ grpcCode, code, message: 'm', name: 'TtrpcError' });
  });

  test('status -> error -> status is the identity', () => {
    for (let code = 1; code <= 16; code++) expect(toStatus(fromStatus({ code, message: `m${code}` }))).toEqual({ code, message: `m${code}` });
  });

  test('code names', () => {
    expect(codeName(5)).toBe('NotFound');
    expect(codeName(12)).toBe('Unimplemented');
    expect(codeName(77)).toBe('Code(77)');
  });
});

describe('Metadata', () => {
  test('keys are case-insensitive and may repeat', () => {
    const md = new Metadata([
      { key: 'Containerd-Namespace-Ttrpc', value: 'k8s.io' },
      { key: 'x', value: '1' },
      { key: 'X', value: '2' },
    ]);
    expect(md.get(NAMESPACE_KEY)).toBe('k8s.io');
    expect(md.getAll('x')).toEqual(['1', '2']);
    expect(md.get('missing')).toBeUndefined();
    expect(md.has('X')).toBe(true);
    expect(md.size).toBe(2);
    expect(md.toPairs()).toEqual([
      { key: 'containerd-namespace-ttrpc', value: 'k8s.io' },
      { key: 'x', value: '1' },
      { key: 'x', value: '2' },
    ]);
  });

  test('merge replaces repeated keys', () => {
    const base = new Metadata({ a: '1', b: ['2', '3'] });
    const merged = base.merge({ B: 'x', c: '4' });
    expect(merged.toObject()).toEqual({ a: ['1'], b: ['x'], c: ['4'] });
    expect(base.getAll('b')).toEqual(['2', '3']);
    expect(base.merge().toObject()).toEqual(base.toObject());
    expect(base.merge(new Metadata({ a: '9' })).get('a')).toBe('9');
    expect(new Metadata().set('k', 'v').set('K', 'w').getAll('k')).toEqual(['w']);
  });
});
