"""Stand-ins for what is not on the desk: the Stripe API emulator and the demo that drives it."""
