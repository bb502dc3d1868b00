// readerhost-client for Node.js: the POS socket of readerhostd, typed from the protocol's OpenRPC document.

export { ReaderhostClient, type ClientOptions, type ReconnectOptions } from "./client.js";
export type { ClientEvent, ClientNotice, Disconnected, EventsMissed, Reconnected } from "./events.js";
export {
  CannotConnectError,
  ClientClosedError,
  ClientError,
  ConnectionLostError,
  NotConnectedError,
  ProtocolError,
  ReaderhostError,
  RequestTimeoutError,
  type ErrorData,
} from "./errors.js";
export { defaultSocketPath, SOCKET_ENV, SYSTEM_SOCKET } from "./paths.js";
export * from "./protocol.js";
