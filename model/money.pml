/*
 * The money core of readerhost, as a Promela model for SPIN (docs/model.md says what each step
 * is in the code, the bounds, and how to run it).
 *
 * One order, paid in at most NP attempts (payments). Per payment the outbox has one slot per kind
 * of operation, in the order the code queues them (an operation's id grows with time):
 * create < confirm < increment < capture < cancel < refund. Each slot keeps what the store keeps:
 * status, key generation, "attempted" (the attempt committed before the send), needs_truth and
 * "old" (the key's first send is more than 23 hours ago: Stripe may have forgotten it).
 *
 * Everything happens in one loop of guarded atomic steps: the POS's requests, the service's
 * commits, the worker, Stripe, the reader, crashes and faults. A crash forgets everything not in
 * the store (the worker's request in flight, the tell not yet made, the reader tasks) and runs
 * the daemon's recovery; what is on the wire and at Stripe, and the reader device, go on.
 *
 * Mutants (one known mistake each), selected with -D:
 *   M_SEND_BEFORE_KEY      the key is chosen when sending and stored only with the answer
 *   M_NEW_KEY_NO_TRUTH     a key that cannot be trusted is replaced without learning the truth
 *   M_TELL_BEFORE_COMMIT   the POS is told a new state before it is committed
 *   M_RETRY_CREATE_NEW_PI  a create that timed out is retried as a new PaymentIntent (a new key)
 *   M_SECOND_LIVE_ATTEMPT  payment.start makes a new attempt while the order's latest is live
 *   M_REFUND_AUTHORISED    a refund is checked against the authorised amount, not the captured one
 *   M_NEW_KEY_AGE_DOUBT    a key doubted only for its age is replaced after the truth (the code
 *                          before b5a1c78: found by this model, docs/model.md, Findings)
 */

/* ---- bounds (docs/model.md) ---- */
#define NP 2           /* attempts of the one order */
#define NK 6           /* kinds of operation */
#define NG 4           /* key generations per operation slot */
#define NPI 3          /* PaymentIntents Stripe can hold: NP, and one to show a duplicate */
#ifndef CRASHES
#define CRASHES 1      /* SIGKILLs, each at any step */
#endif
#ifndef LOSSES
#define LOSSES 1       /* answers lost after Stripe applied the request */
#endif
#ifndef SLOWS
#define SLOWS 1        /* requests still executing at Stripe when the worker times out (then 409) */
#endif
#ifndef ERRORS
#define ERRORS 1       /* 500s saved under the key (and replayed) */
#endif
#ifndef DAYS
#define DAYS 1         /* a day passes: Stripe forgets its keys, the store's keys count as old */
#endif
#ifndef DECLINES
#define DECLINES 1     /* declines by the issuer (authorisation or increment) */
#endif
#ifndef CLOCK_BACKS
#define CLOCK_BACKS 0  /* the wall clock steps back (NTP): every sent key "may be gone" (docs/model.md, Findings) */
#endif
#ifndef GIVE_UPS
#define GIVE_UPS 1     /* the customer's wait for Stripe runs out */
#endif

#define AMOUNT 2       /* the payment's amount */
#define RAISED 3       /* the increment's new total */
#define NONE 255

/* payment states (daemon/payments/model.py State) */
#define P_NONE 0
#define CREATING 1
#define COLLECTING 2
#define PROCESSING 3
#define DECLINED 4
#define AUTHORIZED 5
#define CAPTURING 6
#define CAPTURED 7
#define CANCELED 8
#define FAILED 9
#define over(s) ((s) == CANCELED || (s) == FAILED)
#define successful(s) ((s) == AUTHORIZED || (s) == CAPTURING || (s) == CAPTURED)

/* operation kinds (daemon/payments/operations.py Kind) and slots */
#define K_CREATE 0
#define K_CONFIRM 1
#define K_INCREMENT 2
#define K_CAPTURE 3
#define K_CANCEL 4
#define K_REFUND 5
#define OP(p, k) ((p) * NK + (k))
#define KEY(o, g) ((o) * NG + (g))

/* operation status (OpStatus) */
#define O_NONE 0
#define O_PENDING 1
#define O_DONE 2
#define O_FAILED 3
#define O_DROPPED 4

/* PaymentIntent status at Stripe */
#define PI_NONE 0
#define PI_OPEN 1      /* requires_payment_method / requires_confirmation */
#define PI_HELD 2      /* requires_capture */
#define PI_CAPTURED 3  /* succeeded */
#define PI_CANCELED 4

/* answers (daemon/payments/outcomes.py) */
#define A_NONE 0
#define A_OK 1         /* Succeeded (a create's carries the PaymentIntent), Refunded */
#define A_DECLINED 2
#define A_WRONG 3      /* WrongState: the PaymentIntent's state rules the request out */
#define A_409 4        /* the key's first request is still executing: Unknown, retried */
#define A_500 5        /* a server error (replayed: the same key can never succeed) */

/* refund and increment states */
#define R_NONE 0
#define R_PENDING 1
#define R_SUCCEEDED 2
#define R_FAILED 3

/* ---------------- the store (survives crashes) ---------------- */
byte st[NP];            /* payment state */
byte pi[NP];            /* its PaymentIntent (index + 1), 0 while unknown */
byte hold[NP];          /* authorised_amount */
byte capture_amount[NP];
byte captured_amount[NP];
byte attempts_made;     /* payments of the order */
byte ost[NP * NK];      /* outbox: status */
byte ogen[NP * NK];     /* key generation */
bit osent[NP * NK];     /* an attempt is committed: it may have reached Stripe */
bit otruth[NP * NK];    /* needs_truth */
bit oold[NP * NK];      /* the key's first send is older than 23 hours */
bit oabandoned[NP * NK];
bit by_reader[NP];      /* the confirm is the reader's own (read back, never sent) */
byte refund_state; byte refund_amount;
byte increment_state;

/* ---------------- the daemon's memory (lost at a crash) ---------------- */
byte wop = NONE;        /* the operation the worker is carrying */
byte wgen;              /* the key it sent it under */
bit wwaiting;           /* sent, waiting for the answer */
byte tell_p = NONE;     /* committed, not yet told: payment and state */
byte tell_s;
byte tell_refund;        /* committed, not yet told: the refund's state (R_NONE: nothing) */
bit processing[NP];     /* a reader's confirm is running (service._processing) */
byte asks[NP];          /* asks to the reader to confirm, this run */
byte boots;

/* ---------------- the wire and Stripe (survive the daemon's crashes) ---------------- */
byte wire_op = NONE; byte wire_gen;        /* a request on its way */
byte answer_op = NONE; byte answer_gen; byte answer; byte answer_pi; bit answer_replayed;
byte slow_op = NONE; byte slow_gen;        /* a request still executing at Stripe */
/* each key as Stripe keeps it: 0 unknown (or forgotten), 1 its first request is executing,
   else its saved answer: 8 + answer + 16 * (the PaymentIntent a create made) */
byte key[NP * NK * NG];
#define SAVED(x) (key[x] >= 8)
#define SAVED_ANSWER(x) (key[x] % 8)
#define SAVED_PI(x) (key[x] / 16)
byte npi;
byte pist[NPI]; byte pipay[NPI]; byte piamount[NPI]; byte pireceived[NPI]; byte pirefunded[NPI];
bit pideclined[NPI];
byte refunds_made;
bit reader_job[NP];     /* the reader device confirms on its own (it outlives the daemon) */

/* ---------------- what the POS was told, and fault budgets ---------------- */
byte asked_capture[NP]; /* the capture the POS was told is queued */
bit canceled_by_pos[NP];
byte crashes, losses, slows, errors, days, declines, give_ups, clock_backs;

#define IDLE (tell_p == NONE && tell_refund == R_NONE)   /* nothing committed waits to be told */
#define MAY_START (attempts_made == 0 -> 1 : over(st[attempts_made - 1]))
#ifdef M_SECOND_LIVE_ATTEMPT
#undef MAY_START
#define MAY_START 1
#endif
#define CAN_CANCEL(p) (st[p] == CREATING || st[p] == COLLECTING || st[p] == DECLINED || st[p] == AUTHORIZED)
#define CAN_CAPTURE(p) (st[p] == AUTHORIZED && increment_state != R_PENDING)
#define CAN_INCREMENT(p) (st[p] == AUTHORIZED && increment_state == R_NONE && hold[p] < RAISED)
#define CAN_REFUND(p) (st[p] == CAPTURED && refund_state == R_NONE)
#define CAN_READ_CARD(p) (st[p] == COLLECTING && pi[p] != 0)
#define CAN_GIVE_UP(p) (st[p] == CREATING || st[p] == PROCESSING)
/* the oldest pending operation of payment p (NONE: none), and whether the worker may take it now
   (a reader's confirm is read only once the reader's own confirm has ended) */
#define FIRST(p) (ost[OP(p, 0)] == O_PENDING -> OP(p, 0) : (ost[OP(p, 1)] == O_PENDING -> OP(p, 1) : \
    (ost[OP(p, 2)] == O_PENDING -> OP(p, 2) : (ost[OP(p, 3)] == O_PENDING -> OP(p, 3) : \
    (ost[OP(p, 4)] == O_PENDING -> OP(p, 4) : (ost[OP(p, 5)] == O_PENDING -> OP(p, 5) : NONE))))))
#define READY(p) (FIRST(p) != NONE && !(FIRST(p) == OP(p, K_CONFIRM) && processing[p]))
/* the properties, by name: a violation prints its name (in the trail's replay too), then fails */
mtype = { one_payment_intent_per_attempt, at_most_one_successful_attempt, one_capture_per_order,
          nothing_captured_unasked, capture_for_the_amount_asked, asked_capture_happened,
          one_refund_per_refund_id, never_more_refunded_than_captured, told_state_is_committed,
          told_refund_is_committed, one_payment_intent_holds_money, refund_settled,
          increment_settled, outbox_drained };
#define PROPERTY(name, cond) if :: !(cond) -> printf("PROPERTY VIOLATED: %e\n", name); assert(cond) :: else -> skip fi

/* scratch of one step, cleared at its end (CLEAR) so that it never tells two states apart */
byte p, k, o, i, g, q, ps, result, verdict;
bit may_exist;
#define CLEAR p = 0; k = 0; o = 0; i = 0; g = 0; q = 0; ps = 0; result = 0; verdict = 0; may_exist = 0

/* ---------------- helpers ---------------- */
inline commit_tell(p, s) {
#ifdef M_TELL_BEFORE_COMMIT
    skip
#else
    tell_p = p; tell_s = s
#endif
}

inline add_op(o, g) {
    assert(ost[o] == O_NONE || ost[o] == O_DONE || ost[o] == O_FAILED);
    ost[o] = O_PENDING; ogen[o] = g; osent[o] = 0; otruth[o] = 0; oold[o] = 0; oabandoned[o] = 0
}

/* the invariant of the store: never two successful attempts of the order */
inline check_store() {
    PROPERTY(at_most_one_successful_attempt, !(successful(st[0]) && successful(st[1])))
}

/* service._cancel: canceled here at once; unsent operations dropped; a cancel queued when a
   PaymentIntent may exist (known, or an operation was sent) */
inline cancel_payment(p) {
    may_exist = (pi[p] != 0);
    k = 0;
    do
    :: k < NK ->
        if
        :: ost[OP(p, k)] == O_PENDING && osent[OP(p, k)] -> may_exist = 1
        :: ost[OP(p, k)] == O_PENDING && !osent[OP(p, k)] ->
            ost[OP(p, k)] = O_DROPPED;
            if :: k == K_INCREMENT -> increment_state = R_FAILED :: else -> skip fi
        :: else -> skip
        fi;
        k++
    :: else -> break
    od;
    if :: may_exist -> add_op(OP(p, K_CANCEL), 0) :: else -> skip fi;
    st[p] = CANCELED;
    processing[p] = 0
}

/* service._fail: failed; what was queued behind (but a cancel) dropped */
inline fail_payment(p, o) {
    if
    :: over(st[p]) -> ost[o] = O_FAILED
    :: else ->
        ost[o] = O_FAILED;
        k = 0;
        do
        :: k < NK ->
            if
            :: ost[OP(p, k)] == O_PENDING && k != K_CANCEL ->
                ost[OP(p, k)] = O_DROPPED;
                if :: k == K_INCREMENT -> increment_state = R_FAILED :: else -> skip fi
            :: else -> skip
            fi;
            k++
        :: else -> break
        od;
        st[p] = FAILED;
        commit_tell(p, FAILED)
    fi
}

/* service._authorised */
inline authorised(p, o, i) {
    st[p] = AUTHORIZED; hold[p] = piamount[i]; ost[o] = O_DONE;
    commit_tell(p, AUTHORIZED)
}

/* the worker's reschedule after no answer */
inline no_answer(o, truth) {
    if :: ost[o] == O_PENDING && truth -> otruth[o] = 1 :: else -> skip fi;
    wop = NONE; wwaiting = 0; wgen = 0
}

/* service.settle (and refunds.settle, increments.settle): a definite answer for operation o */
inline settle(o, a, i) {
    p = o / NK;
    k = o % NK;
    if :: i == NONE -> ps = PI_NONE :: else -> ps = pist[i] fi;
    if
    :: ost[o] != O_PENDING -> skip        /* dropped or settled meanwhile */
    :: else -> if
    :: k == K_CREATE ->
        if
        :: a == A_OK ->
            pi[p] = i + 1; ost[o] = O_DONE;
            if :: st[p] == CREATING -> st[p] = COLLECTING; commit_tell(p, COLLECTING) :: else -> skip fi
        :: else -> fail_payment(p, o)
        fi
    :: k == K_CONFIRM && over(st[p]) ->    /* _settle_abandoned_confirm: the cancel behind it ends it */
        ost[o] = O_DONE
    :: k == K_CONFIRM && !over(st[p]) && a == A_DECLINED ->
        st[p] = DECLINED; ost[o] = O_DONE; commit_tell(p, DECLINED)
    :: k == K_CONFIRM && !over(st[p]) && a != A_DECLINED ->
        if
        :: ps == PI_HELD -> authorised(p, o, i)
        :: ps == PI_OPEN && by_reader[p] && asks[p] > 0 && asks[p] < 2 ->
            asks[p]++; processing[p] = 1; reader_job[p] = 1   /* asked again; the CONFIRM stays pending */
        :: ps == PI_OPEN && by_reader[p] && !(asks[p] > 0 && asks[p] < 2) ->
            fail_payment(p, o);                               /* _reader_did_not_confirm */
            add_op(OP(p, K_CANCEL), 0)
        :: else -> fail_payment(p, o)
        fi
    :: k == K_INCREMENT ->
        if
        :: a != A_DECLINED && ps == PI_HELD && piamount[i] >= RAISED ->
            hold[p] = piamount[i]; increment_state = R_SUCCEEDED
        :: else -> increment_state = R_FAILED
        fi;
        ost[o] = O_DONE
    :: k == K_CAPTURE ->
        if
        :: ps == PI_CAPTURED ->
            st[p] = CAPTURED; captured_amount[p] = pireceived[i]; ost[o] = O_DONE; commit_tell(p, CAPTURED)
        :: else -> fail_payment(p, o)
        fi
    :: k == K_CANCEL -> ost[o] = O_DONE
    :: k == K_REFUND ->
        if
        :: refund_state == R_PENDING && a == A_OK -> refund_state = R_SUCCEEDED
        :: refund_state == R_PENDING && a != A_OK -> refund_state = R_FAILED
        :: else -> skip
        fi;
        ost[o] = O_DONE;
#ifndef M_TELL_BEFORE_COMMIT
        tell_refund = refund_state
#endif
    fi
    fi;
    check_store()
}

/* Stripe applies one request (the key is new to it) */
inline apply(o, g) {
    p = o / NK;
    k = o % NK;
    i = pi[p] - 1;
    result = A_WRONG;
    if
    :: k == K_CREATE ->
        PROPERTY(one_payment_intent_per_attempt,
                 !((npi > 0 && pipay[0] == p) || (npi > 1 && pipay[1] == p) || (npi > 2 && pipay[2] == p)));
        assert(npi < NPI);
        pist[npi] = PI_OPEN; pipay[npi] = p; piamount[npi] = AMOUNT;
        i = npi; npi++;
        result = A_OK
    :: k == K_CONFIRM && pist[i] == PI_OPEN ->
        if
        :: declines < DECLINES -> declines++; pideclined[i] = 1; result = A_DECLINED
        :: true -> pist[i] = PI_HELD; result = A_OK
        fi
    :: k == K_INCREMENT && pist[i] == PI_HELD ->
        if
        :: declines < DECLINES -> declines++; result = A_DECLINED
        :: true -> piamount[i] = RAISED; result = A_OK
        fi
    :: k == K_CAPTURE && pist[i] == PI_HELD ->
        PROPERTY(nothing_captured_unasked, asked_capture[p] != 0 && !canceled_by_pos[p]);
        PROPERTY(capture_for_the_amount_asked, capture_amount[p] == asked_capture[p] && capture_amount[p] <= piamount[i]);
        PROPERTY(one_capture_per_order,
                 !((npi > 0 && pist[0] == PI_CAPTURED) || (npi > 1 && pist[1] == PI_CAPTURED) || (npi > 2 && pist[2] == PI_CAPTURED)));
        pist[i] = PI_CAPTURED; pireceived[i] = capture_amount[p]; result = A_OK
    :: k == K_CANCEL && (pist[i] == PI_OPEN || pist[i] == PI_HELD) ->
        pist[i] = PI_CANCELED; result = A_OK
    :: k == K_REFUND && pist[i] == PI_CAPTURED ->
        /* Stripe would refuse a refund beyond the charge: the model's Stripe does not, so that the
           daemon's own rules are what is checked */
        PROPERTY(one_refund_per_refund_id, refunds_made == 0);
        PROPERTY(never_more_refunded_than_captured, pirefunded[i] + refund_amount <= pireceived[i]);
        refunds_made++; pirefunded[i] = pirefunded[i] + refund_amount; result = A_OK
    :: else -> skip
    fi;
    if
    :: k == K_CREATE -> key[KEY(o, g)] = 8 + result + 16 * i
    :: else -> key[KEY(o, g)] = 8 + result
    fi
}

/* operations.learn_truth + judge, and the worker's _learn_truth: what Stripe holds decides */
inline learn_truth(o) {
    p = o / NK;
    k = o % NK;
    i = pi[p] - 1;
    verdict = 0;   /* 0 send anew, 1 done, 2 conclusive */
    if
    :: k != K_CREATE && pi[p] == 0 -> verdict = 2; i = NONE   /* NotFound */
    :: k == K_CREATE ->
        i = NONE;
        if
        :: npi > 0 && pipay[0] == p -> i = 0
        :: npi > 1 && pipay[1] == p -> i = 1
        :: npi > 2 && pipay[2] == p -> i = 2
        :: else -> skip
        fi;
        if :: i != NONE -> verdict = 1 :: else -> skip fi
    :: k == K_CONFIRM && pi[p] != 0 ->
        if
        :: pist[i] == PI_HELD || pist[i] == PI_CAPTURED -> verdict = 1
        :: pist[i] == PI_CANCELED -> verdict = 2
        :: else -> skip
        fi
    :: k == K_INCREMENT && pi[p] != 0 ->
        if
        :: piamount[i] >= RAISED -> verdict = 1
        :: piamount[i] < RAISED && pist[i] != PI_HELD -> verdict = 2
        :: else -> skip
        fi
    :: k == K_CAPTURE && pi[p] != 0 ->
        if
        :: pist[i] == PI_CAPTURED -> verdict = 1
        :: pist[i] != PI_CAPTURED && pist[i] != PI_HELD -> verdict = 2
        :: else -> skip
        fi
    :: k == K_CANCEL && pi[p] != 0 ->
        if
        :: pist[i] == PI_CANCELED -> verdict = 1
        :: pist[i] == PI_CAPTURED -> verdict = 2
        :: else -> skip
        fi
    :: k == K_REFUND && pi[p] != 0 ->
        if :: refunds_made > 0 -> verdict = 1 :: else -> skip fi
    fi;
    if
    :: verdict == 1 -> settle(o, A_OK, i)
    :: verdict == 2 -> settle(o, A_WRONG, i)
    :: verdict == 0 && oabandoned[o] && oold[o] -> settle(o, A_WRONG, i)   /* _carry_abandoned: nothing is left */
    :: verdict == 0 && oabandoned[o] && !oold[o] -> otruth[o] = 0           /* carried on under its own key */
    :: verdict == 0 && !oabandoned[o] && ogen[o] == NONE -> osent[o] = 0; otruth[o] = 0; oold[o] = 0  /* (M_SEND_BEFORE_KEY) */
#ifndef M_NEW_KEY_AGE_DOUBT
    :: verdict == 0 && !oabandoned[o] && ogen[o] != NONE && !otruth[o] ->
        oold[o] = 0                          /* only its age was in doubt: sent again under its own key */
    :: verdict == 0 && !oabandoned[o] && ogen[o] != NONE && otruth[o] ->
#else
    :: verdict == 0 && !oabandoned[o] && ogen[o] != NONE ->
#endif
        assert(ogen[o] + 1 < NG);
        ogen[o]++; osent[o] = 0; otruth[o] = 0; oold[o] = 0                  /* the new key is durable first */
    fi
}

/* service.recover after a restart: payments that waited for a customer are canceled */
inline recover() {
    p = 0;
    do
    :: p < NP ->
        if
        :: st[p] == CREATING || st[p] == COLLECTING -> cancel_payment(p)
        :: else -> skip
        fi;
        p++
    :: else -> break
    od
}

active proctype money() {

    /* which reader: the host confirms (simulated reader, protocol 1), or the reader confirms on its
       own (a smart reader, an SDK bridge): both are explored */
#ifdef BY_READER
    by_reader[0] = BY_READER; by_reader[1] = BY_READER;
#else
    if :: by_reader[0] = 0; by_reader[1] = 0 :: by_reader[0] = 1; by_reader[1] = 1 fi;
#endif

    do
    /* ---- tell: the ledger publishes right after the commit (nothing else runs in between) ---- */
    :: atomic { tell_p != NONE ->
        PROPERTY(told_state_is_committed, st[tell_p] == tell_s);
        tell_p = NONE; tell_s = 0;
        CLEAR }
    :: atomic { tell_p == NONE && tell_refund != R_NONE ->
        PROPERTY(told_refund_is_committed, refund_state == tell_refund);
        tell_refund = R_NONE;
        CLEAR }

    /* ---- the POS ---- */
    :: atomic { IDLE && attempts_made < NP && MAY_START ->                  /* payment.start: a new attempt */
        p = attempts_made;
        printf("MSC: pos payment.start: attempt %d\n", p);
#ifdef M_TELL_BEFORE_COMMIT
        PROPERTY(told_state_is_committed, st[p] == CREATING);              /* told first ... */
#endif
        st[p] = CREATING; attempts_made++;
        add_op(OP(p, K_CREATE), 0);
#ifdef M_SEND_BEFORE_KEY
        ogen[OP(p, K_CREATE)] = NONE;   /* no key yet: the worker picks one when it sends */
#endif
        check_store();
        commit_tell(p, CREATING);
        CLEAR }
    :: atomic { IDLE && (CAN_CANCEL(0) || CAN_CANCEL(1)) ->                /* payment.cancel */
        if :: CAN_CANCEL(0) -> p = 0 :: CAN_CANCEL(1) -> p = 1 fi;
        printf("MSC: pos payment.cancel %d\n", p);
        cancel_payment(p); canceled_by_pos[p] = 1;
        check_store();
        commit_tell(p, CANCELED);
        CLEAR }
    :: atomic { IDLE && (CAN_CAPTURE(0) || CAN_CAPTURE(1)) ->              /* payment.capture */
        if :: CAN_CAPTURE(0) -> p = 0 :: CAN_CAPTURE(1) -> p = 1 fi;
        q = hold[p] - 1;   /* less than the hold: a capture of the whole hold would hide a wrong amount */
        printf("MSC: pos payment.capture %d amount %d\n", p, q);
        st[p] = CAPTURING; capture_amount[p] = q;
        add_op(OP(p, K_CAPTURE), 0);
        asked_capture[p] = q;
        commit_tell(p, CAPTURING);
        CLEAR }
    :: atomic { IDLE && (CAN_INCREMENT(0) || CAN_INCREMENT(1)) ->          /* payment.increment */
        if :: CAN_INCREMENT(0) -> p = 0 :: CAN_INCREMENT(1) -> p = 1 fi;
        printf("MSC: pos payment.increment %d to %d\n", p, RAISED);
        increment_state = R_PENDING;
        add_op(OP(p, K_INCREMENT), 0);
        CLEAR }
    :: atomic { IDLE && (CAN_REFUND(0) || CAN_REFUND(1)) ->                /* payment.refund */
        if :: CAN_REFUND(0) -> p = 0 :: CAN_REFUND(1) -> p = 1 fi;
#ifdef M_REFUND_AUTHORISED
        refund_amount = hold[p];
#else
        refund_amount = captured_amount[p];
#endif
        printf("MSC: pos payment.refund %d amount %d\n", p, refund_amount);
        refund_state = R_PENDING;
        add_op(OP(p, K_REFUND), 0);
        tell_refund = R_PENDING;
        CLEAR }
    :: atomic { IDLE && (st[0] == DECLINED || st[1] == DECLINED) ->        /* payment.collect_again */
        if :: st[0] == DECLINED -> p = 0 :: st[1] == DECLINED -> p = 1 fi;
        printf("MSC: pos payment.collect_again %d\n", p);
        st[p] = COLLECTING; commit_tell(p, COLLECTING);
        CLEAR }

    /* ---- the reader ---- */
    :: atomic { IDLE && (CAN_READ_CARD(0) || CAN_READ_CARD(1)) ->          /* the card is read: _authorise */
        if :: CAN_READ_CARD(0) -> p = 0 :: CAN_READ_CARD(1) -> p = 1 fi;
        printf("MSC: reader: card read for %d\n", p);
        o = OP(p, K_CONFIRM);
        g = 0;
        if :: ost[o] != O_NONE -> g = ogen[o] + 1 :: else -> skip fi;   /* a new card: a new confirm key */
        assert(g < NG);
        add_op(o, g);
        st[p] = PROCESSING;
        if :: by_reader[p] -> asks[p] = 1; processing[p] = 1; reader_job[p] = 1 :: else -> skip fi;
        commit_tell(p, PROCESSING);
        CLEAR }
    :: atomic { reader_job[0] || reader_job[1] ->      /* the reader (its SDK) confirms on its own */
        if :: reader_job[0] -> p = 0 :: reader_job[1] -> p = 1 fi;
        i = pi[p] - 1;
        if
        :: pist[i] == PI_OPEN && declines < DECLINES -> declines++; pideclined[i] = 1
        :: pist[i] == PI_OPEN -> pist[i] = PI_HELD; pideclined[i] = 0
        :: true -> skip                                 /* could not: no card in time, offline, ... */
        fi;
        printf("MSC: reader: its own confirm for %d ended, PaymentIntent %d is %d\n", p, i, pist[i]);
        reader_job[p] = 0; processing[p] = 0;
        CLEAR }
    :: atomic { processing[0] || processing[1] ->     /* Reader.process returns early (a timeout): the reader goes on */
        if :: processing[0] -> processing[0] = 0 :: processing[1] -> processing[1] = 0 fi;
        CLEAR }

    /* ---- the worker: the truth first when the key cannot be trusted; commit the attempt, then send ---- */
    :: atomic { IDLE && wop == NONE && wire_op == NONE && (READY(0) || READY(1)) ->
        if :: READY(0) -> p = 0 :: READY(1) -> p = 1 fi;
        o = FIRST(p);
        printf("MSC: worker takes op %d (payment %d kind %d gen %d, truth %d old %d)\n", o, p, o % NK, ogen[o], otruth[o], oold[o]);
        if
        :: o % NK != K_CREATE && pi[p] == 0 ->
            settle(o, A_WRONG, NONE)              /* operations.send: no PaymentIntent, NotFound */
        :: else ->
            if
            :: otruth[o] || oold[o] ->
#ifdef M_NEW_KEY_NO_TRUTH
                if
                :: !oabandoned[o] && ogen[o] != NONE -> assert(ogen[o] + 1 < NG); ogen[o]++; osent[o] = 0; otruth[o] = 0; oold[o] = 0
                :: else -> learn_truth(o)
                fi
#else
                learn_truth(o)
#endif
            :: else ->
                osent[o] = 1; wop = o;   /* the attempt is committed before it is sent ... */
                g = ogen[wop];
#ifdef M_SEND_BEFORE_KEY
        if :: g == NONE -> g = boots :: else -> skip fi;
#endif
        printf("MSC: worker sends op %d under gen %d\n", wop, g);
                wgen = g; wire_op = wop; wire_gen = g; wwaiting = 1   /* ... and sent */
            fi
        fi;
        CLEAR }
    :: atomic { wop != NONE && wwaiting && answer_op == wop && answer_gen == wgen ->   /* the answer */
        o = wop; result = answer; i = answer_pi;
        printf("MSC: worker gets answer %d (replayed %d) for op %d, PaymentIntent %d\n", result, answer_replayed, o, i);
        answer_op = NONE; answer_gen = 0; answer = 0; answer_pi = 0; answer_replayed = 0;
#ifdef M_SEND_BEFORE_KEY
        ogen[o] = wgen;   /* the key is stored with the answer */
#endif
        if
        :: result == A_409 -> no_answer(o, 0)
        :: result == A_500 -> no_answer(o, answer_replayed)
        :: else -> settle(o, result, i); wop = NONE; wwaiting = 0; wgen = 0
        fi;
        CLEAR }
    :: atomic { wop != NONE && wwaiting && wire_op == NONE && answer_op == NONE ->       /* no answer: timeout */
        o = wop;
        printf("MSC: worker: no answer for op %d\n", o);
#ifdef M_RETRY_CREATE_NEW_PI
        if
        :: o % NK == K_CREATE && ost[o] == O_PENDING -> assert(ogen[o] + 1 < NG); ogen[o]++; osent[o] = 0
        :: else -> skip
        fi;
#endif
        no_answer(o, 0);
        CLEAR }

    /* ---- Stripe ---- */
    :: atomic { wire_op != NONE ->
        o = wire_op; g = wire_gen; wire_op = NONE; wire_gen = 0;
        answer_replayed = 0; i = NONE;
        if
        :: key[KEY(o, g)] == 1 -> result = A_409
        :: SAVED(KEY(o, g)) -> result = SAVED_ANSWER(KEY(o, g)); i = SAVED_PI(KEY(o, g)); answer_replayed = 1
        :: key[KEY(o, g)] == 0 && o % NK == K_CONFIRM && by_reader[o / NK] ->
            /* a reader's confirm is only read back (GET): no key, nothing applied */
            if
            :: pist[pi[o / NK] - 1] == PI_OPEN && pideclined[pi[o / NK] - 1] ->
                result = A_DECLINED; pideclined[pi[o / NK] - 1] = 0   /* (each decline is read once) */
            :: else -> result = A_OK
            fi
        :: key[KEY(o, g)] == 0 && !(o % NK == K_CONFIRM && by_reader[o / NK]) ->
            if
            :: slows < SLOWS && slow_op == NONE -> slows++; key[KEY(o, g)] = 1; slow_op = o; slow_gen = g; result = A_NONE
            :: errors < ERRORS -> errors++; key[KEY(o, g)] = 8 + A_500; result = A_500
            :: errors < ERRORS ->                         /* applied, then failed: the 500 is what is saved */
                errors++; apply(o, g); key[KEY(o, g)] = (key[KEY(o, g)] / 8) * 8 + A_500; result = A_500
            :: true -> apply(o, g)
            fi
        fi;
        if :: o % NK != K_CREATE -> i = pi[o / NK] - 1 :: else -> skip fi;
        printf("MSC: stripe: op %d gen %d -> answer %d (PaymentIntents %d)\n", o, g, result, npi);
        if
        :: result == A_NONE -> skip
        :: result != A_NONE && losses < LOSSES && result != A_409 -> losses++   /* applied, the answer lost */
        :: result != A_NONE -> answer_op = o; answer_gen = g; answer = result; answer_pi = i
        fi;
        if
        :: !(answer_op == wop && answer_gen == wgen && wwaiting) ->   /* nobody waits for it: dropped */
            answer_op = NONE; answer_gen = 0; answer = 0; answer_pi = 0; answer_replayed = 0
        :: else -> skip
        fi;
        CLEAR }
    :: atomic { slow_op != NONE ->     /* the slow request ends; nobody waits for its answer any more */
        o = slow_op; g = slow_gen; slow_op = NONE; slow_gen = 0;
        printf("MSC: stripe: the slow op %d gen %d ends\n", o, g);
        apply(o, g);
        CLEAR }
    :: atomic { days < DAYS && slow_op == NONE && wire_op == NONE && wop == NONE ->   /* a day passes: nothing is in flight */
        days++;
        printf("MSC: a day passes: Stripe forgets its keys\n");
        for (k : 0 .. NP * NK * NG - 1) { key[k] = 0 }
        for (k : 0 .. NP * NK - 1) { if :: ost[k] == O_PENDING && osent[k] -> oold[k] = 1 :: else -> skip fi }
        k = 0;
        CLEAR }

    /* ---- the wall clock steps back: Worker._key_may_be_gone takes a key first sent "in the future"
       as possibly forgotten, even while its request is still executing at Stripe; the truth is
       then learned, and the key kept ---- */
    :: atomic { clock_backs < CLOCK_BACKS ->
        clock_backs++;
        printf("MSC: the wall clock steps back\n");
        for (k : 0 .. NP * NK - 1) { if :: ost[k] == O_PENDING && osent[k] -> oold[k] = 1 :: else -> skip fi }
        CLEAR }

    /* ---- the customer's wait for Stripe runs out: _give_up_on_stripe ---- */
    :: atomic { IDLE && give_ups < GIVE_UPS && (CAN_GIVE_UP(0) || CAN_GIVE_UP(1)) ->
        if :: CAN_GIVE_UP(0) -> p = 0 :: CAN_GIVE_UP(1) -> p = 1 fi;
        give_ups++;
        printf("MSC: the customer's wait for %d runs out\n", p);
        may_exist = (pi[p] != 0);
        for (k : 0 .. NK - 1) {
            o = OP(p, k);
            if
            :: ost[o] == O_PENDING && (osent[o] || (k == K_CONFIRM && by_reader[p])) ->
                oabandoned[o] = 1; may_exist = 1;
                if :: k == K_CONFIRM -> otruth[o] = 1 :: else -> skip fi
            :: ost[o] == O_PENDING && !(osent[o] || (k == K_CONFIRM && by_reader[p])) -> ost[o] = O_DROPPED
            :: else -> skip
            fi
        }
        if :: may_exist -> add_op(OP(p, K_CANCEL), 0) :: else -> skip fi;
        st[p] = FAILED;
        check_store();
        commit_tell(p, FAILED);
        CLEAR }

    /* ---- a crash (SIGKILL) at any step, and the restart from the store ---- */
    :: atomic { crashes < CRASHES ->
        crashes++; boots++;
        printf("MSC: CRASH (SIGKILL) and restart\n");
        wop = NONE; wwaiting = 0; wgen = 0; tell_p = NONE; tell_s = 0; tell_refund = R_NONE;
        processing[0] = 0; processing[1] = 0; asks[0] = 0; asks[1] = 0;
        recover();
        check_store();
        CLEAR }

    /* ---- nothing left to do: what was promised has happened ---- */
    :: timeout -> break
    od;

    /* the capture the POS was told is queued happened, once, for the amount asked */
    for (p : 0 .. NP - 1) {
        if
        :: asked_capture[p] != 0 ->
            PROPERTY(asked_capture_happened, st[p] == CAPTURED && pi[p] != 0 && pist[pi[p] - 1] == PI_CAPTURED
                     && pireceived[pi[p] - 1] == asked_capture[p] && captured_amount[p] == asked_capture[p])
        :: else -> skip
        fi
    }
    /* the order holds money on at most one PaymentIntent; nothing is left queued */
    PROPERTY(one_payment_intent_holds_money,
             (pist[0] == PI_HELD || pist[0] == PI_CAPTURED) + (pist[1] == PI_HELD || pist[1] == PI_CAPTURED)
             + (pist[2] == PI_HELD || pist[2] == PI_CAPTURED) <= 1);
    PROPERTY(refund_settled, refund_state != R_PENDING && (refund_state != R_SUCCEEDED || refunds_made == 1));
    PROPERTY(increment_settled, increment_state != R_PENDING);
    for (o : 0 .. NP * NK - 1) { PROPERTY(outbox_drained, ost[o] != O_PENDING) }
}
