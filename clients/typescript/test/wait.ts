// Waiting on a client's events, with a deadline (never a sleep).

import type { ClientEvent } from "../src/index.js";

/** The next event from `events` that satisfies `wanted`, within `timeoutMs`; the others are kept in `seen`. */
export async function nextEvent<E extends ClientEvent>(
  events: AsyncIterator<ClientEvent>,
  wanted: (event: ClientEvent) => event is E,
  seen: ClientEvent[] = [],
  timeoutMs = 20_000,
): Promise<E> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    const why = (): string => `no such event within ${timeoutMs} ms; saw ${JSON.stringify(seen.map((e) => e.type))}`;
    timer = setTimeout(() => reject(new Error(why())), timeoutMs);
  });
  try {
    for (;;) {
      const step = await Promise.race([events.next(), deadline]);
      if (step.done) throw new Error(`the events ended; saw ${JSON.stringify(seen.map((e) => e.type))}`);
      seen.push(step.value);
      if (wanted(step.value)) return step.value;
    }
  } finally {
    clearTimeout(timer);
  }
}

/** A payment.state event of this payment in this state. */
export function paymentState(payment_id: string, state: string) {
  return (event: ClientEvent): event is Extract<ClientEvent, { type: "payment.state" }> =>
    event.type === "payment.state" && event.data.payment_id === payment_id && event.data.state === state;
}

export function ofType<T extends ClientEvent["type"]>(type: T) {
  return (event: ClientEvent): event is Extract<ClientEvent, { type: T }> => event.type === type;
}
