// Public surface of the ttrpc package: framing, server, client, status mapping.
export { FRAME_HEADER_LENGTH, MAX_MESSAGE_LENGTH, MessageType, Flag, encodeFrame, decodeHeader, encodeHeader, FrameReader } from './frame';
export type { Frame, FrameHeader, FrameReaderHandlers } from './frame';
export { TtrpcServer, unary } from './server';
export type { CallContext, UnaryMethod, ServiceMethods, ServiceImpl, ListenTarget, TtrpcServerOptions } from './server';
export { TtrpcClient, socketPath } from './client';
export type { TtrpcClientOptions, ConnectOptions, CallOptions } from './client';
export { Metadata, NAMESPACE_KEY } from './metadata';
export type { MetadataInit } from './metadata';
export { Code, TtrpcError, TtrpcClosedError, toStatus, fromStatus, codeName } from './status';
export type { RpcStatus, StatusCode } from './status';
export { silentLogger } from './logger';
export type { TtrpcLogger } from './logger';
