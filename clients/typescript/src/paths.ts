// Where the daemon's POS socket is when none is given, the way readerhost's Python client and
// readerhostctl find it (docs/pos-protocol.md, "Connecting").

import { existsSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";

export const SOCKET_ENV = "READERHOST_SOCKET";
export const SYSTEM_SOCKET = "/run/readerhost/api.sock";

/** $READERHOST_SOCKET, else the system service's /run/readerhost/api.sock when it exists, else
 * $XDG_RUNTIME_DIR/readerhost/api.sock (a daemon run by this user), else ./readerhost-api.sock. */
export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  const configured = env[SOCKET_ENV];
  if (configured) return resolve(configured);
  if (existsSync(SYSTEM_SOCKET)) return SYSTEM_SOCKET;
  const runtime = (env.XDG_RUNTIME_DIR ?? "").split(":")[0] ?? "";
  if (runtime && isAbsolute(runtime)) return join(runtime, "readerhost", "api.sock");
  return resolve("readerhost-api.sock");
}
