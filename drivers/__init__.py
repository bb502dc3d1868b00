"""Thin adapters for the hardware readerhost drives: card readers, the OLED display, buttons and LEDs."""
