"""Incidents: categories, cases (事件), intake from every channel, the case life-cycle with its
append-only history, the address register, duplicates and metrics."""
