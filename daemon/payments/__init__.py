"""Payments: the payment model and its transitions, the Stripe gateway, the store, the worker, reconciliation."""
