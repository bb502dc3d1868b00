// The wire: newline-delimited JSON-RPC 2.0, the banner, and error answers made into error classes.

import { ProtocolError, ReaderhostError, type ErrorData } from "./errors.js";
import { ERROR_CLASSES, PROTOCOL_VERSION, type ErrorReason, type Hello, type ReaderhostEvent } from "./protocol.js";

/** The longest line taken from the daemon (a payment list of 500 fits); longer ends the connection. */
export const MAX_LINE = 16 * 1024 * 1024;

export type Message =
  | { kind: "response"; id: number | null; result?: unknown; error?: WireError }
  | { kind: "event"; event: ReaderhostEvent }
  | { kind: "banner"; banner: Hello }
  | { kind: "other" };

export interface WireError {
  code: number;
  message: string;
  data?: ErrorData;
}

/** Splits a stream of text into lines, keeping the unfinished tail. */
export class LineSplitter {
  private tail = "";

  /** The complete lines in `chunk` (with what came before it); throws ProtocolError past MAX_LINE. */
  push(chunk: string): string[] {
    const parts = (this.tail + chunk).split("\n");
    this.tail = parts.pop() ?? "";
    if (this.tail.length > MAX_LINE) {
      throw new ProtocolError(`a line from readerhostd is longer than ${MAX_LINE} bytes`);
    }
    return parts.filter((line) => line.trim() !== "");
  }
}

export function encodeRequest(id: number, method: string, params: object | undefined): string {
  const request: Record<string, unknown> = { jsonrpc: "2.0", id, method };
  if (params !== undefined) request.params = params;
  return JSON.stringify(request) + "\n";
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** What a line from the daemon is. Throws ProtocolError for a line that is not a JSON object. */
export function parseMessage(line: string): Message {
  let message: unknown;
  try {
    message = JSON.parse(line);
  } catch {
    throw new ProtocolError(`readerhostd sent a line that is not JSON: ${line.slice(0, 200)}`);
  }
  if (!isObject(message)) throw new ProtocolError(`readerhostd sent JSON that is not an object: ${line.slice(0, 200)}`);
  // An answer; with id null, to no request (the daemon's refusal of the connection, or of a line it could not read).
  if ((typeof message.id === "number" || message.id === null) && ("result" in message || "error" in message)) {
    const error = isObject(message.error) ? (message.error as unknown as WireError) : undefined;
    if (error) return { kind: "response", id: message.id, error };
    return { kind: "response", id: message.id, result: message.result };
  }
  if (message.method === "event" && isObject(message.params)) {
    return { kind: "event", event: message.params as unknown as ReaderhostEvent };
  }
  if (message.method === "hello" && isObject(message.params)) {
    return { kind: "banner", banner: message.params as unknown as Hello };
  }
  return { kind: "other" };
}

/** The error class of the answer's reason (BusyError, ...), or ReaderhostError for one without a known reason. */
export function errorFromWire(error: WireError): ReaderhostError {
  const data: ErrorData = isObject(error.data) ? error.data : {};
  const reason = data.reason;
  const known = typeof reason === "string" && Object.hasOwn(ERROR_CLASSES, reason);
  const ErrorClass = known ? ERROR_CLASSES[reason as ErrorReason] : ReaderhostError;
  return new ErrorClass(error.code, String(error.message), data);
}

/** Why this banner cannot be spoken to, or null: another major version of the protocol. */
export function incompatibility(banner: Hello): string | null {
  if (!isObject(banner.protocol) || banner.protocol.major !== PROTOCOL_VERSION.major) {
    return `the daemon speaks protocol ${JSON.stringify(banner.protocol)}, this client ${PROTOCOL_VERSION.major}.x`;
  }
  return null;
}
