"""The layer that carries ports across processes; the in-process core never imports it."""
