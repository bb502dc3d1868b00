// The events a client hands to its POS: the daemon's (protocol.ts's ReaderhostEvent) and the
// client's own notices about its connection, in one queue read as an async iterator.

import type { EventsSubscribeResult, Hello, ReaderhostEvent } from "./protocol.js";

/** The connection ended. Requests in flight were failed (ConnectionLostError); the client reconnects. */
export interface Disconnected {
  topic: "client";
  type: "client.disconnected";
  reason: string;
}

/** Connected again. Events in between are lost (the daemon does not replay them): re-read the payments
 * you care about. `restarted`: the daemon restarted (another boot_id), so payments that were waiting
 * for a customer were canceled. `snapshot`: the answer of the repeated `events.subscribe`, if any. */
export interface Reconnected {
  topic: "client";
  type: "client.reconnected";
  banner: Hello;
  restarted: boolean;
  snapshot: EventsSubscribeResult["snapshot"] | null;
}

/** Events were missed: a gap in the daemon's `seq` (it dropped some for a slow reader), or this
 * client's own queue overflowed. Re-read what you care about with `paymentGet`. */
export interface EventsMissed {
  topic: "client";
  type: "client.events_missed";
  missed: number;
}

export type ClientNotice = Disconnected | Reconnected | EventsMissed;
/** What `client.events()` yields: switch on `type`. */
export type ClientEvent = ReaderhostEvent | ClientNotice;

/** A bounded queue with one reader at a time; the oldest are dropped when full (and said so). */
export class EventQueue {
  private items: ClientEvent[] = [];
  private dropped = 0;
  private waiting: ((result: IteratorResult<ClientEvent>) => void) | null = null;
  private failWaiting: ((error: unknown) => void) | null = null;
  private finished: { error: unknown } | null = null;
  private reading = false;

  constructor(private readonly limit: number) {}

  push(event: ClientEvent): void {
    if (this.finished) return;
    if (this.waiting) {
      const deliver = this.waiting;
      this.waiting = this.failWaiting = null;
      deliver({ value: event, done: false });
      return;
    }
    if (this.items.length >= this.limit) {
      this.items.shift();
      this.dropped += 1;
    }
    this.items.push(event);
  }

  /** No more events: readers finish (or throw `error`, when given) once the queue is empty. */
  finish(error?: unknown): void {
    if (this.finished) return;
    this.finished = { error };
    if (this.waiting && this.items.length === 0) {
      const [deliver, raise] = [this.waiting, this.failWaiting];
      this.waiting = this.failWaiting = null;
      if (error === undefined) deliver({ value: undefined, done: true });
      else raise?.(error);
    }
  }

  private next(): Promise<IteratorResult<ClientEvent>> {
    if (this.dropped > 0) {
      const missed = this.dropped;
      this.dropped = 0;
      return Promise.resolve({ value: { topic: "client", type: "client.events_missed", missed }, done: false });
    }
    const item = this.items.shift();
    if (item !== undefined) return Promise.resolve({ value: item, done: false });
    if (this.finished) {
      if (this.finished.error === undefined) return Promise.resolve({ value: undefined, done: true });
      return Promise.reject(this.finished.error);
    }
    return new Promise((resolve, reject) => {
      this.waiting = resolve;
      this.failWaiting = reject;
    });
  }

  /** An async iterator over the queue; only one may read at a time. */
  reader(): AsyncIterableIterator<ClientEvent> {
    if (this.reading) throw new Error("events() is already being read: read the events in one place");
    this.reading = true;
    const release = (): void => {
      this.reading = false;
      if (this.waiting) {
        const deliver = this.waiting;
        this.waiting = this.failWaiting = null;
        deliver({ value: undefined, done: true });
      }
    };
    const iterator: AsyncIterableIterator<ClientEvent> = {
      next: () => this.next(),
      return: () => {
        release();
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }
}
