"""Card-reader drivers behind one small interface (base.Reader)."""
