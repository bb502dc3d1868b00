"""The deterministic simulation of the money core (docs/reliability.md, "Deterministic simulation"):
the real payment service, worker and store under one seeded scheduler, with Stripe's emulator in-process."""
