// A real readerhostd for the tests: started as its own process with the built-in Stripe emulator
// (no key), its socket and store in a temporary folder; killed with SIGKILL and started again on
// the same store. The Python to run it with: $READERHOST_PYTHON (pytest passes its own), else python3.

import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

// The simulated reader waits for reader.present, as in the Python tests.
const CONFIG = "[reader.simulated]\npresent_after_s = -1\n";
const READY_WITHIN_MS = 60_000;

export class Daemon {
  readonly folder: string;
  readonly socketPath: string;
  private process: ChildProcess | null = null;
  log = "";

  private constructor(folder: string) {
    this.folder = folder;
    this.socketPath = join(folder, "api.sock");
    writeFileSync(join(folder, "readerhost.toml"), CONFIG);
  }

  static async start(): Promise<Daemon> {
    const daemon = new Daemon(mkdtempSync(join(tmpdir(), "readerhost-ts-")));
    await daemon.startAgain();
    return daemon;
  }

  get pid(): number {
    if (!this.process?.pid) throw new Error("the daemon is not running");
    return this.process.pid;
  }

  /** Start the daemon (on the same store) and resolve once it says it is ready. */
  async startAgain(): Promise<void> {
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const name of ["STRIPE_API_KEY", "READERHOST_CONFIG", "CREDENTIALS_DIRECTORY"]) delete env[name];
    Object.assign(env, {
      READERHOST_SOCKET: this.socketPath,
      XDG_STATE_HOME: join(this.folder, "state"),
      XDG_RUNTIME_DIR: join(this.folder, "run"),
    });
    const python = process.env.READERHOST_PYTHON ?? "python3";
    const child = spawn(python, ["-m", "readerhost.daemon.app", "--config", join(this.folder, "readerhost.toml")], {
      env,
      stdio: ["ignore", "ignore", "pipe"],
    });
    this.process = child;
    child.stderr?.setEncoding("utf8");
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`readerhostd not ready within ${READY_WITHIN_MS} ms:\n${this.log}`)),
        READY_WITHIN_MS,
      );
      child.stderr?.on("data", (text: string) => {
        this.log += text;
        if (this.log.includes(" ready on ")) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`readerhostd ended (${code ?? signal}) before it was ready:\n${this.log}`));
      });
    });
    this.log = "";
  }

  /** SIGKILL: the daemon dies at once, as in a power cut; resolves once it is gone. */
  async kill(): Promise<void> {
    await this.signalAndWait("SIGKILL");
  }

  /** SIGSTOP / SIGCONT: the daemon stops answering (its socket still accepts) / goes on. */
  pause(): void {
    process.kill(this.pid, "SIGSTOP");
  }

  resume(): void {
    process.kill(this.pid, "SIGCONT");
  }

  /** Let any user reach the socket, so that the daemon's own peer check is what decides. */
  openToAll(): void {
    chmodSync(this.socketPath, 0o666);
    for (let folder = dirname(this.socketPath); folder !== "/"; folder = dirname(folder)) {
      chmodSync(folder, statSync(folder).mode | 0o011);
    }
  }

  /** Stop it (SIGTERM, as systemd does) and remove its folder. */
  async stop(): Promise<void> {
    if (this.process && this.process.exitCode === null && this.process.signalCode === null) {
      process.kill(this.pid, "SIGCONT");
      await this.signalAndWait("SIGTERM");
    }
    rmSync(this.folder, { recursive: true, force: true });
  }

  private async signalAndWait(signal: NodeJS.Signals): Promise<void> {
    const child = this.process;
    if (!child) return;
    const exited = once(child, "exit");
    child.kill(signal);
    await exited;
    this.process = null;
  }
}
