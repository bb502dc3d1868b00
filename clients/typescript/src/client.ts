// The client: one connection to the POS socket at a time, requests matched to their answers by id,
// events queued for `events()`, and reconnection with backoff when the connection ends.

import { Connection } from "./connection.js";
import {
  CannotConnectError,
  ClientClosedError,
  ConnectionLostError,
  NotConnectedError,
  RequestTimeoutError,
} from "./errors.js";
import { EventQueue, type ClientEvent } from "./events.js";
import { defaultSocketPath } from "./paths.js";
import {
  ForbiddenError,
  PosMethods,
  type CallOptions,
  type EventsSubscribeParams,
  type Hello,
  type MethodName,
  type ParamsOf,
  type ResultOf,
} from "./protocol.js";
import { encodeRequest, errorFromWire, type Message } from "./wire.js";

/** How the client reconnects after its connection ended: the n-th attempt waits
 * min(initialDelayMs * 2^(n-1), maxDelayMs), less up to a fifth at random (so that many POS do not
 * knock at once). */
export interface ReconnectOptions {
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** Give up after this many attempts in a row (events() then throws the last CannotConnectError). Default: never. */
  maxAttempts?: number;
}

export interface ClientOptions {
  /** The POS socket; default: defaultSocketPath() ($READERHOST_SOCKET, /run/readerhost/api.sock, ...). */
  path?: string;
  /** For connecting and reading the banner. Default 5000. */
  connectTimeoutMs?: number;
  /** A call's default timeout. Default 30000. */
  callTimeoutMs?: number;
  /** Reconnect when the connection ends (default), or `false` to stay disconnected. */
  reconnect?: ReconnectOptions | false;
  /** Events kept for events() before the oldest are dropped (told as client.events_missed). Default 10000. */
  maxQueuedEvents?: number;
}

interface Pending {
  method: string;
  resolve(result: unknown): void;
  reject(error: unknown): void;
  timer: NodeJS.Timeout;
}

const DEFAULTS = { connectTimeoutMs: 5000, callTimeoutMs: 30_000, maxQueuedEvents: 10_000 };
const RECONNECT_DEFAULTS = { initialDelayMs: 100, maxDelayMs: 5000, maxAttempts: Infinity };

export class ReaderhostClient extends PosMethods {
  /** The banner of the current (or last) connection: protocol version, daemon version, boot_id, mode. */
  banner: Hello;
  readonly path: string;
  private connection: Connection | null;
  private readonly pending = new Map<number, Pending>();
  private readonly queue: EventQueue;
  private readonly callTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly reconnect: Required<ReconnectOptions> | null;
  private nextId = 1;
  private lastSeq = 0;
  private subscription: EventsSubscribeParams | null = null; // repeated after a reconnection
  private closed = false;
  private disconnectedBecause = "";
  private connectedWaiters: Array<{ resolve(): void; reject(error: Error): void }> = [];
  private reconnecting = false;
  private held: ClientEvent[] | null = null; // a new connection's events, until client.reconnected is told
  private retryTimer: NodeJS.Timeout | null = null;

  private constructor(connection: Connection, path: string, options: ClientOptions) {
    super();
    this.connection = connection;
    this.banner = connection.banner;
    this.path = path;
    this.callTimeoutMs = options.callTimeoutMs ?? DEFAULTS.callTimeoutMs;
    this.connectTimeoutMs = options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs;
    this.reconnect = options.reconnect === false ? null : { ...RECONNECT_DEFAULTS, ...options.reconnect };
    this.queue = new EventQueue(options.maxQueuedEvents ?? DEFAULTS.maxQueuedEvents);
    this.attach(connection);
  }

  /** Connect to the daemon's POS socket and read its banner. Rejects with CannotConnectError (its
   * `cause` the daemon's refusal, e.g. ForbiddenError, when it gave one). */
  static async connect(options: ClientOptions = {}): Promise<ReaderhostClient> {
    const path = options.path ?? defaultSocketPath();
    const connection = await Connection.open(path, options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs);
    return new ReaderhostClient(connection, path, options);
  }

  get connected(): boolean {
    return this.connection !== null && this.connection.open;
  }

  /** Send one request and resolve with its result; reject with its error (a ReaderhostError
   * subclass), RequestTimeoutError, ConnectionLostError, NotConnectedError or ClientClosedError.
   * Never sent twice: after a ConnectionLostError or RequestTimeoutError read the truth back. */
  call<M extends MethodName>(method: M, params?: ParamsOf<M>, options: CallOptions = {}): Promise<ResultOf<M>> {
    if (this.closed) return Promise.reject(new ClientClosedError(method));
    const connection = this.connection;
    if (connection === null || !connection.open) {
      return Promise.reject(new NotConnectedError(method, this.disconnectedBecause || "reconnecting"));
    }
    const answer = this.send(connection, method, params, options.timeoutMs ?? this.callTimeoutMs);
    if (method !== "events.subscribe") return answer as Promise<ResultOf<M>>;
    return answer.then((result) => {
      this.subscription = { ...(params as EventsSubscribeParams | undefined) };
      return result as ResultOf<M>;
    });
  }

  /** The events of `eventsSubscribe` and the client's notices (client.disconnected,
   * client.reconnected, client.events_missed), in order, from one reader at a time. Ends after
   * `close()`; throws the last CannotConnectError when reconnecting gave up. */
  events(): AsyncIterableIterator<ClientEvent> {
    return this.queue.reader();
  }

  /** Resolves once connected (at once when connected); rejects after `timeoutMs`, or when closed. */
  waitUntilConnected(timeoutMs: number = this.callTimeoutMs): Promise<void> {
    if (this.connected) return Promise.resolve();
    if (this.closed) return Promise.reject(new ClientClosedError("waitUntilConnected"));
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: (): void => {
          clearTimeout(timer);
          resolve();
        },
        reject: (error: Error): void => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        this.connectedWaiters = this.connectedWaiters.filter((other) => other !== waiter);
        reject(new NotConnectedError("waitUntilConnected", `still not connected after ${timeoutMs} ms`));
      }, timeoutMs);
      this.connectedWaiters.push(waiter);
    });
  }

  /** Close the connection and stop reconnecting; pending calls fail with ClientClosedError, events() ends. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.failPending((method) => new ClientClosedError(method));
    this.connection?.close();
    this.connection = null;
    this.queue.finish();
    for (const waiter of this.connectedWaiters.splice(0)) waiter.reject(new ClientClosedError("waitUntilConnected"));
  }

  // -- one connection ---------------------------------------------------------------------------

  private send(
    connection: Connection,
    method: string,
    params: object | undefined,
    timeoutMs: number,
  ): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id); // a late answer is dropped
        reject(new RequestTimeoutError(method, timeoutMs));
      }, timeoutMs);
      this.pending.set(id, { method, resolve, reject, timer });
      connection.write(encodeRequest(id, method, params));
    });
  }

  private attach(connection: Connection): void {
    this.lastSeq = 0; // seq counts per connection
    connection.start({
      message: (message) => this.receive(message),
      closed: (why) => this.lost(connection, why),
    });
  }

  private receive(message: Message): void {
    if (message.kind === "response") {
      if (message.id === null) return; // to no request of ours
      const waiting = this.pending.get(message.id);
      if (!waiting) return; // timed out already
      this.pending.delete(message.id);
      clearTimeout(waiting.timer);
      if (message.error) waiting.reject(errorFromWire(message.error));
      else waiting.resolve(message.result);
    } else if (message.kind === "event") {
      const seq = message.event.seq;
      if (typeof seq === "number") {
        if (seq > this.lastSeq + 1) {
          const missed: ClientEvent = { topic: "client", type: "client.events_missed", missed: seq - this.lastSeq - 1 };
          if (this.held) this.held.push(missed);
          else this.queue.push(missed);
        }
        this.lastSeq = seq;
      }
      if (this.held) this.held.push(message.event);
      else this.queue.push(message.event);
    }
  }

  private failPending(error: (method: string) => Error): void {
    for (const [id, waiting] of this.pending) {
      this.pending.delete(id);
      clearTimeout(waiting.timer);
      waiting.reject(error(waiting.method));
    }
  }

  private lost(connection: Connection, why: string): void {
    if (this.closed || connection !== this.connection) return;
    this.connection = null;
    this.disconnectedBecause = why;
    this.failPending((method) => new ConnectionLostError(method, why));
    if (this.reconnecting) return; // lost while subscribing again: the running attempt goes on
    this.queue.push({ topic: "client", type: "client.disconnected", reason: why });
    if (this.reconnect === null) {
      this.queue.finish(new CannotConnectError(this.path, `${why}; not reconnecting (reconnect: false)`));
      return;
    }
    void this.reconnectLoop(this.reconnect);
  }

  // -- reconnecting -----------------------------------------------------------------------------

  private delay(attempt: number, options: Required<ReconnectOptions>): number {
    const full = Math.min(options.initialDelayMs * 2 ** (attempt - 1), options.maxDelayMs);
    return full * (0.8 + 0.2 * Math.random());
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        resolve();
      }, ms);
    });
  }

  private async reconnectLoop(options: Required<ReconnectOptions>): Promise<void> {
    this.reconnecting = true;
    try {
      await this.reconnectAttempts(options);
    } finally {
      this.reconnecting = false;
      this.held = null;
    }
  }

  private async reconnectAttempts(options: Required<ReconnectOptions>): Promise<void> {
    const bootBefore = this.banner.boot_id;
    let last: CannotConnectError | null = null;
    for (let attempt = 1; attempt <= options.maxAttempts; attempt++) {
      await this.sleep(this.delay(attempt, options));
      if (this.closed) return;
      let connection: Connection;
      try {
        connection = await Connection.open(this.path, this.connectTimeoutMs);
      } catch (error) {
        last = error as CannotConnectError;
        this.disconnectedBecause = `reconnecting (attempt ${attempt}): ${last.message}`;
        if (last.cause instanceof ForbiddenError) break; // asking again changes nothing
        continue;
      }
      if (this.closed) {
        connection.close();
        return;
      }
      this.connection = connection;
      this.banner = connection.banner;
      this.held = [];
      this.attach(connection);
      let snapshot = null;
      if (this.subscription !== null) {
        try {
          const answer = await this.send(connection, "events.subscribe", this.subscription, this.callTimeoutMs);
          snapshot = (answer as ResultOf<"events.subscribe">).snapshot;
        } catch (error) {
          // Not subscribed, so not connected as the POS asked: this connection goes, the next try comes.
          last = new CannotConnectError(this.path, `subscribing again failed: ${(error as Error).message}`, error);
          if (this.connection === connection) {
            this.connection = null;
            connection.close();
          }
          continue;
        }
      }
      if (this.closed) return;
      if (this.connection !== connection) continue; // lost again while subscribing
      this.queue.push({
        topic: "client",
        type: "client.reconnected",
        banner: connection.banner,
        restarted: connection.banner.boot_id !== bootBefore,
        snapshot,
      });
      for (const event of this.held ?? []) this.queue.push(event);
      this.held = null;
      for (const waiter of this.connectedWaiters.splice(0)) waiter.resolve();
      return;
    }
    const error = last ?? new CannotConnectError(this.path, "gave up reconnecting");
    this.disconnectedBecause = `gave up reconnecting: ${error.message}`;
    this.queue.finish(error);
    for (const waiter of this.connectedWaiters.splice(0)) waiter.reject(error);
  }
}
