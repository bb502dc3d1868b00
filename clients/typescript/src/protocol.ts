// The POS protocol's types, methods and error reasons, made by
//     python -m readerhost.daemon.api.typescript clients/typescript/src/protocol.ts
// from the OpenRPC document (docs/protocol/openrpc.json): do not edit by hand.

import { ReaderhostError, type ErrorData } from "./errors.js";

/** The protocol version this client was made for: 1.6. */
export const PROTOCOL_VERSION = { major: 1, minor: 6 } as const;

// -- shapes: the objects, the banner (`Hello`) and each event's params ----------------------

/** RFC 3339 */
export type Time = string;

export type Mode = "emulator" | "test" | "live";

export interface ErrorDetail {
  reason: "BUSY" | "READER_UNAVAILABLE" | "NOT_FOUND" | "INVALID_STATE" | "IDEMPOTENCY_CONFLICT" | "FORBIDDEN" | "STRIPE_UNAVAILABLE" | "OFFLINE_LIMIT" | "STORAGE_UNAVAILABLE" | "UNSUPPORTED" | "REFUND_EXCEEDS_CAPTURED" | "STRIPE_REFUSED" | "OFFLINE_DECLINED" | "AUTHORIZATION_EXPIRED" | "PAYMENT_INTENT_CANCELED";
  message: string;
}

export interface Decline {
  code: string;
  decline_code: string | null;
  message: string;
}

export interface Card {
  brand: string;
  last4: string;
  read_method: string;
  wallet: string | null;
  network: string | null;
}

export interface Receipt {
  brand: string | null;
  last4: string | null;
  read_method: string | null;
  wallet: string | null;
  account_type: string | null;
  application_preferred_name: string | null;
  dedicated_file_name: string | null;
  authorization_code: string | null;
  authorization_response_code: string | null;
  application_cryptogram: string | null;
  terminal_verification_results: string | null;
  transaction_status_information: string | null;
  cardholder_verification_method: string | null;
  receipt_url: string | null;
}

export interface CardSupport {
  incremental_authorization_supported: boolean;
  overcapture_supported: boolean;
  extended_authorization_requested: boolean;
}

export interface Refund {
  refund_id: string;
  payment_id: string;
  /** an amount in the currency's minor unit */
  amount: number;
  reason: string | null;
  at_reader: boolean;
  state: "pending" | "requires_action" | "succeeded" | "failed" | "canceled";
  stripe_refund: string | null;
  created_at: Time;
  updated_at: Time;
  error: ErrorDetail | null;
}

export interface Increment {
  increment_id: string;
  payment_id: string;
  /** an amount in the currency's minor unit */
  amount: number;
  state: "pending" | "succeeded" | "declined" | "failed";
  decline: Decline | null;
  error: ErrorDetail | null;
  created_at: Time;
  updated_at: Time;
}

export interface Payment {
  payment_id: string;
  order_id: string;
  /** an amount in the currency's minor unit */
  amount: number;
  currency: string;
  state: "creating" | "collecting" | "awaiting_confirmation" | "processing" | "queued_offline" | "declined" | "authorized" | "capturing" | "captured" | "canceled" | "failed";
  payment_intent: string | null;
  card: Card | null;
  decline: Decline | null;
  /** an amount in the currency's minor unit */
  captured_amount: number;
  /** an amount in the currency's minor unit */
  refunded_amount: number;
  refunds: Array<Refund>;
  offline: boolean;
  attempts: number;
  order_attempt: number;
  closed_by: "other" | null;
  receipt: Receipt | null;
  /** an amount in the currency's minor unit */
  tip: number;
  incremental: boolean;
  extended: boolean;
  card_support: CardSupport | null;
  authorized_amount: number | null;
  increments: Array<Increment>;
  capture_before: Time | null;
  created_at: Time;
  updated_at: Time;
  error: ErrorDetail | null;
}

/** how the daemon reaches a serial, BLE (1.2) or Stripe smart (1.2) reader */
export interface ReaderLink {
  transport: "serial" | "ble" | "stripe";
  device?: string;
  address?: string;
  reader?: string | null;
  connected: boolean;
  connected_since?: number | null;
  connections?: number;
  last_error: string | null;
  refused?: string | null;
}

export interface Reader {
  state: "connecting" | "ready" | "collecting" | "canceling" | "disconnected";
  id: string | null;
  model: string | null;
  serial: string | null;
  battery: number | null;
  firmware?: string | null;
  charging?: boolean | null;
  link?: ReaderLink;
}

export interface Queue {
  pending: number;
  oldest_age_s: number | null;
}

export interface ProtocolVersion {
  major: number;
  minor: number;
}

export interface Status {
  daemon: string;
  protocol: ProtocolVersion;
  boot_id: string;
  mode: Mode;
  uptime_s: number;
  reader: Reader;
  stripe: {
    state: "unknown" | "reachable" | "unreachable" | "key_refused";
    reachable: boolean;
    consecutive_failures: number;
    last_ok_at: Time | null;
  };
  queue: Queue;
  offline: {
    count: number;
    amount_by_currency: Record<string, number>;
  };
  store: {
    path: string;
    bytes: number | null;
  };
  deadline: {
    payment_id: string;
    order_id: string;
    capture_before: Time;
  } | null;
  unattended: {
    policy: "capture" | "cancel" | "report";
    lead_s: number;
  };
}

export interface ClosedOrder {
  order_id: string;
  closed_by: "other";
  closed_at: Time;
  payments: Array<Payment>;
}

export interface Finding {
  payment_intent: string;
  payment_id: string | null;
  order_id: string | null;
  /** an amount in the currency's minor unit */
  amount: number;
  currency: string;
  capture_before: number | null;
  reason: string;
}

export interface ReconcileReport {
  dry_run: boolean;
  unattended: "capture" | "cancel" | "report" | null;
  reported: Array<Finding>;
  checked: number;
  to_capture: Array<Finding>;
  to_cancel: Array<Finding>;
  done: Array<Finding>;
  skipped: Array<Finding>;
  warnings: Array<string>;
}

export interface Location {
  id: string;
  display_name: string;
  address: Record<string, string>;
}

export interface IncrementUpdate {
  increment_id: string;
  payment_id: string;
  /** an amount in the currency's minor unit */
  amount: number;
  state: "pending" | "succeeded" | "declined" | "failed";
  decline: Decline | null;
  error: ErrorDetail | null;
  created_at: Time;
  updated_at: Time;
  payment: Payment;
}

export interface RefundUpdate {
  refund_id: string;
  payment_id: string;
  /** an amount in the currency's minor unit */
  amount: number;
  reason: string | null;
  at_reader: boolean;
  state: "pending" | "requires_action" | "succeeded" | "failed" | "canceled";
  stripe_refund: string | null;
  created_at: Time;
  updated_at: Time;
  error: ErrorDetail | null;
  payment: Payment;
}

export interface Hello {
  protocol: ProtocolVersion;
  daemon: string;
  boot_id: string;
  mode: Mode;
}

export interface EventPaymentState {
  topic: "payment";
  type: "payment.state";
  seq: number;
  boot_id: string;
  at: Time;
  data: Payment;
}

export interface EventIncrementUpdated {
  topic: "payment";
  type: "increment.updated";
  seq: number;
  boot_id: string;
  at: Time;
  data: IncrementUpdate;
}

export interface EventRefundUpdated {
  topic: "payment";
  type: "refund.updated";
  seq: number;
  boot_id: string;
  at: Time;
  data: RefundUpdate;
}

export interface EventPaymentDeadline {
  topic: "payment";
  type: "payment.deadline";
  seq: number;
  boot_id: string;
  at: Time;
  data: {
    payment_id: string;
    order_id: string;
    state: "creating" | "collecting" | "awaiting_confirmation" | "processing" | "queued_offline" | "declined" | "authorized" | "capturing" | "captured" | "canceled" | "failed";
    payment_intent: string | null;
    capture_before: Time;
    lead_s: number;
    remaining_s: number;
  };
}

export interface EventPaymentUnattended {
  topic: "payment";
  type: "payment.unattended";
  seq: number;
  boot_id: string;
  at: Time;
  data: {
    payment_id: string;
    order_id: string;
    payment_intent: string | null;
    policy: "capture" | "cancel" | "report";
    trigger: "deadline" | "daily";
    /** an amount in the currency's minor unit */
    amount: number;
    currency: string;
    capture_before: Time | null;
    state: "creating" | "collecting" | "awaiting_confirmation" | "processing" | "queued_offline" | "declined" | "authorized" | "capturing" | "captured" | "canceled" | "failed";
  };
}

export interface EventReaderInputOptions {
  topic: "reader";
  type: "reader.input_options";
  seq: number;
  boot_id: string;
  at: Time;
  data: {
    payment_id: string | null;
    options: Array<string>;
  };
}

export interface EventReaderDisplayMessage {
  topic: "reader";
  type: "reader.display_message";
  seq: number;
  boot_id: string;
  at: Time;
  data: {
    payment_id: string | null;
    message: string;
    text: string;
  };
}

export interface EventReaderCard {
  topic: "reader";
  type: "reader.card";
  seq: number;
  boot_id: string;
  at: Time;
  data: {
    payment_id: string | null;
    event: "card_inserted" | "card_removed";
  };
}

export interface EventReaderConnected {
  topic: "reader";
  type: "reader.connected";
  seq: number;
  boot_id: string;
  at: Time;
  data: {
    id: string | null;
    model: string | null;
    reason: string;
  };
}

export interface EventReaderDisconnected {
  topic: "reader";
  type: "reader.disconnected";
  seq: number;
  boot_id: string;
  at: Time;
  data: {
    id: string | null;
    model: string | null;
    reason: string;
  };
}

export interface EventReaderRefused {
  topic: "reader";
  type: "reader.refused";
  seq: number;
  boot_id: string;
  at: Time;
  data: {
    id: string | null;
    model: string | null;
    reason: string;
  };
}

export interface EventQueueChanged {
  topic: "queue";
  type: "queue.changed";
  seq: number;
  boot_id: string;
  at: Time;
  data: Queue;
}

export interface EventSystemStripe {
  topic: "system";
  type: "system.stripe";
  seq: number;
  boot_id: string;
  at: Time;
  data: {
    state: "unknown" | "reachable" | "unreachable" | "key_refused";
    reachable: boolean;
    consecutive_failures: number;
  };
}

export interface EventDisplayChanged {
  topic: "display";
  type: "display.changed";
  seq: number;
  boot_id: string;
  at: Time;
  data: {
    lines: Array<string>;
  };
}

export interface Error {
  code: number;
  message: string;
  data?: {
    reason: "PARSE_ERROR" | "INVALID_REQUEST" | "FRAME_TOO_LARGE" | "METHOD_NOT_FOUND" | "INVALID_PARAMS" | "BUSY" | "READER_UNAVAILABLE" | "NOT_FOUND" | "INVALID_STATE" | "IDEMPOTENCY_CONFLICT" | "FORBIDDEN" | "STRIPE_UNAVAILABLE" | "OFFLINE_LIMIT" | "STORAGE_UNAVAILABLE" | "UNSUPPORTED" | "REFUND_EXCEEDS_CAPTURED";
    retryable?: boolean;
    field?: string;
  };
}

/** Every event the daemon sends, by its `type`. */
export type ReaderhostEvent =
  | EventPaymentState
  | EventIncrementUpdated
  | EventRefundUpdated
  | EventPaymentDeadline
  | EventPaymentUnattended
  | EventReaderInputOptions
  | EventReaderDisplayMessage
  | EventReaderCard
  | EventReaderConnected
  | EventReaderDisconnected
  | EventReaderRefused
  | EventQueueChanged
  | EventSystemStripe
  | EventDisplayChanged;

/** The event types, as the daemon names them. */
export const EVENT_TYPES = [
  "payment.state",
  "increment.updated",
  "refund.updated",
  "payment.deadline",
  "payment.unattended",
  "reader.input_options",
  "reader.display_message",
  "reader.card",
  "reader.connected",
  "reader.disconnected",
  "reader.refused",
  "queue.changed",
  "system.stripe",
  "display.changed",
] as const;

/** The topics of `events.subscribe`. */
export const TOPICS = ["payment", "reader", "display", "queue", "system"] as const;
export type Topic = (typeof TOPICS)[number];

// -- methods: parameters and results -------------------------------------------------------

/** `status.get`'s parameters. */
export type StatusGetParams = Record<string, never>;

/** `status.get`'s result. */
export type StatusGetResult = Status;

/** `session.hello`'s parameters. */
export type SessionHelloParams = Record<string, never>;

/** `session.hello`'s result. */
export interface SessionHelloResult {
  protocol: ProtocolVersion;
  daemon: string;
  boot_id: string;
  mode: Mode;
}

/** `payment.start`'s parameters. */
export interface PaymentStartParams {
  /** the POS's order: 1-200 of A-Z a-z 0-9 . _ : - */
  order_id: string;
  /** in the currency's minor unit */
  amount: number;
  /** lowercase ISO 4217, e.g. usd */
  currency: string;
  /** shown in Stripe, at most 1000 characters */
  description?: string;
  /** string keys to string values (order_id, terminal_id, payment_id reserved) */
  metadata?: Record<string, string>;
  /** manual (the default) or automatic */
  capture?: "manual" | "automatic";
  /** wait for payment.confirm once the card is read (default false) */
  confirm?: boolean;
  /** require_online (the default) or prefer_online */
  offline?: "require_online" | "prefer_online";
  /** take the payment on this existing PaymentIntent */
  payment_intent_client_secret?: string;
  /** {amount_eligible}: the reader offers a tip on this amount (1.3) */
  tipping?: {
    amount_eligible: number;
  };
  /** ask Stripe for incremental authorisation support (1.4; default false) */
  incremental?: boolean;
  /** ask Stripe for an extended authorisation window (1.4; default false) */
  extended?: boolean;
}

/** `payment.start`'s result. */
export type PaymentStartResult = Payment;

/** `payment.get`'s parameters. */
export interface PaymentGetParams {
  /** the payment */
  payment_id?: string;
  /** its order (the latest attempt) */
  order_id?: string;
}

/** `payment.get`'s result. */
export type PaymentGetResult = Payment;

/** `payment.list`'s parameters. */
export interface PaymentListParams {
  /** only payments in these states */
  states?: Array<"creating" | "collecting" | "awaiting_confirmation" | "processing" | "queued_offline" | "declined" | "authorized" | "capturing" | "captured" | "canceled" | "failed">;
  /** only payments created at or after this time (RFC 3339, with a time zone) */
  since?: string;
  /** at most this many, 1 to 500 (default 100) */
  limit?: number;
  /** only payments to capture before this time (RFC 3339, with a time zone; 1.3) */
  capture_before_lt?: string;
  /** only this order's payments: its attempts (1.4) */
  order_id?: string;
}

/** `payment.list`'s result. */
export interface PaymentListResult {
  payments: Array<Payment>;
}

/** `payment.confirm`'s parameters. */
export interface PaymentConfirmParams {
  /** the payment, as payment.start answered it */
  payment_id: string;
}

/** `payment.confirm`'s result. */
export type PaymentConfirmResult = Payment;

/** `payment.collect_again`'s parameters. */
export interface PaymentCollectAgainParams {
  /** the payment, as payment.start answered it */
  payment_id: string;
}

/** `payment.collect_again`'s result. */
export type PaymentCollectAgainResult = Payment;

/** `payment.capture`'s parameters. */
export interface PaymentCaptureParams {
  /** the payment, as payment.start answered it */
  payment_id: string;
  /** at most the authorised amount (default: all of it) */
  amount?: number;
}

/** `payment.capture`'s result. */
export type PaymentCaptureResult = Payment;

/** `payment.cancel`'s parameters. */
export interface PaymentCancelParams {
  /** the payment, as payment.start answered it */
  payment_id: string;
  /** requested_by_customer (the default), abandoned, duplicate or fraudulent */
  reason?: "requested_by_customer" | "abandoned" | "duplicate" | "fraudulent";
}

/** `payment.cancel`'s result. */
export type PaymentCancelResult = Payment;

/** `payment.close`'s parameters. */
export interface PaymentCloseParams {
  /** the POS's order */
  order_id: string;
  /** how it was paid: other */
  paid_by: "other";
}

/** `payment.close`'s result. */
export type PaymentCloseResult = ClosedOrder;

/** `payment.refund`'s parameters. */
export interface PaymentRefundParams {
  /** the payment, as payment.start answered it */
  payment_id: string;
  /** the POS's id of this refund: 1-200 of A-Z a-z 0-9 . _ : - */
  refund_id: string;
  /** at most what is left to refund (default: all of it) */
  amount?: number;
  /** duplicate, fraudulent or requested_by_customer */
  reason?: "duplicate" | "fraudulent" | "requested_by_customer";
  /** with the card presented at the reader (always for Interac; default false) */
  at_reader?: boolean;
}

/** `payment.refund`'s result. */
export type PaymentRefundResult = Refund;

/** `payment.increment`'s parameters. */
export interface PaymentIncrementParams {
  /** the payment, as payment.start answered it */
  payment_id: string;
  /** the new total to hold, above what is held now */
  amount: number;
  /** the POS's id of this increment: 1-200 of A-Z a-z 0-9 . _ : - */
  increment_id: string;
}

/** `payment.increment`'s result. */
export type PaymentIncrementResult = Payment;

/** `reconcile.run`'s parameters. */
export interface ReconcileRunParams {
  /** the orders the POS completed */
  completed_order_ids?: Array<string>;
  /** from this time (RFC 3339, with a time zone) */
  since?: string;
  /** to this time (RFC 3339, with a time zone) */
  until?: string;
  /** only report what would be done (default true) */
  dry_run?: boolean;
  /** what its POS left authorised follows [reconcile] unattended (1.4) */
  unattended?: boolean;
}

/** `reconcile.run`'s result. */
export type ReconcileRunResult = ReconcileReport;

/** `events.subscribe`'s parameters. */
export interface EventsSubscribeParams {
  /** a non-empty subset of payment, reader, display, queue, system (default: all) */
  topics?: Array<"payment" | "reader" | "display" | "queue" | "system">;
}

/** `events.subscribe`'s result. */
export interface EventsSubscribeResult {
  snapshot: {
    payments: Array<Payment>;
    reader: Reader;
    queue: Queue;
  };
}

/** `display.show`'s parameters. */
export interface DisplayShowParams {
  /** at most 4 strings of at most 64 */
  lines: Array<string>;
  /** seconds until it is cleared (default: until replaced) */
  ttl_s?: number;
}

/** `display.show`'s result. */
export type DisplayShowResult = Record<string, never>;

/** `reader.present`'s parameters. */
export interface ReaderPresentParams {
  /** a test card name, e.g. visa */
  card: string;
}

/** `reader.present`'s result. */
export type ReaderPresentResult = Record<string, never>;

/** `reader.display_cart`'s parameters. */
export interface ReaderDisplayCartParams {
  /** lowercase ISO 4217, e.g. usd */
  currency: string;
  /** 1 to 100 of {description, amount, quantity (default 1)} */
  line_items: Array<{
    description: string;
    amount: number;
    quantity?: number;
  }>;
  /** in the currency's minor unit */
  tax?: number;
  /** in the currency's minor unit */
  total: number;
}

/** `reader.display_cart`'s result. */
export type ReaderDisplayCartResult = Record<string, never>;

/** `reader.register`'s parameters. */
export interface ReaderRegisterParams {
  /** the code the reader shows (simulated-wpe: a simulated one) */
  registration_code: string;
  /** the Terminal location to put it in, tml_... */
  location?: string;
  /** its name in the Dashboard (default readerhost) */
  label?: string;
}

/** `reader.register`'s result. */
export interface ReaderRegisterResult {
  reader: Reader;
}

/** `reader.locations`'s parameters. */
export type ReaderLocationsParams = Record<string, never>;

/** `reader.locations`'s result. */
export interface ReaderLocationsResult {
  locations: Array<Location>;
}

/** `reader.pair`'s parameters. */
export type ReaderPairParams = Record<string, never>;

/** `reader.pair`'s result. */
export interface ReaderPairResult {
  address: string;
  already_bonded: boolean;
  reader: Reader;
}

/** Each method's parameters and result, by the method's name. */
export interface Methods {
  "status.get": { params: StatusGetParams; result: StatusGetResult };
  "session.hello": { params: SessionHelloParams; result: SessionHelloResult };
  "payment.start": { params: PaymentStartParams; result: PaymentStartResult };
  "payment.get": { params: PaymentGetParams; result: PaymentGetResult };
  "payment.list": { params: PaymentListParams; result: PaymentListResult };
  "payment.confirm": { params: PaymentConfirmParams; result: PaymentConfirmResult };
  "payment.collect_again": { params: PaymentCollectAgainParams; result: PaymentCollectAgainResult };
  "payment.capture": { params: PaymentCaptureParams; result: PaymentCaptureResult };
  "payment.cancel": { params: PaymentCancelParams; result: PaymentCancelResult };
  "payment.close": { params: PaymentCloseParams; result: PaymentCloseResult };
  "payment.refund": { params: PaymentRefundParams; result: PaymentRefundResult };
  "payment.increment": { params: PaymentIncrementParams; result: PaymentIncrementResult };
  "reconcile.run": { params: ReconcileRunParams; result: ReconcileRunResult };
  "events.subscribe": { params: EventsSubscribeParams; result: EventsSubscribeResult };
  "display.show": { params: DisplayShowParams; result: DisplayShowResult };
  "reader.present": { params: ReaderPresentParams; result: ReaderPresentResult };
  "reader.display_cart": { params: ReaderDisplayCartParams; result: ReaderDisplayCartResult };
  "reader.register": { params: ReaderRegisterParams; result: ReaderRegisterResult };
  "reader.locations": { params: ReaderLocationsParams; result: ReaderLocationsResult };
  "reader.pair": { params: ReaderPairParams; result: ReaderPairResult };
}
export type MethodName = keyof Methods;
export type ParamsOf<M extends MethodName> = Methods[M]["params"];
export type ResultOf<M extends MethodName> = Methods[M]["result"];
/** The methods the daemon serves, in the order of its method table. */
export const METHOD_NAMES = [
  "status.get",
  "session.hello",
  "payment.start",
  "payment.get",
  "payment.list",
  "payment.confirm",
  "payment.collect_again",
  "payment.capture",
  "payment.cancel",
  "payment.close",
  "payment.refund",
  "payment.increment",
  "reconcile.run",
  "events.subscribe",
  "display.show",
  "reader.present",
  "reader.display_cart",
  "reader.register",
  "reader.locations",
  "reader.pair",
] as const;

/** Options of one call. */
export interface CallOptions {
  /** Give up waiting after this many milliseconds (RequestTimeoutError); default: the client's
   * callTimeoutMs. */
  timeoutMs?: number;
}

/** One method per POS method: the RPC method's name without its dot, in camelCase, taking its
 * parameters by their protocol names. */
export abstract class PosMethods {
  /** Send `method` with `params` and resolve with its result, or reject with its error. */
  abstract call<M extends MethodName>(
    method: M, params?: ParamsOf<M>, options?: CallOptions
  ): Promise<ResultOf<M>>;

  /** `status.get`: The daemon, its reader, Stripe, the queue and the offline payments. */
  statusGet(params?: StatusGetParams, options?: CallOptions): Promise<StatusGetResult> {
    return this.call("status.get", params, options);
  }

  /** `session.hello`: The banner (protocol, daemon, boot_id, mode), as an answer (1.5). */
  sessionHello(params?: SessionHelloParams, options?: CallOptions): Promise<SessionHelloResult> {
    return this.call("session.hello", params, options);
  }

  /** `payment.start`: The order's live or successful payment, else a new one (its next attempt); progress comes as events. */
  paymentStart(params: PaymentStartParams, options?: CallOptions): Promise<PaymentStartResult> {
    return this.call("payment.start", params, options);
  }

  /** `payment.get`: One payment, by exactly one of payment_id and order_id. */
  paymentGet(params?: PaymentGetParams, options?: CallOptions): Promise<PaymentGetResult> {
    return this.call("payment.get", params, options);
  }

  /** `payment.list`: The payments, newest first. */
  paymentList(params?: PaymentListParams, options?: CallOptions): Promise<PaymentListResult> {
    return this.call("payment.list", params, options);
  }

  /** `payment.confirm`: Go ahead with the card read (awaiting_confirmation). */
  paymentConfirm(params: PaymentConfirmParams, options?: CallOptions): Promise<PaymentConfirmResult> {
    return this.call("payment.confirm", params, options);
  }

  /** `payment.collect_again`: Another card on the same PaymentIntent, after a decline or a reader error. */
  paymentCollectAgain(params: PaymentCollectAgainParams, options?: CallOptions): Promise<PaymentCollectAgainResult> {
    return this.call("payment.collect_again", params, options);
  }

  /** `payment.capture`: Capture an authorised payment, once durably queued. */
  paymentCapture(params: PaymentCaptureParams, options?: CallOptions): Promise<PaymentCaptureResult> {
    return this.call("payment.capture", params, options);
  }

  /** `payment.cancel`: Cancel a payment that is not captured; stops a collection. */
  paymentCancel(params: PaymentCancelParams, options?: CallOptions): Promise<PaymentCancelResult> {
    return this.call("payment.cancel", params, options);
  }

  /** `payment.close`: Record an order as paid outside readerhost (cash, a voucher): no card payment follows (1.4). */
  paymentClose(params: PaymentCloseParams, options?: CallOptions): Promise<PaymentCloseResult> {
    return this.call("payment.close", params, options);
  }

  /** `payment.refund`: Give back part or all of a captured payment, once (per refund_id); progress comes as refund.updated events. */
  paymentRefund(params: PaymentRefundParams, options?: CallOptions): Promise<PaymentRefundResult> {
    return this.call("payment.refund", params, options);
  }

  /** `payment.increment`: Raise an authorised payment's hold to a new total, once (per increment_id); the answer comes as increment.updated events (1.4). */
  paymentIncrement(params: PaymentIncrementParams, options?: CallOptions): Promise<PaymentIncrementResult> {
    return this.call("payment.increment", params, options);
  }

  /** `reconcile.run`: The daemon's payments against Stripe's and the orders the POS completed. */
  reconcileRun(params?: ReconcileRunParams, options?: CallOptions): Promise<ReconcileRunResult> {
    return this.call("reconcile.run", params, options);
  }

  /** `events.subscribe`: Events on these topics from now on; answers with a snapshot of the active payments, reader and queue. */
  eventsSubscribe(params?: EventsSubscribeParams, options?: CallOptions): Promise<EventsSubscribeResult> {
    return this.call("events.subscribe", params, options);
  }

  /** `display.show`: Idle text on the kiosk's screen. */
  displayShow(params: DisplayShowParams, options?: CallOptions): Promise<DisplayShowResult> {
    return this.call("display.show", params, options);
  }

  /** `reader.present`: Present a test card to the simulated reader. */
  readerPresent(params: ReaderPresentParams, options?: CallOptions): Promise<ReaderPresentResult> {
    return this.call("reader.present", params, options);
  }

  /** `reader.display_cart`: The items being rung up, on a Stripe smart reader's screen, between payments. */
  readerDisplayCart(params: ReaderDisplayCartParams, options?: CallOptions): Promise<ReaderDisplayCartResult> {
    return this.call("reader.display_cart", params, options);
  }

  /** `reader.register`: Register a Stripe smart reader with the code it shows and use it from now on (root and the daemon's user). */
  readerRegister(params: ReaderRegisterParams, options?: CallOptions): Promise<ReaderRegisterResult> {
    return this.call("reader.register", params, options);
  }

  /** `reader.locations`: The Stripe account's Terminal locations a smart reader can be registered in. */
  readerLocations(params?: ReaderLocationsParams, options?: CallOptions): Promise<ReaderLocationsResult> {
    return this.call("reader.locations", params, options);
  }

  /** `reader.pair`: Bond with the Bluetooth reader (LE Secure Connections) so the daemon takes it (root, the daemon's user). */
  readerPair(params?: ReaderPairParams, options?: CallOptions): Promise<ReaderPairResult> {
    return this.call("reader.pair", params, options);
  }
}

// -- errors: one class per reason -----------------------------------------------------------

/** Every `data.reason` the daemon answers with, and its JSON-RPC error code. */
export const ERROR_CODES = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  FRAME_TOO_LARGE: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  BUSY: 1001,
  READER_UNAVAILABLE: 1002,
  NOT_FOUND: 1003,
  INVALID_STATE: 1004,
  IDEMPOTENCY_CONFLICT: 1005,
  FORBIDDEN: 1006,
  STRIPE_UNAVAILABLE: 1007,
  OFFLINE_LIMIT: 1008,
  STORAGE_UNAVAILABLE: 1009,
  UNSUPPORTED: 1010,
  REFUND_EXCEEDS_CAPTURED: 1011,
} as const;
export type ErrorReason = keyof typeof ERROR_CODES;

/** The daemon refused the request: `PARSE_ERROR` (code -32700). */
export class ParseErrorError extends ReaderhostError {
  override readonly reason = "PARSE_ERROR";
}

/** The daemon refused the request: `INVALID_REQUEST` (code -32600). */
export class InvalidRequestError extends ReaderhostError {
  override readonly reason = "INVALID_REQUEST";
}

/** The daemon refused the request: `FRAME_TOO_LARGE` (code -32600). */
export class FrameTooLargeError extends ReaderhostError {
  override readonly reason = "FRAME_TOO_LARGE";
}

/** The daemon refused the request: `METHOD_NOT_FOUND` (code -32601). */
export class MethodNotFoundError extends ReaderhostError {
  override readonly reason = "METHOD_NOT_FOUND";
}

/** The daemon refused the request: `INVALID_PARAMS` (code -32602). */
export class InvalidParamsError extends ReaderhostError {
  override readonly reason = "INVALID_PARAMS";
}

/** The daemon refused the request: `BUSY` (code 1001). */
export class BusyError extends ReaderhostError {
  override readonly reason = "BUSY";
}

/** The daemon refused the request: `READER_UNAVAILABLE` (code 1002). */
export class ReaderUnavailableError extends ReaderhostError {
  override readonly reason = "READER_UNAVAILABLE";
}

/** The daemon refused the request: `NOT_FOUND` (code 1003). */
export class NotFoundError extends ReaderhostError {
  override readonly reason = "NOT_FOUND";
}

/** The daemon refused the request: `INVALID_STATE` (code 1004). */
export class InvalidStateError extends ReaderhostError {
  override readonly reason = "INVALID_STATE";
}

/** The daemon refused the request: `IDEMPOTENCY_CONFLICT` (code 1005). */
export class IdempotencyConflictError extends ReaderhostError {
  override readonly reason = "IDEMPOTENCY_CONFLICT";
}

/** The daemon refused the request: `FORBIDDEN` (code 1006). */
export class ForbiddenError extends ReaderhostError {
  override readonly reason = "FORBIDDEN";
}

/** The daemon refused the request: `STRIPE_UNAVAILABLE` (code 1007). */
export class StripeUnavailableError extends ReaderhostError {
  override readonly reason = "STRIPE_UNAVAILABLE";
}

/** The daemon refused the request: `OFFLINE_LIMIT` (code 1008). */
export class OfflineLimitError extends ReaderhostError {
  override readonly reason = "OFFLINE_LIMIT";
}

/** The daemon refused the request: `STORAGE_UNAVAILABLE` (code 1009). */
export class StorageUnavailableError extends ReaderhostError {
  override readonly reason = "STORAGE_UNAVAILABLE";
}

/** The daemon refused the request: `UNSUPPORTED` (code 1010). */
export class UnsupportedError extends ReaderhostError {
  override readonly reason = "UNSUPPORTED";
}

/** The daemon refused the request: `REFUND_EXCEEDS_CAPTURED` (code 1011). */
export class RefundExceedsCapturedError extends ReaderhostError {
  override readonly reason = "REFUND_EXCEEDS_CAPTURED";
}

/** The error class of each reason. */
export const ERROR_CLASSES: {
  [R in ErrorReason]: new (code: number, message: string, data: ErrorData) => ReaderhostError;
} = {
  PARSE_ERROR: ParseErrorError,
  INVALID_REQUEST: InvalidRequestError,
  FRAME_TOO_LARGE: FrameTooLargeError,
  METHOD_NOT_FOUND: MethodNotFoundError,
  INVALID_PARAMS: InvalidParamsError,
  BUSY: BusyError,
  READER_UNAVAILABLE: ReaderUnavailableError,
  NOT_FOUND: NotFoundError,
  INVALID_STATE: InvalidStateError,
  IDEMPOTENCY_CONFLICT: IdempotencyConflictError,
  FORBIDDEN: ForbiddenError,
  STRIPE_UNAVAILABLE: StripeUnavailableError,
  OFFLINE_LIMIT: OfflineLimitError,
  STORAGE_UNAVAILABLE: StorageUnavailableError,
  UNSUPPORTED: UnsupportedError,
  REFUND_EXCEEDS_CAPTURED: RefundExceedsCapturedError,
};
