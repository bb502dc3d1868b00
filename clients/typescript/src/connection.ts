// One connection to the POS socket: connect, read the banner the daemon greets with, then hand
// each message to the client until the connection ends (once, with why).

import { createConnection, type Socket } from "node:net";

import { CannotConnectError, ProtocolError } from "./errors.js";
import type { Hello } from "./protocol.js";
import { errorFromWire, incompatibility, LineSplitter, parseMessage, type Message } from "./wire.js";

export interface ConnectionHandlers {
  message(message: Message): void;
  /** The connection ended (by the daemon, an error, or `close()`), with why. Called once. */
  closed(why: string): void;
}

export class Connection {
  private handlers: ConnectionHandlers | null = null;
  private early: Message[] = []; // lines that came with the banner, before the handlers
  private ended: string | null = null;

  private constructor(
    private readonly socket: Socket,
    private readonly splitter: LineSplitter,
    readonly banner: Hello,
  ) {}

  /** Connect to `path` and read the banner within `timeoutMs`. Rejects with CannotConnectError
   * (its `cause` is the daemon's refusal when it answered one, e.g. ForbiddenError or BusyError). */
  static open(path: string, timeoutMs: number): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const socket = createConnection({ path });
      const splitter = new LineSplitter();
      let connection: Connection | null = null;
      const fail = (why: string, cause?: unknown): void => {
        clearTimeout(timer);
        socket.destroy();
        if (connection === null) reject(new CannotConnectError(path, why, cause));
      };
      const timer = setTimeout(() => fail(`no banner within ${timeoutMs} ms`), timeoutMs);
      socket.setEncoding("utf8");
      socket.on("error", (error: NodeJS.ErrnoException) => {
        if (connection) connection.end(error.message);
        else fail(error.code ? `${error.code}: ${error.message}` : error.message);
      });
      socket.on("close", () => {
        if (connection) connection.end("the daemon closed the connection");
        else fail("the daemon closed the connection before its banner");
      });
      socket.on("data", (chunk: string) => {
        let lines: string[];
        try {
          lines = splitter.push(chunk);
        } catch (error) {
          if (connection) connection.end((error as Error).message);
          else fail((error as Error).message);
          return;
        }
        for (const line of lines) {
          if (connection) {
            connection.receive(line);
            continue;
          }
          let message: Message;
          try {
            message = parseMessage(line);
          } catch (error) {
            fail((error as Error).message);
            return;
          }
          if (message.kind === "response" && message.error) {
            const refusal = errorFromWire(message.error);
            fail(`the daemon refused the connection: ${refusal.message}`, refusal);
            return;
          }
          if (message.kind !== "banner") {
            fail(`the daemon's first line is not its banner: ${line.slice(0, 200)}`);
            return;
          }
          const wrong = incompatibility(message.banner);
          if (wrong) {
            fail(wrong);
            return;
          }
          clearTimeout(timer);
          connection = new Connection(socket, splitter, message.banner);
          resolve(connection);
        }
      });
    });
  }

  /** Start handing messages (and the end) to `handlers`, beginning with any that came early. */
  start(handlers: ConnectionHandlers): void {
    this.handlers = handlers;
    for (const message of this.early.splice(0)) handlers.message(message);
    if (this.ended !== null) handlers.closed(this.ended);
  }

  get open(): boolean {
    return this.ended === null;
  }

  write(line: string): void {
    this.socket.write(line);
  }

  close(): void {
    this.end("closed by the client");
  }

  private receive(line: string): void {
    let message: Message;
    try {
      message = parseMessage(line);
    } catch (error) {
      this.end((error as ProtocolError).message);
      return;
    }
    if (this.handlers) this.handlers.message(message);
    else this.early.push(message);
  }

  private end(why: string): void {
    if (this.ended !== null) return;
    this.ended = why;
    this.socket.destroy();
    this.handlers?.closed(why);
  }
}
