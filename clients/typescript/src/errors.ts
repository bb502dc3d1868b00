// The daemon's refusals (ReaderhostError; one subclass per reason in protocol.ts) and the client's
// own failures: it could not connect, the connection ended under a request, no answer in time.

/** An error answer's `data`: `reason` always (but for -32603), `retryable`, `field` for INVALID_PARAMS. */
export interface ErrorData {
  reason?: string;
  retryable?: boolean;
  field?: string;
  [key: string]: unknown;
}

/** The daemon answered with an error. `instanceof` one of protocol.ts's classes (BusyError,
 * NotFoundError, ...) to tell reasons apart, or read `reason`. */
export class ReaderhostError extends Error {
  readonly code: number;
  readonly data: ErrorData;
  readonly reason: string | null;
  /** The daemon says the same request may succeed later (BUSY, STRIPE_UNAVAILABLE, ...). */
  readonly retryable: boolean;
  /** For INVALID_PARAMS: the parameter at fault. */
  readonly field: string | null;

  constructor(code: number, message: string, data: ErrorData = {}) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.data = data;
    this.reason = typeof data.reason === "string" ? data.reason : null;
    this.retryable = data.retryable === true;
    this.field = typeof data.field === "string" ? data.field : null;
  }
}

/** A failure of the client or the connection, not an answer of the daemon. */
export class ClientError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** No connection could be made (no socket, refused, no banner in time, another major version). */
export class CannotConnectError extends ClientError {
  readonly path: string;
  /** The daemon's refusal (e.g. ForbiddenError), when it gave one. */
  override readonly cause: unknown;

  constructor(path: string, why: string, cause?: unknown) {
    super(`cannot connect to readerhostd at ${path}: ${why}`);
    this.path = path;
    this.cause = cause;
  }
}

/** The connection ended after the request was sent and before its answer: the daemon may or may not
 * have carried it out. Nothing is sent again by the client; read the truth back (for a payment,
 * `paymentGet({ order_id })`) before deciding. */
export class ConnectionLostError extends ClientError {
  readonly method: string;

  constructor(method: string, why: string) {
    super(
      `the connection to readerhostd ended before ${method} was answered (${why}); ` +
        "it may or may not have been carried out",
    );
    this.method = method;
  }
}

/** The request was not sent: the client is reconnecting (see `waitUntilConnected`). */
export class NotConnectedError extends ClientError {
  readonly method: string;

  constructor(method: string, why: string) {
    super(`${method} was not sent: not connected to readerhostd (${why})`);
    this.method = method;
  }
}

/** No answer within the call's timeout. The request was sent: the daemon may still carry it out. */
export class RequestTimeoutError extends ClientError {
  readonly method: string;
  readonly timeoutMs: number;

  constructor(method: string, timeoutMs: number) {
    super(`${method} got no answer within ${timeoutMs} ms; it may still be carried out`);
    this.method = method;
    this.timeoutMs = timeoutMs;
  }
}

/** The client was closed with `close()`. */
export class ClientClosedError extends ClientError {
  constructor(method: string) {
    super(`${method} was not answered: the client was closed`);
  }
}

/** The daemon sent something this client cannot read as the protocol. */
export class ProtocolError extends ClientError {}
